"""Multi-task heads: one head per teacher on the student's shared features (`body`, the
student contract's feature tap), each learning its own teacher's outputs, beside the unified
head (Caruana, "Multitask Learning", Machine Learning 1997; as in knowledge amalgamation):

    L_heads = mean_n (1/K) Σ_t T² · KL( σ(z_t/T) ‖ σ(h_t(f_s(x))[S_t]/T) )

weighted by `task_head_weight`. Trained during the distillation phase only; never exported.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from engine.losses import multi_teacher_kd
from engine.strategies.taps import Taps
from engine.strategies.term import Batch, LossTerm, Setup, register

FEATURES = "body"  # the contract's features before the head (engine/models/contract.py)


@register
class TaskHeads(LossTerm):
    key = "task_heads"
    order = 50
    distill_only = True

    def __init__(self, setup: Setup):
        super().__init__()
        self.strategy = setup.spec.strategy
        self.k, self.c = len(setup.teachers), len(setup.spec.classes)
        self.taps = Taps(setup.student)
        self.taps.tap(FEATURES, "strategy.task_heads")
        features = self.taps.probe(setup.student, setup.probe)[FEATURES]
        self.heads = nn.Linear(math.prod(features[1:]), self.k * self.c)
        self.names = ["loss/heads"]

    @classmethod
    def build(cls, setup: Setup) -> TaskHeads | None:
        if not setup.spec.strategy.task_heads or not setup.teachers or setup.resumed_later_phase:
            return None
        return cls(setup)

    def forward(self, batch: Batch):
        features = self.taps[FEATURES].flatten(1)
        self.taps.captured.clear()
        logits = self.heads(features).view(len(features), self.k, self.c)
        p, lp, mask = batch.targets.teacher_targets
        loss, _ = multi_teacher_kd(logits, p, lp, mask, torch.ones(self.k, device=p.device),
                                   self.strategy.temperature)
        return {"loss/heads": loss}

    def weight(self, name: str, batch: Batch) -> float:
        return self.strategy.task_head_weight

    def close(self) -> None:
        self.taps.close()
