"""A CSV table with a header row: feature columns chosen by name (numeric, or categorical and
one-hot encoded), missing cells handled by a rule, and optionally one label column.

The file's field separator is detected (, ; tab |) unless data.delimiter names it. Every cell
that cannot be read is reported, by the row number a spreadsheet shows (the header is row 1)
and the column, up to BAD_CELLS_SHOWN of them in one error. The encoding is a `Table`
(engine/data/table.py); a test file (`table=` given) is read with the training file's.
"""

from __future__ import annotations

import csv
import io
import math
import os
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.data.labels import labels_to_indices
from engine.data.source import ArraySource, register, require_file
from engine.data.table import Column, Table, is_missing
from engine.errors import InputError, Problem
from engine.spec import CsvData
from engine.text_safety import listed, quoted

DELIMITERS = ",;\t|"
SNIFF_CHARS = 64 * 1024  # the first lines the separator is detected on
BAD_CELLS_SHOWN = 20
QUOTED_CELLS = 3  # columns whose first bad cell is quoted (an excerpt): a file that is no CSV is not echoed
_CELL = "\x00cell\x00"  # where a bad cell's excerpt goes in its message (never in an escaped excerpt)
FLOAT32_MAX = float(np.finfo(np.float32).max)
_NAMES = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}
MAX_BYTES = 2 * 2**30  # the largest table read (it is held in memory, as text and as cells)
MAX_FIELD = 64 * 2**20  # the longest cell (the csv module's default, 128 KiB, is short for text)
csv.field_size_limit(MAX_FIELD)


@register("csv")
def open_csv(src: CsvData, classes: list[str], table: Table | None = None) -> ArraySource:
    require_file(src.path, "data.path")
    name = src.path.name
    header, rows, delimiter = _read(src.path, src.delimiter)
    how = "data.delimiter" if src.delimiter else "detected"
    notes = [f"{name}: fields separated by {_NAMES.get(delimiter, repr(delimiter))} ({how})"]
    label = src.label_column if table is None else table.label
    plan = _plan(src, header, name) if table is None else _plan_as(table, header, name)
    index = {h: i for i, h in enumerate(header)}
    if table is None and src.columns is None and "" in header:
        unnamed = header.count("")
        notes.append(f"{name}: {unnamed} column{'s' if unnamed > 1 else ''} without a name in the header left out")
    rule = src.missing if table is None else table.missing
    if label is not None and label not in index:  # a transfer set without labels, beside a labelled test file
        notes.append(f"{name} has no column {quoted(label)}: its rows are unlabelled (the teachers supply the "
                     "targets); the test file's labels measure accuracy")
        label = None

    body, problems = [], []
    for number, row in rows:  # number: the row as the file shows it (header = row 1)
        if len(row) != len(header):
            problems.append(_Bad(number, None, f"row {number} of {name} has {len(row)} fields, the "
                                 f"header has {len(header)}", "fix that row (a cell holding the "
                                 f"separator {_NAMES.get(delimiter, delimiter)} needs quotes)"))
        else:
            body.append((number, row))
    if not body and not problems:
        raise InputError.one("data.path", f"{name} has no data rows",
                             "the first row names the columns; samples follow, one per row")

    numbers = [n for n, _ in body]
    numeric_names = [c for c, kind in plan if kind == "numeric"]
    categorical_names = [c for c, kind in plan if kind == "categorical"]
    numeric = np.full((len(body), len(numeric_names)), np.nan, dtype=np.float32)
    for j, column in enumerate(numeric_names):
        cells = [row[index[column]] for _, row in body]
        values, bad = _numbers(cells, numbers, column, src, refuse=rule == "refuse")
        numeric[:, j] = values
        problems.extend(bad)
    categorical = np.array([[row[index[c]].strip() for c in categorical_names] for _, row in body],
                           dtype=object).reshape(len(body), len(categorical_names))
    if problems:
        raise InputError(_listed(problems, name))

    if table is None:
        table = _table(src, plan, numeric, categorical, delimiter)
    else:
        unseen = sum(sum(cell not in known and not is_missing(cell) for cell in categorical[:, j].tolist())
                     for j, known in enumerate(set(c.categories) for c in table.categorical))
        if unseen:
            notes.append(f"{name}: {unseen} categorical cells hold values the training file does not "
                         "have; they encode as no category")
    missing = int(np.isnan(numeric).sum())
    if missing:
        notes.append(f"{name}: {missing} missing numeric cells filled ({table.missing})")
    x = table.encode(numeric, categorical)
    if table.categorical:
        notes.append(f"{name}: {len(table.columns)} feature columns → {table.width} features "
                     f"({', '.join(c.name for c in table.categorical)} one-hot encoded)")
    y = None
    if label is not None:
        labels = np.array([row[index[label]].strip() for _, row in body])
        y = labels_to_indices(labels, classes, "data.path")
    return ArraySource(x, y, tuple(notes), table=table, raw=table.raw_inputs(numeric, categorical))


