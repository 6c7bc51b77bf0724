"""Data: a source registered by format (engine/data/source.py), split with a seed into
train / validation / test.

Every source gives raw inputs exactly as it holds them (float32, samples first, images as
[N, C, H, W]) and labels as indices into the spec's `classes`, or None. Models do their own
preprocessing, so an exported model takes these same raw inputs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

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
    raw: dict[str, np.ndarray] | None = None  # the exported model's inputs for these samples,
    # where they differ from x (a table's cells before encoding: Source.raw_inputs)

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
    # read only by calibration (a few per class) and the teachers' pre-training check
    notes: list[str] = field(default_factory=list)  # how the data was read, for the run log
    table: object | None = None  # a table's columns and their encoding (engine/data/table.py)
    test_from: str | None = None  # the file the test part comes from, when not the split

    @property
    def known_train_labels(self) -> np.ndarray | None:
        return self.train.y if self.train.y is not None else self.hidden_labels

    @property
    def labeled(self) -> bool:
        return self.train.y is not None

    def labelled_samples(self, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
        """Up to n labelled samples, drawn from every part with labels (hidden training labels
        too), for the checks before training; None when no labels exist anywhere."""
        parts = [(x, y) for x, y in ((self.train.x, self.known_train_labels), (self.val.x, self.val.y),
                                     (self.test.x, self.test.y)) if y is not None and len(y)]
        if not parts:
            return None
        sizes = np.cumsum([0] + [len(y) for _, y in parts])
        pick = np.sort(np.random.default_rng(seed).permutation(sizes[-1])[:n])
        xs, ys = [], []
        for (x, y), start, end in zip(parts, sizes[:-1], sizes[1:]):
            own = pick[(pick >= start) & (pick < end)] - start
            xs.append(x[own])
            ys.append(y[own])
        return np.concatenate(xs), np.concatenate(ys)


def load_dataset(spec: PipelineSpec) -> Dataset:
    """Open the spec's source, check it, and cut it into the three parts."""
    settings = spec.data
    source = open_source(settings, spec.classes)
    if len(source.sample_shape) < 1 or len(source) == 0:
        raise InputError.one("data", f"the data holds no samples (array shape "
                             f"{[len(source), *source.sample_shape]})",
                             "check the file: it must hold samples along its first axis")
    split = settings.split
    test_source, test_from = _test_source(settings, spec.classes, source)
    parts = _split_indices(len(source), split.val, 0.0 if test_source else split.test, split.seed)
    train, val, test = (_part(source, idx) for idx in parts)
    if test_source is not None:
        test = _part(test_source, np.arange(len(test_source)))
        parts[2] = np.arange(len(test_source))
    _check_finite([train, val, test], parts)
    if len(train) == 0:
        raise InputError.one("data.split", "the training part is empty",
                             "use more samples or smaller val/test fractions")
    h = hashlib.sha256(repr((split.seed, split.val, split.test)).encode())
    source.digest(h)
    if settings.use_labels and source.labels is not None:
        h.update(np.ascontiguousarray(source.labels).data)
    if test_source is not None:
        test_source.digest(h)
        h.update(np.ascontiguousarray(test_source.labels).data)
    hidden = None
    if not settings.use_labels:  # training never sees them; validation and test still measure with them
        train, hidden = Part(train.x, None), train.y
    notes = list(source.notes)
    if test_source is not None:
        notes.append(f"test scores on {test_from} ({len(test)} labelled samples); split.test is not used")
    return Dataset(train, val, test, source.sample_shape, h.hexdigest(), hidden, notes, source.table, test_from)


def _test_source(settings, classes: list[str], source: Source) -> tuple[Source | None, str | None]:
    """The separate labelled test set a source's settings name (`test_fields`), or (None, None)."""
    fields = getattr(type(settings), "test_fields", {})
    named = {main: getattr(settings, test) for main, test in fields.items() if getattr(settings, test) is not None}
    if not named:
        return None, None
    first_main, first_test = next(iter(fields.items()))
    if first_main not in named:
        raise InputError.one(f"data.{first_test}", f"{', '.join(f'data.{fields[m]}' for m in named)} is set "
                             f"but data.{first_test} is not", f"give the test samples in {first_test}")
    # every main field from its test field (one left unset is None: never the training file's)
    test_settings = settings.model_copy(update={**{m: getattr(settings, t) for m, t in fields.items()},
                                                **{t: None for t in fields.values()}})
    where = f"data.{first_test}"
    try:
        test = open_source(test_settings, classes, table=source.table)
    except InputError as exc:  # the same checks as the training file, named after the test fields
        pairs = {f"data.{main}": f"data.{test}" for main, test in fields.items()}
        raise InputError([p.__class__(pairs.get(p.path, p.path), p.message, p.hint) for p in exc.problems],
                         kind=exc.kind) from None
    if test.labels is None:
        raise InputError.one(where, f"the test set {named[first_main].name} has no labels",
                             "a test set needs a label for every sample: it is what accuracy is measured on")
    if tuple(test.sample_shape) != tuple(source.sample_shape):
        raise InputError.one(where, f"the test samples are shaped {list(test.sample_shape)}, the "
                             f"training samples {list(source.sample_shape)}",
                             "give a test set of the same kind of samples")
    return test, named[first_main].name


def _split_indices(n: int, val: float, test: float, seed: int) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    n_val, n_test = int(round(n * val)), int(round(n * test))
    return [np.sort(part) for part in np.split(order, [n - n_val - n_test, n - n_test])]


def _part(source: Source, idx: np.ndarray) -> Part:
    return Part(source.read(idx), None if source.labels is None else source.labels[idx], source.raw_inputs(idx))


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
