"""Cross-entropy on the labels, beside the teachers' soft targets:

    L = α · CE(z_s, y) + (1 − α) · L_KD      (Hinton, Vinyals, Dean 2015, §2)

α is `strategy.hard_label_weight`; with no teachers the student learns from labels alone (α = 1).
"""

from __future__ import annotations

import torch.nn.functional as F

from engine.strategies.term import Batch, LossTerm, Setup, register


@register
class HardLabels(LossTerm):
    key = "ce"
    order = 20

    def __init__(self, alpha: float):
        super().__init__()
        self.alpha = alpha
        self.names = ["loss/ce"]

    @classmethod
    def build(cls, setup: Setup) -> HardLabels | None:
        if not setup.labeled or setup.hard_label_weight == 0.0:
            return None
        return cls(setup.hard_label_weight)  # 1 without teachers (engine/train.py decides α)

    def forward(self, batch: Batch):
        # the mean over the labelled samples (-1: an unlabelled image beside labelled ones);
        # 0 for a batch with none
        ce = F.cross_entropy(batch.logits.float(), batch.labels, ignore_index=-1, reduction="sum")
        if batch.labelled is not None:  # a part of an accumulated batch: over the whole batch's labels
            return {"loss/ce": ce / (batch.labelled.clamp_min(1) * batch.share)}
        return {"loss/ce": ce / batch.labels.ge(0).sum().clamp_min(1)}

    def weight(self, name: str, batch: Batch) -> float:
        return self.alpha
