"""The model zoo: MLP and CNN with size knobs, each starting with its own input normalisation.

Every zoo model takes the raw inputs the dataset provides; `Normalize` (mean/std buffers set
from the training split) is part of the model, so saved weights and exported graphs carry it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from engine.errors import InputError
from engine.spec import Architecture, CnnArch, MlpArch


class Normalize(nn.Module):
    """(x - mean) / std, per channel for images [C, H, W], per feature otherwise."""

    def __init__(self, sample_shape: tuple[int, ...]):
        super().__init__()
        stat_shape = (sample_shape[0],) + (1,) * (len(sample_shape) - 1) if len(sample_shape) == 3 \
            else sample_shape
        self.register_buffer("mean", torch.zeros(stat_shape))
        self.register_buffer("std", torch.ones(stat_shape))

    @torch.no_grad()
    def fit(self, x: np.ndarray) -> None:
        t = torch.from_numpy(x)
        dims = (0, 2, 3) if t.ndim == 4 else (0,)
        mean, std = t.mean(dim=dims), t.std(dim=dims)
        std = torch.where(std > 1e-6, std, torch.ones_like(std))  # constant inputs: just centre
        self.mean.copy_(mean.reshape(self.mean.shape))
        self.std.copy_(std.reshape(self.std.shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class MLP(nn.Module):
    def __init__(self, sample_shape: tuple[int, ...], n_classes: int, arch: MlpArch):
        super().__init__()
        self.normalize = Normalize(sample_shape)
        layers: list[nn.Module] = [nn.Flatten()]
        width_in = math.prod(sample_shape)
        for _ in range(arch.depth):
            layers += [nn.Linear(width_in, arch.width), nn.ReLU()]
            if arch.dropout:
                layers.append(nn.Dropout(arch.dropout))
            width_in = arch.width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width_in, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.normalize(x)))


class CNN(nn.Module):
    """Blocks of conv3x3-BN-ReLU; channels double and the map halves while it is ≥ 4 wide."""

    def __init__(self, sample_shape: tuple[int, ...], n_classes: int, arch: CnnArch):
        super().__init__()
        self.normalize = Normalize(sample_shape)
        c_in, h, w = sample_shape
        layers: list[nn.Module] = []
        c = arch.channels
        for i in range(arch.depth):
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
            if min(h, w) >= 4 and i < arch.depth - 1:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c_in, c = c, min(c * 2, 4 * arch.channels)
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if arch.dropout:
            layers.append(nn.Dropout(arch.dropout))
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.normalize(x)))


def build_model(arch: Architecture, sample_shape: tuple[int, ...], n_classes: int,
                where: str = "student.architecture") -> nn.Module:
    if isinstance(arch, CnnArch):
        if len(sample_shape) != 3:
            raise InputError.one(
                where, f"a cnn needs image samples shaped [channels, height, width]; the data "
                f"gives samples shaped {list(sample_shape)}",
                "use an mlp for tabular data, or image data (IDX, image .npz, digits)")
        return CNN(sample_shape, n_classes, arch)
    return MLP(sample_shape, n_classes, arch)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
