"""What a strategy makes of the frozen teachers: soft targets in the student's class space and
their weights, computed once per split (cached on disk) or live on every batch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.data.source import Samples
from engine.errors import InputError
from engine.losses import average_logits, multi_teacher_kd, teacher_targets
from engine.spec import PipelineSpec, StrategySpec, class_groups
from engine.strategies.weightings import WEIGHTINGS
from engine.teacher_cache import fingerprint, streamed_outputs, teacher_outputs


@dataclass
class Targets:
    """Soft targets for a set of samples: p, log p [N, K, C], the class masks [K, C], the
    weights ([K] or per sample [N, K]), and the name of each of the K terms. `per_teacher` holds
    the unmerged targets when K teachers were merged into one (the task heads need them)."""

    p: torch.Tensor
    log_p: torch.Tensor
    mask: torch.Tensor
    weights: torch.Tensor
    names: list[str]
    per_teacher: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def rows(self, idx: torch.Tensor) -> Targets:
        w = self.weights.index_select(0, idx) if self.weights.dim() == 2 else self.weights
        per = None if self.per_teacher is None else (
            self.per_teacher[0].index_select(0, idx), self.per_teacher[1].index_select(0, idx), self.per_teacher[2])
        return Targets(self.p.index_select(0, idx), self.log_p.index_select(0, idx), self.mask, w,
                       self.names, per)

    def kd(self, logits: torch.Tensor, strategy: StrategySpec) -> tuple[torch.Tensor, torch.Tensor]:
        return multi_teacher_kd(logits, self.p, self.log_p, self.mask, self.weights,
                                strategy.temperature, strategy.partial_classes == "renormalize")

    @property
    def teacher_targets(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.per_teacher or (self.p, self.log_p, self.mask)


def build_targets(strategy: StrategySpec, teachers: list, outputs: list[torch.Tensor],
                  indices: list[torch.Tensor], n_classes: int, labels: torch.Tensor | None,
                  calibrator=None) -> Targets:
    """The soft targets the strategy asks for, from each teacher's logits over its classes."""
    T = strategy.temperature
    per = teacher_targets(outputs, indices, n_classes, T)
    merged = None
    if strategy.combine == "average_logits":
        full = [torch.zeros(len(z), n_classes, device=z.device).index_copy_(1, idx, z.float())
                for z, idx in zip(outputs, indices)]
        merged = average_logits(full)
    elif calibrator is not None:
        with torch.no_grad():
            merged = calibrator(outputs)
    if merged is not None:
        p, lp, mask = teacher_targets([merged], [torch.arange(n_classes, device=merged.device)], n_classes, T)
        return Targets(p, lp, mask, torch.ones(1, device=p.device), target_names(strategy, teachers, True), per)
    weighting = WEIGHTINGS[strategy.teacher_weighting]
    if weighting.needs_labels and labels is None:
        raise InputError.one("strategy.teacher_weighting", f"{strategy.teacher_weighting} weighting "
                             "reads each sample's label, and the data has no labels", "give data with "
                             "labels, or pick a label-free weighting: " + ", ".join(
                                 k for k, w in WEIGHTINGS.items() if not w.needs_labels and w.per_sample))
    weights = weighting(teachers=teachers, logits=outputs, indices=indices, labels=labels,
                        device=per[0].device)
    return Targets(*per, weights, target_names(strategy, teachers, False))


def target_names(strategy: StrategySpec, teachers: list, calibrated: bool) -> list[str]:
    """One name per KD term: each teacher's, or the one merged target's."""
    if strategy.combine == "average_logits":
        return ["ensemble"]
    return ["calibrated"] if calibrated else [t.name for t in teachers]


