"""Built-in datasets that ship inside installed packages (offline): scikit-learn's digits."""

from __future__ import annotations

import numpy as np

from engine.data.source import ArraySource, register
from engine.errors import InputError
from engine.spec import BuiltinData


@register("builtin")
def open_builtin(src: BuiltinData, classes: list[str]) -> ArraySource:
    from sklearn.datasets import load_digits  # ships the data inside the package: offline

    digits = load_digits()
    if len(classes) != 10:
        raise InputError.one("classes", f"digits has 10 classes; the spec lists {len(classes)}",
                             'list the ten digits: ["0", "1", ..., "9"]')
    x = digits.images.astype(np.float32)[:, None, :, :]  # [N, 1, 8, 8], values 0..16
    return ArraySource(x, digits.target.astype(np.int64))
