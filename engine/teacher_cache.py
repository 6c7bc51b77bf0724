"""Teacher outputs computed once, kept on disk, reused across epochs and runs.

Teachers are frozen, so their outputs on a given set of samples never change. They are
computed once (batched, inference mode) and stored as `.npy` files in a cache folder beside
the run store, keyed by the teacher file's sha256, its input contract, how its outputs are read, and a fingerprint
of the samples; a later run with the same teacher and data memory-maps them instead of
running the teacher again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from engine.atomic_io import atomic_write


def fingerprint(x: np.ndarray) -> str:
    """sha256 of the samples' shape, type and bytes."""
    digest = hashlib.sha256(f"{x.shape}|{x.dtype}".encode())
    digest.update(np.ascontiguousarray(x).data)
    return digest.hexdigest()


def teacher_outputs(teacher, x: np.ndarray, data_fp: str, folder: Path | None) -> tuple[np.ndarray, bool]:
    """(outputs, whether they came from the cache). Without a folder: computed, not stored."""
    if folder is None:
        return teacher.predict(x), False
    key = hashlib.sha256(f"{teacher.cache_key}|{data_fp}".encode()).hexdigest()[:32]
    path = Path(folder) / f"{key}.npy"
    if path.is_file():
        try:
            cached = np.load(path, mmap_mode="r", allow_pickle=False)
            if cached.shape == (len(x), len(teacher.spec.classes)) and cached.dtype == np.float32:
                return cached, True
        except (OSError, ValueError):
            pass  # damaged: computed again below and replaced
    out = teacher.predict(x)
    try:
        atomic_write(path, lambda tmp: _save(tmp, out))
    except OSError:
        pass  # a cache that cannot be written only costs time
    return out, False


def _save(tmp: Path, array: np.ndarray) -> None:
    with tmp.open("wb") as f:
        np.save(f, array, allow_pickle=False)
