"""Helpers the GUI tests share: real mouse and drop events on the canvas, building a document
node by node or from a project file, and starting a run from the window."""

from __future__ import annotations

import warnings

from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent, QMouseEvent
from PySide6.QtWidgets import QApplication

from gui.document.commands import AddNode
from gui.document.convert import project_to_nodes, read_project
from gui.document.kinds import default_props
from gui.document.model import Node


def view_point(view, scene_pos: QPointF) -> QPoint:
    return view.mapFromScene(scene_pos)


def mouse(view, kind, scene_pos: QPointF, button=Qt.LeftButton, buttons=Qt.LeftButton) -> None:
    """Send one real mouse event to the canvas viewport at a scene position."""
    local = QPointF(view_point(view, scene_pos))
    glob = QPointF(view.viewport().mapToGlobal(local.toPoint()))
    event = QMouseEvent(kind, local, glob, button, buttons, Qt.NoModifier)
    QApplication.sendEvent(view.viewport(), event)


def drag(view, start: QPointF, end: QPointF, steps: int = 5) -> None:
    mouse(view, QEvent.MouseButtonPress, start)
    for i in range(1, steps + 1):
        mouse(view, QEvent.MouseMove, start + (end - start) * (i / steps), Qt.NoButton)
    mouse(view, QEvent.MouseButtonRelease, end, Qt.LeftButton, Qt.NoButton)


def drop(widget_or_view, mime: QMimeData, scene_pos: QPointF | None = None) -> bool:
    """A drag that ends in a drop, delivered as the window system does: enter, move, drop.
    Returns whether the target accepted the drag."""
    if scene_pos is None:
        target = widget_or_view.viewport() if hasattr(widget_or_view, "viewport") else widget_or_view
        point = target.rect().center()
    else:
        target, point = widget_or_view.viewport(), view_point(widget_or_view, scene_pos)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        enter = QDragEnterEvent(point, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
        QApplication.sendEvent(target, enter)
        if not enter.isAccepted():
            return False
        QApplication.sendEvent(target, QDragMoveEvent(point, Qt.CopyAction, mime, Qt.LeftButton,
                                                      Qt.NoModifier))
    QApplication.sendEvent(target, QDropEvent(QPointF(point), Qt.CopyAction, mime, Qt.LeftButton,
                                              Qt.NoModifier))
    return True


def file_mime(*paths) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return mime


def add(doc, stack, kind, **props) -> Node:
    node = Node(doc.new_id(kind), kind, {**default_props(kind), **props}, (0, 0))
    stack.push(AddNode(doc, node))
    return doc.nodes[node.id]


def load_into(doc, path):
    name, nodes, links = project_to_nodes(read_project(path), path.resolve().parent)
    doc.set_name(name)
    for n in nodes:
        doc.add_node(n)
    for link in links:
        doc.add_link(link)
    return doc


def palette_mime(window, kind):
    kinds = window.palette.kinds
    item = next(kinds.item(i) for i in range(kinds.count()) if kinds.item(i).data(Qt.UserRole) == kind)
    return kinds.mimeData([item])


def start_run(window, qtbot, path):
    """Open the project and press Run; returns the list that runEnded fills with (status, message)."""
    assert window.open_project(path, ask=False)
    window.runner.engine_events = []
    window.runner.engine.event.connect(window.runner.engine_events.append)
    ended = []
    window.runner.runEnded.connect(lambda status, message: ended.append((status, message)))
    window.runner.act_run.trigger()
    assert window.runner.running and not window.runner.act_run.isEnabled()
    return ended
