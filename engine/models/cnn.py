"""A small convolutional network for images [C, H, W] (spec: `CnnArch`)."""

from __future__ import annotations

from torch import nn

from engine.models.contract import Student
from engine.models.normalize import Normalize
from engine.models.registry import register
from engine.spec import CnnArch


@register("cnn")
class CNN(Student):
    """Blocks of conv3x3-BN-ReLU; channels double and the map halves while it is ≥ 4 wide;
    global average pooling, then the head. `widths` (channels per block) replaces the doubling
    after structured pruning."""

    structured_pruning = True
    growable = CnnArch.growable

    def __init__(self, sample_shape: tuple[int, ...], n_classes: int, arch: CnnArch,
                 widths: list[int] | None = None):
        super().__init__(sample_shape, n_classes, arch)
        self.normalize = Normalize(sample_shape)
        c_in, h, w = sample_shape
        layers: list[nn.Module] = []
        widths = widths or [min(arch.channels * 2 ** i, 4 * arch.channels) for i in range(arch.depth)]
        for i, c in enumerate(widths):
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
            if min(h, w) >= 4 and i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c_in = c
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if arch.dropout:
            layers.append(nn.Dropout(arch.dropout))
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, n_classes)

    def prunable_layers(self) -> list[nn.Module]:
        return [m for m in self.body if isinstance(m, nn.Conv2d)]

    def hidden_widths(self) -> list[int]:
        return [m.out_channels for m in self.prunable_layers()]
