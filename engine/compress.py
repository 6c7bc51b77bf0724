"""Pruning a trained student: by magnitude (torch.nn.utils.prune masks), or structured.

- **magnitude** (Han et al., "Learning both Weights and Connections for Efficient Neural
  Networks", NeurIPS 2015): zero the weights with the smallest |w|, in every layer alike
  (`l1_unstructured`) or across the whole model (`global_unstructured`). The masks stay on
  during the distillation fine-tune, so pruned weights stay zero, then become permanent.
- **structured** (Li et al., "Pruning Filters for Efficient ConvNets", ICLR 2017): remove the
  hidden units / conv filters whose weights have the smallest L1 norm, then build a smaller
  model holding only the kept ones: the layers really shrink, and so do the file, the memory
  and the time per batch. The student says what its units are and how it loses them
  (`unit_scores`, `keep_units`), so residual networks keep the channels their additions join.

The output layer keeps all its classes; the input normalisation is untouched.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import prune

from engine.models import require
from engine.spec import PruneStep


def prunable(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """The weight tensors pruning works on: every linear and conv layer, head included."""
    return [(m, "weight") for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def apply_magnitude(model: nn.Module, sparsity: float, scope: str) -> None:
    """Mask the smallest weights (masks stay until `make_permanent`)."""
    params = prunable(model)
    if scope == "global":
        prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=sparsity)
    else:
        for module, name in params:
            prune.l1_unstructured(module, name, amount=sparsity)


def restore_masks(model: nn.Module) -> None:
    """Give a fresh model the mask slots of a masked one, so its saved state loads into it."""
    for module, name in prunable(model):
        prune.identity(module, name)


def make_permanent(model: nn.Module) -> None:
    for module, name in prunable(model):
        if prune.is_pruned(module):
            prune.remove(module, name)


def is_masked(model: nn.Module) -> bool:
    return any(prune.is_pruned(m) for m, _ in prunable(model))


def sparsity(model: nn.Module) -> float:
    """Fraction of exactly-zero weights in the prunable layers."""
    zeros = total = 0
    for module, name in prunable(model):
        w = getattr(module, name + "_orig") * getattr(module, name + "_mask") \
            if prune.is_pruned(module) else getattr(module, name)  # `weight` lags until a forward
        zeros += int((w == 0).sum())
        total += w.numel()
    return zeros / max(total, 1)


@torch.no_grad()
def apply_structured(model: nn.Module, amount: float,
                     where: str = "compression") -> tuple[nn.Module, list[int]]:
    """A smaller copy of `model` without the `amount` fraction of the units of each hidden width
    that score lowest (`unit_scores`: the L1 norm of their weights). Returns (new model, its
    hidden widths). Which units exist and how a model loses them is the student's business
    (`keep_units`, engine/models/contract.py): a chain cuts every hidden layer, a residual
    network only the inside of its blocks."""
    require(model, "structured_pruning", where)
    keep = [keep_top(scores, amount) for scores in model.unit_scores()]
    small = model.keep_units(keep)
    widths = [len(k) for k in keep]
    assert small.hidden_widths() == widths
    return small, widths


def keep_top(scores: torch.Tensor, amount: float) -> torch.Tensor:
    """The indices of the round(n·(1 − amount)) best-scoring units (at least 1), in their order."""
    n_keep = max(1, round(len(scores) * (1.0 - amount)))
    return torch.topk(scores.float(), n_keep).indices.sort().values


def describe(step: PruneStep) -> str:
    what = (f"magnitude pruning {step.sparsity:.0%} of weights ({step.scope})"
            if step.method == "magnitude" else f"structured pruning {step.sparsity:.0%} of units/channels")
    return f"{what}, then {step.finetune_epochs} fine-tune epochs"
