"""The app never hangs on a hostile file or a stuck engine (issue 22): a project that is a named
pipe, an engine stopped with SIGSTOP, an event line without end, and a project of many nodes
or many teachers."""

from __future__ import annotations

import os

import pytest
from PySide6.QtWidgets import QMessageBox

from tests.engine.test_regular_files import unblock_later


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_project_that_is_a_fifo_is_refused_and_the_window_stays(window, qtbot, tmp_path):
    fifo = tmp_path / "p.distill.json"
    os.mkfifo(fifo)
    unblock_later(fifo)  # before the fix the window froze in read(); this ends the freeze
    assert window.open_project(fifo, ask=False) is False
    box = window.findChild(QMessageBox, "problems-box")
    assert box is not None and "named pipe (FIFO), not a regular file" in box.informativeText()
    box.close()
