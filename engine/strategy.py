"""What a strategy makes of the teachers: the soft targets and their weights, the calibration
that merges teachers with disjoint class subsets, the hint adapters and task heads, and the
student's starting weights. The losses themselves, with their formulas and papers, are in
engine/losses.py; the training loop in engine/train.py uses what this module builds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine import growth
from engine.errors import InputError
from engine.losses import average_logits, confidence_loss, hint_loss, multi_teacher_kd, sample_weights, teacher_targets
from engine.spec import PipelineSpec, StrategySpec, class_groups
from engine.teachers import Teacher


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


def build_targets(strategy: StrategySpec, teachers: list[Teacher], outputs: list[torch.Tensor],
                  indices: list[torch.Tensor], n_classes: int, labels: torch.Tensor | None,
                  calibrator: Calibrator | None) -> Targets:
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
    kind = strategy.teacher_weighting
    if kind in ("uniform", "fixed"):
        weights = torch.tensor([t.spec.weight if kind == "fixed" else 1.0 for t in teachers],
                               device=per[0].device)
    elif kind == "label_aware" and labels is None:
        raise InputError.one("strategy.teacher_weighting", "label_aware weighting reads each sample's "
                             "label, and the data has no labels", "give data with labels, or pick a "
                             "label-free weighting: confidence, entropy or selective")
    else:
        weights = sample_weights(kind, outputs, indices, labels)
    return Targets(*per, weights, target_names(strategy, teachers, False))


class Auxiliary(nn.Module):
    """What the student learns beside its unified head: hint adapters (one per hint) and task
    heads (one per teacher), fed by forward hooks on the student's layers. Trained with the
    student, kept in checkpoints, never exported."""

    def __init__(self, strategy: StrategySpec, student: nn.Module, n_teachers: int, n_classes: int,
                 hint_targets: list[torch.Tensor], probe: torch.Tensor):
        super().__init__()
        self.strategy, self.n_teachers, self.n_classes = strategy, n_teachers, n_classes
        modules = dict(student.named_modules())
        layers = [h.student_layer for h in strategy.hints] + (["body"] if strategy.task_heads else [])
        for i, name in enumerate(layers):
            if name not in modules or not name:
                where = f"strategy.hints[{i}].student_layer" if i < len(strategy.hints) else "strategy.task_heads"
                raise InputError.one(where, f"the student has no layer '{name}'", "use one of: " + ", ".join(
                    n for n in modules if n))
        self.captured: dict[str, torch.Tensor] = {}
        self._hooks = [modules[name].register_forward_hook(self._keeper(name)) for name in set(layers)]
        was = student.training
        with torch.no_grad():
            student.eval()
            student(probe)
        student.train(was)
        self.adapters = nn.ModuleList(
            _adapter(self.captured[h.student_layer], target, f"strategy.hints[{i}]")
            for i, (h, target) in enumerate(zip(strategy.hints, hint_targets)))
        self.heads = nn.Linear(self.captured["body"].flatten(1).shape[1], n_teachers * n_classes) \
            if strategy.task_heads else None
        self.captured.clear()
        self.names = [_hint_name(h) for h in strategy.hints] + (["loss/heads"] if strategy.task_heads else [])

    def _keeper(self, name: str):
        def keep(_module, _inputs, output):
            self.captured[name] = output
        return keep

    def remove_hooks(self) -> None:
        for hook in self._hooks:
            hook.remove()

    def losses(self, hint_targets: list[torch.Tensor], targets: Targets) -> dict[str, torch.Tensor]:
        """Each auxiliary term for the batch the student has just seen."""
        out = {}
        for i, (h, adapter, target) in enumerate(zip(self.strategy.hints, self.adapters, hint_targets)):
            out[_hint_name(h)] = hint_loss(adapter(self.captured[h.student_layer]), target)
        if self.heads is not None:
            features = self.captured["body"].flatten(1)
            logits = self.heads(features).view(len(features), self.n_teachers, self.n_classes)
            p, lp, mask = targets.teacher_targets
            out["loss/heads"], _ = multi_teacher_kd(logits, p, lp, mask, torch.ones(self.n_teachers, device=p.device),
                                                    self.strategy.temperature)
        self.captured.clear()
        return out


def _hint_name(hint) -> str:
    return f"loss/hint/{hint.teacher}/{hint.teacher_layer}"


def _adapter(student_out: torch.Tensor, teacher_out: torch.Tensor, where: str) -> nn.Module:
    """FitNets' regressor: a linear map (vectors) or a 1×1 convolution (feature maps) from the
    student's features to the teacher's, with the maps resized to the teacher's size."""
    s, t = student_out.shape[1:], teacher_out.shape[1:]
    if len(s) == 3 and len(t) == 3:
        return nn.Sequential(nn.Conv2d(s[0], t[0], 1), nn.AdaptiveAvgPool2d(tuple(t[1:])))
    if len(t) == 1:
        return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(s)), t[0]))
    raise InputError.one(where, f"the student's layer gives {list(s)} per sample and the "
                         f"teacher's gives {list(t)}", "pair a vector layer with a vector layer, "
                         "or a feature map with a feature map")


