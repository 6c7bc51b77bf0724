"""The runs comparison: several runs' settings and results side by side, one column per run.

Settings come from each run's stored spec (the JSON the store keeps), results from its stored
best and final metrics and its export report. Rows whose values differ between the runs are
highlighted; the summary says which settings differ, or that the runs share one spec. A
setting the fixed rows do not show (a seed, an optimizer, a teacher's file) gets a row of its
own when it differs. `compare_runs` is Qt-free; `RunComparison` shows it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont, QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.regular_files import read_regular_text
from engine.store import run_seconds
from gui import theme

MISSING = "–"
REPORT_MAX_BYTES = 4 << 20
# spec keys the fixed rows show (the rest, when they differ, get rows of their own)
SHOWN = ("student.architecture.", "strategy.kind", "strategy.temperature", "training.epochs",
         "training.batch_size", "training.lr", "data.format", "data.name", "data.path")
IGNORED = ("name", "layout", "schema_version")  # not settings: a run's name, the canvas
MAX_EXTRA_ROWS = 40


@dataclass
class Row:
    label: str
    values: list[str]
    setting: bool  # a setting (from the spec) or a result
    differs: bool = False


@dataclass
class Comparison:
    run_ids: list[int]
    headers: list[str]  # one per run: name, #id, start time
    rows: list[Row] = field(default_factory=list)
    differing_settings: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        if not self.differing_settings:
            return f"same spec: these {len(self.run_ids)} runs differ in no setting"
        names = ", ".join(self.differing_settings[:8])
        more = f" and {len(self.differing_settings) - 8} more" if len(self.differing_settings) > 8 else ""
        return f"{len(self.differing_settings)} setting(s) differ: {names}{more}"

    def as_tsv(self) -> str:
        lines = ["\t".join(["", *(h.replace("\n", " ") for h in self.headers)])]
        lines += ["\t".join([r.label, *r.values]) for r in self.rows]
        return "\n".join(lines) + "\n"

    def as_markdown(self) -> str:
        def cells(values):
            return "| " + " | ".join(v.replace("|", "\\|").replace("\n", " ") for v in values) + " |"

        lines = [cells(["", *self.headers]), "|" + "---|" * (len(self.headers) + 1)]
        lines += [cells([f"**{r.label}**" if r.differs else r.label, *r.values]) for r in self.rows]
        return "\n".join([f"_{self.summary}_", "", *lines]) + "\n"


def compare_runs(store, run_ids: list[int], now: float | None = None) -> Comparison:
    """The comparison of the given runs of the store (ids not in it are left out)."""
    runs = [row for row in (store.run(i) for i in run_ids) if row is not None]
    specs = [_spec(row) for row in runs]
    out = Comparison([r["id"] for r in runs], [
        f"{r['name']}\n#{r['id']} · {start_time(r['started'])}" for r in runs])

    def add(label: str, values: list[str], setting: bool) -> None:
        differs = len(set(values)) > 1
        out.rows.append(Row(label, values, setting, differs))

    add("status", [r["status"] or MISSING for r in runs], False)
    add("duration", [duration(run_seconds(r, now)) for r in runs], False)
    add("device", [r["device"] or MISSING for r in runs], False)
    archs = [_get(s, "student", "architecture") or {} for s in specs]
    add("student", [str(a.get("kind", MISSING)) for a in archs], True)
    for knob in _keys(a for a in archs):
        if knob != "kind":
            add(f"student {knob}", [_text(a.get(knob)) for a in archs], True)
    add("teachers", [", ".join(str(t.get("name", "?")) for t in s.get("teachers") or []) or "none (labels only)"
                     for s in specs], True)
    add("strategy", [_text(_get(s, "strategy", "kind")) for s in specs], True)
    add("temperature", [_text(_get(s, "strategy", "temperature")) for s in specs], True)
    for key, label in (("epochs", "epochs"), ("batch_size", "batch size"), ("lr", "lr")):
        add(label, [_text(_get(s, "training", key)) for s in specs], True)
    add("data", [_data_source(s.get("data")) for s in specs], True)

    flat = [_flatten({k: v for k, v in s.items() if k not in IGNORED}) for s in specs]
    differing = sorted({k for k in _keys(flat) if len({_text(f.get(k)) for f in flat}) > 1})
    out.differing_settings = _keys([[_short(k, summary=True) for k in differing]])
    extra = [k for k in differing if not k.startswith(SHOWN) and not _teacher_name(k)]
    for key in extra[:MAX_EXTRA_ROWS]:
        add(_short(key), [_text(f.get(key)) for f in flat], True)

    best = [_json(r.get("best_metrics")) for r in runs]
    tests = [store.last_metrics(r["id"], "test/") for r in runs]
    add("best val acc", [_score(b.get("val/acc")) for b in best], False)
    add("final test acc", [_score(t.get("test/acc")) for t in tests], False)
    prefix = "test/teacher_acc/"
    for name in _keys([k.removeprefix(prefix) for k in t if k.startswith(prefix)] for t in tests):
        add(f"test acc: {name}", [_score(t.get(prefix + name)) for t in tests], False)
    add("parameters", [f"{r['parameters']:,}" if r.get("parameters") is not None else MISSING
                       for r in runs], False)
    add("export accuracy", [_export_accuracy(store, r) for r in runs], False)
    return out


def start_time(started: float | None) -> str:
    """To the second: two runs started in the same minute are told apart."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if started else MISSING


def duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m {seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _spec(row: dict) -> dict:
    spec = _json(row.get("spec"))
    return spec if isinstance(spec, dict) else {}


def _json(text) -> dict:
    try:
        value = json.loads(text or "{}")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _get(spec: dict, *keys):
    for key in keys:
        spec = spec.get(key) if isinstance(spec, dict) else None
    return spec


def _keys(groups) -> list[str]:
    """The keys of several dicts (or lists), each once, in the order first seen."""
    seen: dict[str, None] = {}
    for group in groups:
        seen.update(dict.fromkeys(group))
    return list(seen)


def _text(value) -> str:
    if value is None:
        return MISSING
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _score(value) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else MISSING


def _data_source(data) -> str:
    if not isinstance(data, dict):
        return MISSING
    where = data.get("name") or data.get("path") or data.get("images")
    where = Path(str(where)).name if where and data.get("format") != "builtin" else where
    return f"{data.get('format', '?')}: {where}" if where else str(data.get("format", MISSING))


def _flatten(value, prefix: str = "") -> dict[str, object]:
    """A spec as {dotted key: leaf value}; list items keyed by position (teachers[1].path)."""
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for i, item in enumerate(value):
            out.update(_flatten(item, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def _teacher_name(key: str) -> bool:
    return key.startswith("teachers[") and key.endswith("].name")


def _short(key: str, summary: bool = False) -> str:
    """A setting's name as the rows say it: training.batch_size -> batch size,
    student.architecture.width -> student width; in the summary, a teacher's settings -> teachers."""
    if key == "student.architecture.kind":
        return "student"
    if key.startswith("student.architecture."):
        return "student " + key.removeprefix("student.architecture.")
    if key.startswith("training."):
        return key.removeprefix("training.").replace("_", " ")
    named = {"strategy.kind": "strategy", "strategy.temperature": "temperature",
             "data.format": "data", "data.name": "data", "data.path": "data"}
    if key in named:
        return named[key]
    if summary and key.startswith("teachers"):
        return "teachers"
    return key


def _export_accuracy(store, row: dict) -> str:
    """The accuracy the run's latest export measured (ONNX fp32, and int8 when kept): from the
    report the run recorded, or the one in its folder's export/ (exported from the Export panel)."""
    paths = [Path(a["path"]) for a in store.artifacts(row["id"]) if a["kind"] == "report"]
    if row.get("run_dir"):
        paths.append(Path(row["run_dir"]) / "export" / "report.json")
    latest_first = sorted(set(paths), key=_modified, reverse=True)
    report = next((r for r in map(_read_report, latest_first) if r is not None), None)
    if report is None:
        return "not exported"
    accuracy = report.get("accuracy") if isinstance(report.get("accuracy"), dict) else {}
    parts = [f"{label} {accuracy[key]:.4f}" for key, label in (("onnx_fp32", "ONNX"), ("onnx_int8", "int8"))
             if isinstance(accuracy.get(key), (int, float))]
    return ", ".join(parts) or "exported (accuracy not measured)"


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _read_report(path: Path) -> dict | None:
    try:
        report = json.loads(read_regular_text(path, REPORT_MAX_BYTES))
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) else None


class RunComparison(QWidget):
    """The comparison table, its summary and the copy buttons."""

    def __init__(self, store, parent=None):
        super().__init__(parent)
        self.store = store
        self.setObjectName("runs-compare")
        self.setAccessibleName("Compare runs")
        self.comparison: Comparison | None = None
        self.summary = QLabel()
        self.summary.setObjectName("runs-compare-summary")
        self.summary.setWordWrap(True)
        self.table = QTableWidget(0, 0)
        self.table.setObjectName("runs-compare-table")
        self.table.setAccessibleName("Runs side by side")
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.verticalHeader().setDefaultAlignment(Qt.AlignLeft | Qt.AlignVCenter)
        self.copy_tsv = QPushButton("Copy as TSV")
        self.copy_tsv.setObjectName("runs-compare-copy-tsv")
        self.copy_tsv.setToolTip("Copy the table, tab-separated (pastes into a spreadsheet)")
        self.copy_tsv.clicked.connect(lambda: self._copy(self.comparison.as_tsv()))
        self.copy_md = QPushButton("Copy as Markdown")
        self.copy_md.setObjectName("runs-compare-copy-md")
        self.copy_md.setToolTip("Copy the table as Markdown (for notes, issues, reports)")
        self.copy_md.clicked.connect(lambda: self._copy(self.comparison.as_markdown()))
        self.only_differences = QCheckBox("Only differences")
        self.only_differences.setObjectName("runs-compare-only-differences")
        self.only_differences.setToolTip("Hide the rows where all the runs agree")
        self.only_differences.toggled.connect(self._hide_same_rows)
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(self.only_differences)
        top.addWidget(self.copy_tsv)
        top.addWidget(self.copy_md)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.table)
        theme.follow(self, lambda w: w._recolor(), now=False)

    def show_runs(self, run_ids: list[int]) -> None:
        self.comparison = c = compare_runs(self.store, run_ids)
        self.summary.setText(c.summary)
        self.table.clear()
        self.table.setColumnCount(len(c.headers))
        self.table.setRowCount(len(c.rows))
        self.table.setHorizontalHeaderLabels(c.headers)
        self.table.setVerticalHeaderLabels([r.label for r in c.rows])
        bold = QFont()
        bold.setBold(True)
        for i, row in enumerate(c.rows):
            head = self.table.verticalHeaderItem(i)
            if row.differs:
                head.setFont(bold)
                head.setToolTip("the runs differ here")
            for j, text in enumerate(row.values):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.table.setItem(i, j, item)
        self._recolor()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.Interactive)
        self.table.resizeColumnsToContents()
        for j in range(self.table.columnCount()):
            self.table.setColumnWidth(j, min(max(self.table.columnWidth(j), 110), 210))
        self._hide_same_rows()

    def _recolor(self) -> None:
        """The summary ('same spec' or what differs) and the differing rows in the theme's colours."""
        c = self.comparison
        if c is None:
            return
        colors = theme.current()
        self.summary.setStyleSheet(f"color: {colors.ok if not c.differing_settings else colors.warning};")
        brush = QBrush(QColor(colors.differs))
        for i, row in enumerate(c.rows):
            for j in range(self.table.columnCount()):
                item = self.table.item(i, j)
                if row.differs and item is not None:
                    item.setBackground(brush)

    def _hide_same_rows(self) -> None:
        rows = self.comparison.rows if self.comparison else []
        for i, row in enumerate(rows):
            self.table.setRowHidden(i, self.only_differences.isChecked() and not row.differs)

    def _copy(self, text: str) -> None:
        QGuiApplication.clipboard().setText(text)
