"""The Runs panel: every run in the store (from the app or the command line), newest first.

Select several to overlay their curves and see them side by side (the comparison beside the
list, gui/panels/run_comparison.py: settings and results, what differs highlighted); open a
run's pipeline on the canvas; run it again; resume a stopped or failed one; show where its
TensorBoard files are, and the command that shows them (copied to the clipboard; the app
starts no server). The list follows the store by itself (a light poll of SQLite). A run's
duration is the time the engine worked on it (a stopped run's idle time before its resume
not counted).
"""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.checkpoint import has_checkpoint
from engine.store import run_seconds
from engine.tensorboard_folder import event_files, view_command, write_command
from gui import theme
from gui.panels.run_comparison import RunComparison, duration, start_time

REFRESH_MS = 2000
COLUMNS = ["#", "name", "status", "best val/acc", "duration", "device", "started"]


def status_color(status: str) -> QColor:
    """A run's status as coloured words, readable on the theme's table background."""
    c = theme.current()
    return QColor({"completed": c.ok, "running": c.link, "stopped": c.warning, "failed": c.error}.get(status, c.text))


class RunsPanel(QWidget):
    compare = Signal(list)  # run ids whose curves to overlay
    openRun = Signal(int)
    rerun = Signal(int)
    resumeRun = Signal(int)
    exportRun = Signal(int)
    changed = Signal()  # the list of runs changed

    def __init__(self, store, parent=None):
        super().__init__(parent)
        self.store = store
        self.setObjectName("runs")
        self.setAccessibleName("Runs")
        self.rows: list[dict] = []
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("runs-table")
        self.table.setAccessibleName("Runs")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.Stretch)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.buttons = {}
        row = QHBoxLayout()
        for key, text, signal in (("open", "Open on Canvas", self.openRun), ("rerun", "Run Again", self.rerun),
                                  ("resume", "Resume", self.resumeRun), ("export", "Export…", self.exportRun)):
            button = QPushButton(text)
            button.setObjectName(f"runs-{key}")
            button.clicked.connect(lambda _=False, s=signal: self._emit_for_current(s))
            row.addWidget(button)
            self.buttons[key] = button
        button = QPushButton("Show TensorBoard Folder")
        button.setObjectName("runs-tensorboard")
        button.setToolTip("Where this run's metrics are as TensorBoard files, and the command that shows them "
                          "(copied to the clipboard)")
        button.clicked.connect(lambda: self._emit_for_current_call(self.show_tensorboard))
        row.addWidget(button)
        self.buttons["tensorboard"] = button
        row.addStretch(1)
        self.hint = QLabel("Select two or more runs (Ctrl/Shift+click) to compare them side by side")
        self.hint.setObjectName("runs-compare-hint")
        theme.follow(self.hint, lambda w: w.setStyleSheet(f"color: {theme.current().muted};"))
        row.addWidget(self.hint)
        listing = QWidget()
        left = QVBoxLayout(listing)
        left.setContentsMargins(0, 0, 0, 0)
        left.addWidget(self.table)
        left.addLayout(row)
        self.comparison = RunComparison(store)
        self.comparison.hide()  # shown while two or more runs are selected
        self.split = QSplitter(Qt.Horizontal)
        self.split.setObjectName("runs-split")
        self.split.addWidget(listing)
        self.split.addWidget(self.comparison)
        self.split.setStretchFactor(0, 2)
        self.split.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.split)
        self._timer = QTimer(self, interval=REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self.refresh()
        theme.follow(self, lambda w: w._recolor())

    def _recolor(self) -> None:
        """The statuses in the new theme's colours."""
        for i, r in enumerate(self.rows):
            item = self.table.item(i, 2)
            if item is not None:
                item.setForeground(status_color(r["status"]))

    def refresh(self) -> None:
        rows = self.store.runs(limit=500)
        if rows == self.rows:
            return
        selected = set(self.selected_ids())
        self.rows = rows
        self.table.blockSignals(True)
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            best = json.loads(r["best_metrics"] or "{}")
            cells = [str(r["id"]), r["name"], r["status"],
                     f"{best['val/acc']:.3f}" if "val/acc" in best else "–",
                     duration(run_seconds(r)), r["device"] or "", start_time(r["started"])]
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if j == 2:
                    item.setForeground(status_color(text))
                if r.get("error") and j == 2:
                    item.setToolTip(r["error"])
                self.table.setItem(i, j, item)
        self.select_ids(list(selected))  # all of them kept (selectRow alone would keep the last)
        self.table.blockSignals(False)
        self._update_buttons()
        self._update_comparison()
        self.changed.emit()

    def selected_ids(self) -> list[int]:
        rows = sorted({index.row() for index in self.table.selectedIndexes()})
        return [self.rows[r]["id"] for r in rows if r < len(self.rows)]

    def select_ids(self, ids: list[int]) -> None:
        self.table.clearSelection()
        mode = self.table.selectionMode()
        self.table.setSelectionMode(QAbstractItemView.MultiSelection)
        for i, r in enumerate(self.rows):
            if r["id"] in ids:
                self.table.selectRow(i)
        self.table.setSelectionMode(mode)

    def clear_selection(self) -> None:
        """No run selected: no curves overlaid, no comparison (a new or another project)."""
        self.table.clearSelection()

    def run_row(self, run_id: int) -> dict | None:
        return next((r for r in self.rows if r["id"] == run_id), None)

    def _selection_changed(self) -> None:
        self._update_buttons()
        self._update_comparison()
        self.compare.emit(self.selected_ids())

    def _update_comparison(self) -> None:
        ids = self.selected_ids()
        if len(ids) >= 2:
            self.comparison.show_runs(ids)
            if self.comparison.isHidden():  # it comes up with the larger part of the panel
                width = max(self.split.width(), 600)
                self.split.setSizes([int(width * 0.4), width - int(width * 0.4)])
        self.comparison.setVisible(len(ids) >= 2)
        self.hint.setVisible(len(ids) < 2)

    def _update_buttons(self) -> None:
        ids = self.selected_ids()
        one = self.run_row(ids[0]) if len(ids) == 1 else None
        self.buttons["open"].setEnabled(one is not None)
        self.buttons["rerun"].setEnabled(one is not None)
        resumable = one is not None and one["status"] in ("stopped", "failed") and \
            has_checkpoint(Path(one["run_dir"]))
        self.buttons["resume"].setEnabled(resumable)
        self.buttons["tensorboard"].setEnabled(one is not None and bool(one["run_dir"]))
        self.buttons["export"].setEnabled(one is not None and one["status"] == "completed" and
                                          (Path(one["run_dir"]) / "student.safetensors").is_file())

    def _emit_for_current_call(self, call) -> None:
        ids = self.selected_ids()
        if len(ids) == 1:
            call(ids[0])

    def show_tensorboard(self, run_id: int) -> str:
        """Say where the run's TensorBoard files are and how to view them; the command goes
        to the clipboard. A run from before runs wrote them gets the command that writes them
        from the store first. Returns the command."""
        row = self.run_row(run_id)
        run_dir = Path(row["run_dir"])
        view = view_command(run_dir)
        if event_files(run_dir):
            command = view
            text = (f"Run {run_id}'s metrics are in TensorBoard files in\n{run_dir / 'tensorboard'}\n\n"
                    f"View them with (copied to the clipboard):\n{command}")
        else:
            command = f"{write_command(run_dir)} && {view}"
            text = (f"Run {run_id} has no TensorBoard files yet (it ran before runs wrote them, or its folder "
                    f"{run_dir} is gone).\n\nWrite them from the run store, then view them with (copied to "
                    f"the clipboard):\n{command}")
        QGuiApplication.clipboard().setText(command)
        self._inform("TensorBoard", text)
        return command

    def _inform(self, title: str, text: str) -> None:
        box = QMessageBox(QMessageBox.Information, title, text, QMessageBox.Ok, self)
        box.setObjectName("runs-tensorboard-message")
        box.setTextInteractionFlags(Qt.TextSelectableByMouse)
        box.exec()

    def _emit_for_current(self, signal) -> None:
        ids = self.selected_ids()
        if len(ids) == 1:
            signal.emit(ids[0])

