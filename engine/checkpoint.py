"""Atomic checkpoints: write to a temp file in the same folder, fsync, rename, fsync the folder.

A crash at any moment leaves either the old checkpoint or the new one, never half of one.
Files are read back only with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import torch


def atomic_write(path: Path, write: Callable[[Path], None]) -> int:
    """Call write(tmp) for a temp path beside `path`, then move it into place durably."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return path.stat().st_size


def save_checkpoint(path: Path, state: dict[str, Any]) -> int:
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)
