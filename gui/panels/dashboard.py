"""The dashboard: live curves of a run, plus curves of past runs to compare.

Each metric gets one curve, created once, fed from a growing numpy buffer; a timer redraws
only what changed (not one redraw per event). Each curve gets only its visible part, reduced
to min/max pairs from a pyramid kept beside the buffer, so long runs stay fast; pyqtgraph stops
auto-ranging as soon as the user zooms, so new points never reset the user's view.

PLOTS says which plot a metric goes to and what its x is (the epoch, or for the gradient norms
of training.gradient_norms the step, on a log scale); a plot marked on demand is made when the
first of its metrics arrives and goes when no curve is left in it.

Readability: each plot's legend sits in a column right of it (never over the curves), each curve is
named in words (`friendly_name`; the raw metric key is its legend entry's tooltip), both axes
are labelled, and the loss plot can be drawn on a log scale. The loss plot's auto-range fits the
curves after the first 5% of the run (`robust_range`), so the first steps' high loss does not
flatten the rest; as anywhere, the user's zoom stops the auto-range.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QGraphicsItem,
    QHBoxLayout,
    QPlainTextEdit,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from gui import theme

REDRAW_MS = 100
MAX_POINTS = 1000  # per curve and draw: two or three per pixel of a plot's width
SMOOTH_BELOW = 500  # curves with fewer points are antialiased; denser ones are drawn plain (fast)
PALETTE = ["#1f6feb", "#d97b2b", "#2f9e6b", "#8a5cc2", "#d64545", "#0f9fb5", "#b5860f", "#6b7280"]
MORE_COLORS = ["#e377c2", "#17becf", "#8c564b", "#bcbd22"]  # with PALETTE, one each for up to 12 layer groups
SKIP_START = 0.05  # the loss plot's auto-range leaves out this first share of the run's x span
TOP_PERCENTILE = 98  # and of the rest, each curve's highest 2% (the tail of the early descent, spikes)
LEGEND_TEXT = "8pt"


class PlotKind(NamedTuple):
    key: str
    title: str
    wanted: Callable[[str], bool]  # which metrics it shows
    y: str  # the y axis's label
    x: str = "epoch"  # or "step"
    log_y: bool = False  # then only values above 0 are drawn
    on_demand: bool = False  # shown once one of its metrics arrives, not before
    legend_columns: int = 1


# which plot a metric goes to
PLOTS = (PlotKind("pretrain", "Self-supervised pretraining", lambda name: name == "pretrain/loss",
                  "pretraining loss", on_demand=True),  # student.init self_supervised: before distillation
         PlotKind("loss", "Loss", lambda name: name.startswith("loss/") or name in ("val/loss", "val/kd"), "loss"),
         # the pretrained trunk's linear probe is an accuracy (0–1): beside the validation accuracy
         # that follows it, not on the pretraining loss's axis (≈ 8 for masked tokens)
         PlotKind("acc", "Accuracy", lambda name: name.endswith("/acc") or name.startswith("test/teacher_acc/")
                  or name == "pretrain/probe_acc", "accuracy"),
         PlotKind("lr", "Learning rate", lambda name: name == "lr", "learning rate"),
         # training.gradient_norms: grad/<layer group>, each group's gradient norm
         PlotKind("grad", "Gradient norms", lambda name: name.startswith("grad/"), "gradient norm", x="step",
                  log_y=True, on_demand=True, legend_columns=2))  # up to 12 layer groups
GROUP_PREFIX = "grad/"

# the metric keys the engine emits (engine/train.py, engine/meter.py, engine/strategies/), in words
NAMES = {"loss/total": "total loss", "loss/ce": "cross-entropy (labels)", "loss/kd": "KD (all teachers)",
         "loss/heads": "task heads", "loss/confidence": "confidence", "loss/calibration": "calibration",
         "val/loss": "validation loss", "val/kd": "validation KD loss", "val/acc": "validation accuracy",
         "test/loss": "test loss", "test/acc": "test accuracy", "train/acc": "training accuracy",
         "lr": "learning rate", "pretrain/loss": "pretraining loss",
         "pretrain/probe_acc": "linear probe (pretrained)"}
PREFIXES = (("loss/kd/", "KD: {}"), ("loss/hint/", "hint: {}"), ("test/teacher_acc/", "teacher {} (test)"),
            (GROUP_PREFIX, "{}"))


def friendly_name(key: str) -> str:
    """A metric key in words (`loss/kd/high digits` → "KD: high digits"); an unknown key as it is."""
    if key in NAMES:
        return NAMES[key]
    for prefix, text in PREFIXES:
        if key.startswith(prefix) and len(key) > len(prefix):
            return text.format(key[len(prefix):].replace("/", " / "))
    return key


def robust_range(curves: list[tuple[np.ndarray, np.ndarray]], log: bool = False) -> tuple[float, float] | None:
    """The y range that fits the curves after the first SKIP_START of their common x span, up
    to each curve's TOP_PERCENTILE there (in log10 when `log`: the plot's own coordinates);
    None when no point is left to fit."""
    xs = [np.asarray(x, dtype=float) for x, _ in curves if x is not None and len(x)]
    if not xs:
        return None
    x0, x1 = min(float(x.min()) for x in xs), max(float(x.max()) for x in xs)
    cut = x0 + SKIP_START * (x1 - x0)
    lo, hi = np.inf, -np.inf
    for x, y in curves:
        if x is None or not len(x):
            continue
        y = np.asarray(y, dtype=float)[np.asarray(x, dtype=float) >= cut]
        y = y[np.isfinite(y) & (y > 0)] if log else y[np.isfinite(y)]
        if len(y):
            lo, hi = min(lo, float(y.min())), max(hi, float(np.percentile(y, TOP_PERCENTILE)))
    if lo > hi:
        return None
    return (float(np.log10(lo)), float(np.log10(hi))) if log else (lo, hi)


class ValueAxis(pg.AxisItem):
    """A y axis that stays readable in log10: over a decade or more only the decades are
    labelled (0.01, 0.1, 1) and the 2…9 multiples are ticks without text (their labels, closer
    and closer, would pile up on a plot a few hundred pixels high); within one decade the
    multiples are labelled, as they are all there is to read."""

    def logTickValues(self, low, high, size, std_ticks):  # noqa: N802 (pyqtgraph's name)
        decades = [float(v) for v in range(int(np.ceil(low)), int(np.floor(high)) + 1)]
        between = [v + np.log10(m) for v in range(int(np.floor(low)), int(np.ceil(high)))
                   for m in range(2, 10)]
        between = [float(v) for v in between if low < v < high]
        if len(decades) >= 2 or (decades and high - low >= 1):
            return [(1.0, decades), (None, between)]
        return [(None, sorted(decades + between))]


def set_log_y(plot: pg.PlotItem, on: bool) -> None:
    """The y axis in log10 (labels on its first tick level only, values as they are: no SI
    factor, which would read 2·10² (x0.001)) or linear."""
    plot.setLogMode(y=on)
    axis = plot.getAxis("left")
    axis.enableAutoSIPrefix(not on)
    axis.setStyle(maxTextLevel=0 if on else 1)


class RobustViewBox(pg.ViewBox):
    """A view box whose auto-range takes its y range from `fit` (None: the usual bounds)."""

    def __init__(self, fit: Callable[[], tuple[float, float] | None], **kw):
        super().__init__(**kw)
        self.fit = fit

    def childrenBounds(self, frac=None, orthoRange=(None, None), items=None):
        bounds = super().childrenBounds(frac=frac, orthoRange=orthoRange, items=items)
        if items is None:
            y = self.fit()
            if y is not None:
                bounds[1] = list(y)
        return bounds


class SideLegend(pg.LegendItem):
    """A legend that lives in a layout cell (beside its plot, never over its curves): the
    layout, not the legend, decides where it is and how large."""

    def __init__(self, columns: int):
        super().__init__(offset=None, frame=False, labelTextSize=LEGEND_TEXT, colCount=columns, verSpacing=-6)
        self.setSizePolicy(QSizePolicy.Fixed, QSizePolicy.Fixed)  # its entries' size, at the top of its cell
        self.layout.setContentsMargins(0, 24, 6, 0)  # level with the plot's top, below its title

    def updateSize(self):
        self.updateGeometry()  # its own grid layout says the size it needs

    def add(self, item: pg.PlotDataItem, text: str, tip: str) -> None:
        self.addItem(item, text)
        for part in self.items[-1]:
            part.setToolTip(tip)

    def tooltip(self, text: str) -> str | None:
        return next((label.toolTip() for _, label in self.items if label.text == text), None)


class Series:
    """A growing (x, y) buffer (amortised O(1) appends) with a min/max pyramid, so a curve of
    millions of points is handed to the plot as at most ~`MAX_POINTS` points of its visible part.

    Level k of the pyramid holds the min and max of each block of 2^k points; it is brought up
    to date lazily (only the new blocks) when the curve is drawn. x must not decrease (steps,
    epochs), so the visible part is found by binary search.
    """

    def __init__(self, capacity: int = 256):
        self.x = np.empty(capacity)
        self.y = np.empty(capacity)
        self.n = 0
        self._levels: list[list] = []  # level k+1: [mins, maxs, blocks filled]

    def append(self, x: float, y: float) -> None:
        if self.n == len(self.x):
            self.x = np.resize(self.x, 2 * self.n)
            self.y = np.resize(self.y, 2 * self.n)
        self.x[self.n], self.y[self.n] = x, y
        self.n += 1

    def extend(self, xs: np.ndarray, ys: np.ndarray) -> None:
        need = self.n + len(xs)
        if need > len(self.x):
            size = max(need, 2 * len(self.x))
            self.x, self.y = np.resize(self.x, size), np.resize(self.y, size)
        self.x[self.n:need], self.y[self.n:need] = xs, ys
        self.n = need

    def view(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x[:self.n], self.y[:self.n]

    def _update_levels(self) -> None:
        below_lo = below_hi = self.y[:self.n]
        for k in range(1, 64):
            full = self.n >> k
            if full == 0:
                del self._levels[k - 1:]
                return
            if len(self._levels) < k:
                self._levels.append([np.empty(max(full, 16)), np.empty(max(full, 16)), 0])
            level = self._levels[k - 1]
            lo, hi, done = level
            if done < full:  # only the blocks completed since the last draw
                if full > len(lo):
                    lo, hi = np.resize(lo, 2 * full), np.resize(hi, 2 * full)
                a, b = 2 * done, 2 * full
                lo[done:full] = below_lo[a:b].reshape(-1, 2).min(axis=1)
                hi[done:full] = below_hi[a:b].reshape(-1, 2).max(axis=1)
                level[:] = [lo, hi, full]
            below_lo, below_hi = lo[:full], hi[:full]

    def visible(self, x0: float | None, x1: float | None, budget: int) -> tuple[np.ndarray, np.ndarray]:
        """The points between x0 and x1 (all when None), as min/max pairs of blocks when more
        than `budget` would be drawn."""
        x, y = self.view()
        i0 = 0 if x0 is None else max(int(np.searchsorted(x, x0)) - 1, 0)
        i1 = self.n if x1 is None else min(int(np.searchsorted(x, x1, side="right")) + 1, self.n)
        if i1 - i0 <= budget:
            return x[i0:i1], y[i0:i1]
        self._update_levels()
        k = min(max(1, int(np.ceil(np.log2(2 * (i1 - i0) / budget)))), len(self._levels))
        size = 1 << k
        lo, hi, count = self._levels[k - 1]
        j0, j1 = i0 // size, min(i1 // size, count)
        starts = x[j0 * size:j1 * size:size]
        ends = x[np.minimum(np.arange(j0, j1) * size + size - 1, self.n - 1)]
        xs = np.column_stack([starts, ends]).ravel()
        ys = np.column_stack([lo[j0:j1], hi[j0:j1]]).ravel()
        tail = slice(j1 * size, i1)  # the last, unfinished block: as it is
        return np.concatenate([xs, x[tail]]), np.concatenate([ys, y[tail]])


class Dashboard(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("dashboard")
        self.setAccessibleName("Dashboard")
        colors = theme.current()  # the plots made later, too; those made now follow a change (gui/theme.py)
        pg.setConfigOptions(antialias=True, background=colors.plot_background, foreground=colors.plot_foreground)
        self.series: dict[str, Series] = {}  # live run: metric name -> points
        self._styles: dict[str, tuple[str, float]] = {}  # metric name -> (color, pen width)
        self._dense: dict[str, bool] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.history: dict[int, list] = {}  # compared runs: (plot, curve) pairs
        self._dirty: set[str] = set()
        self.plots: dict[str, pg.PlotItem] = {}
        self.legends: dict[str, SideLegend] = {}  # plot key -> its legend, in the column right of it
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setObjectName("dashboard-plots")
        self.graphics.setMinimumHeight(200)  # curves stay readable however the docks are arranged
        self.log_loss = QCheckBox("Log-scale loss")
        self.log_loss.setObjectName("loss-log-scale")
        self.log_loss.setToolTip("Draw the loss plot on a logarithmic y axis")
        self.log_loss.toggled.connect(self._set_loss_log)
        for kind in PLOTS:
            if not kind.on_demand:
                self._add_plot(kind)
        theme.style_plot(self.graphics)
        self.log = QPlainTextEdit()
        self.log.setObjectName("run-log")
        self.log.setAccessibleName("Run log")
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        top = QWidget()
        bar = QHBoxLayout()
        bar.setContentsMargins(6, 2, 6, 0)
        bar.addWidget(self.log_loss)
        bar.addStretch(1)
        column = QVBoxLayout(top)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addLayout(bar)
        column.addWidget(self.graphics, 1)
        split = QSplitter(Qt.Vertical)
        split.addWidget(top)
        split.addWidget(self.log)
        split.setSizes([320, 60])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)
        self._timer = QTimer(self, interval=REDRAW_MS)
        self._timer.timeout.connect(self._redraw)
        self._timer.start()

    def _add_plot(self, kind: PlotKind) -> pg.PlotItem:
        col = 2 * PLOTS.index(kind)  # the plot, then its legend
        box = RobustViewBox(lambda: self._loss_range()) if kind.key == "loss" else None
        plot = self.graphics.addPlot(row=0, col=col, title=kind.title, viewBox=box,
                                     axisItems={"left": ValueAxis("left")})
        plot.showGrid(x=True, y=True, alpha=0.2)
        plot.setLabel("bottom", kind.x)
        plot.setLabel("left", kind.y)
        if kind.log_y or (kind.key == "loss" and self.log_loss.isChecked()):
            set_log_y(plot, True)
        legend = SideLegend(kind.legend_columns)  # beside the plot, never over its curves
        self.graphics.addItem(legend, row=0, col=col + 1)
        grid = self.graphics.ci.layout
        grid.setAlignment(legend, Qt.AlignTop | Qt.AlignLeft)
        grid.setColumnStretchFactor(col, 1)  # the plots share the width; each legend takes what it needs
        grid.setColumnStretchFactor(col + 1, 0)
        self.legends[kind.key] = legend
        box = plot.getViewBox()  # zoom, pan, auto-range on or off: hand the curves their new part
        box.sigXRangeChanged.connect(lambda *_a, key=kind.key: self._view_moved(key))
        box.sigStateChanged.connect(lambda *_a, key=kind.key: self._view_moved(key))
        for side in ("left", "bottom"):  # axes are drawn from a cached picture until they change
            plot.getAxis(side).setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self.plots[kind.key] = plot
        return plot

    def _drop_unused_plots(self) -> None:
        """A plot shown on demand goes when neither the live run nor a compared one has a curve in it."""
        for kind in PLOTS:
            plot = self.plots.get(kind.key)
            if kind.on_demand and plot is not None and not any(
                    _kind_of(n) is kind for n in self.curves) and not any(
                    p is plot for items in self.history.values() for p, _ in items):
                self.graphics.removeItem(plot)
                self.graphics.removeItem(self.legends.pop(kind.key))
                del self.plots[kind.key]

    # the live run
    def clear_live(self) -> None:
        for name, curve in self.curves.items():
            self._plot_for(name).removeItem(curve)
            self.legends[_kind_of(name).key].removeItem(curve)
        self.series, self.curves, self._dirty, self._dense = {}, {}, set(), {}
        self._drop_unused_plots()
        self.log.clear()
        for plot in self.plots.values():
            plot.enableAutoRange()

    def add_metrics(self, epoch: float, values: dict[str, float], step: int | None = None) -> None:
        """One metric event's values; a plot whose x is the step (PlotKind.x) needs `step`."""
        for name, value in values.items():
            kind = _kind_of(name)
            x = None if kind is None else step if kind.x == "step" else epoch
            if value is None or x is None or (kind.log_y and not value > 0):
                continue
            self._series(name, kind).append(x, value)
            self._dirty.add(name)

    def add_points(self, name: str, x: np.ndarray, y: np.ndarray) -> None:
        """A metric's points at once (a resumed run's curves so far), x in its plot's unit
        (`x_unit`); x must not decrease."""
        kind = _kind_of(name)
        if kind is None:
            return
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        keep = np.isfinite(y) & (y > 0) if kind.log_y else np.isfinite(y)
        if keep.any():
            self._series(name, kind).extend(x[keep], y[keep])
            self._dirty.add(name)

    def _series(self, name: str, kind: PlotKind) -> Series:
        """The metric's buffer, its curve created the first time (and its plot, if shown on demand)."""
        if name not in self.series:
            plot = self.plots.get(kind.key) or self._add_plot(kind)
            self.series[name] = Series()
            # the first colour no curve of this plot has yet: curves side by side never look alike
            # (up to 12 of them: layer groups, teachers' KD terms)
            taken = [self._styles[n][0] for n in self.curves if _kind_of(n) is kind]
            colors = PALETTE + MORE_COLORS
            color = next((c for c in colors if c not in taken), colors[len(taken) % len(colors)])
            width = 2.4 if name in ("loss/total", "val/acc", "lr") else 1.4
            self._styles[name] = (color, width)
            text = friendly_name(name)
            self.curves[name] = curve = plot.plot(
                name=text, pen=pg.mkPen(color, width=width),
                symbol="o" if name.startswith(("val/", "test/", "pretrain/probe")) else None,
                symbolSize=7 if name == "pretrain/probe_acc" else 4,
                symbolBrush=color, symbolPen=None)
            self.legends[kind.key].add(curve, text, name)
        return self.series[name]

    @staticmethod
    def x_unit(name: str) -> str | None:
        """What the x of a metric's plot is: "epoch" or "step" (None: the metric is not shown)."""
        kind = _kind_of(name)
        return None if kind is None else kind.x

    def _redraw(self) -> None:
        """Hand each changed curve only what its plot can show: the visible x range, decimated
        to min/max pairs (a curve of millions of points costs what ~MAX_POINTS cost)."""
        for name in self._dirty:
            box = self._plot_for(name).getViewBox()
            x0, x1 = (None, None) if box.autoRangeEnabled()[0] else box.viewRange()[0]
            x, y = self.series[name].visible(x0, x1, MAX_POINTS)
            dense = len(x) >= SMOOTH_BELOW
            curve = self.curves[name]
            if dense != self._dense.get(name, False):  # dense curves: thin, plain lines (fast)
                color, width = self._styles[name]
                curve.setPen(pg.mkPen(color, width=1.0 if dense else width))
                self._dense[name] = dense
            curve.setData(x, y, antialias=not dense)
        self._dirty.clear()

    def _view_moved(self, key: str) -> None:
        """Zoom or pan: the curves of that plot are decimated again for the new range."""
        plot = self.plots.get(key)  # None: a plot shown on demand that has gone
        self._dirty.update(n for n in self.curves if plot is not None and self._plot_for(n) is plot)

    def points(self, name: str) -> int:
        return self.series[name].n if name in self.series else 0

    def add_log(self, text: str, error: bool = False) -> None:
        if error:
            self.log.appendHtml(f"<span style='color:{theme.current().error}'>{_escape(text)}</span>")
        else:
            self.log.appendPlainText(text)

    # comparing runs
    def show_history(self, runs: dict[int, tuple[str, dict[str, tuple[np.ndarray, np.ndarray]]]]) -> None:
        """Overlay past runs: {run id: (label, {metric: (x, values)})}, dashed, x in each
        metric's plot's unit (`x_unit`): loss/total, val/acc, lr and the layer groups' gradient
        norms (grad/…, in the run's colour, named once in the legend)."""
        for items in self.history.values():
            for plot, item in items:
                plot.removeItem(item)
                legend = next((g for k, g in self.legends.items() if self.plots.get(k) is plot), None)
                if legend is not None:
                    legend.removeItem(item)
        self.history = {}
        for i, (run_id, (label, metrics)) in enumerate(sorted(runs.items())):
            color = QColor(PALETTE[(i + 3) % len(PALETTE)])
            items = []
            named_groups = False
            for name, (x, y) in metrics.items():
                kind = _kind_of(name)
                if kind is None or not (name in ("loss/total", "val/acc", "lr") or kind.key == "grad"):
                    continue
                x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
                if kind.log_y:
                    x, y = x[y > 0], y[y > 0]
                if not len(x):
                    continue
                legend = f"#{run_id} {label}"
                if kind.key == "grad":
                    legend, named_groups = (None if named_groups else legend + " (grad. norms)"), True
                pen = pg.mkPen(color, width=1.6 if kind.key != "grad" else 1.0, style=Qt.DashLine)
                plot = self.plots.get(kind.key) or self._add_plot(kind)
                item = plot.plot(x, y, pen=pen, name=legend)
                if legend is not None:
                    self.legends[kind.key].add(item, legend, f"run #{run_id}: {name}")
                items.append((plot, item))
            self.history[run_id] = items
        self._drop_unused_plots()

    def _set_loss_log(self, on: bool) -> None:
        """The log-scale check box: the loss plot's y axis in log10 (values at or below 0 are not drawn)."""
        plot = self.plots.get("loss")
        if plot is not None:
            set_log_y(plot, on)
            plot.getViewBox().updateAutoRange()

    def _loss_range(self) -> tuple[float, float] | None:
        """The loss plot's auto-range in y: its curves (live and compared) after the run's first steps."""
        plot = self.plots.get("loss")
        if plot is None:
            return None
        curves = [item.getOriginalDataset() for item in plot.listDataItems() if item.isVisible()]
        return robust_range(curves, log=self.log_loss.isChecked())

    def _plot_for(self, name: str) -> pg.PlotItem | None:
        kind = _kind_of(name)
        return None if kind is None else self.plots.get(kind.key)


def _kind_of(name: str) -> PlotKind | None:
    """The plot a metric goes to."""
    return next((kind for kind in PLOTS if kind.wanted(name)), None)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