# ── reading the file ─────────────────────────────────────────────────────────────────────────


def _read(path: Path, delimiter: str | None) -> tuple[list[str], list[tuple[int, list[str]]], str]:
    """The header (stripped names), the data rows with their row numbers (blank rows left
    out), and the field separator."""
    text = read_table_text(path, "data.path")
    delimiter = delimiter or detect_delimiter(text[:SNIFF_CHARS])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        rows = [(n, row) for n, row in enumerate(reader, start=1) if any(cell.strip() for cell in row)]
    except csv.Error as exc:
        raise InputError.one("data.path", f"{path.name}: row {reader.line_num} cannot be read as "
                             f"CSV ({exc})", "check that row's quotes; a cell may be at most "
                             f"{MAX_FIELD // 2**20} MiB") from None
    if len(rows) < 2:
        raise InputError.one("data.path", f"{path.name} has no data rows",
                             "the first row names the columns; samples follow, one per row")
    return [h.strip() for h in rows[0][1]], rows[1:], delimiter


def read_table_text(path: Path, where: str, limit: int = MAX_BYTES) -> str:
    """A table file's text: only a regular file (not a device, pipe or /proc file that streams
    without end), read up to `limit` bytes and refused beyond."""
    import stat

    try:
        if not stat.S_ISREG(os.stat(path).st_mode) or path.resolve().is_relative_to("/proc") \
                or path.resolve().is_relative_to("/sys"):  # checked before opening: a pipe would block
            raise InputError.one(where, f"{path} is not a regular file", "give a CSV file saved on disk")
        with path.open("rb") as f:
            info = os.fstat(f.fileno())
            if info.st_size > limit:
                raise InputError.one(where, f"{path.name} is {info.st_size / 2**30:.1f} GiB, more than the "
                                     f"{limit / 2**30:.0f} GiB a table may be", "split the table, or "
                                     "save it as .npz arrays", "data_too_large")
            raw = f.read(limit + 1)
        if len(raw) > limit:  # grew, or its size was not told
            raise InputError.one(where, f"{path.name} holds more than the {limit / 2**30:.0f} GiB a "
                                 "table may be", "split the table, or save it as .npz arrays", "data_too_large")
        return raw.decode("utf-8-sig")  # Excel's "CSV UTF-8" has a BOM
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError.one(where, f"cannot read {path.name} as a text table ({exc})",
                             "save the table as UTF-8 CSV with a header row") from None


def detect_delimiter(sample: str) -> str:
    """The field separator of a CSV from its first lines: csv.Sniffer's choice among , ; tab |
    when it splits the header, otherwise the separator that splits every sampled line into the
    same number (> 1) of fields, the most; ',' for a table of one column."""
    if len(sample) >= SNIFF_CHARS and "\n" in sample:
        sample = sample[:sample.rfind("\n")]  # no cut-off last line
    lines = [line for line in sample.splitlines() if line.strip()][:50]
    if not lines:
        return ","

    def fields(d: str) -> list[int]:
        return [len(r) for r in csv.reader(lines, delimiter=d)]

    try:
        sniffed = csv.Sniffer().sniff("\n".join(lines), delimiters=DELIMITERS).delimiter
    except csv.Error:
        sniffed = None
    if sniffed and sniffed in DELIMITERS and fields(sniffed)[0] > 1:
        return sniffed
    even = [(counts[0], d) for d in DELIMITERS if len(set(counts := fields(d))) == 1 and counts[0] > 1]
    if even:
        return max(even, key=lambda e: (e[0], -DELIMITERS.index(e[1])))[1]
    return max(DELIMITERS, key=lambda d: (fields(d)[0], -DELIMITERS.index(d)))


