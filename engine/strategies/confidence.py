"""The auxiliary confidence loss of weak-to-strong generalisation (Burns et al., "Weak-to-
Strong Generalization", OpenAI 2023, multi-class form): cross-entropy of the student on its own
hardened predictions, CE(z_s, argmax z_s), which lets a strong student disagree with its weak
teachers where it is confident. It mixes the whole loss:

    L ← (1 − a) · L + a · L_conf,   a = confidence_weight · min(progress / confidence_warmup, 1)
"""

from __future__ import annotations

from engine.losses import confidence_loss
from engine.strategies.term import Batch, LossTerm, Setup, register


@register
class Confidence(LossTerm):
    key = "confidence"
    order = 90
    mixes = True

    def __init__(self, weight: float, warmup: float):
        super().__init__()
        self.share, self.warmup = weight, warmup
        self.names = ["loss/confidence"]

    @classmethod
    def build(cls, setup: Setup) -> Confidence | None:
        s = setup.spec.strategy
        return cls(s.confidence_weight, s.confidence_warmup) if s.confidence_weight > 0 else None

    def forward(self, batch: Batch):
        return {"loss/confidence": confidence_loss(batch.logits)}

    def weight(self, name: str, batch: Batch) -> float:
        ramp = min(batch.progress / self.warmup, 1.0) if self.warmup > 0 else 1.0
        return self.share * ramp
