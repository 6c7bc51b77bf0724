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
    """`widths` (one per hidden layer) replaces width × depth after structured pruning."""

    def __init__(self, sample_shape: tuple[int, ...], n_classes: int, arch: MlpArch,
                 widths: list[int] | None = None):
        super().__init__()
        self.normalize = Normalize(sample_shape)
        layers: list[nn.Module] = [nn.Flatten()]
        width_in = math.prod(sample_shape)
        for width in widths or [arch.width] * arch.depth:
            layers += [nn.Linear(width_in, width), nn.ReLU()]
            if arch.dropout:
                layers.append(nn.Dropout(arch.dropout))
            width_in = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width_in, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.normalize(x)))


class CNN(nn.Module):
    """Blocks of conv3x3-BN-ReLU; channels double and the map halves while it is ≥ 4 wide.

    `widths` (channels per block) replaces the doubling after structured pruning."""

    def __init__(self, sample_shape: tuple[int, ...], n_classes: int, arch: CnnArch,
                 widths: list[int] | None = None):
        super().__init__()
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.normalize(x)))


def build_model(arch: Architecture, sample_shape: tuple[int, ...], n_classes: int,
                where: str = "student.architecture", widths: list[int] | None = None) -> nn.Module:
    if isinstance(arch, CnnArch):
        if len(sample_shape) != 3:
            raise InputError.one(
                where, f"a cnn needs image samples shaped [channels, height, width]; the data "
                f"gives samples shaped {list(sample_shape)}",
                "use an mlp for tabular data, or image data (IDX, image .npz, digits)")
        return CNN(sample_shape, n_classes, arch, widths)
    return MLP(sample_shape, n_classes, arch, widths)


def hidden_widths(model: nn.Module) -> list[int]:
    """Units per hidden layer (MLP) or channels per block (CNN): what structured pruning changes."""
    return [m.out_features if isinstance(m, nn.Linear) else m.out_channels
            for m in model.body if isinstance(m, (nn.Linear, nn.Conv2d))]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
