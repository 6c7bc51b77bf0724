"""Reading what `distill-engine analyze` wrote (RUN_DIR/insights/, docs/INSIGHTS.md), for the
Insights panel: insights.json checked field by field, arrays.npz without pickle.

Every figure is checked before a panel draws it: a damaged, partial or older file becomes an
`InsightsProblem` naming the field (or, for one part, a note that this part cannot be shown),
never an exception inside a widget. Qt-free; numpy only.
"""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FORMAT = 1  # the insights.json format this app reads
INSIGHTS_DIR = "insights"
KINDS = ("image", "text", "table", "vector")
VERDICTS = ("beats", "trails", "matches", "no teacher")


class InsightsProblem(Exception):
    """The files cannot be shown: the message says why, the hint what to do."""

    def __init__(self, message: str, hint: str = "Analyze the run again to write them anew."):
        super().__init__(message)
        self.message, self.hint = message, hint


@dataclass
class Insights:
    folder: Path
    data: dict  # insights.json, checked: every field the panel reads has its documented type
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # the attribution arrays
    arrays_problem: str = ""  # why arrays.npz could not be read (the other parts still show)
    part_problems: dict[str, str] = field(default_factory=dict)  # part -> why it cannot be shown

    @property
    def classes(self) -> list[str]:
        return self.data["classes"]

    @property
    def teachers(self) -> list[dict]:
        return [m for m in self.data["models"] if m["role"] == "teacher"]

    @property
    def student(self) -> dict | None:
        return next((m for m in self.data["models"] if m["role"] == "student"), None)

    def class_name(self, index) -> str:
        if isinstance(index, int) and 0 <= index < len(self.classes):
            return self.classes[index]
        return "—" if index is None else f"class {index}"

    def array(self, key) -> np.ndarray | None:
        return self.arrays.get(key) if isinstance(key, str) else None


def insights_folder(run_dir: Path) -> Path:
    return Path(run_dir) / INSIGHTS_DIR


