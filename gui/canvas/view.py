"""The canvas view: zoom (wheel), pan (middle button or space+drag), fit to view, drops."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QGraphicsView

from gui import theme
from gui.canvas.drops import DropHandler
from gui.canvas.items import NodeItem
from gui.canvas.scene import PipelineScene

GRID = 24.0
MIN_FIT, MAX_FIT = 0.8, 1.25  # Fit to View's zoom range: node text stays at 10 px or more (items.py)


class CanvasView(QGraphicsView):
    def __init__(self, scene: PipelineScene, drops: DropHandler, parent=None):
        super().__init__(scene, parent)
        self.drops = drops
        self.setObjectName("canvas")
        self.setAccessibleName("Pipeline canvas")
        self.setRenderHints(QPainter.Antialiasing | QPainter.TextAntialiasing)
        self.setDragMode(QGraphicsView.RubberBandDrag)
        self.setTransformationAnchor(QGraphicsView.AnchorUnderMouse)
        self.setViewportUpdateMode(QGraphicsView.SmartViewportUpdate)
        self.setAcceptDrops(True)
        self.viewport().setAcceptDrops(True)
        self.setFocusPolicy(Qt.StrongFocus)
        self._pan_from: QPointF | None = None
        self._fitting = False
        self.auto_fit = False  # fitted on open: fitted again when the view's size changes, until a zoom or pan
        theme.follow(self, lambda w: w._repaint())

    def _repaint(self) -> None:
        """A new theme: the background, and every card and link, painted again."""
        self.resetCachedContent()
        self.scene().update()
        self.viewport().update()

    # zoom and pan
    def zoom(self, factor: float) -> None:
        scale = self.transform().m11() * factor
        if 0.2 <= scale <= 4.0:
            self.auto_fit = False
            self.scale(factor, factor)

    def wheelEvent(self, event):
        self.zoom(1.15 if event.angleDelta().y() > 0 else 1 / 1.15)

    def fit_to_view(self) -> None:
        """The whole graph in the view, centred, zoomed 0.8× to 1.25× (a graph too large for the
        view at 0.8× shows its start: its top, its left where the data and teachers are; the rest
        is a scroll away), and the same again
        when the view's size changes — the window shown, a dock moved — until the user zooms or pans."""
        self.auto_fit = True
        rect = self.scene().itemsBoundingRect()
        if rect.isEmpty():
            self.resetTransform()
            self.centerOn(0, 0)
            return
        self.fitInView(rect.adjusted(-30, -20, 30, 20), Qt.KeepAspectRatio)
        scale = self.transform().m11()
        if scale > MAX_FIT or scale < MIN_FIT:  # never blown up, never too small to read
            scale = MAX_FIT if scale > MAX_FIT else MIN_FIT
            self.resetTransform()
            self.scale(scale, scale)
            top = rect.top() - 20 + self.viewport().height() / (2 * scale)  # too tall: its top shown
            left = rect.left() - 30 + self.viewport().width() / (2 * scale)  # too wide: its inputs shown
            self.centerOn(min(rect.center().x(), left), min(rect.center().y(), top))

    def resizeEvent(self, event):
        super().resizeEvent(event)
        if self.auto_fit and not self._fitting:
            self._fitting = True  # a scroll bar coming or going resizes the view again
            try:
                self.fit_to_view()
            finally:
                self._fitting = False

    def mousePressEvent(self, event):
        if event.button() == Qt.MiddleButton:
            self.auto_fit = False
            self._pan_from = event.position()
            self.setCursor(Qt.ClosedHandCursor)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event):
        if self._pan_from is not None:
            delta = event.position() - self._pan_from
            self._pan_from = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - int(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - int(delta.y()))
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event):
        if self._pan_from is not None and event.button() == Qt.MiddleButton:
            self._pan_from = None
            self.unsetCursor()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event):
        if event.key() == Qt.Key_Space and not event.isAutoRepeat():
            self.auto_fit = False
            self.setDragMode(QGraphicsView.ScrollHandDrag)
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event):
        if event.key() == Qt.Key_Space and not event.isAutoRepeat():
            self.setDragMode(QGraphicsView.RubberBandDrag)
        super().keyReleaseEvent(event)

    # drops from the palette, the library and the file manager
    def dragEnterEvent(self, event):
        if self.drops.accepts(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event):
        if self.drops.accepts(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event):
        point = event.position().toPoint()
        item = self.itemAt(point)
        while item is not None and not isinstance(item, NodeItem):
            item = item.parentItem()
        self.drops.drop(event.mimeData(), self.mapToScene(point), item.node.id if item is not None else None)
        event.acceptProposedAction()

    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        colors = theme.current()
        painter.fillRect(rect, QColor(colors.canvas))
        painter.setPen(QPen(QColor(colors.grid), 0))
        left = int(rect.left() // GRID) * GRID
        top = int(rect.top() // GRID) * GRID
        x = left
        points = []
        while x < rect.right():
            y = top
            while y < rect.bottom():
                points.append(QPointF(x, y))
                y += GRID
            x += GRID
        if len(points) < 40000:
            painter.drawPoints(points)