# ── which columns, and what each holds ───────────────────────────────────────────────────────


def _plan(src: CsvData, header: list[str], name: str) -> list[tuple[str, str]]:
    """(column, numeric|categorical) of the feature columns in order, checked against the
    header: every unknown or misplaced name is reported at its spec field."""
    problems, label = [], src.label_column
    known = f"use one of: {listed(header)}"
    duplicated = {h for h in header if header.count(h) > 1}
    if label is not None and label not in header and src.test_file is None:
        problems.append(Problem("data.label_column", f"no column {quoted(label)} in {name}", known))
    if src.columns is not None:
        for c in src.columns:
            if c not in header:
                problems.append(Problem("data.columns", f"no column {quoted(c)} in {name}", known))
            elif c == label:
                problems.append(Problem("data.columns", f"{quoted(c)} is the label column (data.label_column)",
                                        "take it out of data.columns: the label is not a feature"))
        for c in sorted({c for c in src.columns if src.columns.count(c) > 1}):
            problems.append(Problem("data.columns", f"{quoted(c)} is listed twice", "list each column once"))
        features = list(dict.fromkeys(src.columns))
    else:
        features = [h for h in header if h != label and h]  # unnamed: a trailing separator
    for c in src.categorical:
        if c not in header:
            problems.append(Problem("data.categorical", f"no column {quoted(c)} in {name}", known))
        elif c == label:
            problems.append(Problem("data.categorical", f"{quoted(c)} is the label column (data.label_column)",
                                    "take it out of data.categorical: the label's values are the classes"))
        elif c not in features:
            problems.append(Problem("data.categorical", f"{quoted(c)} is not one of data.columns",
                                    "add it to data.columns, or take it out of data.categorical"))
    for c in sorted(duplicated & ({*features, label} - {None})):
        problems.append(Problem("data.path", f"{name} has two columns named {quoted(c)}",
                                "give every column of the header its own name"))
    if not features and not problems:
        problems.append(Problem("data.columns", f"{name} has no feature column", "the student needs "
                                "at least one column besides the label"))
    if problems:
        raise InputError(problems)
    return [(c, "categorical" if c in src.categorical else "numeric") for c in features]


def _plan_as(table: Table, header: list[str], name: str) -> list[tuple[str, str]]:
    """A test file: the training table's columns, found by name."""
    wanted = [c.name for c in table.columns] + ([table.label] if table.label else [])
    doubled = sorted({c for c in wanted if header.count(c) > 1})
    if doubled:
        raise InputError([Problem("data.path", f"{name} has two columns named {quoted(c)}",
                                  "give every column of the header its own name") for c in doubled])
    absent = [c for c in wanted if c not in header]
    if absent:
        raise InputError([Problem("data.path", f"{name} has no column {quoted(c)} (the training file has it)",
                                  f"give the test file the training file's columns; it has: {listed(header)}")
                          for c in absent])
    return [(c.name, c.kind) for c in table.columns]


