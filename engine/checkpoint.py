"""Checkpoints that survive a crash or a kill at any moment; read back with weights_only=True.

A checkpoint is a folder `checkpoints/step-<step>/` with `state.pt` and `manifest.json`:

1. free space is checked first (the state's size, with room to spare, must fit);
2. the files are written into a temp folder beside the final one and each is fsynced;
3. the manifest — step, epoch, phase, each file's size and sha256, versions — is written last;
4. the folder is renamed into place and the parent folder fsynced;
5. only then are older checkpoints removed (the newest `KEEP` stay), and any of a later step
   (one resume skipped as damaged: the run went on from an earlier one).

A run folder belongs to one run (engine/run_folder.py), so the steps in it are one run's.

Resume takes the newest checkpoint whose manifest is valid and whose files match it; a damaged
one is skipped with a warning. This module imports torch only inside the functions that need
it, so the app can ask whether a run folder has a checkpoint.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.model_files import sha256_of

KEEP = 2
FORMAT = 1
STATE, MANIFEST = "state.pt", "manifest.json"
_NAME = re.compile(r"^step-(\d{9})$")
FAULT_DELAY_ENV = "DISTILL_FAULT_CHECKPOINT_DELAY"  # tests: seconds between state and manifest


def checkpoint_dirs(root: Path) -> list[Path]:
    """Committed checkpoint folders, newest (highest step) first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _NAME.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found, reverse=True)]


def _step(folder: Path) -> int:
    return int(_NAME.match(folder.name).group(1))


def has_checkpoint(run_dir: Path) -> bool:
    """Cheap (no hashing): whether a run folder holds a committed checkpoint."""
    return any((d / MANIFEST).is_file() for d in checkpoint_dirs(Path(run_dir) / "checkpoints"))


def save_checkpoint(root: Path, state: dict[str, Any], step: int, info: dict[str, Any]) -> Path:
    """Write `state` as the checkpoint of `step`; returns its folder."""
    import torch

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    _check_free_space(root, _tensor_bytes(state))
    final = root / f"step-{step:09d}"
    tmp = root / f".tmp-step-{step:09d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        with (tmp / STATE).open("wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        delay = float(os.environ.get(FAULT_DELAY_ENV, "0") or 0)
        if delay:
            time.sleep(delay)
        manifest = {"format": FORMAT, "step": step, **info, "created": time.time(),
                    "torch": torch.__version__,
                    "files": {STATE: {"bytes": (tmp / STATE).stat().st_size, "sha256": sha256_of(tmp / STATE)}}}
        with (tmp / MANIFEST).open("w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(tmp)
        if final.exists():  # the same step saved twice (a stop right after an epoch's checkpoint)
            if verify(final) is None:
                shutil.rmtree(tmp)
                return final
            shutil.rmtree(final)
        os.rename(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # older ones go only once the new one is committed; a later step than this one is a
    # checkpoint resume passed over (damaged) and this run's timeline has left: it goes too
    for old in [d for d in checkpoint_dirs(root) if _step(d) > step] + \
            [d for d in checkpoint_dirs(root) if _step(d) <= step][KEEP:]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob(".tmp-step-*"):  # left by a process killed while saving
        if not stale.name.endswith(f"-{os.getpid()}"):
            shutil.rmtree(stale, ignore_errors=True)
    return final


def verify(folder: Path) -> str | None:
    """What is wrong with a checkpoint folder, or None when its files match its manifest."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "it has no manifest (the save did not finish)"
    except (OSError, ValueError) as exc:
        return f"its manifest cannot be read ({exc})"
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or \
            not isinstance(manifest.get("files"), dict):
        return "its manifest is not one this version writes"
    for name, meta in manifest["files"].items():
        path = folder / name
        if not path.is_file() or "/" in name or name.startswith("."):
            return f"{name} is missing"
        if path.stat().st_size != meta.get("bytes") or sha256_of(path) != meta.get("sha256"):
            return f"{name} does not match its manifest (damaged)"
    return None


def latest_checkpoint(root: Path, warn: Callable[[str], None] = lambda _m: None) -> Path | None:
    """The newest checkpoint that verifies; damaged ones are skipped with a warning."""
    for folder in checkpoint_dirs(root):
        problem = verify(folder)
        if problem is None:
            return folder
        warn(f"checkpoint {folder.name} is skipped: {problem}")
    return None


def load_checkpoint(folder: Path) -> dict[str, Any]:
    import torch

    return torch.load(Path(folder) / STATE, map_location="cpu", weights_only=True)


def _tensor_bytes(obj: Any) -> int:
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 64


def _check_free_space(root: Path, size: int) -> None:
    need = int(size * 1.2) + (8 << 20)
    free = shutil.disk_usage(root).free
    if free < need:
        raise OSError(errno.ENOSPC, f"not enough free space for a checkpoint in {root}: it needs "
                      f"about {need / 1e6:.0f} MB, {free / 1e6:.0f} MB are free", str(root))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