def read_insights(folder: Path) -> Insights:
    """The insights in `folder` (RUN_DIR/insights), checked; InsightsProblem when they cannot be
    shown at all. A part that is damaged alone (say the calibration) is named in
    `part_problems` and the rest is shown."""
    folder = Path(folder)
    path = folder / "insights.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InsightsProblem(f"{path} does not exist", "Analyze the run to write it.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InsightsProblem(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InsightsProblem(f"{path.name} is not valid JSON ({str(exc)[:120]}); the file is damaged "
                              "or was cut short") from None
    if not isinstance(data, dict):
        raise InsightsProblem(f"{path.name} does not hold an insights object")
    version = data.get("format")
    if not isinstance(version, int) or isinstance(version, bool):
        raise InsightsProblem(f"{path.name} has no format number: an older or foreign file")
    if version > FORMAT:
        raise InsightsProblem(f"{path.name} is format {version}, newer than this app reads ({FORMAT})",
                              "Update Distill Studio, or analyze the run again with this version.")
    if version < FORMAT:
        raise InsightsProblem(f"{path.name} is format {version}, older than this app reads ({FORMAT})")
    checked = _check_core(data)
    out = Insights(folder, checked)
    for part, check in (("amalgamation", _check_amalgamation), ("confusion", _check_confusion),
                        ("agreement", _check_agreement), ("calibration", _check_calibration),
                        ("mistakes", _check_mistakes), ("attribution", _check_attribution)):
        try:
            checked[part] = check(data.get(part), checked)
        except _Bad as exc:
            checked[part] = None
            out.part_problems[part] = f"{path.name}: {part}{exc.where}: {exc.what}"
    if isinstance(data.get("notes"), list):
        checked["notes"] = [n for n in data["notes"] if isinstance(n, str)]
    out.arrays, out.arrays_problem = _read_arrays(folder / "arrays.npz", checked.get("attribution"))
    return out


# checking

class _Bad(Exception):
    def __init__(self, where: str, what: str):
        super().__init__(f"{where}: {what}")
        self.where, self.what = where, what


def _num(value, where: str, none: bool = True) -> float | None:
    if value is None and none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Bad(where, f"expected a number{' or null' if none else ''}, found {_shown(value)}")
    return float(value)


def _int(value, where: str, none: bool = False) -> int | None:
    if value is None and none:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(where, f"expected a whole number{' or null' if none else ''}, found {_shown(value)}")
    return value


def _str(value, where: str, none: bool = False) -> str | None:
    if value is None and none:
        return None
    if not isinstance(value, str):
        raise _Bad(where, f"expected text, found {_shown(value)}")
    return value


def _list(value, where: str) -> list:
    if not isinstance(value, list):
        raise _Bad(where, f"expected a list, found {_shown(value)}")
    return value


def _dict(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise _Bad(where, f"expected an object, found {_shown(value)}")
    return value


def _class(value, where: str, n: int, none: bool = False) -> int | None:
    index = _int(value, where, none)
    if index is not None and not 0 <= index < n:
        raise _Bad(where, f"class {index} is not one of the {n} classes")
    return index


def _shown(value) -> str:
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:37] + "…"


def _matrix(value, where: str, rows: int, cols: int, kind=_num) -> list[list]:
    value = _list(value, where)
    if len(value) != rows:
        raise _Bad(where, f"expected {rows} rows, found {len(value)}")
    out = []
    for i, row in enumerate(value):
        row = _list(row, f"{where}[{i}]")
        if len(row) != cols:
            raise _Bad(f"{where}[{i}]", f"expected {cols} values, found {len(row)}")
        out.append([kind(v, f"{where}[{i}][{j}]", True) for j, v in enumerate(row)])
    return out


def _check_core(data: dict) -> dict:
    """What every part needs: classes, models, split, kind. A problem here: nothing is shown."""
    try:
        classes = [_str(c, f"classes[{i}]") for i, c in enumerate(_list(data.get("classes"), "classes"))]
        if not classes:
            raise _Bad("classes", "the list is empty")
        n = len(classes)
        models = []
        for i, m in enumerate(_list(data.get("models"), "models")):
            at = f"models[{i}]"
            m = _dict(m, at)
            role = _str(m.get("role"), f"{at}.role")
            if role not in ("student", "teacher"):
                raise _Bad(f"{at}.role", f"expected student or teacher, found {_shown(role)}")
            models.append({
                "name": _str(m.get("name"), f"{at}.name"), "role": role,
                "classes": [_class(c, f"{at}.classes[{j}]", n) for j, c in
                            enumerate(_list(m.get("classes"), f"{at}.classes"))],
                "accuracy": _num(m.get("accuracy"), f"{at}.accuracy"), "ece": _num(m.get("ece"), f"{at}.ece"),
                "samples": _int(m.get("samples"), f"{at}.samples", none=True)})
        run = data.get("run") if isinstance(data.get("run"), dict) else {}
        kind = data.get("kind")
        if kind not in KINDS:
            raise _Bad("kind", f"expected one of {', '.join(KINDS)}, found {_shown(kind)}")
        features = data.get("features")
        return {
            "format": data["format"], "classes": classes, "models": models, "kind": kind,
            "features": [_str(f, f"features[{j}]") for j, f in enumerate(_list(features, "features"))]
            if features is not None else None,
            "run": {k: run[k] for k in ("dir", "name", "student") if isinstance(run.get(k), str)},
            "split": data.get("split") if isinstance(data.get("split"), str) else "",
            "split_words": data.get("split_words") if isinstance(data.get("split_words"), str) else "",
            "samples": _int(data.get("samples"), "samples", none=True),
            "labelled": _int(data.get("labelled"), "labelled", none=True),
            "pictures": {k: v for k, v in (data.get("pictures") or {}).items() if isinstance(v, str)}
            if isinstance(data.get("pictures"), dict) else {},
            "notes": [],
        }
    except _Bad as exc:
        raise InsightsProblem(f"insights.json: {exc.where}: {exc.what}") from None


def _check_amalgamation(value, core: dict) -> list[dict]:
    n = len(core["classes"])
    teachers = {m["name"] for m in core["models"] if m["role"] == "teacher"}
    rows = []
    for i, r in enumerate(_list(value, "")):
        at = f"[{i}]"
        r = _dict(r, at)
        verdict = r.get("verdict")
        if verdict not in VERDICTS:
            raise _Bad(f"{at}.verdict", f"expected one of {', '.join(VERDICTS)}, found {_shown(verdict)}")
        scores = _dict(r.get("teachers"), f"{at}.teachers")
        unknown = sorted(set(scores) - teachers)
        if unknown:
            raise _Bad(f"{at}.teachers", f"'{unknown[0]}' is not one of the models")
        rows.append({
            "class": _class(r.get("class"), f"{at}.class", n),
            "support": _int(r.get("support"), f"{at}.support", none=True),
            "student": _num(r.get("student"), f"{at}.student"),
            "teachers": {k: _num(v, f"{at}.teachers.{k}") for k, v in scores.items()},
            "best_teacher": _str(r.get("best_teacher"), f"{at}.best_teacher", none=True),
            "best": _num(r.get("best"), f"{at}.best"), "delta": _num(r.get("delta"), f"{at}.delta"),
            "verdict": verdict})
    return rows


def _check_confusion(value, core: dict) -> dict:
    n = len(core["classes"])
    value = _dict(value, "")
    order = [_class(c, f".order[{i}]", n) for i, c in enumerate(_list(value.get("order"), ".order"))]
    if sorted(order) != list(range(n)):
        raise _Bad(".order", f"expected each of the {n} classes once")
    return {"counts": _matrix(value.get("counts"), ".counts", n, n),
            "normalized": _matrix(value.get("normalized"), ".normalized", n, n), "order": order}


def _check_agreement(value, core: dict) -> dict:
    value = _dict(value, "")
    names = [_str(v, f".names[{i}]") for i, v in enumerate(_list(value.get("names"), ".names"))]
    k = len(names)
    return {"names": names, "rate": _matrix(value.get("rate"), ".rate", k, k),
            "samples": _matrix(value.get("samples"), ".samples", k, k, kind=_int)}


def _check_calibration(value, core: dict) -> dict:
    value = _dict(value, "")
    edges = [_num(e, f".edges[{i}]", none=False) for i, e in enumerate(_list(value.get("edges"), ".edges"))]
    if len(edges) < 2:
        raise _Bad(".edges", "expected at least two bin edges")
    bins = len(edges) - 1
    models = []
    for i, m in enumerate(_list(value.get("models"), ".models")):
        at = f".models[{i}]"
        m = _dict(m, at)
        columns = {}
        for key, kind in (("confidence", _num), ("accuracy", _num), ("count", _int)):
            values = _list(m.get(key), f"{at}.{key}")
            if len(values) != bins:
                raise _Bad(f"{at}.{key}", f"expected {bins} values (one per bin), found {len(values)}")
            columns[key] = [kind(v, f"{at}.{key}[{j}]", none=True) for j, v in enumerate(values)]
        models.append({"name": _str(m.get("name"), f"{at}.name"), "ece": _num(m.get("ece"), f"{at}.ece"),
                       **columns})
    return {"edges": edges, "models": models}


def _check_mistakes(value, core: dict) -> list[dict]:
    n = len(core["classes"])
    out = []
    for i, m in enumerate(_list(value, "")):
        at = f"[{i}]"
        m = _dict(m, at)
        teachers = []
        for j, t in enumerate(_list(m.get("teachers", []), f"{at}.teachers")):
            t = _dict(t, f"{at}.teachers[{j}]")
            teachers.append({"name": _str(t.get("name"), f"{at}.teachers[{j}].name"),
                             "says": _class(t.get("says"), f"{at}.teachers[{j}].says", n, none=True),
                             "confidence": _num(t.get("confidence"), f"{at}.teachers[{j}].confidence")})
        row = m.get("row")
        out.append({
            "sample": _int(m.get("sample"), f"{at}.sample"),
            "label": _class(m.get("label"), f"{at}.label", n),
            "predicted": _class(m.get("predicted"), f"{at}.predicted", n),
            "confidence": _num(m.get("confidence"), f"{at}.confidence"), "teachers": teachers,
            "thumbnail": _str(m.get("thumbnail"), f"{at}.thumbnail", none=True),
            "text": _str(m.get("text"), f"{at}.text", none=True),
            "row": {str(k): v for k, v in _dict(row, f"{at}.row").items()} if row is not None else None})
    return out


def _check_attribution(value, core: dict) -> dict:
    n = len(core["classes"])
    value = _dict(value, "")
    samples = []
    for i, s in enumerate(_list(value.get("samples"), ".samples")):
        at = f".samples[{i}]"
        s = _dict(s, at)
        tokens = s.get("tokens")
        features = s.get("features")
        samples.append({
            "sample": _int(s.get("sample"), f"{at}.sample"),
            "label": _class(s.get("label"), f"{at}.label", n, none=True),
            "predicted": _class(s.get("predicted"), f"{at}.predicted", n, none=True),
            "target": _class(s.get("target"), f"{at}.target", n, none=True),
            "input": _str(s.get("input"), f"{at}.input", none=True),
            "student": _str(s.get("student"), f"{at}.student", none=True),
            "attention": _str(s.get("attention"), f"{at}.attention", none=True),
            "teachers": {str(k): _str(v, f"{at}.teachers.{k}")
                         for k, v in _dict(s.get("teachers") or {}, f"{at}.teachers").items()},
            "tokens": [_str(t, f"{at}.tokens[{j}]") for j, t in enumerate(_list(tokens, f"{at}.tokens"))]
            if tokens is not None else None,
            "features": [_str(t, f"{at}.features[{j}]") for j, t in enumerate(_list(features, f"{at}.features"))]
            if features is not None else None})
    method = value.get("method")
    return {"method": method if isinstance(method, str) else "", "samples": samples}


def _read_arrays(path: Path, attribution: dict | None) -> tuple[dict[str, np.ndarray], str]:
    """The attribution arrays named in insights.json (the per-sample arrays stay on disk)."""
    if not attribution or not attribution["samples"]:
        return {}, ""
    wanted = {key for s in attribution["samples"]
              for key in (s["input"], s["student"], s["attention"], *s["teachers"].values()) if key}
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {}
            for key in sorted(wanted & set(npz.files)):
                array = npz[key]
                if array.dtype.kind in "fiub":
                    arrays[key] = np.asarray(array, dtype=np.float32)
            return arrays, ""
    except FileNotFoundError:
        return {}, f"{path.name} is missing"
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        return {}, f"{path.name} cannot be read ({str(exc)[:120]})"