class TeacherTargets:
    """The teachers' soft targets for the training split (once, from the disk cache when an
    earlier run computed them) or for each batch (live), and for an unlabelled validation split."""

    def __init__(self, spec: PipelineSpec, teachers: list, device: torch.device, cache_dir: Path | None,
                 report: Callable[[str, bool], None], workers: int = 0,
                 on_batch: Callable[[int, int], None] | None = None):
        self.spec, self.teachers, self.device, self.cache_dir = spec, teachers, device, cache_dir
        self.workers = workers  # processes decoding streamed samples for the teachers' pass
        self.on_batch = on_batch  # (done, total) during a streamed pass: progress, and a stop
        self.report = report  # (teacher name, whether its outputs came from the cache)
        self.indices = [torch.from_numpy(t.student_index).to(device) for t in teachers]
        self.calibrator = None
        self.train: Targets | None = None
        augment = spec.training.augment
        # augmented batches are new images: the teachers see each (live), or label K views once
        self.live = spec.training.teacher_outputs == "live" or (augment is not None and augment.targets == "live")
        self.views: list[Targets] = []  # targets 'views': the training split's targets per view

    def outputs(self, x: np.ndarray | Samples, cached: bool = True, transform=None) -> list[torch.Tensor]:
        """Each teacher's logits on `x`, on the device; from the cache where there is one.
        `transform`: (key, positions, float32 CPU batch) -> batch, applied to streamed samples
        before the teachers see them (an augmented view), its key part of the cache's."""
        if isinstance(x, Samples):  # one streamed pass for all the teachers not cached
            out = []
            for t, (values, hit) in zip(self.teachers, streamed_outputs(self.teachers, x, self.cache_dir,
                                                                       self.workers, transform=transform,
                                                                       on_batch=self.on_batch)):
                out.append(torch.from_numpy(np.array(values)).to(self.device))
                if self.cache_dir is not None:
                    self.report(t.name, hit)
            return out
        fp = fingerprint(x) if cached and self.cache_dir is not None else None
        out = []
        for t in self.teachers:
            values, hit = teacher_outputs(t, x, fp, self.cache_dir) if fp else (t.predict(x), False)
            out.append(torch.from_numpy(np.array(values)).to(self.device))  # a copy: the cache is read-only
            if fp:
                self.report(t.name, hit)
        return out

    def of(self, x: np.ndarray, labels: torch.Tensor | None, cached: bool = True, transform=None) -> Targets | None:
        if not self.teachers:  # labels alone
            return None
        return build_targets(self.spec.strategy, self.teachers, self.outputs(x, cached, transform), self.indices,
                             len(self.spec.classes), labels, self.calibrator)

    def prepare(self, train_x: np.ndarray | Samples, train_y: torch.Tensor | None, augment=None) -> None:
        """The training split's targets, unless they are computed live per batch: once, or
        under augmentation with targets 'views', once per view (each view's augmented images)."""
        if self.live or not self.teachers:
            return
        if augment is None:
            self.train = self.of(train_x, train_y)
            return
        for view in range(augment.spec.views):
            def transform(pos: torch.Tensor, x: torch.Tensor, view=view) -> torch.Tensor:
                return augment(x, pos, view)
            transform.key = f"augment|{augment.spec.model_dump_json()}|{augment.seed}|{view}"
            if isinstance(train_x, Samples):
                self.views.append(self.of(train_x, train_y, transform=transform))
            else:  # in memory: the view itself, whose bytes key the cache
                viewed = np.concatenate([transform(torch.arange(i, min(i + 1024, len(train_x))),
                                                   torch.from_numpy(train_x[i:i + 1024])).numpy()
                                         for i in range(0, len(train_x), 1024)])
                self.views.append(self.of(viewed, train_y))

    def batch(self, idx: torch.Tensor, labels: torch.Tensor | None, x: torch.Tensor, epoch: int = 0) -> Targets | None:
        """The targets of the training samples at `idx` in `epoch` (`x`: those samples as the
        student sees them, for live teachers)."""
        if not self.teachers:
            return None
        if self.live:
            return self.of(np.ascontiguousarray(x.detach().float().cpu().numpy()), labels, cached=False)
        if self.views:
            return self.views[epoch % len(self.views)].rows(idx)
        return self.train.rows(idx)


def unlabeled_groups_warning(spec: PipelineSpec, labeled: bool) -> str | None:
    """Teachers whose class subsets fall into groups that share no class cannot say how to weigh
    one group against another (only labels or calibration can), so the student's choice between
    groups would be arbitrary."""
    if labeled or spec.strategy.calibration is not None or spec.strategy.combine == "average_logits":
        return None
    groups = class_groups(spec)
    if len(groups) <= 1:
        return None
    shown = " | ".join("{" + ", ".join(g[:4]) + (", …" if len(g) > 4 else "") + "}" for g in groups)
    return (f"the teachers' classes fall into {len(groups)} groups that share no class ({shown}); "
            "without labels nothing says how likely one group is against another. Add calibration "
            "(strategy.calibration, a few labels per class) or a teacher that spans the groups")
