"""Is each teacher seeing its input as it expects? Checked on labelled samples before training.

A teacher fed the wrong input gives no error, only worse answers: raw pixels where it expects
ImageNet's mean/std, channels in the wrong order, classes listed in another order than its
outputs. Where labelled samples exist (the test file, the training labels, hidden ones too),
each teacher's accuracy on the samples of its own classes is measured under its declared input
contract and under the likely alternatives; when one of them does much better, or the teacher
is near chance, or far below the accuracy its own file reports, the user is told which teacher,
what was measured and what to set — in the run log and on the teacher's node.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from engine.errors import InputError

CHECK_SAMPLES = 512  # labelled samples a check reads (fewer where fewer exist)
MIN_SAMPLES = 20  # fewer labelled samples of a teacher's classes than this: no accuracy claims
IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


@dataclass
class Finding:
    """Something the user should know about one teacher: an info line or a warning."""

    teacher: str
    where: str  # the spec field it concerns, e.g. teachers[1].input
    level: str  # "info" | "warning"
    message: str
    hint: str = ""
    accuracy: float | None = None
    samples: int | None = None
    fix: dict = field(default_factory=dict)  # spec fields (under `where`) that would fix it


def looks_like_probabilities(out: np.ndarray) -> bool:
    """Rows that are all non-negative and sum to 1."""
    if out.ndim != 2 or out.shape[1] < 2 or len(out) == 0 or not np.isfinite(out).all():
        return False
    return bool(out.min() >= -1e-6 and np.abs(out.sum(axis=1) - 1.0).max() < 1e-3)


def check_teachers(teachers: list, data) -> list[Finding]:
    """Each teacher's accuracy on labelled samples of its classes, and what likely explains a
    poor one. No labels anywhere: one info finding per teacher saying it could not be checked."""
    labelled = data.labelled_samples(4 * CHECK_SAMPLES)
    findings: list[Finding] = []
    for t in teachers:
        if labelled is None:
            findings.append(Finding(t.name, t.where, "info", f"teacher '{t.name}': its accuracy cannot "
                                    "be checked before training, as no labelled samples exist",
                                    f"set data.{data.test_field} to labelled samples to check every teacher"))
            continue
        x, y = labelled
        known = np.isin(y, t.student_index)
        x, y = x[known][:CHECK_SAMPLES], y[known][:CHECK_SAMPLES]
        if len(y) < MIN_SAMPLES:
            findings.append(Finding(t.name, t.where, "info", f"teacher '{t.name}': only {len(y)} "
                                    "labelled samples of its classes, too few to check its accuracy"))
            continue
        findings.extend(_check_one(t, x, y))
    return findings


def _check_one(t, x: np.ndarray, y: np.ndarray) -> list[Finding]:
    own = {int(c): i for i, c in enumerate(t.student_index)}
    target = np.array([own[int(c)] for c in y])  # labels as the teacher's output positions
    pred = t.predict(x).argmax(axis=1)
    acc = float((pred == target).mean())
    k = len(t.student_index)
    chance = 1.0 / k
    n = len(y)
    out = [Finding(t.name, t.where, "info", f"teacher '{t.name}': accuracy {acc:.3f} on {n} labelled "
                   f"samples of its {k} classes", accuracy=acc, samples=n)]
    better = _best_alternative(t, x, target, pred, acc)
    if better is not None:
        alt_acc, what, fix, where = better
        out.append(Finding(
            t.name, where, "warning", f"teacher '{t.name}' gets {acc:.3f} of {n} labelled samples of "
            f"its classes right as declared, and {alt_acc:.3f} with {what}: it likely expects that",
            f"set {where} " + ", ".join(f"{k_}={v}" for k_, v in fix.items()), acc, n, fix))
        return out
    reported = _reported_accuracy(t)
    contract = ("its tokenizer (input.tokenizer: the tokenizer.json it was trained with) and "
                "input.roles" if x.dtype == object else "its input contract (scale, mean/std, layout, size)")
    if acc < chance + 0.15 * (1 - chance):
        out.append(Finding(
            t.name, t.where, "warning", f"teacher '{t.name}' is near chance: {acc:.3f} on {n} labelled "
            f"samples of its {k} classes (chance {chance:.3f}); its targets would teach noise",
            f"check {contract}, that `classes` lists its outputs in order, and that it was trained "
            "on this kind of data", acc, n))
    elif reported is not None and acc < reported - 0.15:
        out.append(Finding(
            t.name, t.where, "warning", f"teacher '{t.name}' gets {acc:.3f} on {n} labelled samples, "
            f"far below the {reported:.3f} its file reports", f"check {contract} and the order of "
            "its classes", acc, n))
    return out


def _best_alternative(t, x: np.ndarray, target: np.ndarray, pred: np.ndarray,
                      acc: float) -> tuple[float, str, dict, str] | None:
    """(accuracy, what changed, the fields to set, where) of the alternative that explains the
    data much better than the declared contract, or None."""
    need = max(0.08, 0.25 * (1 - acc))  # well beyond the noise of a few hundred samples
    if acc + need > 1:
        return None  # nothing could do that much better
    best = None
    for what, fix, where, run in _alternatives(t, x, pred, target):
        try:
            alt = run()
        except (InputError, ValueError, RuntimeError):  # the model refuses that shape: not it
            continue
        alt_acc = float((alt == target).mean())
        if alt_acc >= acc + need and (best is None or alt_acc > best[0]):
            best = (alt_acc, what, fix, where)
    return best


def _alternatives(t, x: np.ndarray, pred: np.ndarray, target: np.ndarray):
    """(description, fields to set, where, a function giving the predictions) per alternative."""
    c = t.spec.input
    where = f"{t.where}.input"
    text = x.dtype == object  # texts: of the contract only the class order is tried
    image = not text and t.adapter.image
    high = float(np.percentile(x, 99.5)) if x.size and not text else 0.0

    def under(**changes) -> Callable[[], np.ndarray]:
        return lambda: _predict_with(t, c.model_copy(update=changes), x)

    if image and c.layout == "auto" or image and c.layout in ("nchw", "nhwc"):
        flipped = "nchw" if t.adapter.layout == "nhwc" else "nhwc"
        yield f"layout {flipped}", {"layout": flipped}, where, under(layout=flipped)
    if image and x.shape[1] == 3 and c.channel_order == "rgb":
        yield "BGR channel order", {"channel_order": "bgr"}, where, under(channel_order="bgr")
    to_unit = not text and c.scale == 1.0 and high > 2.0  # 0-255 data, a model of 0-1 pixels
    if to_unit:
        yield "values scaled by 1/255", {"scale": 1 / 255}, where, under(scale=1 / 255)
    if not text and c.scale == 1.0 and 0 < high <= 1.0:
        yield "values scaled by 255", {"scale": 255.0}, where, under(scale=255.0)
    if image and x.shape[1] == 3 and c.mean is None and c.std is None:
        scale = 1 / 255 if to_unit else c.scale
        fix = {**({"scale": round(scale, 8)} if scale != c.scale else {}), **IMAGENET}
        yield "ImageNet mean/std", fix, where, under(**fix)
    if not text and (c.mean is not None or c.std is not None):
        yield "no mean/std", {"mean": None, "std": None}, where, under(mean=None, std=None)
    order = _best_order(pred, target, len(t.student_index))
    if order is not None:
        names = [t.spec.classes[i] for i in order]
        yield f"the classes in the order {names}", {"classes": names}, t.where, lambda: order[pred]


def _predict_with(t, contract, x: np.ndarray) -> np.ndarray:
    """The teacher's predictions under another input contract (its own is left as it was)."""
    from engine.teacher_input import InputAdapter

    own = t.adapter
    dims = getattr(own, "dims", None)
    t.adapter = InputAdapter(contract, own.sample_shape, dims, own.dtype, own.table, own.where, t.name)
    try:
        return t.predict(x).argmax(axis=1)
    finally:
        t.adapter = own


def _best_order(pred: np.ndarray, target: np.ndarray, k: int) -> np.ndarray | None:
    """The relabelling of the teacher's outputs that matches the labels best, when it is not the
    identity: position i of the result is the true class of output i."""
    from scipy.optimize import linear_sum_assignment

    counts = np.zeros((k, k))
    np.add.at(counts, (pred, target), 1)
    rows, cols = linear_sum_assignment(-counts)
    order = np.empty(k, dtype=np.int64)
    order[rows] = cols
    return None if (order == np.arange(k)).all() else order


def _reported_accuracy(t) -> float | None:
    """The accuracy the model file says it has (ONNX metadata `accuracy`), as a fraction."""
    value = getattr(t, "metadata", {}).get("accuracy")
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    v = v / 100 if 1 < v <= 100 else v
    return v if 0 < v <= 1 else None
