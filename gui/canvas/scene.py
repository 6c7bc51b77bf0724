"""The scene mirrors the document: items appear, change and vanish only on document signals."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QTimer, Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import QGraphicsScene

from gui.canvas.interactions import LinkDrag, MoveTracker
from gui.canvas.items import LinkItem, NodeItem, RefusalLabel
from gui.document.commands import RemoveItems
from gui.document.model import Document, Link
from gui.document.validation import node_status

REFUSAL_MS = 4000


class PipelineScene(QGraphicsScene):
    message = Signal(str)  # for the status bar

    def __init__(self, doc: Document, undo_stack: QUndoStack, parent=None):
        super().__init__(parent)
        self.doc, self.undo_stack = doc, undo_stack
        self.node_items: dict[str, NodeItem] = {}
        self.link_items: dict[Link, LinkItem] = {}
        self.link_drag = LinkDrag(self, doc, undo_stack, self.refuse)
        self.moves = MoveTracker(self, doc, undo_stack)
        self.setSceneRect(-2000, -2000, 4000, 4000)
        doc.nodeAdded.connect(self._node_added)
        doc.nodeRemoved.connect(self._node_removed)
        doc.nodeChanged.connect(self._node_changed)
        doc.nodeMoved.connect(self._node_moved)
        doc.linkAdded.connect(self._link_added)
        doc.linkRemoved.connect(self._link_removed)
        doc.changed.connect(self.refresh_states)
        for node_id in doc.nodes:
            self._node_added(node_id)
        for link in doc.links:
            self._link_added(link)

    # mirror
    def _node_added(self, node_id: str) -> None:
        item = NodeItem(self.doc.nodes[node_id])
        self.node_items[node_id] = item
        self.addItem(item)

    def _node_removed(self, node_id: str) -> None:
        self.removeItem(self.node_items.pop(node_id))

    def _node_changed(self, node_id: str) -> None:
        self.node_items[node_id].refresh(self.doc.nodes[node_id])

    def _node_moved(self, node_id: str) -> None:
        self.node_items[node_id].setPos(*self.doc.nodes[node_id].pos)

    def _link_added(self, link: Link) -> None:
        item = LinkItem(link, self.node_items[link.src], self.node_items[link.dst])
        self.link_items[link] = item
        self.addItem(item)

    def _link_removed(self, link: Link) -> None:
        item = self.link_items.pop(link)
        item.detach()
        self.removeItem(item)

    def refresh_states(self) -> None:
        for node_id, item in self.node_items.items():
            state, reason = node_status(self.doc, self.doc.nodes[node_id])
            item.refresh(self.doc.nodes[node_id], state, reason)

    # editing
    def delete_selection(self) -> bool:
        nodes = [i.node.id for i in self.selectedItems() if isinstance(i, NodeItem)]
        links = [i.link for i in self.selectedItems() if isinstance(i, LinkItem)]
        if not nodes and not links:
            return False
        self.undo_stack.push(RemoveItems(self.doc, nodes, links))
        return True

    def refuse(self, reason: str, at: QPointF) -> None:
        label = RefusalLabel(reason, at + QPointF(12, 8))
        view = self.views()[0] if self.views() else None
        if view is not None:  # keep it inside what the user sees
            visible = view.mapToScene(view.viewport().rect()).boundingRect()
            x = min(label.x(), visible.right() - label.boundingRect().width() - 8)
            y = min(label.y(), visible.bottom() - label.boundingRect().height() - 8)
            label.setPos(max(x, visible.left() + 8), max(y, visible.top() + 8))
        self.addItem(label)
        QTimer.singleShot(REFUSAL_MS, label, label.deleteLater)  # gone with the scene, too
        self.message.emit(f"Link refused: {reason}")

    # mouse: interactions first, then Qt's selection and moving
    def mousePressEvent(self, event):
        if self.link_drag.press(event):
            event.accept()
            return
        self.moves.press()
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event):
        if self.link_drag.move(event):
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event):
        if self.link_drag.release(event):
            event.accept()
            return
        super().mouseReleaseEvent(event)
        self.moves.release()
