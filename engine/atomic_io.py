"""Durable file replacement, torch-free (the app saves projects with it too).

Write to a temp name in the same folder, fsync, rename over the target, fsync the folder:
a crash at any moment leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: Path, write: Callable[[Path], None]) -> int:
    """Call write(tmp) for a temp path beside `path`, then move it into place durably."""
    path = Path(path)
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


def atomic_write_text(path: Path, text: str) -> int:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
