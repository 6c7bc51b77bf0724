"""Labels as indices into the spec's classes, from class names or whole numbers."""

from __future__ import annotations

import numpy as np

from engine.errors import InputError
from engine.text_safety import quoted


def labels_to_indices(y: np.ndarray, classes: list[str], where: str) -> np.ndarray:
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
        unknown = sorted({v for v in as_text if v not in classes})[:3]  # a file's content: excerpts
        raise InputError.one(where, f"labels {', '.join(map(quoted, unknown))} are not class names",
                             f"use the spec's classes ({', '.join(classes)}) or their indices") from None
    return check_indices(numbers, classes, where)


def missing_classes_note(labels: list[int], classes: list[str], what: str) -> str | None:
    """The log's note when labelled data holds no `what` (images, texts) of some classes."""
    present = {c for c in labels if c >= 0}
    missing = [c for i, c in enumerate(classes) if i not in present]
    if not missing:
        return None
    return (f"no {what} of {len(missing)} of the spec's classes ({', '.join(missing[:8])}"
            f"{', …' if len(missing) > 8 else ''}): only the teachers teach them, and no score measures them")


def check_indices(y: np.ndarray, classes: list[str], where: str) -> np.ndarray:
    if len(y) and (y.min() < 0 or y.max() >= len(classes)):
        raise InputError.one(where, f"labels run from {y.min()} to {y.max()}, but the spec "
                             f"has {len(classes)} classes", "list every class in `classes`")
    return y
