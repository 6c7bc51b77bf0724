"""Calibration: a few labels per class merge teachers whose class subsets need not overlap into
one target (a mixture of experts, `Calibrator`), and the student learns from those few labels:

    L_cal = CE(z_s(x_cal), y_cal)   on a batch of the labelled calibration samples at each step,

weighted by `calibration.weight`. The labels are the only ones a calibrated run reads.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import InputError
from engine.strategies.term import Batch, LossTerm, Setup, register

CALIBRATION_BATCH = 32  # labelled calibration samples seen beside each batch


@register
class Calibration(LossTerm):
    key = "calibration"
    order = 30

    def __init__(self, x: torch.Tensor, y: torch.Tensor, weight: float, seed: int):
        super().__init__()
        self.x, self.y, self.share, self.seed = x, y, weight, seed
        self.names = ["loss/calibration"]

    @classmethod
    def build(cls, setup: Setup) -> Calibration | None:
        if setup.calibration is None:
            return None
        x, y = setup.calibration
        return cls(x, y, setup.spec.strategy.calibration.weight, setup.spec.training.seed)

    def before_forward(self, batch: Batch):
        pick = torch.randint(len(self.x), (min(len(self.x), CALIBRATION_BATCH),),
                             generator=torch.Generator().manual_seed(self.seed + batch.step)).to(self.x.device)
        logits = batch.student(self.x.index_select(0, pick)).float()
        return {"loss/calibration": F.cross_entropy(logits, self.y.index_select(0, pick))}

    def forward(self, batch: Batch):
        return {}

    def weight(self, name: str, batch: Batch) -> float:
        return self.share


def calibration_samples(data, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`per_class` labelled training samples of each class (fewer where a class has fewer),
    drawn with the run's seed: the only labels a calibrated run reads."""
    labels = data.known_train_labels
    if labels is None:
        raise InputError.one("strategy.calibration", "calibration needs a few labelled samples, "
                             "and the data has no labels", "give data with labels (the run still "
                             "reads only labels_per_class of them per class), or remove calibration")
    rng = np.random.default_rng(seed)
    picked = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels[labels >= 0])]
    idx = np.sort(np.concatenate(picked))
    return idx, labels[idx].astype(np.int64)


def calibrate(targets, data, device: torch.device, per_class: int, seed: int):
    """Fit the teachers' mixture on the calibration samples; returns ((x, y) on the device,
    the share of them the merged teachers get right)."""
    idx, labels = calibration_samples(data, per_class, seed)
    x, y = torch.from_numpy(np.ascontiguousarray(data.train.x[idx])).to(device), torch.from_numpy(labels).to(device)
    targets.calibrator = Calibrator(targets.indices, len(targets.spec.classes)).to(device)
    right = targets.calibrator.fit(targets.outputs(data.train.for_teachers[idx], cached=False), y)
    return (x, y), right


class Calibrator(nn.Module):
    """Merges teachers whose class subsets need not overlap into one distribution over all C
    classes, as a mixture of experts whose gate is fitted on a few labels:

        p(c | x) = Σ_{t: c ∈ S_t} g_t(x) · p_t(c | x),   g(x) = softmax(W · [log p_1(x), …, log p_K(x)] + b)

    Each teacher answers "which of my classes?"; the gate answers "whose classes?", the one
    question teachers of disjoint subsets cannot answer (p(c|x) = p(S_t|x) · p(c|x, S_t)). It reads
    how each teacher's whole output looks (a teacher shown a class it never learned tends to
    answer differently), and is fitted by maximum likelihood on the labelled samples with
    10⁻² ‖W‖² (a mixture of experts, Jacobs, Jordan, Nowlan, Hinton, "Adaptive Mixtures of Local
    Experts", Neural Computation 1991, with the experts frozen). Classes no teacher knows form
    one more expert, uniform over them. Returns log p(c | x), which serve as logits."""

    def __init__(self, indices: list[torch.Tensor], n_classes: int):
        super().__init__()
        covered = torch.zeros(n_classes, dtype=torch.bool)
        for idx in indices:
            covered[idx.cpu()] = True
        self.indices = list(indices) + ([torch.nonzero(~covered).flatten().to(indices[0].device)]
                                        if not covered.all() else [])
        self.n_classes = n_classes
        self.gate = nn.Linear(sum(len(i) for i in indices), len(self.indices))
        nn.init.zeros_(self.gate.weight)
        nn.init.zeros_(self.gate.bias)

    def forward(self, logits: list[torch.Tensor]) -> torch.Tensor:
        log_p = [F.log_softmax(z.float(), dim=1) for z in logits]
        n = log_p[0].shape[0]
        if len(self.indices) > len(log_p):  # the expert of the classes no teacher knows
            k = len(self.indices[-1])
            log_p.append(torch.full((n, k), -math.log(k), device=log_p[0].device))
        log_g = F.log_softmax(self.gate(torch.cat(log_p[:len(logits)], dim=1)), dim=1)
        parts = torch.full((len(log_p), n, self.n_classes), float("-inf"), device=log_p[0].device)
        for t, (lp, idx) in enumerate(zip(log_p, self.indices)):
            parts[t].index_copy_(1, idx, lp + log_g[:, t:t + 1])
        return torch.logsumexp(parts, dim=0)

    def fit(self, logits: list[torch.Tensor], labels: torch.Tensor, steps: int = 300) -> float:
        opt = torch.optim.LBFGS(self.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = F.nll_loss(self(logits), labels) + 1e-2 * self.gate.weight.square().sum()
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            return (self(logits).argmax(dim=1) == labels).float().mean().item()

