"""The contract every student architecture fulfils; code that needs a capability asks for it.

A student is a `Student` (a torch module) that:

- takes the raw samples the data source gives ([N, *sample_shape], float32) and normalises
  them itself in `normalize` (a `Normalize`, fitted on the training split), so saved weights
  and exported graphs carry their preprocessing;
- computes its features in `body` (the named feature tap for hints and task heads: the
  features just before the classifier) and its logits in `head`, an `nn.Linear` with one
  output row per student class (FedAvg, growth and weight copying address rows by class);
- names every module a hint may read (`named_modules`: e.g. `body.1`), and lists the useful
  ones in `hint_layers` (what `validate --json` shows with their output shapes);
- says what it can do, as class attributes:
    `structured_pruning`  its hidden widths can be cut: `hidden_widths` (what is saved with
                          the weights), `with_widths` (rebuild), `unit_scores` (one importance
                          per unit of each width) and `keep_units` (a smaller copy holding the
                          chosen units); the defaults serve a sequential chain of
                          `prunable_layers`, a residual network overrides them;
    `growable`            Net2Net growth can make it compute what a smaller one of its kind does.

`require(model, capability, where)` answers an architecture that lacks a capability with a
clear InputError naming the field, never an AttributeError deep in the code.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from engine.errors import InputError
from engine.models.normalize import Normalize
from engine.models.pruning import chain_cuts, check_keep, cut_state, l1_scores

CAPABILITIES = {
    "structured_pruning": "structured pruning (removing whole units or channels)",
    "growable": "growing from a teacher (Net2Net)",
}


class Student(nn.Module):
    """Base of every zoo architecture; see the module docstring for the contract."""

    kind: ClassVar[str] = ""  # the spec's `architecture.kind`, set by `register`
    structured_pruning: ClassVar[bool] = False
    growable: ClassVar[bool] = False

    normalize: Normalize
    body: nn.Module
    head: nn.Linear

    def __init__(self, sample_shape: tuple[int, ...], n_classes: int, arch):
        super().__init__()
        self.sample_shape, self.n_classes, self.arch = tuple(sample_shape), n_classes, arch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.normalize(x)))

    def hidden_widths(self) -> list[int]:
        """The widths structured pruning changes (units per layer, channels per block); saved
        with the weights so a pruned student can be rebuilt."""
        return []

    def with_widths(self, widths: list[int]) -> Student:
        """A fresh (untrained) student of this architecture with other hidden widths."""
        return type(self)(self.sample_shape, self.n_classes, self.arch, widths)

    def blocks(self) -> list[nn.Module]:
        """The repeated blocks (residual or transformer blocks) whose activations
        `training.activation_checkpointing` recomputes in the backward pass; none: not offered."""
        return []

    def hint_layers(self) -> list[str]:
        """The layers worth reading for a feature hint, in forward order: `body` (the features
        before the head), its direct children and, where a child is a stack of blocks (a
        ResNet stage), each block; activations, pooling, flattening and dropout are left out."""
        names = []
        for name, child in self.body.named_children():
            if _plumbing(child):
                continue
            names.append(f"body.{name}")
            grand = list(child.named_children())
            if isinstance(child, nn.Sequential) and grand and all(len(list(g.children())) for _, g in grand):
                names += [f"body.{name}.{g}" for g, _ in grand]
        return names + ["body"]

    @torch.no_grad()
    def hint_layer_shapes(self) -> list[dict]:
        """`hint_layers` with the shape of one sample's output, [{"name", "shape"}], from a
        forward pass of one zero sample in eval mode (costs nothing on the meta device)."""
        modules = dict(self.named_modules())
        shapes: dict[str, list[int]] = {}

        def keeper(name):
            def keep(_module, _inputs, output):
                if isinstance(output, torch.Tensor):
                    shapes[name] = list(output.shape[1:])
            return keep

        names = self.hint_layers()
        hooks = [modules[n].register_forward_hook(keeper(n)) for n in names]
        param = next(self.parameters(), None)
        was = self.training
        try:
            self.eval()
            self(torch.zeros((1, *self.sample_shape), device=param.device if param is not None else "cpu"))
        finally:
            self.train(was)
            for hook in hooks:
                hook.remove()
        return [{"name": n, "shape": shapes[n]} for n in names if n in shapes]

    def prunable_layers(self) -> list[nn.Module]:
        """The layers of `body` whose output units structured pruning may remove, in order;
        each is followed only by layers that keep its units (activations, pooling, BatchNorm)
        until the next prunable layer or the head. Used by the default `unit_scores` and
        `keep_units`; an architecture that is not such a chain overrides those instead."""
        return []

    def unit_scores(self) -> list[torch.Tensor]:
        """For each entry of `hidden_widths()`, one importance score per unit: the L1 norm of
        the weights that compute it (a hidden unit's weight row, a conv channel's filter)."""
        return [l1_scores(layer) for layer in self.prunable_layers()]

    def keep_units(self, keep: list[torch.Tensor]) -> Student:
        """A new, smaller student (`with_widths`) holding only the units `keep` names (one index
        tensor per hidden width): their weights, biases and BatchNorm statistics, the layers
        after them reading only them; `normalize` and everything else copied; same device."""
        check_keep(keep, self.hidden_widths())
        return self._cut(keep, chain_cuts(self, self.prunable_layers(), keep))

    def _cut(self, keep: list[torch.Tensor], cuts: dict) -> Student:
        """The student of the kept widths with `cuts` (module name -> kept outputs, inputs) applied."""
        small = self.with_widths([len(k) for k in keep])
        small.load_state_dict(cut_state(self, cuts))
        param = next(self.parameters(), None)
        small.to(param.device if param is not None else "cpu")
        return small.train(self.training)


_PLUMBING = (nn.ReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.Flatten, nn.Identity,
             nn.Dropout, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def _plumbing(module: nn.Module) -> bool:
    """An activation, pooling, flattening or dropout (or a container of only those): it computes
    no features of its own, so a hint reads the layer before it instead."""
    children = list(module.children())
    if children:
        return all(_plumbing(c) for c in children)
    return isinstance(module, _PLUMBING)


def require(model: nn.Module, capability: str, where: str) -> None:
    """Raise an InputError at `where` unless the model's architecture can do `capability`."""
    if not getattr(model, capability, False):
        kind = getattr(model, "kind", type(model).__name__)
        able = ", ".join(sorted(k for k, c in _registry().items() if getattr(c, capability, False)))
        raise InputError.one(where, f"the '{kind}' architecture does not support "
                             f"{CAPABILITIES[capability]}", f"use an architecture that does ({able or 'none'})")


def _registry() -> dict[str, type[Student]]:
    from engine.models import ARCHITECTURES

    return ARCHITECTURES
