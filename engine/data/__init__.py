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

from engine.data import builtin, csv_table, idx_files, image_folder, npy, npz, text  # noqa: F401  (each registers itself)
from engine.data.source import SOURCES, ArraySource, Samples, Source, open_source, register
from engine.errors import InputError
from engine.spec import PipelineSpec

__all__ = ["SOURCES", "ArraySource", "Dataset", "Part", "Samples", "Source", "load_dataset", "register"]


@dataclass
class Part:
    x: np.ndarray | Samples  # float32 [N, *sample_shape]; Samples when streamed from disk
    y: np.ndarray | None  # int64 [N] indices into the student's classes (-1: no label), or None
    raw: dict[str, np.ndarray] | None = None  # the exported model's inputs for these samples,
    # where they differ from x (a table's cells before encoding: Source.raw_inputs)
    texts: np.ndarray | None = None  # texts: the raw strings the teachers read (x: the student's ids)
    pad_id: int | None = None  # texts: the id x is right-padded with (batches are cut to their longest)

    def __len__(self) -> int:
        return len(self.x)

    @property
    def streamed(self) -> bool:
        return isinstance(self.x, Samples)

    @property
    def for_teachers(self) -> np.ndarray | Samples:
        """The samples as the teachers read them: the raw texts of text data (each teacher has
        its own tokenizer), else the samples themselves."""
        return self.x if self.texts is None else self.texts

    def stats_sample(self, n: int = 4096) -> np.ndarray:
        """The samples the student's input statistics are fitted on: all of them in memory, up
        to n spread over a streamed part."""
        return self.x.spread(n) if self.streamed else self.x


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
    test_field: str = "test_file"  # the data format's field naming a labelled test set
    text: object | None = None  # texts: the student's tokenizer (engine/tokenizer.py TextTokenizer)

    @property
    def known_train_labels(self) -> np.ndarray | None:
        return self.train.y if self.train.y is not None else self.hidden_labels

    @property
    def labeled(self) -> bool:
        return self.train.y is not None

    @property
    def streamed(self) -> bool:
        return self.train.streamed

    def labelled_samples(self, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray] | None:
        """Up to n labelled samples as the teachers read them, drawn from every part with labels
        (hidden training labels too), for the checks before training; None when no labels exist
        anywhere."""
        parts = [(x, y, np.flatnonzero(y >= 0)) for x, y in ((self.train.for_teachers, self.known_train_labels),
                                                             (self.val.for_teachers, self.val.y),
                                                             (self.test.for_teachers, self.test.y))
                 if y is not None and len(y)]
        parts = [p for p in parts if len(p[2])]  # rows with a label (-1: an unlabelled image)
        if not parts:
            return None
        sizes = np.cumsum([0] + [len(rows) for _, _, rows in parts])
        pick = np.sort(np.random.default_rng(seed).permutation(sizes[-1])[:n])
        xs, ys = [], []
        for (x, y, rows), start, end in zip(parts, sizes[:-1], sizes[1:]):
            own = rows[pick[(pick >= start) & (pick < end)] - start]
            xs.append(x[own])
            ys.append(y[own])
        return np.concatenate(xs), np.concatenate(ys)


def load_dataset(spec: PipelineSpec, cache_dir=None) -> Dataset:
    """Open the spec's source, check it, and cut it into the three parts. `cache_dir`: where a
    source may keep what it checked (an image folder's unreadable files), beside the store."""
    settings = spec.data
    source = open_source(settings, spec.classes, cache_dir=cache_dir)
    if len(source.sample_shape) < 1 or len(source) == 0:
        raise InputError.one("data", f"the data holds no samples (array shape "
                             f"{[len(source), *source.sample_shape]})",
                             "check the file: it must hold samples along its first axis")
    split = settings.split
    test_source, test_from = _test_source(settings, spec.classes, source, cache_dir)
    h = hashlib.sha256(repr((split.seed, split.val, split.test)).encode())
    source.digest(h)
    if settings.use_labels and source.labels is not None:
        h.update(np.ascontiguousarray(source.labels).data)
    if test_source is not None:
        test_source.digest(h)
        h.update(np.ascontiguousarray(test_source.labels).data)
    parts = _split_indices(len(source), split.val, 0.0 if test_source else split.test, split.seed,
                           source.labels)
    train, val, test = (_part(source, idx, h.hexdigest(), name) for idx, name in zip(parts, ("train", "val", "test")))
    if test_source is not None:
        test = _part(test_source, np.arange(len(test_source)), h.hexdigest(), "test file")
        parts[2] = np.arange(len(test_source))
    _check_finite([train, val, test], parts)
    if len(train) == 0:
        raise InputError.one("data.split", "the training part is empty",
                             "use more samples or smaller val/test fractions")
    hidden = None
    notes = list(source.notes)
    if not settings.use_labels:  # training never sees them; validation and test still measure with them
        train, hidden = Part(train.x, None, train.raw, train.texts, train.pad_id), train.y
    elif train.y is not None and (train.y < 0).any():
        notes.append(f"training part: {int((train.y >= 0).sum())} labelled and {int((train.y < 0).sum())} "
                     "unlabelled samples (the teachers alone give the targets of the unlabelled)")
    if test_source is not None:
        notes.append(f"test scores on {test_from} ({len(test)} labelled samples); split.test is not used")
    test_field = next(iter(getattr(type(settings), "test_fields", {}).values()), "test_file")
    return Dataset(train, val, test, source.sample_shape, h.hexdigest(), hidden, notes, source.table, test_from,
                   test_field, source.text)


