"""A NumPy .npy array of samples (`format: npy`), memory-mapped and streamed: batches are read
from the file by worker processes (engine/data/feed.py), in the file's own number type (uint8
images stay uint8 until the device), so the array need not fit in memory. NHWC images are
transposed batch by batch. Labels, if any, come from a second .npy (small: read whole).

The header is checked against the file's size before mapping (a forged shape cannot claim more
than the file holds); object arrays are refused (no pickle). The fingerprint is cheap: shape,
type, file size, modification time and 64 blocks of 64 KiB spread over the data.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from engine.data.labels import labels_to_indices
from engine.data.npz import CHANNELS
from engine.data.source import Source, check_declared_size, register, require_file
from engine.errors import InputError
from engine.spec import NpyData

SAMPLED_BLOCKS, BLOCK = 64, 64 * 1024


class NpySource(Source):
    streamed = True

    def __init__(self, path: Path, x: np.ndarray, nhwc: bool, labels: np.ndarray | None, notes: tuple[str, ...]):
        self.path, self._x, self.nhwc, self.labels, self.notes = path, x, nhwc, labels, notes
        shape = x.shape[1:]
        self.sample_shape = (shape[2], shape[0], shape[1]) if nhwc else tuple(shape)
        self.dtype = np.dtype(np.uint8) if x.dtype == np.uint8 else np.dtype(np.float32)

    def __len__(self) -> int:
        return len(self._x)

    def read_native(self, idx: np.ndarray) -> np.ndarray:
        order = np.argsort(idx, kind="stable")  # the file in order: sequential reads
        rows = np.empty((len(idx), *self._x.shape[1:]), dtype=self._x.dtype)
        rows[order] = self._x[np.asarray(idx)[order]]
        if self.nhwc:
            rows = rows.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(rows, dtype=self.dtype)

    def read(self, idx: np.ndarray) -> np.ndarray:
        return self.read_native(idx).astype(np.float32, copy=False)

    def digest(self, h) -> None:
        st = self.path.stat()
        h.update(repr(("npy", self._x.shape, str(self._x.dtype), self.nhwc, st.st_size, st.st_mtime_ns)).encode())
        raw = np.asarray(self._x).reshape(-1).view(np.uint8) if self._x.size else np.zeros(0, np.uint8)
        n = len(raw)
        for k in range(SAMPLED_BLOCKS):
            start = (n - BLOCK) * k // max(SAMPLED_BLOCKS - 1, 1) if n > BLOCK else 0
            h.update(raw[start:start + BLOCK].tobytes())


def _map(path: Path, where: str, text: bool = False) -> np.ndarray:
    """The array memory-mapped, its header checked first. `text`: class names are allowed."""
    try:
        with path.open("rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(f)
            start = f.tell()
    except (ValueError, OSError, EOFError) as exc:
        raise InputError.one(where, f"{path.name} is not a readable .npy file ({str(exc)[:160]})",
                             "save it with numpy.save from a numeric array (no objects)") from None
    if dtype.hasobject or not (np.issubdtype(dtype, np.number) or dtype == np.bool_ or (text and dtype.kind == "U")):
        raise InputError.one(where, f"{path.name} holds {dtype}, not numbers",
                             "save numeric samples (no objects, no strings)")
    need = math.prod(shape) * dtype.itemsize
    size = os.path.getsize(path)
    if start + need > size:
        raise InputError.one(where, f"{path.name} declares shape {list(shape)} ({need} bytes) but holds "
                             f"{max(size - start, 0)} bytes (damaged, truncated or forged header)",
                             "save the array again with numpy.save")
    if fortran:
        raise InputError.one(where, f"{path.name} is stored in Fortran order, which cannot be read "
                             "sample by sample", "save np.ascontiguousarray(x) instead")
    return np.load(path, mmap_mode="r", allow_pickle=False)


@register("npy")
def open_npy(src: NpyData, classes: list[str]) -> NpySource:
    require_file(src.path, "data.path")
    x = _map(src.path, "data.path")
    if x.ndim < 2 or len(x) == 0:
        raise InputError.one("data.path", f"{src.path.name} is shaped {list(x.shape)}: no samples along "
                             "its first axis", "save the samples as [N, ...]")
    nhwc, notes = False, ()
    if x.ndim == 4:
        nhwc = src.layout == "nhwc" or (src.layout == "auto" and x.shape[3] in CHANNELS and x.shape[1] not in CHANNELS)
        if nhwc and src.layout == "auto":
            notes = (f"{src.path.name}: samples shaped {list(x.shape)} read as [N, H, W, C] images (NHWC) and "
                     "transposed batch by batch; set data.layout to nchw if that is wrong",)
    elif src.layout != "auto":
        raise InputError.one("data.layout", f"layout '{src.layout}' is for images, and {src.path.name} is "
                             f"shaped {list(x.shape)}", "set layout to auto for other data")
    y = None
    if src.labels is not None:
        require_file(src.labels, "data.labels")
        labels = _map(src.labels, "data.labels", text=True)
        check_declared_size("data.labels", src.labels.name, "its header", labels.shape, labels.nbytes * 2)
        if len(labels) != len(x):
            raise InputError.one("data.labels", f"{len(labels)} labels for {len(x)} samples",
                                 "give one label per sample, in the same order")
        y = labels_to_indices(np.asarray(labels).reshape(-1), classes, "data.labels")
    if np.issubdtype(x.dtype, np.floating):
        _check_finite(x, src.path.name)
    return NpySource(src.path, x, nhwc, y, notes)


def _check_finite(x: np.ndarray, name: str, chunk_bytes: int = 64 * 2**20) -> None:
    """NaN or infinite values refuse the data, the rows named (read in chunks: the file may not
    fit in memory)."""
    rows = max(1, chunk_bytes // max(1, x[0].nbytes))
    bad_rows: list[int] = []
    count = 0
    for start in range(0, len(x), rows):
        bad = ~np.isfinite(np.asarray(x[start:start + rows]))
        if bad.any():
            count += int(bad.sum())
            bad_rows += (np.flatnonzero(bad.reshape(len(bad), -1).any(axis=1)) + start).tolist()[:20]
    if count:
        raise InputError.one("data.path", f"{name}: {count} values are NaN or infinite (first in samples "
                             f"{', '.join(map(str, bad_rows[:5]))})", "clean or drop those samples before training")
