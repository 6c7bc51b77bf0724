"""Feature taps: forward hooks that keep the output of named student layers for one step."""

from __future__ import annotations

import torch
from torch import nn

from engine.errors import InputError


class Taps:
    """Keeps the latest output of each tapped layer of the student (hints, task heads)."""

    def __init__(self, student: nn.Module):
        self.modules = dict(student.named_modules())
        # the names to suggest: the student's useful ones where it lists them, else every module
        self.suggested = student.hint_layers() if hasattr(student, "hint_layers") else [n for n in self.modules if n]
        self.captured: dict[str, torch.Tensor] = {}
        self._hooks: dict[str, object] = {}

    def tap(self, name: str, where: str) -> None:
        if name not in self.modules or not name:
            raise InputError.one(where, f"the student has no layer '{name}'",
                                 "use one of: " + ", ".join(self.suggested))
        if name not in self._hooks:
            self._hooks[name] = self.modules[name].register_forward_hook(self._keeper(name))

    def _keeper(self, name: str):
        def keep(_module, _inputs, output):
            self.captured[name] = output
        return keep

    @torch.no_grad()
    def probe(self, student: nn.Module, x: torch.Tensor) -> dict[str, torch.Size]:
        """One forward pass in eval mode: each tapped layer's output shape, to size what reads it."""
        was = student.training
        student.eval()
        student(x)
        student.train(was)
        shapes = {name: out.shape for name, out in self.captured.items()}
        self.captured.clear()
        return shapes

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.captured[name]

    def close(self) -> None:
        for hook in self._hooks.values():
            hook.remove()
        self._hooks.clear()
        self.captured.clear()
