"""Real widgets, offscreen: a main window with its own settings file, and mouse/drop helpers."""

from __future__ import annotations

import os
import warnings

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent, QMouseEvent
from PySide6.QtWidgets import QApplication


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)


@pytest.fixture
def window(qtbot, settings, tmp_path):
    from gui.main_window import MainWindow

    win = MainWindow(settings, db=tmp_path / "runs.sqlite")
    win.resize(1400, 860)
    win.show()
    qtbot.waitExposed(win)
    yield win
    # let child processes (model inspection) finish before the window goes away
    qtbot.waitUntil(lambda: win.model_inspector.busy == 0, timeout=30000)
    if win.runner.running:
        win.runner.engine.kill()
        qtbot.waitUntil(lambda: not win.runner.running, timeout=30000)
    win.undo_stack.setClean()  # no "save changes?" question when it closes
    win.close()
    win.deleteLater()


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


@pytest.fixture
def doc(qapp):
    """An empty document (QtCore only), for the model's rules and undo commands."""
    from gui.document.model import Document

    return Document()


@pytest.fixture
def stack(qapp):
    from PySide6.QtGui import QUndoStack

    return QUndoStack()
