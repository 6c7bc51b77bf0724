"""Real widgets, offscreen: a main window with its own settings file, an empty document and an
undo stack. Mouse, drop and document helpers are in tests/gui/helpers.py."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PySide6.QtCore import QProcess, QSettings


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
    # end the model inspections still under way (each is an engine child process; waiting for
    # them costs seconds per test) before the window goes away
    for proc in win.model_inspector.findChildren(QProcess):
        proc.kill()
    qtbot.waitUntil(lambda: win.model_inspector.busy == 0, timeout=30000)
    win.folder_scans.scanner.cancel_all()  # folder scans: killed and reaped, nothing calls back later
    if win.runner.running:
        win.runner.engine.kill()
        qtbot.waitUntil(lambda: not win.runner.running, timeout=30000)
    win.undo_stack.setClean()  # no "save changes?" question when it closes
    win.close()
    win.deleteLater()


@pytest.fixture
def doc(qapp):
    """An empty document (QtCore only), for the model's rules and undo commands."""
    from gui.document.model import Document

    return Document()


@pytest.fixture
def stack(qapp):
    from PySide6.QtGui import QUndoStack

    return QUndoStack()
