"""Teacher outputs computed once, kept on disk, reused across epochs and runs.

Teachers are frozen, so their outputs on a given set of samples never change. They are
computed once (batched, inference mode) and stored as `.npy` files in a cache folder beside
the run store, keyed by the teacher file's sha256, its input contract, how its outputs are read, and a fingerprint
of the samples; a later run with the same teacher and data memory-maps them instead of
running the teacher again.

Samples streamed from disk (an image folder) are read once for all the teachers whose outputs
are not cached (`streamed_outputs`: one pass, batches decoded by worker processes), and each
teacher's outputs are written row by row into a memory-mapped `.npy` (a temp name, renamed when
complete): they are never all in memory while computed. The fingerprint of streamed samples is
their source's (engine/data/images.py for a folder) with the positions of the part.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

import numpy as np

from engine.atomic_io import atomic_write


def fingerprint(x: np.ndarray) -> str:
    """sha256 of the samples' shape, type and bytes (of texts: their UTF-8, each ended by NUL)."""
    digest = hashlib.sha256(f"{x.shape}|{x.dtype}".encode())
    if x.dtype == object:
        for t in x:
            digest.update(str(t).encode("utf-8", "surrogatepass") + b"\0")
    else:
        digest.update(np.ascontiguousarray(x).data)
    return digest.hexdigest()


def cache_path(teacher, data_fp: str, folder: Path) -> Path:
    key = hashlib.sha256(f"{teacher.cache_key}|{data_fp}".encode()).hexdigest()[:32]
    return Path(folder) / f"{key}.npy"


def cached(teacher, n: int, data_fp: str, folder: Path | None) -> np.ndarray | None:
    """The teacher's outputs on these n samples from the cache (memory-mapped), or None."""
    if folder is None:
        return None
    path = cache_path(teacher, data_fp, folder)
    if path.is_file():
        try:
            out = np.load(path, mmap_mode="r", allow_pickle=False)
            if out.shape == (n, len(teacher.spec.classes)) and out.dtype == np.float32:
                return out
        except (OSError, ValueError):
            pass  # damaged: computed again and replaced
    return None


def teacher_outputs(teacher, x: np.ndarray, data_fp: str, folder: Path | None) -> tuple[np.ndarray, bool]:
    """(outputs, whether they came from the cache). Without a folder: computed, not stored."""
    if folder is None:
        return teacher.predict(x), False
    hit = cached(teacher, len(x), data_fp, folder)
    if hit is not None:
        return hit, True
    path = cache_path(teacher, data_fp, folder)
    out = teacher.predict(x)
    try:
        atomic_write(path, lambda tmp: _save(tmp, out))
    except OSError:
        pass  # a cache that cannot be written only costs time
    return out, False


def _save(tmp: Path, array: np.ndarray) -> None:
    with tmp.open("wb") as f:
        np.save(f, array, allow_pickle=False)


def streamed_outputs(teachers: list, samples, folder: Path | None, workers: int,
                     batch_size: int = 256, transform=None, on_batch=None) -> list[tuple[np.ndarray, bool]]:
    """(outputs, from the cache) of each teacher on streamed samples (engine/data/source.py
    Samples): the cached ones memory-mapped, the others computed in one pass over the samples
    and written row by row into memory-mapped files (in memory only without a cache folder).
    `transform(positions, batch)`: what the teachers see of each batch (an augmented view); its
    `key` names it in the cache. `on_batch(done, total)`: after each batch (progress; it may
    raise to stop the pass, whose temp files are then removed)."""
    import os

    import torch

    from engine.data import Part
    from engine.data.feed import Feed

    n = len(samples)
    fp = samples.fingerprint if transform is None else \
        hashlib.sha256(f"{samples.fingerprint}|{transform.key}".encode()).hexdigest()
    results: list[tuple[np.ndarray, bool] | None] = []
    for t in teachers:
        hit = cached(t, n, fp, folder)
        results.append((hit, True) if hit is not None else None)
    missing = [i for i, r in enumerate(results) if r is None]
    if not missing:
        return results  # type: ignore[return-value]
    tmp: dict[int, Path] = {}
    outs: dict[int, np.ndarray] = {}
    if folder is not None:
        _remove_stale(Path(folder))
    for i in missing:
        shape = (n, len(teachers[i].spec.classes))
        if folder is not None and _room_for(Path(folder), n * shape[1] * 4):
            try:
                Path(folder).mkdir(parents=True, exist_ok=True)
                tmp[i] = cache_path(teachers[i], fp, folder).with_suffix(f".tmp-{os.getpid()}.npy")
                outs[i] = np.lib.format.open_memmap(tmp[i], mode="w+", dtype=np.float32, shape=shape)
                continue
            except OSError:
                tmp.pop(i, None)  # a cache that cannot be written only costs memory and time
        outs[i] = np.empty(shape, dtype=np.float32)
    try:
        feed = Feed(Part(samples, None), torch.device("cpu"), batch_size, workers)
        for pos, x in feed.in_order():
            rows = (x if transform is None else transform(pos, x)).numpy()
            start = int(pos[0])
            for i in missing:
                outs[i][start:start + len(rows)] = teachers[i].predict(rows)
            if on_batch is not None:
                on_batch(start + len(rows), n)
        for i in missing:
            if i in tmp:
                outs[i].flush()
                final = cache_path(teachers[i], fp, folder)
                try:
                    os.replace(tmp[i], final)
                    del outs[i]
                    tmp.pop(i)
                    outs[i] = np.load(final, mmap_mode="r", allow_pickle=False)
                except OSError:
                    pass  # not kept (the temp file goes below); the outputs are in outs[i]
            results[i] = (outs[i], False)
    finally:
        for path in tmp.values():
            path.unlink(missing_ok=True)
    return results  # type: ignore[return-value]


def _room_for(folder: Path, nbytes: int) -> bool:
    """Whether the cache's disk has room for a file of nbytes, with a margin: a memory-mapped
    file that runs out of disk kills the process (SIGBUS) instead of raising."""
    import shutil

    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free > nbytes + (256 << 20)
    except OSError:
        return False


def _remove_stale(folder: Path) -> None:
    """Temp files of a pass that was killed (their process is gone): not part of the cache."""

    for path in folder.glob("*.tmp-*.npy"):
        pid = path.name.rsplit(".tmp-", 1)[1].removesuffix(".npy")
        if pid.isdigit() and not Path(f"/proc/{pid}").exists() and Path("/proc/self").exists():
            with contextlib.suppress(OSError):
                path.unlink()
