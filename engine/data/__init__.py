"""Data: a source registered by format (engine/data/source.py), split with a seed into
train / validation / test.

Every source gives raw inputs exactly as it holds them (float32, samples first, images as
[N, C, H, W]) and labels as indices into the spec's `classes`, or None. Models do their own
preprocessing, so an exported model takes these same raw inputs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from engine.data import builtin, csv_table, idx_files, npz  # noqa: F401  (each registers itself)
from engine.data.source import SOURCES, ArraySource, Source, open_source, register
from engine.errors import InputError
from engine.spec import PipelineSpec

__all__ = ["SOURCES", "ArraySource", "Dataset", "Part", "Source", "load_dataset", "register"]


@dataclass
class Part:
    x: np.ndarray  # float32 [N, *sample_shape]
    y: np.ndarray | None  # int64 [N] indices into the student's classes, or None

    def __len__(self) -> int:
        return len(self.x)


@dataclass
class Dataset:
    train: Part
    val: Part
    test: Part
    sample_shape: tuple[int, ...]
    fingerprint: str  # sha256 of the samples, labels and the split
    hidden_labels: np.ndarray | None = None  # the training labels that `use_labels: false` hides:
    # read only by calibration, which takes a few per class

    @property
    def known_train_labels(self) -> np.ndarray | None:
        return self.train.y if self.train.y is not None else self.hidden_labels

    @property
    def labeled(self) -> bool:
        return self.train.y is not None


def load_dataset(spec: PipelineSpec) -> Dataset:
    """Open the spec's source, check it, and cut it into the three parts."""
    settings = spec.data
    source = open_source(settings, spec.classes)
    if len(source.sample_shape) < 1 or len(source) == 0:
        raise InputError.one("data", f"the data holds no samples (array shape "
                             f"{[len(source), *source.sample_shape]})",
                             "check the file: it must hold samples along its first axis")
    split = settings.split
    parts = _split_indices(len(source), split.val, split.test, split.seed)
    train, val, test = (_part(source, idx) for idx in parts)
    _check_finite([train, val, test], parts)
    if len(train) == 0:
        raise InputError.one("data.split", "the training part is empty",
                             "use more samples or smaller val/test fractions")
    h = hashlib.sha256(repr((split.seed, split.val, split.test)).encode())
    source.digest(h)
    if settings.use_labels and source.labels is not None:
        h.update(np.ascontiguousarray(source.labels).data)
    hidden = None
    if not settings.use_labels:  # training never sees them; validation and test still measure with them
        train, hidden = Part(train.x, None), train.y
    return Dataset(train, val, test, source.sample_shape, h.hexdigest(), hidden)


def _split_indices(n: int, val: float, test: float, seed: int) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    n_val, n_test = int(round(n * val)), int(round(n * test))
    return [np.sort(part) for part in np.split(order, [n - n_val - n_test, n - n_test])]


def _part(source: Source, idx: np.ndarray) -> Part:
    return Part(source.read(idx), None if source.labels is None else source.labels[idx])


def _check_finite(parts: list[Part], indices: list[np.ndarray]) -> None:
    values = samples = 0
    first = None
    for part, idx in zip(parts, indices):
        bad = ~np.isfinite(part.x)
        if bad.any():
            rows = np.unique(np.nonzero(bad)[0])
            values, samples = values + int(bad.sum()), samples + len(rows)
            first = min(int(idx[rows[0]]), first if first is not None else len(idx) + 10**12)
    if values:
        raise InputError.one("data", f"{values} values are NaN or infinite, in {samples} samples "
                             f"(first: sample {first})", "clean or drop those samples before training")
