"""Atomic checkpoints (see engine.atomic_io), read back only with `weights_only=True`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from engine.atomic_io import atomic_write


def save_checkpoint(path: Path, state: dict[str, Any]) -> int:
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)
