"""Input normalisation inside the model: (x − mean) / std, fitted on the training split."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


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
