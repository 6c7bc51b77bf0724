"""Pruning a trained student, with torch.nn.utils.prune choosing what goes.

- **magnitude** (Han et al., "Learning both Weights and Connections for Efficient Neural
  Networks", NeurIPS 2015): zero the weights with the smallest |w|, in every layer alike
  (`l1_unstructured`) or across the whole model (`global_unstructured`). The masks stay on
  during the distillation fine-tune, so pruned weights stay zero, then become permanent.
- **structured** (Li et al., "Pruning Filters for Efficient ConvNets", ICLR 2017): remove the
  hidden units / conv filters whose weights have the smallest L1 norm (`ln_structured` picks
  them), then build a smaller model holding only the kept ones: the layers really shrink,
  and so do the file, the memory and the time per batch.

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
    """A smaller copy of `model` without the `amount` fraction of units/channels of each hidden
    layer with the smallest L1 norm. Returns (new model, its hidden widths). The student's
    contract (engine/models/contract.py) says which layers may lose units."""
    require(model, "structured_pruning", where)
    layers = model.prunable_layers()
    keep: list[torch.Tensor] = []
    for layer in layers:
        n_out = layer.weight.shape[0]
        n_keep = max(1, round(n_out * (1.0 - amount)))
        w = layer.weight.detach()
        mask = prune.LnStructured(amount=n_out - n_keep, n=1, dim=0).compute_mask(
            w, default_mask=torch.ones_like(w))
        keep.append((mask.flatten(1).sum(1) > 0).nonzero().flatten())
    widths = [len(k) for k in keep]
    small = model.with_widths(widths)
    small.to(next(model.parameters()).device)
    small.normalize.load_state_dict(model.normalize.state_dict())

    old_new = [(o, n) for o, n in zip(model.modules(), small.modules())
               if isinstance(o, (nn.Linear, nn.Conv2d, nn.BatchNorm2d))]
    inputs: torch.Tensor | None = None  # kept indices of the previous layer's outputs
    hidden = iter(keep)
    for old, new in old_new:
        if isinstance(old, nn.BatchNorm2d):  # follows a conv: same channels
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(new, name).copy_(getattr(old, name)[inputs])
            new.num_batches_tracked.copy_(old.num_batches_tracked)
            continue
        outputs = next(hidden, None) if old is not model.head else None
        w = old.weight
        if outputs is not None:
            w = w[outputs]
        if inputs is not None:
            w = w[:, inputs]
        new.weight.copy_(w)
        if old.bias is not None:
            new.bias.copy_(old.bias if outputs is None else old.bias[outputs])
        inputs = outputs
    assert small.hidden_widths() == widths
    return small, widths


def describe(step: PruneStep) -> str:
    what = (f"magnitude pruning {step.sparsity:.0%} of weights ({step.scope})"
            if step.method == "magnitude" else f"structured pruning {step.sparsity:.0%} of units/channels")
    return f"{what}, then {step.finetune_epochs} fine-tune epochs"
