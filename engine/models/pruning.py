"""What structured pruning needs from a student, in one place: unit scores and state cutting.

A unit is what one row of a layer's weight computes (a hidden unit of a linear layer, an output
channel of a convolution). Its score is the L1 norm of that row (Li et al., "Pruning Filters
for Efficient ConvNets", ICLR 2017). Cutting a model is cutting its state dict: each module
named in `cuts` keeps only some of its outputs (weight rows, bias, BatchNorm's affine and
running statistics) and/or some of its inputs (weight columns); the rest is copied whole.
"""

from __future__ import annotations

import torch
from torch import nn

# kept output indices, kept input indices (None: all) of one module
Cut = tuple[torch.Tensor | None, torch.Tensor | None]

_PER_OUTPUT = ("weight", "bias", "running_mean", "running_var")


def l1_scores(layer: nn.Module) -> torch.Tensor:
    """One score per output unit of a linear or conv layer: the L1 norm of its weight row."""
    return layer.weight.detach().flatten(1).abs().sum(1).float()


def check_keep(keep: list[torch.Tensor], widths: list[int]) -> None:
    """`keep` has one non-empty, in-range index tensor per hidden width (a programming error if not)."""
    if len(keep) != len(widths):
        raise ValueError(f"keep_units got {len(keep)} index tensors for {len(widths)} hidden widths")
    for i, (k, n) in enumerate(zip(keep, widths)):
        if k.ndim != 1 or len(k) == 0 or int(k.min()) < 0 or int(k.max()) >= n or len(k.unique()) != len(k):
            raise ValueError(f"keep_units: width {i} ({n} units) got indices {k.tolist()[:8]}; "
                             "give 1 or more distinct indices below the width")


def cut_state(model: nn.Module, cuts: dict[str, Cut]) -> dict[str, torch.Tensor]:
    """`model`'s state with the modules named in `cuts` narrowed to their kept outputs/inputs."""
    out = {}
    for key, value in model.state_dict().items():
        module, _, name = key.rpartition(".")
        outputs, inputs = cuts.get(module, (None, None))
        if outputs is not None and name in _PER_OUTPUT:
            value = value[outputs.to(value.device)]
        if inputs is not None and name == "weight" and value.ndim >= 2:
            value = value[:, inputs.to(value.device)]
        out[key] = value
    return out


def chain_cuts(model: nn.Module, layers: list[nn.Module], keep: list[torch.Tensor]) -> dict[str, Cut]:
    """The cuts of a sequential chain: each of `layers` keeps its units, the next layer (or the
    head) reads only those, and a BatchNorm between them keeps the same channels."""
    kept = {id(layer): k for layer, k in zip(layers, keep)}
    cuts: dict[str, Cut] = {}
    inputs = None
    for name, module in model.body.named_modules(prefix="body"):
        if id(module) in kept:
            cuts[name] = (kept[id(module)], inputs)
            inputs = kept[id(module)]
        elif isinstance(module, nn.modules.batchnorm._BatchNorm) and inputs is not None:
            cuts[name] = (inputs, None)
    cuts["head"] = (None, inputs)
    return cuts
