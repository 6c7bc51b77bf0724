"""The Insights panel's Attribution tab: for each explained sample, the maps of the student, its
attention and each teacher (docs/INSIGHTS.md), as images with colour bars, coloured tokens or
feature bars, by the kind of data.

The panel hands it what it needs: a function giving the insights on show (their data and arrays.npz
reader), and one saying a line in the tab's notice (text, whether it is a problem). The panel also
hides or shows `stack` (the maps) and saves `picture()`.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QStackedWidget,
    QTextBrowser,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from gui import theme
from gui.panels.dashboard import PALETTE
from gui.panels.heatmap import cut
from gui.panels.insights_file import Insights

# attributions: transparent where a map is near zero, so the input shows through
HEAT = pg.ColorMap([0.0, 0.35, 0.7, 1.0], [(255, 255, 178, 0), (254, 178, 76, 150), (240, 59, 32, 215),
                                           (128, 0, 38, 245)])
SIGNED = pg.ColorMap([0.0, 0.5, 1.0], [(33, 102, 172, 240), (247, 247, 247, 0), (178, 24, 43, 240)])


class AttributionView(QWidget):
    """The sample chooser above the maps of the chosen sample (images, tokens or bars)."""

    def __init__(self, insights: Callable[[], Insights | None], notice: Callable[[str, bool], None], parent=None):
        super().__init__(parent)
        self.setObjectName("insights-attribution-view")
        self._insights = insights  # the insights on show (None: none)
        self._notice = notice  # says a line under the tab: (text, whether it is a problem)
        controls = QWidget()
        self.sample_box = QComboBox()
        self.sample_box.setObjectName("insights-attribution-sample")
        self.sample_box.setAccessibleName("Sample to explain")
        self.sample_box.currentIndexChanged.connect(lambda _i: self.show_sample())
        self.method_label = QLabel()
        row = QHBoxLayout(controls)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Sample"))
        row.addWidget(self.sample_box, 1)
        row.addWidget(self.method_label)
        self.images = pg.GraphicsLayoutWidget()
        self.images.setObjectName("insights-attribution-images")
        theme.style_plot(self.images)
        self.token_view = TokenView()
        self.token_view.setObjectName("insights-attribution-text")
        self.bars = pg.PlotWidget()
        self.bars.setObjectName("insights-attribution-bars")
        theme.style_plot(self.bars)
        self.stack = QStackedWidget()
        for widget in (self.images, self.token_view, self.bars):
            self.stack.addWidget(widget)
        self.image_items: dict[str, pg.ImageItem] = {}  # title -> the image shown (tests read it)
        self.bar_items: dict[str, pg.BarGraphItem] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(controls)
        layout.addWidget(self.stack, 1)
        theme.follow(self, lambda w: w._recolor(), now=False)

    def _recolor(self) -> None:
        """Tokens on show: written again with text readable in the new theme."""
        if self.stack.currentWidget() is self.token_view and self.sample_box.count():
            self.show_sample()

    def picture(self) -> QWidget:
        """What "Save picture…" saves: the maps on show."""
        return self.stack.currentWidget()

    def fill(self) -> None:
        """List the explained samples of the insights on show, and show the first."""
        insights = self._insights()
        attribution = insights.data["attribution"]
        self.sample_box.blockSignals(True)
        self.sample_box.clear()
        for s in attribution["samples"]:
            self.sample_box.addItem(
                f"#{s['sample']}: true {insights.class_name(s['label'])} → student "
                f"{insights.class_name(s['predicted'])} (explained: {insights.class_name(s['target'])})")
        self.sample_box.blockSignals(False)
        self.method_label.setText(f"method: {attribution['method']}" if attribution["method"] else "")
        self.show_sample()

    def clear(self) -> None:
        """No sample, no map."""
        self.sample_box.blockSignals(True)
        self.sample_box.clear()
        self.sample_box.blockSignals(False)
        self._clear_maps()

    def _clear_maps(self) -> None:
        self.images.clear()
        self.token_view.clear()
        self.bars.getPlotItem().clear()
        legend = self.bars.getPlotItem().legend
        if legend is not None:
            legend.clear()
        self.image_items, self.bar_items = {}, {}

    def _maps(self, s: dict) -> list[tuple[str, str | None]]:
        """(title, array key) of each map of a sample: the student's, the attention, each teacher's."""
        maps = [("student", s["student"])]
        if s["attention"]:
            maps.append(("attention", s["attention"]))
        maps += [(f"teacher: {name}", key) for name, key in s["teachers"].items()]
        return maps

    def show_sample(self) -> None:
        """Show the maps of the sample chosen."""
        self._clear_maps()
        insights = self._insights()
        if insights is None or insights.data.get("attribution") is None:
            return
        samples = insights.data["attribution"]["samples"]
        index = self.sample_box.currentIndex()
        if not samples or index < 0:
            self.stack.setVisible(False)
            self._notice("The analysis worked out no attribution for this run "
                         "(analyze with --attributions N to have some).", False)
            return
        if insights.arrays_problem:
            self.stack.setVisible(False)
            self._notice(f"The attribution maps cannot be shown: {insights.arrays_problem}. "
                         "Analyze the run again.", True)
            return
        self.stack.setVisible(True)
        s = samples[index]
        kind = insights.data["kind"]
        missing: list[str] = []
        if kind == "image":
            self._show_image_maps(s, missing)
        elif kind == "text":
            self._show_token_maps(s, missing)
        else:
            self._show_feature_maps(s, missing)
        self._notice(("Not shown: " + "; ".join(missing) + ".") if missing else _attribution_words(kind),
                     bool(missing))

    def _array(self, key: str | None, title: str, ndim: int, missing: list[str]) -> np.ndarray | None:
        array = self._insights().array(key)
        if array is None:
            if key:
                missing.append(f"{title} ({key} is not in arrays.npz)")
            return None
        if array.ndim != ndim or not array.size or not np.isfinite(array).all():
            missing.append(f"{title} (array {key} has shape {list(array.shape)}, expected {ndim} dimensions "
                           "of finite numbers)")
            return None
        return array

    def _show_image_maps(self, s: dict, missing: list[str]) -> None:
        self.stack.setCurrentWidget(self.images)
        layout = self.images
        picture = self._array(s["input"], "the input image", 3, missing)
        if picture is not None and picture.shape[2] not in (1, 3):
            missing.append(f"the input image (shape {list(picture.shape)}: expected [H, W, 3])")
            picture = None
        gray = picture.mean(axis=2) if picture is not None else None
        col = 0
        if picture is not None:
            plot = self._image_plot(0, col, "input")
            item = pg.ImageItem(np.clip(picture, 0, 1) if picture.shape[2] == 3 else picture[:, :, 0],
                                axisOrder="row-major", levels=(0, 1))
            plot.addItem(item)
            self.image_items["input"] = item
            col += 2
        for title, key in self._maps(s):
            array = self._array(key, title, 2, missing)
            if array is None:
                continue
            plot = self._image_plot(0, col, title)
            if gray is not None and gray.shape == array.shape:
                under = pg.ImageItem(gray, axisOrder="row-major", levels=(0, 1))
                under.setOpacity(0.55)
                plot.addItem(under)
            item = pg.ImageItem(array, axisOrder="row-major")
            plot.addItem(item)
            low, high = float(array.min()), float(array.max())
            signed = low < 0
            top = max(abs(low), abs(high)) or 1.0
            bar = pg.ColorBarItem(values=(-top, top) if signed else (0.0, top), colorMap=SIGNED if signed else HEAT,
                                  interactive=False, width=10)
            bar.setImageItem(item)
            layout.addItem(bar, row=0, col=col + 1)
            self.image_items[title] = item
            col += 2

    def _image_plot(self, row: int, col: int, title: str) -> pg.PlotItem:
        plot = self.images.addPlot(row=row, col=col, title=html.escape(cut(title, 28)))
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.hideAxis("left")
        plot.hideAxis("bottom")
        plot.invertY(True)
        plot.setAspectLocked(True)
        plot.setMinimumWidth(140)
        return plot

    def _show_token_maps(self, s: dict, missing: list[str]) -> None:
        self.stack.setCurrentWidget(self.token_view)
        parts = [_legend_html()]
        for title, key in self._maps(s):
            scores = self._array(key, title, 1, missing)
            if scores is None:
                continue
            tokens = s["tokens"] if s["tokens"] and len(s["tokens"]) == len(scores) else None
            if tokens is None:
                tokens = [f"[{i}]" for i in range(len(scores))]
                missing.append(f"the tokens of {title} (insights.json lists none that fit its {len(scores)} scores)")
            top = float(np.abs(scores).max()) or 1.0
            spans = "".join(_token_span(t, float(v), top) for t, v in zip(tokens, scores))
            parts.append(f"<p><b>{html.escape(title)}</b><br>{spans}</p>")
        self.token_view.setHtml("".join(parts))

    def _show_feature_maps(self, s: dict, missing: list[str]) -> None:
        self.stack.setCurrentWidget(self.bars)
        plot = self.bars.getPlotItem()
        plot.setMenuEnabled(False)
        if plot.legend is None:
            plot.addLegend(offset=(-10, 10), labelTextSize="8pt")
        plot.setLabel("left", "attribution")
        plot.setLabel("bottom", "feature")
        plot.showGrid(y=True, alpha=0.2)
        maps = [(title, scores) for title, key in self._maps(s)
                if (scores := self._array(key, title, 1, missing)) is not None]
        if not maps:
            return
        width = len(maps[0][1])
        maps = [(t, v) for t, v in maps if len(v) == width]
        names = self._feature_names(s, width)
        step = 0.8 / len(maps)
        for k, (title, scores) in enumerate(maps):
            x = np.arange(width) - 0.4 + step * (k + 0.5)
            color = PALETTE[k % len(PALETTE)]
            bars = pg.BarGraphItem(x=x, height=scores, width=step * 0.95, brush=color, pen=pg.mkPen(None))
            plot.addItem(bars)
            plot.legend.addItem(bars, title)
            self.bar_items[title] = bars
        plot.addLine(y=0, pen=pg.mkPen("#9ca3af"))
        plot.getAxis("bottom").setTicks([[(i, cut(n, 12)) for i, n in enumerate(names)], []])
        plot.autoRange()

    def _feature_names(self, s: dict, width: int) -> list[str]:
        data = self._insights().data
        for names in (s["features"], data.get("features"), s["tokens"]):
            if names and len(names) == width:
                return names
        for m in data.get("mistakes") or []:  # a table's columns, as the mistakes name them
            if m["sample"] == s["sample"] and m["row"] and len(m["row"]) == width:
                return list(m["row"])
        return [f"x[{i}]" for i in range(width)]


class TokenView(QTextBrowser):
    """Tokens coloured by their scores; the score of the token under the mouse as a tooltip."""

    def token_tip(self, pos) -> str:
        return self.cursorForPosition(pos).charFormat().toolTip()

    def event(self, event) -> bool:
        if event.type() == QEvent.ToolTip:
            tip = self.token_tip(self.viewport().mapFromGlobal(event.globalPos()))
            if tip:
                QToolTip.showText(event.globalPos(), tip, self)
            else:
                QToolTip.hideText()
            return True
        return super().event(event)


def _token_span(token: str, score: float, top: float) -> str:
    share = min(abs(score) / top, 1.0)
    r, g, b = (178, 24, 43) if score >= 0 else (33, 102, 172)
    color = "#fff" if share > 0.6 or theme.current().dark else "#111"  # on the colour, over the page
    return (f"<span style='background-color: rgba({r},{g},{b},{share:.2f}); color: {color}' "
            f"title='score {score:.4g}'>{html.escape(token)}</span> ")


def _legend_html() -> str:
    cells = "".join(f"<td style='background-color: rgba({r},{g},{b},{a:.2f}); padding: 2px 8px'>{v}</td>"
                    for r, g, b, a, v in ((33, 102, 172, 1.0, "−max"), (33, 102, 172, 0.4, ""), (255, 255, 255, 0, "0"),
                                          (178, 24, 43, 0.4, ""), (178, 24, 43, 1.0, "+max")))
    return ("<p>Each token is coloured by its attribution for the explained class, scaled to the largest "
            f"of each row: red pushes towards that class, blue away from it.</p><table><tr>{cells}</tr></table>")


def _attribution_words(kind: str) -> str:
    if kind == "image":
        return ("Warm (red) colours mark the pixels that pushed the model towards the explained class, blue ones "
                "(signed maps) away from it; each map has its own scale (its colour bar).")
    if kind == "text":
        return "Point at a token for its score."
    return "Bars: each feature's attribution for the explained class, per model."
