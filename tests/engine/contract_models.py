"""Real teachers made the way other people make them, for the input-contract tests: a small
torchvision-layout ResNet trained on ImageNet-normalised RGB images (normalisation outside
the model), a CNN exported channels-last (NHWC), and a scikit-learn classifier exported with
skl2onnx (probabilities and class labels in the graph)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def rgb_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as 0-255 RGB images [N, 3, 8, 8], each channel tinted differently."""
    d = load_digits()
    grey = d.images.astype(np.float32) * (255 / 16)
    x = np.stack([grey, 0.5 * grey + 60, 255 - 0.8 * grey], axis=1)
    return x.astype(np.float32), d.target.astype(np.int64)


class BasicBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

    def forward(self, x):
        return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


class TinyResNet(nn.Module):
    """conv1/bn1, a layer of basic blocks, avgpool, fc: torchvision's ResNet layout, small."""

    def __init__(self, classes: int, channels_last: bool = False):
        super().__init__()
        self.channels_last = channels_last
        self.conv1, self.bn1 = nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
        self.layer1 = nn.Sequential(BasicBlock(16), BasicBlock(16))
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        if self.channels_last:  # a model exported from a framework that takes [N, H, W, C]
            x = x.permute(0, 3, 1, 2)
        x = self.layer1(torch.relu(self.bn1(self.conv1(x))))
        return self.fc(x.mean(dim=(2, 3)))


def train_and_export(model: nn.Module, x: np.ndarray, y: np.ndarray, path: Path, epochs: int = 3,
                     dynamic_spatial: bool = False) -> Path:
    """Full-batch-ish Adam training (seeded: the same weights in every process, whatever the
    random state when the model was built), then ONNX export with a dynamic batch."""
    torch.manual_seed(0)
    for module in model.modules():  # the caller built it from the global random state
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x)).split(128):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    model.eval()
    axes = {0: "batch"}
    if dynamic_spatial:
        axes.update({1: "height", 2: "width"})
    torch.onnx.export(model, (xt[:1],), str(path), input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": axes, "logits": {0: "batch"}}, opset_version=17, dynamo=False)
    return path


def imagenet_normalised(x: np.ndarray) -> np.ndarray:
    return ((x / 255 - MEAN[None, :, None, None]) / STD[None, :, None, None]).astype(np.float32)


def sklearn_teacher(path: Path, classes: list[int]) -> Path:
    """A LogisticRegression on the flat grey digits of `classes`, exported with skl2onnx
    (zipmap off): outputs `label` and `probabilities`, class labels in the graph."""
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    d = load_digits()
    keep = np.isin(d.target, classes)
    x = d.data[keep].astype(np.float32)
    clf = LogisticRegression(max_iter=2000).fit(x, d.target[keep])
    onx = to_onnx(clf, x[:1], options={id(clf): {"zipmap": False}}, target_opset=17)
    path.write_bytes(onx.SerializeToString())
    return path
