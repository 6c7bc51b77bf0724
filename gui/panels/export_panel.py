"""The Export panel: a finished run as a verified ONNX model (and int8, and weights), with its
report shown as a table: size, test accuracy and latency, before and after compression.

Runs whose spec has an export node export by themselves; their report shows up here too.
"""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.report_words import speedup_text
from engine.spec import QuantizeStep
from gui import theme
from gui.engine_client.export import EngineExport
from gui.folder_opener import FolderPathDialog, open_folder

ROWS = [("pytorch_fp32", "PyTorch fp32", "safetensors"), ("onnx_fp32", "ONNX fp32", "onnx_fp32"),
        ("onnx_int8", "ONNX int8", "onnx_int8")]
COLUMNS = ["model", "file", "size", "test accuracy", "ms / batch", "vs PyTorch"]
STAGES = {"load": "loading the run", "insights": "analysing the student for the model card",
          "onnx": "writing ONNX", "verify": "checking ONNX against PyTorch",
          "quantize": "quantizing to int8", "evaluate": "testing int8", "report": "writing the report",
          "done": "done"}


class ExportPanel(QWidget):
    message = Signal(str)

    def __init__(self, store, parent=None):
        super().__init__(parent)
        self.setObjectName("export-panel")
        self.store = store
        self.report: dict | None = None
        self._look = ""  # the status line's colour (_set_look)
        self._summary: list[tuple[str, str]] | None = None  # the report's lines, coloured in _recolor
        self._rejected_row: int | None = None
        self.engine = EngineExport(self)
        self.engine.progress.connect(self._progress)
        self.engine.done.connect(self.show_report)
        self.engine.failed.connect(self._failed)
        self.engine.cancelled.connect(self._cancelled)
        self._auto_folder = ""

        self.run_box = QComboBox()
        self.run_box.setObjectName("export-run")
        self.run_box.setAccessibleName("Run to export")
        self.run_box.currentIndexChanged.connect(self._run_chosen)
        self.folder = QLineEdit()
        self.folder.setObjectName("export-folder")
        self.folder.setAccessibleName("Export folder")
        browse = QPushButton("Browse…")
        browse.setObjectName("export-browse")
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(browse)

        defaults = QuantizeStep()
        self.int8 = QCheckBox("int8 model (onnxruntime quantization)")
        self.int8.setObjectName("export-int8")
        self.int8.setChecked(True)
        self.mode = QComboBox()
        self.mode.setObjectName("export-mode")
        self.mode.addItem("static: calibrated, fastest", "static")
        self.mode.addItem("dynamic: no calibration", "dynamic")
        self.calibration = QSpinBox()
        self.calibration.setObjectName("export-calibration")
        self.calibration.setRange(1, 100_000)
        self.calibration.setValue(defaults.calibration_samples)
        self.calibration.setSuffix(" samples")
        self.max_drop = QDoubleSpinBox()
        self.max_drop.setObjectName("export-max-drop")
        self.max_drop.setRange(0.0, 100.0)
        self.max_drop.setDecimals(2)
        self.max_drop.setValue(defaults.max_accuracy_drop)
        self.max_drop.setSuffix(" points")
        self.max_drop.setToolTip("if int8 loses more test accuracy than this, its file is not kept")
        self.safetensors = QCheckBox("safetensors weights")
        self.safetensors.setObjectName("export-safetensors")
        self.safetensors.setChecked(True)
        self.int8.toggled.connect(self._update_enabled)
        self.mode.currentIndexChanged.connect(self._update_enabled)

        form = QFormLayout()
        form.addRow("Run", self.run_box)
        form.addRow("Folder", folder_row)
        form.addRow("Formats", QLabel("ONNX fp32, verified against PyTorch in onnxruntime"))
        form.addRow("", self.int8)
        form.addRow("Quantization", self.mode)
        form.addRow("Calibration", self.calibration)
        form.addRow("Max accuracy drop", self.max_drop)
        form.addRow("", self.safetensors)

        self.export_button = QPushButton("Export")
        self.export_button.setObjectName("export-start")
        self.export_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("export-cancel")
        self.cancel_button.clicked.connect(self.engine.cancel)
        self.progress_bar = QProgressBar()
        self.progress_bar.setObjectName("export-progress")
        self.progress_bar.setRange(0, 100)
        self.status = QLabel()
        self.status.setObjectName("export-status")
        self.status.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.progress_bar, 1)
        left = QVBoxLayout()
        left.addLayout(form)
        left.addLayout(buttons)
        left.addWidget(self.status)
        left.addStretch(1)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("export-report")
        self.table.setAccessibleName("Export report")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.summary = QLabel("Export a completed run to see its report here.")
        self.summary.setObjectName("export-summary")
        self.summary.setWordWrap(True)
        self.open_button = QPushButton("Open Folder")
        self.open_button.setObjectName("export-open")
        self.open_button.clicked.connect(self.open_folder)
        right = QVBoxLayout()
        right.addWidget(self.summary)
        right.addWidget(self.table, 1)
        right.addWidget(self.open_button)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(left, 2)
        layout.addLayout(right, 3)
        self.refresh_runs()
        self._update_enabled()
        theme.follow(self, lambda w: w._recolor())

    # runs
    def refresh_runs(self) -> None:
        """The completed runs that hold a trained student, newest first."""
        runs = [r for r in self.store.runs(limit=500) if r["status"] == "completed"
                and r["run_dir"] and (Path(r["run_dir"]) / "student.safetensors").is_file()]
        keep = self.run_box.currentData()
        ids = [r["id"] for r in runs]
        if ids == [self.run_box.itemData(i)["id"] for i in range(self.run_box.count())]:
            return
        self.run_box.blockSignals(True)
        self.run_box.clear()
        for r in runs:
            best = json.loads(r["best_metrics"] or "{}")
            acc = f" · val/acc {best['val/acc']:.3f}" if "val/acc" in best else ""
            self.run_box.addItem(f"#{r['id']} {r['name']}{acc}", r)
        self.run_box.blockSignals(False)
        index = next((i for i, r in enumerate(runs) if keep and r["id"] == keep["id"]), 0)
        self.run_box.setCurrentIndex(index)
        self._run_chosen()

    def select_run(self, run_id: int) -> bool:
        self.refresh_runs()
        for i in range(self.run_box.count()):
            if self.run_box.itemData(i)["id"] == run_id:
                self.run_box.setCurrentIndex(i)
                return True
        return False

    def clear_report(self) -> None:
        self.report = None
        self.table.setRowCount(0)
        self._summary = self._rejected_row = None
        self.summary.setText("Export a completed run to see its report here.")
        self.status.setText("")
        self.progress_bar.setValue(0)
        self._update_enabled()

    def _run_chosen(self) -> None:
        run = self.run_box.currentData()
        if self.report is not None and (run is None or self.report.get("run_dir") != run["run_dir"]):
            self.clear_report()  # the report on show belongs to another run
        folder = str(Path(run["run_dir"]) / "export") if run else ""
        if not self.folder.text() or self.folder.text() == self._auto_folder:
            self.folder.setText(folder)
        self._auto_folder = folder
        self._update_enabled()

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Export to folder", self.folder.text())
        if path:
            self.folder.setText(path)

    # exporting
    def start(self) -> None:
        run = self.run_box.currentData()
        folder = self.folder.text().strip()
        if run is None:
            self._failed("there is no completed run to export yet; run a pipeline first")
            return
        if not folder:
            self._failed("choose the folder the files go to")
            return
        # the report on show (the last finished export) stays until this one's replaces it: a
        # cancel or a failure leaves it there
        quantize = {"mode": self.mode.currentData(), "calibration_samples": self.calibration.value(),
                    "max_accuracy_drop": self.max_drop.value()} if self.int8.isChecked() else None
        self._set_look("")
        self.status.setText(f"exporting run #{run['id']}…")
        self.progress_bar.setValue(0)
        self.engine.start(Path(run["run_dir"]), Path(folder).expanduser(), quantize,
                          self.safetensors.isChecked())
        self._update_enabled()

    def _progress(self, stage: str, fraction: float) -> None:
        self.progress_bar.setValue(int(fraction * 100))
        self.status.setText(STAGES.get(stage, stage) + "…")

    def _failed(self, message: str) -> None:
        self._set_look("error")
        self.status.setText(f"Export failed: {message}")
        self.progress_bar.setValue(0)
        self.message.emit(f"export failed: {message}")
        self._update_enabled()

    def _cancelled(self) -> None:
        self._set_look("")
        kept = " The report shown is the last finished export's." if self.report is not None else ""
        self.status.setText("Export cancelled; files finished so far are in the folder." + kept)
        self.progress_bar.setValue(0)
        self.message.emit("export cancelled")
        self._update_enabled()

    def show_report(self, report: dict, problems: list | None = None) -> None:
        """Fill the table from an export report (from this panel or from a run's export). The
        speed-ups are the report's, ratios of warmed-up medians (older reports: the medians'
        ratio); a busy machine's timings are marked indicative, unmeasured accuracy says so."""
        self.report = report
        problems = report.get("problems", []) if problems is None else problems
        notes = report.get("notes", [])
        acc, ms, files = report["accuracy"], report["latency_ms_per_batch"], report["files"]
        latency = report.get("latency") or {}
        stats = latency.get("ms_per_batch", {})
        indicative = bool(latency.get("indicative"))
        base = ms.get("pytorch_fp32")
        speedup = latency.get("speedup_vs_pytorch") or {
            k: base / v for k, v in ms.items() if k != "pytorch_fp32" and base and v}
        unmeasured = report.get("accuracy_note")
        rows = [r for r in ROWS if r[0] in acc]
        rejected = "onnx_int8_rejected" in acc
        if rejected:  # over the accuracy limit: shown, but its file was not kept
            rows.append(("onnx_int8_rejected", "ONNX int8 (not kept)", "onnx_int8"))
        self.table.setRowCount(len(rows))
        for i, (key, title, file_key) in enumerate(rows):
            info = files.get(file_key)
            faster = speedup_text(speedup.get(key)) if key in speedup else "–"
            cells = [title, info["path"] if info else "–", _size(info["bytes"]) if info else "–",
                     f"{acc[key]:.2%}" if acc.get(key) is not None else ("not measured" if unmeasured else "–"),
                     f"{ms[key]:.3f}" if key in ms else "–",
                     faster + (" (indicative)" if indicative and faster != "–" else "")]
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if j == 4 and key in stats:
                    st = stats[key]
                    item.setToolTip(f"median of {st['timed_batches']} timed batches after "
                                    f"{latency.get('warmup_batches')} warm-up; p10–p90 {st['p10']:.3f}–"
                                    f"{st['p90']:.3f} ms, min–max {st['min']:.3f}–{st['max']:.3f} ms")
                self.table.setItem(i, j, item)
        steps = ", ".join(f"{c['kind']} {c.get('method', c.get('mode', ''))}" for c in report.get("compression", []))
        fp32, int8 = files.get("onnx_fp32"), files.get("onnx_int8")
        smaller = f"; int8 is {fp32['bytes'] / int8['bytes']:.1f}× smaller" if fp32 and int8 else ""
        timed = sorted({st["timed_batches"] for st in stats.values()})
        how = (f", the median of {'–'.join(map(str, sorted({timed[0], timed[-1]})))} timed batches after "
               f"{latency.get('warmup_batches')} warm-up" if timed else "")
        load = latency.get("load") or {}
        load_text = (f", load {load['loadavg_1min']:.1f} on {load['cpu_count']} cores"
                     if load.get("loadavg_1min") is not None else "")
        accuracy_line = (f"Test accuracy not measured: {unmeasured.removeprefix('not measured: ')}."
                         if unmeasured else
                         f"Accuracy on {report['test_samples']} {report.get('evaluated_on', 'test')} samples.")
        lines = [f"<b>{report['name']}</b>: {report['parameters']:,} parameters, sparsity "
                 f"{report.get('sparsity', 0):.0%}{', ' + steps if steps else ''}{smaller}.",
                 f"{accuracy_line} ms per batch of {report['latency_batch']} on this machine{how} "
                 f"({report.get('threads', '?')} threads in PyTorch and onnxruntime{load_text}). "
                 f"ONNX vs PyTorch: max |difference| {report.get('parity_max_abs_diff') or 0:.1e}."]
        summary = [("", line) for line in lines]  # (colour: "", "warning" or "error"; html)
        if indicative:
            summary.append(("warning", f"Timings are indicative only: {latency.get('indicative_because')}."))
        summary += [("warning", f"{n['message']} — {n['hint']}") for n in notes]
        summary += [("error", f"{p['message']} — {p['hint']}") for p in problems]
        self._summary, self._rejected_row = summary, len(rows) - 1 if rejected else None
        folder = report.get("folder") or ""
        self._set_look("error" if problems else "warning" if notes else "ok")
        self.status.setText(("Exported with a problem" if problems else "Exported") + f" to {folder}"
                            + (" (see the notes in the report)" if notes and not problems else ""))
        self.progress_bar.setValue(100)
        self.message.emit(f"exported to {folder}")
        self._update_enabled()

    def _set_look(self, look: str) -> None:
        """The status line's colour: "" (plain), "ok", "warning" or "error"."""
        self._look = look
        self._recolor()

    def _recolor(self) -> None:
        """The status line, the report's notes and problems, a rejected int8 row: in the theme's colours."""
        c = theme.current()
        colors = {"ok": c.ok, "warning": c.warning, "error": c.error}
        self.status.setStyleSheet(f"color: {colors[self._look]};" if self._look else "")
        summary = self._summary
        if summary is None:
            return
        self.summary.setText("<br>".join(f"<span style='color:{colors[kind]}'>{text}</span>" if kind else text
                                         for kind, text in summary))
        row = self._rejected_row
        if row is not None and row < self.table.rowCount():
            for j in range(self.table.columnCount()):
                item = self.table.item(row, j)
                if item is not None:
                    item.setForeground(QColor(c.error))

    def open_folder(self) -> FolderPathDialog | None:
        """The export folder in the file manager (or its path, where there is none)."""
        if self.report and self.report.get("folder"):
            return open_folder(self.report["folder"], self)
        return None

    def _update_enabled(self) -> None:
        busy = self.engine.running
        self.export_button.setEnabled(not busy and self.run_box.count() > 0)
        self.cancel_button.setEnabled(busy)
        self.mode.setEnabled(self.int8.isChecked())
        self.max_drop.setEnabled(self.int8.isChecked())
        self.calibration.setEnabled(self.int8.isChecked() and self.mode.currentData() == "static")
        self.open_button.setEnabled(bool(self.report and self.report.get("folder")))


def _size(n: int) -> str:
    return f"{n / 1024:.1f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.2f} MiB"
