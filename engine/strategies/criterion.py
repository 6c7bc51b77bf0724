"""The student's loss: the registered terms the strategy asks for, summed with their weights.

    L = Σ_terms Σ_names w_name · L_name,   then for each mixing term  L ← (1 − a)·L + a·L_term

`Criterion(batch)` returns the loss and, for the metric meter, every reported value as one
vector in the order of `names` ("loss/total" first) — summed on the device, no host sync.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.errors import RunFailed
from engine.strategies.term import TERMS, Batch, LossTerm, Setup

TOTAL = "loss/total"
_OLD_KEYS = {"adapters.": "terms.hints.adapters.", "heads.": "terms.task_heads.heads."}  # before 0.2


class Criterion(nn.Module):
    def __init__(self, terms: list[LossTerm]):
        super().__init__()
        self.terms = nn.ModuleDict({t.key: t for t in terms})
        self.distilling = True
        self._checked = False

    def active(self) -> list[LossTerm]:
        return [t for t in self.terms.values() if self.distilling or not t.distill_only]

    @property
    def names(self) -> list[str]:
        return [TOTAL] + [n for t in self.active() for n in t.names]

    def end_distillation(self) -> None:
        """The prune fine-tunes that follow learn without the distillation-only terms."""
        for t in self.terms.values():
            if t.distill_only:
                t.close()
        self.distilling = False

    def learned_parameters(self) -> list[nn.Parameter]:
        return [p for t in self.active() for p in t.parameters()]

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        terms = self.active()
        before = [t.before_forward(batch) for t in terms]  # first: the taps then keep this batch's features
        batch.logits = batch.student(batch.x)
        loss, mixing, reported = None, [], []
        for t, early in zip(terms, before):
            values = {**early, **t(batch)}
            if not self._checked:
                _check_names(t, values)
            for key, value in values.items():
                reported.append(value.reshape(-1))
                w = t.weight(key, batch)
                if t.mixes:
                    mixing.append((w, value))
                elif w is not None:
                    loss = w * value if loss is None else loss + w * value
        for a, value in mixing:
            loss = (1.0 - a) * loss + a * value
        if not self._checked:  # once: a module's attribute write is slow enough to show in a step
            self._checked = True
        return loss, torch.cat([loss.reshape(1)] + reported).detach().float()

    def load_learned(self, state: dict) -> None:
        """The learned parts of a checkpoint (also from before the terms had modules of their own)."""
        fixed = {}
        for key, value in state.items():
            old = next((o for o in _OLD_KEYS if key.startswith(o)), None)
            fixed[_OLD_KEYS[old] + key[len(old):] if old else key] = value
        self.load_state_dict(fixed)


def _check_names(term: LossTerm, values: dict[str, torch.Tensor]) -> None:
    """A term's values, in order, must be as many as the metric names it declares."""
    count = sum(v.numel() for v in values.values())
    if count != len(term.names):
        raise RunFailed("loss_term", f"loss term '{term.key}' gives {count} values for its "
                        f"{len(term.names)} metric names {term.names}", "make the values its forward() "
                        "returns, in order, match its `names` (a vector counts one per element)")


def build_criterion(setup: Setup) -> Criterion:
    """Every registered term the spec asks for, in their order."""
    built = [cls.build(setup) for cls in sorted(TERMS.values(), key=lambda c: c.order)]
    return Criterion([t for t in built if t is not None]).to(setup.device)
