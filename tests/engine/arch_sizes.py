"""Measuring what a model really costs, to check the `size` estimates of engine/spec.py."""

from __future__ import annotations

import itertools

import torch
from torch import nn


def measured_activations(model: nn.Module, x: torch.Tensor) -> float:
    """The values autograd keeps for the backward pass of a training-mode forward of `x`, per
    sample: the numel of the distinct tensors saved for backward (one per storage address, the
    largest view there), without the model's own parameters and buffers, divided by the batch."""
    model.train()
    own = {t.data_ptr() for t in itertools.chain(model.parameters(), model.buffers())}
    saved: dict[int, int] = {}
    kept: list[torch.Tensor] = []  # nothing is freed (and its address reused) while measuring

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.data_ptr() not in own:
            saved[t.data_ptr()] = max(saved.get(t.data_ptr(), 0), t.numel())
            kept.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
    total = sum(saved.values())
    del out
    kept.clear()
    return total / len(x)
