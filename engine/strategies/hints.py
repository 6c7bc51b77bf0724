"""Feature hints (FitNets, Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015): a
student layer's output, through a learned adapter r, matches a teacher's intermediate features:

    L_HT = mean ‖ r(f_s(x)) − f_t(x) ‖² / Var(f_t)      (engine.losses.hint_loss)

each hint weighted hint_weight / (number of hints). The teachers' features are computed once;
the adapters learn during the distillation phase (not in the prune fine-tunes) and are never
exported.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from engine.errors import InputError
from engine.losses import hint_loss
from engine.strategies.taps import Taps
from engine.strategies.term import Batch, LossTerm, Setup, register


@register
class Hints(LossTerm):
    key = "hints"
    order = 40
    distill_only = True

    def __init__(self, setup: Setup):
        super().__init__()
        strategy = setup.spec.strategy
        self.hints, self.share = strategy.hints, strategy.hint_weight / len(strategy.hints)
        by_name = {t.name: t for t in setup.teachers}
        self.targets = [torch.from_numpy(by_name[h.teacher].features(
            setup.train_x, h.teacher_layer, f"strategy.hints[{i}].teacher_layer")).to(setup.device)
            for i, h in enumerate(self.hints)]
        self.taps = Taps(setup.student)
        for i, h in enumerate(self.hints):
            self.taps.tap(h.student_layer, f"strategy.hints[{i}].student_layer")
        shapes = self.taps.probe(setup.student, setup.probe)
        self.adapters = nn.ModuleList(
            adapter(shapes[h.student_layer], target.shape, f"strategy.hints[{i}]")
            for i, (h, target) in enumerate(zip(self.hints, self.targets)))
        self.names = [f"loss/hint/{h.teacher}/{h.teacher_layer}" for h in self.hints]

    @classmethod
    def build(cls, setup: Setup) -> Hints | None:
        if not setup.spec.strategy.hints or setup.resumed_later_phase:
            return None
        return cls(setup)

    def forward(self, batch: Batch):
        out = {name: hint_loss(a(self.taps[h.student_layer]), target.index_select(0, batch.idx))
               for name, h, a, target in zip(self.names, self.hints, self.adapters, self.targets)}
        self.taps.captured.clear()
        return out

    def weight(self, name: str, batch: Batch) -> float:
        return self.share

    def close(self) -> None:
        self.taps.close()


def adapter(student_shape: torch.Size, teacher_shape: torch.Size, where: str) -> nn.Module:
    """FitNets' regressor: a linear map (vectors) or a 1×1 convolution (feature maps) from the
    student's features to the teacher's, with the maps resized to the teacher's size."""
    s, t = student_shape[1:], teacher_shape[1:]
    if len(s) == 3 and len(t) == 3:
        return nn.Sequential(nn.Conv2d(s[0], t[0], 1), nn.AdaptiveAvgPool2d(tuple(t[1:])))
    if len(t) == 1:
        return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(s)), t[0]))
    raise InputError.one(where, f"the student's layer gives {list(s)} per sample and the "
                         f"teacher's gives {list(t)}", "pair a vector layer with a vector layer, "
                         "or a feature map with a feature map")