def auxiliary_weight(strategy: StrategySpec, name: str) -> float:
    """The weight of an extra loss term in the student's loss."""
    if name.startswith("loss/hint/"):
        return strategy.hint_weight / max(len(strategy.hints), 1)
    if name == "loss/calibration":
        return strategy.calibration.weight
    return strategy.task_head_weight


def target_names(strategy: StrategySpec, teachers: list[Teacher], calibrated: bool) -> list[str]:
    """One name per KD term: each teacher's, or the one merged target's."""
    if strategy.combine == "average_logits":
        return ["ensemble"]
    return ["calibrated"] if calibrated else [t.name for t in teachers]


def calibration_samples(data, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`per_class` labelled training samples of each class (fewer where a class has fewer),
    drawn with the run's seed: the only labels a calibrated run reads."""
    labels = data.known_train_labels
    if labels is None:
        raise InputError.one("strategy.calibration", "calibration needs a few labelled samples, "
                             "and the data has no labels", "give data with labels (the run still "
                             "reads only labels_per_class of them per class), or remove calibration")
    rng = np.random.default_rng(seed)
    picked = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
    idx = np.sort(np.concatenate(picked))
    return idx, labels[idx].astype(np.int64)


def with_confidence(loss: torch.Tensor, logits: torch.Tensor, strategy: StrategySpec,
                    progress: float) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(1 − α)·L + α·L_conf, with α ramping up linearly over the warm-up (Burns et al. 2023)."""
    if strategy.confidence_weight == 0.0:
        return loss, None
    ramp = min(progress / strategy.confidence_warmup, 1.0) if strategy.confidence_warmup > 0 else 1.0
    alpha = strategy.confidence_weight * ramp
    conf = confidence_loss(logits)
    return (1.0 - alpha) * loss + alpha * conf, conf


def init_student(model: nn.Module, spec: PipelineSpec, teachers: list[Teacher]) -> str | None:
    """Set the student's starting weights as the spec asks; says what it did (None: random).
    A student that starts from weights keeps their input normalisation."""
    init = spec.student.init
    path = init.path if init.kind == "weights" else spec.strategy.previous_student if init.kind == "scratch" else None
    if init.kind == "grow":
        teacher = next(t for t in teachers if t.name == init.teacher)
        try:
            growth.grow(model, _zoo_model(teacher, "student.init.teacher"), _head_rows(teacher), spec.training.seed)
        except ValueError as exc:
            raise InputError.one("student.architecture", str(exc), "make the student at least as "
                                 "wide and deep as the teacher it grows from") from None
        return f"grown from teacher '{teacher.name}' (Net2Net: it starts out computing what the teacher computes)"
    if init.kind == "fedavg":
        states = []
        for t in teachers:
            state = {k: v.clone() for k, v in _zoo_model(t, "student.init").state_dict().items()}
            rows = torch.as_tensor(t.student_index)
            for key in ("head.weight", "head.bias"):  # the student's class order
                ordered = torch.zeros_like(state[key])
                ordered[rows] = state[key]
                state[key] = ordered
            states.append(state)
        model.load_state_dict(growth.average_states(states))
        return f"FedAvg of the {len(teachers)} teachers' weights"
    if path is None:
        return None
    from engine.model_files import load_safetensors, student_metadata

    where = "student.init.path" if init.kind == "weights" else "strategy.previous_student"
    classes, _ = student_metadata(path, where)
    rows = {spec.classes.index(c): i for i, c in enumerate(classes) if c in spec.classes}
    skipped = growth.copy_weights(model, load_safetensors(path, where), rows)
    if skipped:
        raise InputError.one(where, f"{path.name} does not fit the student: {', '.join(skipped[:4])} "
                             "differ in shape", "give the student the architecture of the earlier student")
    return f"started from the weights in {path.name}"


def _zoo_model(teacher: Teacher, where: str) -> nn.Module:
    """The torch model of a teacher given as zoo weights (growth and FedAvg read its weights)."""
    model = getattr(teacher, "model", None)
    if not hasattr(model, "head"):
        raise InputError.one(where, f"teacher '{teacher.name}' is not zoo weights, so its weights "
                             "cannot be read", "give it as a safetensors or .pt file with its architecture")
    return model


def _head_rows(teacher: Teacher) -> dict[int, int]:
    return {int(s): i for i, s in enumerate(teacher.student_index)}


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
