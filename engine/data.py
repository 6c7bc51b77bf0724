"""Data sources: built-in digits, .npz arrays, CSV tables, IDX files; split with a seed.

Every loader returns raw inputs exactly as the source holds them (float32, samples first,
images as [N, C, H, W]) and labels as indices into the spec's `classes`, or None.
Models do their own preprocessing, so an exported model takes these same raw inputs.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import InputError
from engine.spec import BuiltinData, CsvData, DataSource, IdxData, NpzData, PipelineSpec


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
    fingerprint: str  # sha256 of the raw arrays and the split: keys caches of teacher outputs
    hidden_labels: np.ndarray | None = None  # the training labels that `use_labels: false` hides:
    # read only by calibration, which takes a few per class

    @property
    def known_train_labels(self) -> np.ndarray | None:
        return self.train.y if self.train.y is not None else self.hidden_labels

    @property
    def labeled(self) -> bool:
        return self.train.y is not None


def load_dataset(spec: PipelineSpec) -> Dataset:
    src = spec.data
    x, y = _load_arrays(src, spec.classes)
    if x.ndim < 2 or len(x) == 0:
        raise InputError.one("data", f"the data holds no samples (array shape {list(x.shape)})",
                             "check the file: it must hold samples along its first axis")
    bad = ~np.isfinite(x)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        raise InputError.one(
            "data", f"{int(bad.sum())} values are NaN or infinite, in {len(rows)} samples "
            f"(first: sample {int(rows[0])})", "clean or drop those samples before training")
    fingerprint = _fingerprint(x, y if src.use_labels else None, src.split.seed, src.split.val, src.split.test)
    train, val, test = _split(x, y, src.split.val, src.split.test, src.split.seed)
    if len(train) == 0:
        raise InputError.one("data.split", "the training part is empty",
                             "use more samples or smaller val/test fractions")
    hidden = None
    if not src.use_labels:  # training never sees them; validation and test still measure with them
        train, hidden = Part(train.x, None), train.y
    return Dataset(train, val, test, tuple(x.shape[1:]), fingerprint, hidden)


def _load_arrays(src: DataSource, classes: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    if isinstance(src, BuiltinData):
        return _load_builtin(src, classes)
    path = src.images if isinstance(src, IdxData) else src.path
    where = "data.images" if isinstance(src, IdxData) else "data.path"
    if not path.is_file():
        raise InputError.one(where, f"no data file at {path}", "check the path in the spec")
    if isinstance(src, NpzData):
        return _load_npz(path, classes)
    if isinstance(src, CsvData):
        return _load_csv(path, src.label_column, classes)
    x = _read_idx(path, "data.images").astype(np.float32)
    if x.ndim == 3:
        x = x[:, None, :, :]  # [N, H, W] images get their one channel
    y = None
    if src.labels is not None:
        if not src.labels.is_file():
            raise InputError.one("data.labels", f"no label file at {src.labels}",
                                 "check the path, or remove `labels` for unlabeled data")
        y = _read_idx(src.labels, "data.labels").astype(np.int64).reshape(-1)
        if len(y) != len(x):
            raise InputError.one("data.labels", f"{len(y)} labels for {len(x)} images",
                                 "use the label file that belongs to these images")
        y = _check_indices(y, classes, "data.labels")
    return x, y


def _load_builtin(src: BuiltinData, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # ships the data inside the package: offline

    digits = load_digits()
    if len(classes) != 10:
        raise InputError.one("classes", f"digits has 10 classes; the spec lists {len(classes)}",
                             'list the ten digits: ["0", "1", ..., "9"]')
    x = digits.images.astype(np.float32)[:, None, :, :]  # [N, 1, 8, 8], values 0..16
    return x, digits.target.astype(np.int64)


def _load_npz(path: Path, classes: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        with np.load(path, allow_pickle=False) as arrays:
            if "x" not in arrays.files:
                raise InputError.one("data.path", f"{path.name} has no array named 'x' "
                                     f"(it has: {', '.join(arrays.files) or 'nothing'})",
                                     "save the inputs as x, e.g. np.savez(file, x=inputs, y=labels)")
            x = arrays["x"]
            y = arrays["y"] if "y" in arrays.files else None
    except InputError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise InputError.one("data.path", f"{path.name} is not a readable .npz file ({exc})",
                             "save it with numpy.savez from numeric arrays (no objects)") from None
    if not np.issubdtype(x.dtype, np.number) and x.dtype != np.bool_:
        raise InputError.one("data.path", f"x in {path.name} holds {x.dtype}, not numbers",
                             "store numeric inputs in x")
    x = x.astype(np.float32)
    if y is not None:
        if len(y) != len(x):
            raise InputError.one("data.path", f"{len(y)} labels in y for {len(x)} samples in x",
                                 "give y one label per sample of x")
        y = _labels_to_indices(y.reshape(-1), classes, "data.path")
    return x, y


def _load_csv(path: Path, label_column: str | None, classes: list[str]):
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:  # Excel's "CSV UTF-8" has a BOM
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError.one("data.path", f"cannot read {path.name} as a text table ({exc})",
                             "save the table as UTF-8 CSV with a header row") from None
    if len(rows) < 2:
        raise InputError.one("data.path", f"{path.name} has no data rows",
                             "the first row names the columns; samples follow, one per row")
    header, body = rows[0], [r for r in rows[1:] if r]
    label_idx = None
    if label_column is not None:
        if label_column not in header:
            raise InputError.one("data.label_column", f"no column '{label_column}' in {path.name}",
                                 f"use one of: {', '.join(header)}")
        label_idx = header.index(label_column)
    features = [i for i in range(len(header)) if i != label_idx]
    x = np.empty((len(body), len(features)), dtype=np.float32)
    labels = []
    for r, row in enumerate(body):
        if len(row) != len(header):
            raise InputError.one("data.path", f"row {r + 2} of {path.name} has {len(row)} "
                                 f"fields, the header has {len(header)}", "fix that row")
        for j, c in enumerate(features):
            try:
                x[r, j] = float(row[c])
            except ValueError:
                raise InputError.one(
                    "data.path", f"row {r + 2}, column '{header[c]}' of {path.name} is "
                    f"'{row[c]}', not a number", "feature columns must be numeric; "
                    "set `label_column` if this is the label") from None
        if label_idx is not None:
            labels.append(row[label_idx].strip())
    y = _labels_to_indices(np.array(labels), classes, "data.path") if label_idx is not None else None
    return x, y


def _labels_to_indices(y: np.ndarray, classes: list[str], where: str) -> np.ndarray:
    """Labels are class names, or whole numbers indexing the spec's classes."""
    as_text = [str(v) for v in y.tolist()]
    if all(v in classes for v in as_text):
        index = {c: i for i, c in enumerate(classes)}
        return np.array([index[v] for v in as_text], dtype=np.int64)
    try:
        as_float = np.array([float(v) for v in as_text])
        if not np.all(np.isfinite(as_float)) or np.any(as_float != np.round(as_float)):
            raise ValueError("not whole numbers")
        numbers = as_float.astype(np.int64)  # 3 and 3.0 alike: numpy often stores labels as floats
    except ValueError:
        unknown = sorted({v for v in as_text if v not in classes})[:5]
        raise InputError.one(where, f"labels {', '.join(map(repr, unknown))} are not class names",
                             f"use the spec's classes ({', '.join(classes)}) or their indices") from None
    return _check_indices(numbers, classes, where)


