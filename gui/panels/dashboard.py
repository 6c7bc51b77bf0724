"""The dashboard: live curves of a run, plus curves of past runs to compare.

Each metric gets one curve, created once, fed from a growing numpy buffer; a timer redraws
only what changed (not one redraw per event). Curves downsample by peaks and clip to the
view, so long runs stay fast; pyqtgraph stops auto-ranging as soon as the user zooms, so new
points never reset the user's view.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QPlainTextEdit, QSplitter, QVBoxLayout, QWidget

REDRAW_MS = 100
PALETTE = ["#1f6feb", "#d97b2b", "#2f9e6b", "#8a5cc2", "#d64545", "#0f9fb5", "#b5860f", "#6b7280"]

# which plot a metric goes to
PLOTS = (("loss", "Loss", lambda name: name.startswith("loss/") or name in ("val/loss", "val/kd")),
         ("acc", "Accuracy", lambda name: name.endswith("/acc")),
         ("lr", "Learning rate", lambda name: name == "lr"))


class Series:
    """A growing (x, y) buffer: amortised O(1) appends, no Python lists per point."""

    def __init__(self, capacity: int = 256):
        self.x = np.empty(capacity)
        self.y = np.empty(capacity)
        self.n = 0

    def append(self, x: float, y: float) -> None:
        if self.n == len(self.x):
            self.x = np.resize(self.x, 2 * self.n)
            self.y = np.resize(self.y, 2 * self.n)
        self.x[self.n], self.y[self.n] = x, y
        self.n += 1

    def view(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x[:self.n], self.y[:self.n]


class Dashboard(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("dashboard")
        self.setAccessibleName("Dashboard")
        pg.setConfigOptions(antialias=True, background="w", foreground="#374151")
        self.plots: dict[str, pg.PlotItem] = {}
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setObjectName("dashboard-plots")
        self.graphics.setMinimumHeight(200)  # curves stay readable however the docks are arranged
        for i, (key, title, _) in enumerate(PLOTS):
            plot = self.graphics.addPlot(row=0, col=i, title=title)
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.setLabel("bottom", "epoch")
            legend = plot.addLegend(offset=(-5, 5), labelTextSize="7pt", verSpacing=-6)
            legend.setBrush(pg.mkBrush(255, 255, 255, 200))
            if key == "loss":
                legend.setColumnCount(2)
            plot.setDownsampling(auto=True, mode="peak")
            plot.setClipToView(True)
            self.plots[key] = plot
        self.log = QPlainTextEdit()
        self.log.setObjectName("run-log")
        self.log.setAccessibleName("Run log")
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        split = QSplitter(Qt.Vertical)
        split.addWidget(self.graphics)
        split.addWidget(self.log)
        split.setSizes([320, 60])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)
        self.series: dict[str, Series] = {}  # live run: metric name -> points
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.history: dict[int, list] = {}  # compared runs: (plot, curve) pairs
        self._dirty: set[str] = set()
        self._timer = QTimer(self, interval=REDRAW_MS)
        self._timer.timeout.connect(self._redraw)
        self._timer.start()

    # the live run
    def clear_live(self) -> None:
        for name, curve in self.curves.items():
            self._plot_for(name).removeItem(curve)
        self.series, self.curves, self._dirty = {}, {}, set()
        self.log.clear()
        for plot in self.plots.values():
            plot.enableAutoRange()

    def add_metrics(self, epoch: float, values: dict[str, float]) -> None:
        for name, value in values.items():
            if value is None or self._plot_for(name) is None:
                continue
            if name not in self.series:
                self.series[name] = Series()
                color = PALETTE[len(self.curves) % len(PALETTE)]
                width = 2.4 if name in ("loss/total", "val/acc", "lr") else 1.4
                self.curves[name] = self._plot_for(name).plot(
                    name=name, pen=pg.mkPen(color, width=width),
                    symbol="o" if name.startswith(("val/", "test/")) else None, symbolSize=4,
                    symbolBrush=color, symbolPen=None)
            self.series[name].append(epoch, value)
            self._dirty.add(name)

    def _redraw(self) -> None:
        for name in self._dirty:
            self.curves[name].setData(*self.series[name].view())
        self._dirty.clear()

    def points(self, name: str) -> int:
        return self.series[name].n if name in self.series else 0

    def add_log(self, text: str, error: bool = False) -> None:
        if error:
            self.log.appendHtml(f"<span style='color:#c62828'>{_escape(text)}</span>")
        else:
            self.log.appendPlainText(text)

    # comparing runs
    def show_history(self, runs: dict[int, tuple[str, dict[str, tuple[np.ndarray, np.ndarray]]]]) -> None:
        """Overlay past runs: {run id: (label, {metric: (epochs, values)})}, dashed."""
        for items in self.history.values():
            for plot, item in items:
                plot.removeItem(item)
        self.history = {}
        for i, (run_id, (label, metrics)) in enumerate(sorted(runs.items())):
            color = QColor(PALETTE[(i + 3) % len(PALETTE)])
            items = []
            for name in ("loss/total", "val/acc", "lr"):
                if name in metrics and len(metrics[name][0]):
                    pen = pg.mkPen(color, width=1.6, style=Qt.DashLine)
                    plot = self._plot_for(name)
                    items.append((plot, plot.plot(*metrics[name], pen=pen, name=f"#{run_id} {label}")))
            self.history[run_id] = items

    def _plot_for(self, name: str) -> pg.PlotItem | None:
        for key, _, wanted in PLOTS:
            if wanted(name):
                return self.plots[key]
        return None


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
