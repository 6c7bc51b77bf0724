"""Reading texts and their labels from a CSV/TSV (header row), JSON Lines or plain text file.

Files are UTF-8 (a byte-order mark is allowed). Anything else is refused with the line and the
byte that is not UTF-8, and the command that converts the file: guessing an encoding silently
would give the teachers and the student garbled text. Blank texts are left out and counted.
Torch-free: the app reads a file's first texts with it for the data node's preview.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from pathlib import Path

from engine.data.csv_table import MAX_BYTES, detect_delimiter
from engine.errors import InputError
from engine.regular_files import FileTooLarge, NotRegularFile, read_regular_bytes
from engine.text_safety import quoted

LINE_BREAK = re.compile(r"\r\n|\r|\n")
SUFFIXES = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".txt": "lines"}


def kind_of(path: Path) -> str | None:
    """csv, jsonl or lines, from the file's suffix; None for another."""
    return SUFFIXES.get(path.suffix.lower())


def read_texts(path: Path, text_column: str, label_column: str | None, where: str,
               limit: int | None = None) -> tuple[list[str], list[str] | None, int]:
    """(texts, their labels as written or None, how many blank texts were left out). `limit`:
    read only the first texts (a preview)."""
    kind = kind_of(path)
    if kind is None:
        raise InputError.one(where, f"{path.name}: a text source reads .csv, .tsv, .jsonl or .txt files",
                             "save the texts in one of those formats")
    text = _decode(path, where)
    if kind == "lines":
        if label_column is not None:
            raise InputError.one(f"{where.rsplit('.', 1)[0]}.label_column", f"{path.name} is plain "
                                 "text, one text per line, and holds no labels",
                                 "remove label_column, or give a CSV or JSONL file with a label column")
        rows = [(line, None, f"line {n}") for n, line in enumerate(lines_of(text), start=1)]
    elif kind == "jsonl":
        rows = _jsonl(text, path, text_column, label_column, where, limit)
    else:
        rows = _csv(text, path, text_column, label_column, where)
    if limit is not None:
        rows = rows[:limit * 2]
    kept = [(t, y, at) for t, y, at in rows if t is not None and t.strip()]
    if not kept:
        raise InputError.one(where, f"{path.name} holds no texts", "give one text per line or row")
    if limit is not None:
        kept = kept[:limit]
    texts = [t for t, _, _ in kept]
    labels = None if label_column is None else [_label_text(y) for _, y, _ in kept]
    if labels is not None:
        missing = [at for (_, _, at), y in zip(kept, labels) if y == ""]
        if missing:
            raise InputError.one(where, f"{path.name}: {len(missing)} texts have no label in "
                                 f"'{label_column}' (the first on {missing[0]})",
                                 "give every text a label, or move the unlabelled texts to `unlabeled`")
    return texts, labels, len(rows) - len(kept)


def _label_text(value) -> str:
    """A label as written: a JSON number or true/false as JSON writes it (1, true), not Python."""
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else json.dumps(value)


