"""What a loss term is, the registry of terms, and what a term sees of a training step.

A loss term is a registered class (`@register`) with its formula and paper in its docstring.
`build(setup)` returns the term when the spec asks for it (else None); a term names the
metrics it reports (`names`, e.g. "loss/kd" and one per teacher), computes them for a batch
(`__call__` returns named tensors, scalars or vectors, whose values in order are `names`) and
says each one's weight in the student's loss (`weight`; None: reported only). A term may own
learned parts (hint adapters, task heads): it is an `nn.Module`, trained with the student,
kept in checkpoints, never exported. `distill_only` terms take no part in the prune
fine-tunes. A term that mixes the whole loss instead of adding to it (the confidence loss)
sets `mixes`: L ← (1 − a)·L + a·L_term, with a = its weight.

Adding a loss term: its settings in engine/spec.py (`StrategySpec`) and one module in
engine/strategies/ with the class, imported in engine/strategies/__init__.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from engine.spec import PipelineSpec


@dataclass
class Setup:
    """What a term may read when it is built: the spec, the student, the teachers and data."""

    spec: PipelineSpec
    student: nn.Module
    teachers: list  # engine.teachers.Teacher
    labeled: bool  # the training split has labels the student may learn from
    hard_label_weight: float  # α, final: 0 without labels, 1 without teachers
    train_x: np.ndarray  # the training samples as teachers read them (hints read teacher features from them)
    probe: torch.Tensor  # two training samples on the device, to size adapters
    device: torch.device
    calibration: tuple[torch.Tensor, torch.Tensor] | None = None  # labelled (x, y) on the device
    resumed_later_phase: bool = False  # a run resumed after the distillation phase


@dataclass
class Batch:
    """One training step as the terms see it."""

    x: torch.Tensor
    idx: torch.Tensor  # positions in the training split
    labels: torch.Tensor | None
    targets: object | None  # engine.strategies.targets.Targets, or None without teachers
    step: int
    progress: float  # the share of the run's steps done, 0..1
    student: Callable[[torch.Tensor], torch.Tensor]  # the (wrapped, maybe compiled) forward pass
    logits: torch.Tensor | None = None
    extra: dict = field(default_factory=dict)
    # gradient accumulation (training.accumulate): this part's share of the step's batch, and
    # the labelled samples in the whole batch, so a mean over labelled samples stays the mean
    # over the whole batch's (a part's loss is weighted by its share)
    share: float = 1.0
    labelled: torch.Tensor | None = None


class LossTerm(nn.Module):
    key: ClassVar[str] = ""
    order: ClassVar[int] = 50  # where its metrics come in the dashboard and the sum
    distill_only: ClassVar[bool] = False
    mixes: ClassVar[bool] = False
    names: list[str]

    @classmethod
    def build(cls, setup: Setup) -> LossTerm | None:
        raise NotImplementedError

    def before_forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Anything that needs its own forward pass of the student, before the batch's own
        (so that feature taps then hold the batch's features)."""
        return {}

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:  # noqa: D102 — see the class docstring
        raise NotImplementedError

    def weight(self, key: str, batch: Batch) -> float | None:
        raise NotImplementedError

    def close(self) -> None:
        """Remove anything attached to the student (forward hooks)."""


TERMS: dict[str, type[LossTerm]] = {}


def register(cls: type[LossTerm]) -> type[LossTerm]:
    if not cls.key or cls.key in TERMS:
        raise ValueError(f"loss term key {cls.key!r} is empty or registered twice")
    TERMS[cls.key] = cls
    return cls
