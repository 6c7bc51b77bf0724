"""What the ViT and transformer tests share: the values autograd really keeps for backward."""

from __future__ import annotations

import torch
from torch import nn


def kept_per_sample(model: nn.Module, x: torch.Tensor) -> float:
    """Values (numel) of the tensors a training-mode forward saves for backward, each storage
    counted once (by data_ptr) and the parameters left out (they are weights, not
    activations), divided by the batch size."""
    params = {p.data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.data_ptr() not in params:
            seen[t.data_ptr()] = max(seen.get(t.data_ptr(), 0), t.numel())
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x).sum()
    return sum(seen.values()) / x.shape[0]
