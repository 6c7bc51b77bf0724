"""Teacher weightings: how much each teacher's KD term counts, for all samples or per sample.

Each is registered under the spec's `strategy.teacher_weighting` name. A weighting returns
w [K] (the same for every sample) or w [N, K] from each teacher's own logits z_t (at T = 1).
Notation: p_t = σ(z_t) over the k_t classes teacher t knows, H̄_t = H(p_t) / log k_t its
entropy scaled to [0, 1]. Adding a weighting: its name in the spec's Literal and one
registered function here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Weighting:
    fn: Callable[..., torch.Tensor]
    per_sample: bool
    needs_labels: bool = False

    def __call__(self, *, teachers, logits, indices, labels, device) -> torch.Tensor:
        if not self.per_sample:
            return torch.tensor(self.fn(teachers), device=device)
        return self.fn(logits, indices, labels)


WEIGHTINGS: dict[str, Weighting] = {}


def weighting(name: str, per_sample: bool = True, needs_labels: bool = False):
    def add(fn):
        WEIGHTINGS[name] = Weighting(fn, per_sample, needs_labels)
        return fn
    return add


@weighting("uniform", per_sample=False)
def uniform(teachers) -> list[float]:
    """w_t = 1: the plain average of teachers (Hinton et al. 2015, §2 on ensembles)."""
    return [1.0] * len(teachers)


@weighting("fixed", per_sample=False)
def fixed(teachers) -> list[float]:
    """w_t = the teacher's `weight`: trust some experts more (You et al., "Learning from
    Multiple Teacher Networks", KDD 2017)."""
    return [t.spec.weight for t in teachers]


def sample_weights(kind: str, logits: list[torch.Tensor], student_indices: list[torch.Tensor],
                   labels: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample teacher weights w [N, K] by the weighting registered as `kind`."""
    w = WEIGHTINGS.get(kind)
    if w is None or not w.per_sample:
        raise ValueError(f"unknown per-sample weighting {kind!r}")
    return w.fn(logits, student_indices, labels)


def _log_p(logits: list[torch.Tensor]) -> list[torch.Tensor]:
    return [F.log_softmax(z.float(), dim=1) for z in logits]


def _entropy(log_p: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack([-(lp.exp() * lp).sum(dim=1) / max(math.log(lp.shape[1]), 1e-12) for lp in log_p], dim=1)


@weighting("confidence")
def confidence(logits, indices, labels) -> torch.Tensor:
    """w_nt = max_c p_t(c | x_n)."""
    return torch.stack([lp.exp().max(dim=1).values for lp in _log_p(logits)], dim=1)


@weighting("entropy")
def entropy(logits, indices, labels) -> torch.Tensor:
    """w_nt = 1 − H̄_t(x_n) + 10⁻³."""
    return 1.0 - _entropy(_log_p(logits)).clamp(0.0, 1.0) + 1e-3


@weighting("selective")
def selective(logits, indices, labels) -> torch.Tensor:
    """w_nt = 1 for the teacher with the least H̄_t(x_n), else 0 — selective learning from the
    least ambiguous teacher (Shen, Wang, Song, Song, "Customizing Student Networks From
    Heterogeneous Teachers via Adaptive Knowledge Amalgamation", ICCV 2019)."""
    return F.one_hot(_entropy(_log_p(logits)).argmin(dim=1), len(logits)).float()


@weighting("label_aware", needs_labels=True)
def label_aware(logits, indices, labels) -> torch.Tensor:
    """CA-MKD (Zhang, Chen, Wang, "Confidence-Aware Multi-Teacher Knowledge Distillation",
    ICASSP 2022): with L_nt = −log p_t(y_n | x_n) over the K_n teachers that know the label y_n,
    w_nt = (1 − softmax_t(L_n)_t) / (K_n − 1) (w = 1 when K_n = 1); teachers that do not know
    y_n get 0. A sample whose label no teacher knows weighs its teachers equally."""
    if labels is None:
        raise ValueError("label_aware weighting needs labels")
    n, k = logits[0].shape[0], len(logits)
    device = logits[0].device
    loss = torch.full((n, k), float("inf"), device=device)
    for t, (lp, idx) in enumerate(zip(_log_p(logits), indices)):
        own = torch.full((max(int(labels.max()), int(idx.max())) + 1,), -1, dtype=torch.long, device=device)
        own[idx] = torch.arange(len(idx), device=device)
        pos = torch.where(labels >= 0, own[labels.clamp_min(0)], -1)  # the label's place among the
        # teacher's outputs, or -1 (also for a sample without a label: -1)
        knows = pos >= 0
        loss[knows, t] = -lp[knows, pos[knows]]
    knowing = torch.isfinite(loss)
    count = knowing.sum(dim=1, keepdim=True)
    soft = torch.softmax(loss.masked_fill(~knowing, float("-inf")), dim=1).nan_to_num(0.0)
    w = torch.where(count > 1, (1.0 - soft) / (count - 1).clamp_min(1), knowing.float())
    w = w.masked_fill(~knowing, 0.0)
    return torch.where(count > 0, w, torch.ones_like(w))
