"""Knowledge distillation from many teachers: the student matches each teacher's softened
outputs on the classes that teacher knows.

    L_KD = mean_n Σ_t w_nt KL_nt / Σ_t w_nt,    KL_nt = T² · KL( σ(z_t/T) ‖ σ(z_s[S_t]/T) )

Hinton, Vinyals, Dean, "Distilling the Knowledge in a Neural Network", 2015; for teachers with
class subsets the UHC loss (Vongkulbhisal et al., CVPR 2019); weights w from
engine/strategies/weightings.py. The computation is `engine.losses.multi_teacher_kd`. It also
reports each teacher's term (loss/kd/NAME) for the dashboard.
"""

from __future__ import annotations

from engine.strategies.targets import target_names
from engine.strategies.term import Batch, LossTerm, Setup, register


@register
class KnowledgeDistillation(LossTerm):
    key = "kd"
    order = 10

    def __init__(self, setup: Setup):
        super().__init__()
        self.strategy = setup.spec.strategy
        self.alpha = setup.hard_label_weight  # 0 without labels
        merged = self.strategy.calibration is not None
        self.names = ["loss/kd"] + [f"loss/kd/{n}" for n in target_names(self.strategy, setup.teachers, merged)]

    @classmethod
    def build(cls, setup: Setup) -> KnowledgeDistillation | None:
        if not setup.teachers:
            return None
        return cls(setup)

    def forward(self, batch: Batch):
        kd, per_teacher = batch.targets.kd(batch.logits, self.strategy)
        return {"loss/kd": kd, "loss/kd/teachers": per_teacher}  # reported: one value per teacher

    def weight(self, key: str, batch: Batch) -> float | None:
        if key != "loss/kd":
            return None
        return 1.0 - self.alpha  # L = α·CE + (1 − α)·L_KD (Hinton et al. 2015); α = 0 without labels
