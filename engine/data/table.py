"""A table's feature columns and how they become the student's input (its encoding).

The CSV source (engine/data/csv_table.py) reads a file into *raw inputs*: the numeric columns as
float32 with NaN where a cell is missing, the categorical columns as text. `Table` turns raw
inputs into the encoded features the student and the teachers read, column by column in the
table's order: a numeric column is one feature (a missing cell takes the column's fill value),
a categorical column is a one-hot block over its categories (sorted; any other value, a missing
one included, encodes as no category). The exported model takes the same raw inputs
(engine/table_export.py builds that encoding into the ONNX graph), and the run stores the
table as JSON (`to_dict` / `from_dict`).

Torch-free and Qt-free: numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from engine.errors import InputError

# cells that mean "no value", compared after stripping spaces and ignoring case
MISSING_CELLS = frozenset({"", "na", "n/a", "nan", "null", "?"})


def is_missing(cell: str) -> bool:
    return cell.strip().lower() in MISSING_CELLS


@dataclass(frozen=True)
class Column:
    name: str
    kind: Literal["numeric", "categorical"]
    fill: float | None = None  # numeric: what a missing cell becomes; None: missing cells are refused
    categories: tuple[str, ...] = ()  # categorical: its values in one-hot order (sorted)

    @property
    def width(self) -> int:
        return len(self.categories) if self.kind == "categorical" else 1

    @property
    def feature_names(self) -> list[str]:
        return [f"{self.name}={c}" for c in self.categories] if self.kind == "categorical" else [self.name]


@dataclass(frozen=True)
class Table:
    """The feature columns in the student's order, the label column, and the rules that made
    the encoding (`missing`: the spec's data.missing; `delimiter`: the training file's)."""

    columns: tuple[Column, ...]
    label: str | None = None
    missing: str = "refuse"
    delimiter: str = ","

    # ── what the encoding is ──────────────────────────────────────────────────────────────

    @property
    def numeric(self) -> list[Column]:
        return [c for c in self.columns if c.kind == "numeric"]

    @property
    def categorical(self) -> list[Column]:
        return [c for c in self.columns if c.kind == "categorical"]

    @property
    def feature_names(self) -> list[str]:
        """The encoded features' names in order, e.g. ['alcohol', 'color=red', 'color=white']."""
        return [n for c in self.columns for n in c.feature_names]

    @property
    def width(self) -> int:
        return sum(c.width for c in self.columns)

    @property
    def is_identity(self) -> bool:
        """True when the encoded features are the numeric cells as read: no category to
        one-hot, no missing cell to fill. The exported model then takes the features as `x`."""
        return not self.categorical and all(c.fill is None for c in self.columns)

    def columns_for(self, names: list[str], where: str) -> np.ndarray:
        """int64 indices into the encoded features of the columns `names`, in that order (a
        categorical column gives its whole one-hot block): what a teacher reading only some
        columns is given. InputError at `where` for a name the table does not have."""
        start, blocks = 0, {}
        for c in self.columns:
            blocks[c.name] = range(start, start + c.width)
            start += c.width
        out = []
        for name in names:
            if name not in blocks:
                message = (f"'{name}' is the label column, not a feature" if name == self.label
                           else f"no column '{name}' in the table")
                raise InputError.one(where, message, f"use one of: {', '.join(blocks)}")
            out.extend(blocks[name])
        return np.array(out, dtype=np.int64)

    # ── encoding ──────────────────────────────────────────────────────────────────────────

    def encode(self, numeric: np.ndarray, categorical: np.ndarray) -> np.ndarray:
        """float32 [N, width] from raw inputs: `numeric` float32 [N, len(self.numeric)] (NaN:
        missing) and `categorical` text [N, len(self.categorical)], columns in table order."""
        n = len(numeric)
        out = np.zeros((n, self.width), dtype=np.float32)
        j = i_num = i_cat = 0
        for c in self.columns:
            if c.kind == "numeric":
                values = numeric[:, i_num].astype(np.float32, copy=True)
                if c.fill is not None:
                    values[np.isnan(values)] = c.fill
                out[:, j] = values
                i_num += 1
            else:
                index = {v: k for k, v in enumerate(c.categories)}
                for r, cell in enumerate(categorical[:, i_cat].tolist()):
                    k = index.get(cell)
                    if k is not None:
                        out[r, j + k] = 1.0
                i_cat += 1
            j += c.width
        return out

    def raw_inputs(self, numeric: np.ndarray, categorical: np.ndarray) -> dict[str, np.ndarray]:
        """The exported model's inputs for these raw rows (see engine/table_export.py): `numeric`
        float32 [N, n_numeric] with NaN for a missing cell, `categorical` text [N, n_categorical];
        each only where the table has such columns."""
        feeds = {}
        if self.numeric:
            feeds["numeric"] = np.ascontiguousarray(numeric, dtype=np.float32)
        if self.categorical:
            feeds["categorical"] = np.asarray(categorical, dtype=object)
        return feeds

    # ── stored with the run and the export ───────────────────────────────────────────────

    def to_dict(self) -> dict:
        return {"columns": [{"name": c.name, "kind": c.kind, "fill": c.fill, "categories": list(c.categories)}
                            for c in self.columns],
                "label": self.label, "missing": self.missing, "delimiter": self.delimiter}

    @classmethod
    def from_dict(cls, d: dict) -> Table:
        return cls(tuple(Column(c["name"], c["kind"], None if c.get("fill") is None else float(c["fill"]),
                                tuple(c.get("categories", ()))) for c in d["columns"]),
                   d.get("label"), d.get("missing", "refuse"), d.get("delimiter", ","))