def _check_indices(y: np.ndarray, classes: list[str], where: str) -> np.ndarray:
    if len(y) and (y.min() < 0 or y.max() >= len(classes)):
        raise InputError.one(where, f"labels run from {y.min()} to {y.max()}, but the spec "
                             f"has {len(classes)} classes", "list every class in `classes`")
    return y


_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_idx(path: Path, where: str) -> np.ndarray:
    """The IDX format: 2 zero bytes, a type byte, a rank byte, big-endian int32 sizes, data."""
    with path.open("rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise InputError.one(where, f"{path.name} is a damaged gzip file ({exc})",
                                 "download or copy the file again") from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_TYPES:
        raise InputError.one(where, f"{path.name} is not an IDX file",
                             "use MNIST-format files such as train-images-idx3-ubyte(.gz)")
    rank = raw[3]
    if not 1 <= rank <= 4 or len(raw) < 4 + 4 * rank:
        raise InputError.one(where, f"{path.name} has a damaged IDX header (rank {rank})",
                             "use MNIST-format files such as train-images-idx3-ubyte(.gz)")
    dims = np.frombuffer(raw, dtype=">i4", count=rank, offset=4).astype(int)
    if np.any(dims < 0):
        raise InputError.one(where, f"{path.name} has a damaged IDX header (sizes {list(dims)})",
                             "copy the file again")
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    need = int(np.prod(dims)) * dtype.itemsize
    start = 4 + 4 * rank
    if len(raw) - start < need:
        raise InputError.one(where, f"{path.name} is truncated: {len(raw) - start} bytes "
                             f"of data for shape {list(dims)}", "copy the complete file")
    return np.frombuffer(raw, dtype=dtype, count=int(np.prod(dims)), offset=start).reshape(dims)


def _split(x, y, val: float, test: float, seed: int) -> tuple[Part, Part, Part]:
    n = len(x)
    order = np.random.default_rng(seed).permutation(n)
    n_val, n_test = int(round(n * val)), int(round(n * test))
    parts = np.split(order, [n - n_val - n_test, n - n_test])

    def take(idx: np.ndarray) -> Part:
        idx = np.sort(idx)
        return Part(np.ascontiguousarray(x[idx]), None if y is None else y[idx])

    return take(parts[0]), take(parts[1]), take(parts[2])


def _fingerprint(x: np.ndarray, y: np.ndarray | None, seed: int, val: float, test: float) -> str:
    h = hashlib.sha256()
    h.update(repr((x.shape, str(x.dtype), seed, val, test)).encode())
    h.update(np.ascontiguousarray(x).data)
    if y is not None:
        h.update(np.ascontiguousarray(y).data)
    return h.hexdigest()