def _table(src: CsvData, plan: list[tuple[str, str]], numeric: np.ndarray, categorical: np.ndarray,
           delimiter: str) -> Table:
    """The encoding learnt from the training file: fill values by the missing rule, the
    categories of each categorical column (missing cells are not a category)."""
    columns, problems, i_num, i_cat = [], [], 0, 0
    for name, kind in plan:
        if kind == "numeric":
            values = numeric[:, i_num]
            present = values[~np.isnan(values)].astype(np.float64)
            i_num += 1
            fill = None
            if src.missing != "refuse":
                if not len(present):
                    problems.append(Problem("data.columns", f"column {quoted(name)} holds no values (every cell "
                                            "is missing)", "leave it out of data.columns, or fill it"))
                    continue
                fill = 0.0 if src.missing == "zero" else float(
                    math.fsum(present) / len(present) if src.missing == "mean" else statistics.median(present))
            columns.append(Column(name, "numeric", fill))
        else:
            categories = tuple(sorted({c for c in categorical[:, i_cat].tolist() if not is_missing(c)}))
            i_cat += 1
            if not categories:
                problems.append(Problem("data.categorical", f"column {quoted(name)} holds no values (every "
                                        "cell is missing)", "leave it out of data.categorical and data.columns"))
            columns.append(Column(name, "categorical", categories=categories))
    if problems:
        raise InputError(problems)
    return Table(tuple(columns), src.label_column, src.missing, delimiter)


# ── cells ────────────────────────────────────────────────────────────────────────────────────


@dataclass
class _Bad:
    row: int
    column: str | None  # None: the whole row
    message: str  # may hold _CELL: where the cell's excerpt goes, if it is quoted
    hint: str
    cell: str = ""


def _numbers(cells: list[str], rows: list[int], column: str, src: CsvData,
             refuse: bool) -> tuple[np.ndarray, list[_Bad]]:
    """A numeric column's cells as float32 (NaN: missing) and its bad cells."""
    name = src.path.name
    out = np.full(len(cells), np.nan, dtype=np.float32)
    bad = []
    for i, cell in enumerate(cells):
        where = f"row {rows[i]}, column {quoted(column)} of {name}"
        if is_missing(cell):
            if refuse:
                shown = "empty" if not cell.strip() else f"{_CELL}a missing value"
                bad.append(_Bad(rows[i], column, f"{where} is {shown}", "fill the cell, or set data.missing to "
                                "mean, median or zero to fill every missing cell", cell.strip()))
            continue
        try:
            value = float(cell)
        except ValueError:
            other = "" if src.label_column is not None else \
                "; or, if it is the label, set data.label_column to it"
            bad.append(_Bad(rows[i], column, f"{where} is {_CELL}not a number",
                            f"if {quoted(column)} holds categories, add it to data.categorical; "
                            f"otherwise fix the cell{other}", cell.strip()))
            continue
        if math.isnan(value):  # -nan, +nan: missing too
            if refuse:
                bad.append(_Bad(rows[i], column, f"{where} is {_CELL}a missing value",
                                "fill the cell, or set data.missing to mean, median or zero to fill every missing cell",
                                cell.strip()))
            continue
        if not abs(value) <= FLOAT32_MAX:
            bad.append(_Bad(rows[i], column, f"{where} is {_CELL}"
                            + ("infinite" if math.isinf(value) else "too large for 32-bit floats"),
                            "give a finite number, or empty the cell and set data.missing", cell.strip()))
            continue
        out[i] = value
    return out, bad


def _listed(bad: list[_Bad], name: str) -> list[Problem]:
    """Every bad cell in the order a reader meets them, the first BAD_CELLS_SHOWN one by one,
    then one problem that counts the rest per column."""
    bad = sorted(bad, key=lambda b: b.row)  # stable: a row's cells stay in column order
    out, quoted_in = [], set()  # the first bad cell of a column is quoted, of QUOTED_CELLS columns
    for b in bad[:BAD_CELLS_SHOWN]:
        quote = _CELL in b.message and b.column not in quoted_in and len(quoted_in) < QUOTED_CELLS
        if quote:
            quoted_in.add(b.column)
        out.append(Problem("data.path", b.message.replace(_CELL, f"{quoted(b.cell)}, " if quote else ""), b.hint))
    rest = bad[BAD_CELLS_SHOWN:]
    if rest:
        per: dict[str, int] = {}
        for b in rest:
            key = f"column {quoted(b.column)}" if b.column else "rows of the wrong length"
            per[key] = per.get(key, 0) + 1
        out.append(Problem("data.path", f"and {len(rest)} more bad cells in {name} ("
                           + ", ".join(f"{k}: {v}" for k, v in per.items()) + ")",
                           "the same fixes apply; the first ones are listed above"))
    return out
