"""A CSV table with a header row: numeric feature columns and optionally one label column."""

from __future__ import annotations

import csv

import numpy as np

from engine.data.labels import labels_to_indices
from engine.data.source import ArraySource, register, require_file
from engine.errors import InputError
from engine.spec import CsvData


@register("csv")
def open_csv(src: CsvData, classes: list[str]) -> ArraySource:
    path, label_column = src.path, src.label_column
    require_file(path, "data.path")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:  # Excel's "CSV UTF-8" has a BOM
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError.one("data.path", f"cannot read {path.name} as a text table ({exc})",
                             "save the table as UTF-8 CSV with a header row") from None
    if len(rows) < 2:
        raise InputError.one("data.path", f"{path.name} has no data rows",
                             "the first row names the columns; samples follow, one per row")
    header, body = rows[0], [r for r in rows[1:] if r]
    label_idx = None
    if label_column is not None:
        if label_column not in header:
            raise InputError.one("data.label_column", f"no column '{label_column}' in {path.name}",
                                 f"use one of: {', '.join(header)}")
        label_idx = header.index(label_column)
    features = [i for i in range(len(header)) if i != label_idx]
    x = np.empty((len(body), len(features)), dtype=np.float32)
    labels = []
    for r, row in enumerate(body):
        if len(row) != len(header):
            raise InputError.one("data.path", f"row {r + 2} of {path.name} has {len(row)} "
                                 f"fields, the header has {len(header)}", "fix that row")
        for j, c in enumerate(features):
            try:
                x[r, j] = float(row[c])
            except ValueError:
                raise InputError.one(
                    "data.path", f"row {r + 2}, column '{header[c]}' of {path.name} is "
                    f"'{row[c]}', not a number", "feature columns must be numeric; "
                    "set `label_column` if this is the label") from None
        if label_idx is not None:
            labels.append(row[label_idx].strip())
    y = labels_to_indices(np.array(labels), classes, "data.path") if label_idx is not None else None
    return ArraySource(x, y)