def _test_source(settings, classes: list[str], source: Source, cache_dir=None) -> tuple[Source | None, str | None]:
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
                                                **{t: None for t in fields.values()},
                                                **{k: None for k in getattr(type(settings), "test_clears", ())}})
    where = f"data.{first_test}"
    try:
        test = open_source(test_settings, classes, table=source.table, cache_dir=cache_dir, text=source.text)
    except InputError as exc:  # the same checks as the training file, named after the test fields
        pairs = {f"data.{main}": f"data.{test}" for main, test in fields.items()}
        raise InputError([p.__class__(pairs.get(p.path, p.path), p.message, p.hint) for p in exc.problems],
                         kind=exc.kind) from None
    if test.labels is None or (test.labels < 0).any():
        raise InputError.one(where, f"the test set {named[first_main].name} has no labels",
                             "a test set needs a label for every sample: it is what accuracy is measured on")
    if tuple(test.sample_shape) != tuple(source.sample_shape):
        raise InputError.one(where, f"the test samples are shaped {list(test.sample_shape)}, the "
                             f"training samples {list(source.sample_shape)}",
                             "give a test set of the same kind of samples")
    return test, named[first_main].name


def _split_indices(n: int, val: float, test: float, seed: int,
                   labels: np.ndarray | None = None) -> list[np.ndarray]:
    """Shuffled with the seed, then cut. Samples without a label (-1, an unlabelled folder beside
    a labelled one) all go to training: validation and test measure against labels."""
    order = np.random.default_rng(seed).permutation(n)
    unlabelled = None
    if labels is not None and (labels < 0).any():
        unlabelled, order = order[labels[order] < 0], order[labels[order] >= 0]
        n = len(order)
    n_val, n_test = int(round(n * val)), int(round(n * test))
    parts = np.split(order, [n - n_val - n_test, n - n_test])
    if unlabelled is not None:
        parts[0] = np.concatenate([parts[0], unlabelled])
    return [np.sort(part) for part in parts]


def _part(source: Source, idx: np.ndarray, data_fp: str, name: str) -> Part:
    y = None if source.labels is None else source.labels[idx]
    if source.streamed:  # read batch by batch; the fingerprint names these samples for the teacher cache
        fp = hashlib.sha256(f"{data_fp}|{name}|".encode() + np.ascontiguousarray(idx).data).hexdigest()
        return Part(Samples(source, idx, fp), y)
    pad = getattr(source.text, "pad_id", None)
    return Part(source.read(idx), y, source.raw_inputs(idx), source.texts(idx), pad)


def _check_finite(parts: list[Part], indices: list[np.ndarray]) -> None:
    values = samples = 0
    first = None
    for part, idx in zip(parts, indices):
        if part.streamed:  # decoded images: whole numbers 0-255
            continue
        bad = ~np.isfinite(part.x)
        if bad.any():
            rows = np.unique(np.nonzero(bad)[0])
            values, samples = values + int(bad.sum()), samples + len(rows)
            first = min(int(idx[rows[0]]), first if first is not None else len(idx) + 10**12)
    if values:
        raise InputError.one("data", f"{values} values are NaN or infinite, in {samples} samples "
                             f"(first: sample {first})", "clean or drop those samples before training")
