"""The figures of docs/INSIGHTS.md, computed from arrays. numpy and scipy only: no torch.

Notation: y the true class of each sample (−1: no label); ŷ a model's prediction (argmax); p a
model's probabilities; conf = max_k p_k its confidence; C the student's classes; S_m ⊆ C the
classes model m knows. Every figure is a plain Python float, int or None (JSON-ready) unless
the function says it returns an array.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

VERDICT_MARGIN = 0.02
"""|student − best teacher| up to this much on a class's recall counts as a match."""

_TOLERANCE = 1e-9  # float noise: 0.97 − 0.95 is 0.020000000000000018, which is a match


def _labels(y) -> np.ndarray:
    return np.asarray(y, dtype=np.int64).reshape(-1)


def accuracy(y, pred) -> float | None:
    """Share of the labelled samples (y ≥ 0) where pred == y; None without labelled samples."""
    y, pred = _labels(y), _labels(pred)
    labelled = y >= 0
    if not labelled.any():
        return None
    return float(np.mean(pred[labelled] == y[labelled]))


def confusion(y, pred, n: int) -> np.ndarray:
    """Confusion counts, int64 [n, n]: counts[i, j] = #{samples with y = i and ŷ = j}.

    Rows are the true class. Samples with y == −1 (no label) are left out.
    """
    y, pred = _labels(y), _labels(pred)
    if y.shape != pred.shape:
        raise ValueError(f"y has {y.size} samples but pred has {pred.size}")
    keep = y >= 0
    y, pred = y[keep], pred[keep]
    if y.size and (y.max() >= n or pred.min() < 0 or pred.max() >= n):
        raise ValueError(f"class ids must lie in 0…{n - 1}")
    return np.bincount(y * n + pred, minlength=n * n).astype(np.int64).reshape(n, n)


def normalized(counts) -> np.ndarray:
    """Each row divided by its sum (row i: the share of class i's samples predicted as j, so the
    diagonal is each class's recall); a row of zeros (a class without samples) stays zeros."""
    counts = np.asarray(counts, dtype=np.float64)
    sums = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, sums, out=np.zeros_like(counts), where=sums > 0)


def cluster_order(counts) -> list[int]:
    """An order of the classes that puts classes confused with each other side by side.

    Similarity s_ij = (N_ij + N_ji) / 2 for i ≠ j, N the row-normalised confusion (N_ij: the
    share of class i predicted as j); distance d_ij = 1 − s_ij. Average-linkage hierarchical
    clustering on d, with its leaves in the order that minimises the summed distance between
    neighbours (Bar-Joseph, Gifford, Jaakkola, "Fast optimal leaf ordering for hierarchical
    clustering", Bioinformatics 2001; scipy's optimal_ordering). Ties are broken toward the
    classes' own order (d gets a small 1e-4·|i − j|/n: scipy's leaf ordering misses smaller
    differences) and the result is turned so that its first class is lower than its last; a
    matrix without confusion keeps 0, 1, …, n − 1.
    Deterministic; a permutation of range(n).
    """
    n = int(np.asarray(counts).shape[0])
    if n <= 2:
        return list(range(n))
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    share = normalized(counts)
    np.fill_diagonal(share, 0.0)
    if not share.any():
        return list(range(n))
    similarity = (share + share.T) / 2
    index = np.arange(n)
    distance = 1.0 - similarity + 1e-4 * np.abs(index[:, None] - index[None, :]) / n
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="average", optimal_ordering=True)
    order = [int(i) for i in leaves_list(tree)]
    return order if order[0] < order[-1] else order[::-1]


def reliability(probs, y, bins: int = 10) -> dict:
    """Reliability diagram figures and the expected calibration error.

    conf_i = max_k p_ik, correct_i = [argmax_k p_ik = y_i]. Equal-width bins over [0, 1],
    closed on the right: bin b holds edges[b] < conf ≤ edges[b+1] (the first bin also holds 0),
    so a confidence of 1.0 goes in the last bin. Per bin: mean confidence conf_b, accuracy
    acc_b and count n_b (conf_b, acc_b None in an empty bin);

        ECE = Σ_b (n_b / N) · |acc_b − conf_b|

    Guo, Pleiss, Sun, Weinberger, "On Calibration of Modern Neural Networks", ICML 2017
    (arXiv:1706.04599), eq. 3. `y` indexes the columns of `probs`; samples with y == −1 are left
    out. `ece` is None when no sample is left.
    """
    if bins < 1:
        raise ValueError("bins must be at least 1")
    probs = np.asarray(probs, dtype=np.float64)
    y = _labels(y)
    if probs.ndim != 2 or probs.shape[0] != y.size:
        raise ValueError(f"probs must be [N, K] with N = {y.size} samples")
    keep = y >= 0
    probs, y = probs[keep], y[keep]
    edges = np.linspace(0.0, 1.0, bins + 1)
    result = {"edges": [float(e) for e in edges], "confidence": [None] * bins, "accuracy": [None] * bins,
              "count": [0] * bins, "ece": None}
    total = y.size
    if total == 0:
        return result
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y).astype(np.float64)
    # right-closed: the first edge ≥ conf closes the bin (searchsorted on the edges themselves,
    # not conf · bins, so 0.3 lands in (0.2, 0.3] whatever 0.3 · 10 rounds to)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        members = which == b
        n_b = int(members.sum())
        result["count"][b] = n_b
        if n_b:
            conf_b, acc_b = float(conf[members].mean()), float(correct[members].mean())
            result["confidence"][b], result["accuracy"][b] = conf_b, acc_b
            ece += n_b / total * abs(acc_b - conf_b)
    result["ece"] = float(ece)
    return result


