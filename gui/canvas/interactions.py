"""Mouse logic of the canvas, kept out of the items: dragging a link, moving nodes.

Each interaction is given what it works on (the graphics scene, the document, the undo stack)
rather than the PipelineScene that owns it, so the scene depends on the interactions and not
the other way round.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QPen, QUndoStack
from PySide6.QtWidgets import QGraphicsPathItem, QGraphicsScene

from gui.canvas.items import NodeItem, PortItem, link_path
from gui.document.commands import AddLink, MoveNodes
from gui.document.links import check_link
from gui.document.model import Document, Link
from gui.theme import ACCENT


class LinkDrag:
    """Press on a port, drag, release on another port: a link, or the reason it is refused
    (passed to `refuse` with the scene position where the drag ended)."""

    def __init__(self, scene: QGraphicsScene, doc: Document, undo_stack: QUndoStack,
                 refuse: Callable[[str, QPointF], None]):
        self.scene, self.doc, self.undo_stack, self.refuse = scene, doc, undo_stack, refuse
        self.start: PortItem | None = None
        self.preview: QGraphicsPathItem | None = None

    def press(self, event) -> bool:
        port = self._port_at(event.scenePos())
        if port is None or event.button() != Qt.LeftButton:
            return False
        self.start = port
        self.preview = QGraphicsPathItem()
        self.preview.setPen(QPen(QColor(ACCENT), 2, Qt.DashLine))
        self.preview.setZValue(5)
        self.scene.addItem(self.preview)
        self.move(event)
        return True

    def move(self, event) -> bool:
        if self.start is None:
            return False
        a, b = self.start.scene_anchor(), event.scenePos()
        self.preview.setPath(link_path(a, b) if self.start.is_output else link_path(b, a))
        return True

    def release(self, event) -> bool:
        if self.start is None:
            return False
        start, self.start = self.start, None
        self.scene.removeItem(self.preview)
        self.preview = None
        end = self._port_at(event.scenePos())
        if end is None or end is start:
            return True
        self.connect(start, end, event.scenePos())
        return True

    def connect(self, a: PortItem, b: PortItem, at: QPointF) -> bool:
        """Make the link a→b (either direction), or show why not. True when made."""
        if a.is_output == b.is_output:
            self.refuse("connect an output (right side) to an input (left side)", at)
            return False
        out, inp = (a, b) if a.is_output else (b, a)
        link = Link(out.node_item.node.id, out.name, inp.node_item.node.id, inp.name)
        reason = check_link(self.doc, link)
        if reason:
            self.refuse(reason, at)
            return False
        self.undo_stack.push(AddLink(self.doc, link))
        return True

    def _port_at(self, pos: QPointF) -> PortItem | None:
        for item in self.scene.items(pos):
            if isinstance(item, PortItem):
                return item
        return None


class MoveTracker:
    """Qt moves the items; on release, the moves become one undo command."""

    def __init__(self, scene: QGraphicsScene, doc: Document, undo_stack: QUndoStack):
        self.scene, self.doc, self.undo_stack = scene, doc, undo_stack
        self.before: dict[str, tuple[float, float]] = {}

    def press(self) -> None:
        self.before = {item.node.id: (item.pos().x(), item.pos().y())
                       for item in self.scene.items() if isinstance(item, NodeItem)}

    def release(self) -> None:
        moves = {}
        for item in self.scene.items():
            if isinstance(item, NodeItem) and item.node.id in self.before:
                old, new = self.before[item.node.id], (item.pos().x(), item.pos().y())
                if old != new:
                    moves[item.node.id] = (old, new)
        self.before = {}
        if moves:
            self.undo_stack.push(MoveNodes(self.doc, moves))
