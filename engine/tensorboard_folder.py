"""Where a run keeps its TensorBoard event files, and the commands that write and show them.
Light (no torch, no tensorboardX): the app imports it. The files are written by
engine/tensorboard_log.py."""

from __future__ import annotations

import shlex
from pathlib import Path

FOLDER = "tensorboard"


def folder(run_dir: Path) -> Path:
    return Path(run_dir) / FOLDER


def event_files(run_dir: Path) -> list[Path]:
    where = folder(run_dir)
    return sorted(where.glob("events.out.tfevents.*")) if where.is_dir() else []


def write_command(run_dir: Path) -> str:
    """The command that writes an older run's files from the store."""
    return f"distill-engine tensorboard {shlex.quote(str(run_dir))}"


def view_command(run_dir: Path) -> str:
    """The command that shows the run in TensorBoard (quoted for a POSIX shell)."""
    return f"tensorboard --logdir {shlex.quote(str(folder(run_dir)))}"