def _decode(path: Path, where: str) -> str:
    try:
        raw = read_regular_bytes(path, MAX_BYTES)
    except FileNotFoundError:
        raise InputError.one(where, f"no text file at {path}", "check the path in the spec", "missing_file") from None
    except (NotRegularFile, FileTooLarge) as exc:
        raise InputError.one(where, f"cannot read {path.name}: {exc}",
                             "give a text file saved on disk, at most 2 GiB (split a larger one)",
                             "data_too_large" if isinstance(exc, FileTooLarge) else "invalid_input") from None
    except OSError as exc:
        raise InputError.one(where, f"cannot read {path.name}: {exc.strerror or exc}",
                             "check the file's permissions") from None
    bom = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        return raw[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        start = exc.start + bom  # in the file, the byte-order mark included
        line = raw.count(b"\n", 0, start) + 1
        bad = raw[start:start + 1].hex()
        utf16 = raw[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
        guess = "UTF-16" if utf16 else "Latin-1 or Windows-1252, likely"
        raise InputError.one(where, f"{path.name} is not UTF-8: byte 0x{bad} on line {line} "
                             f"(position {start}) is not valid UTF-8 ({guess})",
                             f"convert the file to UTF-8, e.g. iconv -f {'UTF-16' if utf16 else 'WINDOWS-1252'} "
                             f"-t UTF-8 {path.name} > {path.stem}.utf8{path.suffix}") from None


def lines_of(text: str) -> list[str]:
    """The lines of a file's text, split at \\n, \\r\\n or \\r alone; not str.splitlines, which
    also splits at characters a text (and a JSON string) may hold: U+2028, U+0085, form feed."""
    lines = LINE_BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()  # the file's last line break ends its last line
    return lines


def _jsonl(text: str, path: Path, text_column: str, label_column: str | None, where: str,
           limit: int | None) -> list[tuple[str | None, object, str]]:
    rows = []
    for n, line in enumerate(lines_of(text), start=1):
        if not line.strip():
            continue
        if limit is not None and len(rows) >= 2 * limit:
            break
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise InputError.one(where, f"{path.name}: line {n} is not JSON ({exc.msg})",
                                 "JSON Lines hold one JSON object per line") from None
        if not isinstance(obj, dict):
            raise InputError.one(where, f"{path.name}: line {n} is not a JSON object",
                                 f'give one object per line, e.g. {{"{text_column}": "…"}}')
        if text_column not in obj:
            raise InputError.one(f"{where.rsplit('.', 1)[0]}.text_column", f"{path.name}: line {n} has no "
                                 f"key {quoted(text_column)} (its keys: {', '.join(map(quoted, list(obj)[:8]))})",
                                 "set text_column to the key that holds the text")
        value = obj[text_column]
        if value is not None and not isinstance(value, str):
            raise InputError.one(where, f"{path.name}: line {n}: {quoted(text_column)} is not a string",
                                 "give each text as a JSON string")
        if label_column is not None and label_column not in obj:
            raise InputError.one(f"{where.rsplit('.', 1)[0]}.label_column", f"{path.name}: line {n} has "
                                 f"no key {quoted(label_column)}", "set label_column to the key of the "
                                 "labels, or move unlabelled texts to `unlabeled`")
        rows.append((value, None if label_column is None else obj[label_column], f"line {n}"))
    return rows


def _csv(text: str, path: Path, text_column: str, label_column: str | None,
         where: str) -> list[tuple[str | None, str | None, str]]:
    """A TSV is read without quoting (as GLUE and most tab-separated corpora are written: a text
    may start with a quote), a CSV with it; a row whose fields do not match the header's is
    refused, never cut or merged."""
    tsv = path.suffix.lower() == ".tsv"
    delimiter = "\t" if tsv else detect_delimiter(text[:65536])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter,
                        **({"quoting": csv.QUOTE_NONE} if tsv else {}))
    try:
        rows = []
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise InputError.one(where, f"{path.name}: row {reader.line_num} cannot be read as CSV ({exc})",
                             "check that row's quotes") from None
    if not rows:
        raise InputError.one(where, f"{path.name} is empty", "the first row names the columns; texts follow")
    header = [h.strip() for h in rows[0][1]]
    section = where.rsplit(".", 1)[0]
    for key, name in (("text_column", text_column), ("label_column", label_column)):
        if name is not None and name not in header:
            raise InputError.one(f"{section}.{key}", f"{path.name} has no column {quoted(name)} "
                                 f"(its columns: {', '.join(map(quoted, header[:12]))})",
                                 f"set {key} to one of its columns")
    bad = [(n, len(row)) for n, row in rows[1:] if len(row) != len(header)]
    if bad:
        n, fields = bad[0]
        names = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "bars"}.get(delimiter, repr(delimiter))
        raise InputError.one(where, f"{path.name}: {len(bad)} row{'s have' if len(bad) > 1 else ' has'} another "
                             f"number of fields than the header's {len(header)} (the first: line {n}, {fields} fields)",
                             "a text holding the separator must be quoted (\"…\")" if not tsv else
                             f"a text may not hold {names} in a .tsv; replace them, or save the file as CSV "
                             "with quoted texts")
    t = header.index(text_column)
    y = header.index(label_column) if label_column is not None else None
    return [(row[t], row[y] if y is not None else None, f"line {n}") for n, row in rows[1:]]
