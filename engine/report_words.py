"""How the export report's figures read in words, torch-free: the engine's card and command
line and the app's Export panel say them the same way."""

from __future__ import annotations


def speedup_text(ratio: float | None) -> str:
    """'3.1× faster', '1.4× slower' or 'same speed' (a ratio of median times over PyTorch's)."""
    if not ratio:
        return "–"
    if 0.95 <= ratio <= 1.05:
        return "same speed"
    return f"{ratio:.1f}× faster" if ratio > 1 else f"{1 / ratio:.1f}× slower"