def verdict(delta: float | None) -> str | None:
    """`beats` (delta > +0.02), `trails` (delta < −0.02), `matches` in between; None for None."""
    if delta is None:
        return None
    if delta > VERDICT_MARGIN + _TOLERANCE:
        return "beats"
    if delta < -VERDICT_MARGIN - _TOLERANCE:
        return "trails"
    return "matches"


def _recall(y: np.ndarray, pred: np.ndarray, c: int) -> float | None:
    members = y == c
    return float(np.mean(pred[members] == c)) if members.any() else None


def amalgamation(y, student_pred, teacher_preds: Sequence, teacher_classes: Sequence[Sequence[int]],
                 teacher_names: Sequence[str], n_classes: int) -> list[dict]:
    """One row per student class, in class order: did the student learn each class as well as
    the best teacher that knows it?

    recall_m(c) = #{y = c, ŷ_m = c} / #{y = c}. `student` is the student's recall (choosing among
    all classes); `teachers` maps each teacher that knows c to its recall (teacher_preds are its
    argmax over its own classes, already in student class ids, so it chooses among S_t only);
    `best_teacher`/`best` the highest (the first in teacher order on a tie); delta = student −
    best; verdict(delta). A class without labelled samples (support 0) has None for every
    recall, best_teacher, best, delta and verdict. A class no teacher knows has `teachers` {},
    best_teacher/best/delta None and verdict `no teacher` (whatever its support).
    """
    y, student_pred = _labels(y), _labels(student_pred)
    teacher_preds = [_labels(p) for p in teacher_preds]
    if not (len(teacher_preds) == len(teacher_classes) == len(teacher_names)):
        raise ValueError("one prediction array, one class list and one name per teacher")
    knows = [{int(c) for c in cs} for cs in teacher_classes]
    rows = []
    for c in range(n_classes):
        support = int(np.sum(y == c))
        recalls = {name: _recall(y, pred, c) for name, pred, known in zip(teacher_names, teacher_preds, knows)
                   if c in known}
        student = _recall(y, student_pred, c)
        best_teacher = best = delta = None
        if recalls and support:
            best_teacher = max(recalls, key=lambda name: recalls[name])  # first of equals
            best = recalls[best_teacher]
            delta = student - best
        rows.append({"class": c, "support": support, "student": student, "teachers": recalls,
                     "best_teacher": best_teacher, "best": best, "delta": delta,
                     "verdict": verdict(delta) if recalls else "no teacher"})
    return rows


def agreement(preds: Sequence, classes: Sequence[Sequence[int]], names: Sequence[str], y=None) -> dict:
    """How often two models give the same answer where both could: {names, rate, samples}.

    For models a and b, S = S_a ∩ S_b (the classes both know). The samples compared: those whose
    label is in S; a sample without a label (y None, or y = −1) counts when a model that knows
    more classes than S puts it in S (ŷ ∈ S) — only such a model's answer says whether the sample
    is one of S: a teacher always answers among its own classes, so against the student the
    samples are those the student gives one of the teacher's classes. Where neither knows more
    than S (both know exactly S), every sample without a label counts.
    rate[a][b] = share of those samples with ŷ_a = ŷ_b, samples[a][b] their count; rate is None
    where S is empty or no sample counts. The same rule gives the diagonal: rate 1.0 over the
    model's own samples (the labelled samples of its classes; every sample without labels).
    `preds` are in student class ids; pass the teachers then the student, as the file lists them.
    """
    preds = [_labels(p) for p in preds]
    if not (len(preds) == len(classes) == len(names)):
        raise ValueError("one prediction array, one class list and one name per model")
    n_models = len(preds)
    n = preds[0].size if preds else 0
    labels = np.full(n, -1, dtype=np.int64) if y is None else _labels(y)
    labelled = labels >= 0
    known = [np.asarray(sorted({int(c) for c in cs}), dtype=np.int64) for cs in classes]
    rate: list[list[float | None]] = [[None] * n_models for _ in range(n_models)]
    samples = [[0] * n_models for _ in range(n_models)]
    for a in range(n_models):
        for b in range(a, n_models):
            shared = np.intersect1d(known[a], known[b])
            if shared.size == 0:
                continue
            telling = [m for m in (a, b) if known[m].size > shared.size]  # answers that can leave S
            in_shared = np.ones(n, dtype=bool) if not telling else \
                np.logical_or.reduce([np.isin(preds[m], shared) for m in telling])
            counted = np.where(labelled, np.isin(labels, shared), in_shared)
            count = int(counted.sum())
            samples[a][b] = samples[b][a] = count
            if count:
                rate[a][b] = rate[b][a] = float(np.mean(preds[a][counted] == preds[b][counted]))
    return {"names": list(names), "rate": rate, "samples": samples}


def mistakes(y, probs, limit: int | None) -> np.ndarray:
    """Indices (int64) of the labelled samples whose argmax is wrong, the most confident (max
    probability) first, ties by index; at most `limit` of them (None: all)."""
    y = _labels(y)
    probs = np.asarray(probs)
    if probs.ndim != 2 or probs.shape[0] != y.size:
        raise ValueError(f"probs must be [N, C] with N = {y.size} samples")
    wrong = np.flatnonzero((y >= 0) & (probs.argmax(axis=1) != y))
    conf = probs[wrong].max(axis=1) if wrong.size else np.zeros(0)
    ranked = wrong[np.lexsort((wrong, -conf.astype(np.float64)))]
    return (ranked if limit is None else ranked[:max(0, int(limit))]).astype(np.int64)
