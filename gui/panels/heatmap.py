"""A heat map of a square or rectangular matrix in pyqtgraph: one ImageItem (row-major: row i
of the matrix is row i on screen, from the top), labels on both axes, axis titles, a colour bar
with values, the values written on the cells when there are few, missing cells (None) grey and
a tooltip with row, column and value under the mouse."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QCursor
from PySide6.QtWidgets import QGraphicsRectItem, QToolTip, QVBoxLayout, QWidget

from gui import theme

MAX_TEXT_CELLS = 15  # classes: with more, the values are only in the tooltip
MAX_LABEL = 14  # characters of a class name on an axis; longer ones are cut with "…"
BLUES = pg.ColorMap([0.0, 0.5, 1.0], [(247, 251, 255), (107, 174, 214), (8, 48, 107)])


def cut(label: str, limit: int = MAX_LABEL) -> str:
    return label if len(label) <= limit else label[:limit - 1] + "…"


class HeatMap(QWidget):
    def __init__(self, name: str, parent=None):
        super().__init__(parent)
        self.setObjectName(name)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setObjectName(f"{name}-plot")
        theme.style_plot(self.graphics)
        self.graphics.setMinimumHeight(220)
        self.plot: pg.PlotItem = self.graphics.addPlot(row=0, col=0)
        self.plot.setMenuEnabled(False)
        self.plot.invertY(True)
        self.plot.setAspectLocked(False)
        self.plot.hideButtons()
        self.image = pg.ImageItem(axisOrder="row-major")
        self.missing = QGraphicsRectItem()  # grey behind the image: NaN cells are transparent
        self.missing.setPen(pg.mkPen(None))
        self.plot.addItem(self.missing)
        self.plot.addItem(self.image)
        self.colorbar = pg.ColorBarItem(values=(0, 1), colorMap=BLUES, interactive=False, width=14)
        self.colorbar.setImageItem(self.image, insert_in=self.plot)
        self.texts: list[pg.TextItem] = []
        self.matrix = np.zeros((0, 0))  # what is shown, in the shown order (NaN: missing)
        self.row_labels: list[str] = []
        self.col_labels: list[str] = []
        self._tip: Callable[[int, int], str] | None = None
        self._format = "{:.2f}"
        self.graphics.scene().sigMouseMoved.connect(self._hover)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics)
        theme.follow(self, lambda w: w._recolor())  # the missing cells' grey, their dash

    def set_matrix(self, matrix: Sequence[Sequence[float | None]], row_labels: Sequence[str],
                   col_labels: Sequence[str], *, order: Sequence[int] | None = None,
                   col_order: Sequence[int] | None = None, levels: tuple[float, float] | None = None,
                   value_format: str = "{:.2f}", x_title: str = "", y_title: str = "", bar_title: str = "",
                   tip: Callable[[int, int], str] | None = None) -> None:
        """Show `matrix` (None: missing); rows in `order` and columns in `col_order` (default: the
        rows' order when square). `tip(i, j)` adds a line to the tooltip, with i, j indices into
        the matrix as given (not as shown)."""
        values = np.array([[np.nan if v is None else float(v) for v in row] for row in matrix], dtype=float)
        values = values.reshape(len(row_labels), len(col_labels))
        rows = list(order) if order is not None else list(range(values.shape[0]))
        if col_order is not None:
            cols = list(col_order)
        else:
            cols = rows if order is not None and values.shape[0] == values.shape[1] else list(range(values.shape[1]))
        self.rows, self.cols = rows, cols
        self.matrix = values[np.ix_(rows, cols)] if values.size else values
        self.row_labels = [str(row_labels[i]) for i in rows]
        self.col_labels = [str(col_labels[j]) for j in cols]
        self._tip, self._format = tip, value_format
        finite = self.matrix[np.isfinite(self.matrix)]
        if levels is None:
            top = float(finite.max()) if finite.size else 1.0
            levels = (0.0, top if top > 0 else 1.0)
        self.levels = levels
        n_rows, n_cols = self.matrix.shape
        if not self.matrix.size:  # nothing to draw (no models to compare)
            self.image.clear()
            self._write_values()
            return
        self.image.setImage(self.matrix, levels=levels, autoLevels=False)
        self.image.setRect(QRectF(0, 0, n_cols, n_rows))
        self.missing.setRect(QRectF(0, 0, n_cols, n_rows))
        self.colorbar.setLevels(levels)
        self.colorbar.axis.setLabel(bar_title)
        bottom, left = self.plot.getAxis("bottom"), self.plot.getAxis("left")
        bottom.setTicks([[(j + 0.5, cut(label)) for j, label in enumerate(self.col_labels)], []])
        left.setTicks([[(i + 0.5, cut(label)) for i, label in enumerate(self.row_labels)], []])
        self.plot.setLabel("bottom", x_title)
        self.plot.setLabel("left", y_title)
        self.plot.setXRange(0, max(n_cols, 1), padding=0.02)
        self.plot.setYRange(0, max(n_rows, 1), padding=0.02)
        self._write_values()

    def _recolor(self) -> None:
        self.missing.setBrush(QColor(theme.current().missing))
        if self.matrix.size:
            self._write_values()  # a missing cell's dash in the new text colour

    def _write_values(self) -> None:
        for item in self.texts:
            self.plot.removeItem(item)
        self.texts = []
        n_rows, n_cols = self.matrix.shape
        if max(n_rows, n_cols) > MAX_TEXT_CELLS:
            return
        lo, hi = self.levels
        for i in range(n_rows):
            for j in range(n_cols):
                value = self.matrix[i, j]
                if np.isfinite(value):
                    share = 0.0 if hi <= lo else min(max((value - lo) / (hi - lo), 0.0), 1.0)
                    r, g, b, _a = BLUES.map(share, mode="float")
                    dark = 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.55
                    text = self._format.format(value)
                else:
                    dark, text = theme.current().dark, "–"  # on the missing colour
                item = pg.TextItem(text, color="w" if dark else "#1f2937", anchor=(0.5, 0.5))
                item.setPos(j + 0.5, i + 0.5)
                self.plot.addItem(item)
                self.texts.append(item)

    def cell_tip(self, i: int, j: int) -> str:
        """The tooltip of the cell shown at row i, column j."""
        value = self.matrix[i, j]
        shown = self._format.format(value) if np.isfinite(value) else "no value"
        lines = [f"{self.plot.getAxis('left').labelText or 'row'}: {self.row_labels[i]}",
                 f"{self.plot.getAxis('bottom').labelText or 'column'}: {self.col_labels[j]}", f"value: {shown}"]
        if self._tip is not None:
            extra = self._tip(self.rows[i], self.cols[j])
            if extra:
                lines.append(extra)
        return "\n".join(lines)

    def _hover(self, pos) -> None:
        box = self.plot.getViewBox()
        if not box.sceneBoundingRect().contains(pos) or not self.matrix.size:
            QToolTip.hideText()
            return
        point = box.mapSceneToView(pos)
        i, j = int(np.floor(point.y())), int(np.floor(point.x()))
        if 0 <= i < self.matrix.shape[0] and 0 <= j < self.matrix.shape[1]:
            QToolTip.showText(QCursor.pos(), self.cell_tip(i, j), self.graphics)
        else:
            QToolTip.hideText()
