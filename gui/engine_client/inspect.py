"""Reading model files through `distill-engine inspect --json`, in a child process.

The app never opens a model file itself: onnx, torch and untrusted bytes stay out of it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import shiboken6
from PySide6.QtCore import QObject, QProcess, Signal

from gui.engine_client.engine_command import describe_program
from gui.engine_client.engine_message import clean_engine_message
from gui.engine_client.process import start_engine

Callback = Callable[[dict | None, str | None], None]  # (info, error message)


class ModelInspector(QObject):
    busyChanged = Signal(int)  # how many inspections are under way

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._running: set[QProcess] = set()

    @property
    def busy(self) -> int:
        return len(self._running)

    def inspect(self, path: str | Path, callback: Callback) -> None:
        proc = start_engine(self, ["inspect", "--json", str(path)],  # the callbacks run later: proc is known
                            finished=lambda code, status: self._done(proc, code, status, callback),
                            failed_to_start=lambda: self._failed(proc, callback))
        self._running.add(proc)
        self.busyChanged.emit(self.busy)

    def _done(self, proc: QProcess, code: int, status, callback: Callback) -> None:
        if not shiboken6.isValid(proc) or not shiboken6.isValid(self):
            return  # the app is closing
        out = bytes(proc.readAllStandardOutput()).decode("utf-8", "replace")
        err = bytes(proc.readAllStandardError()).decode("utf-8", "replace")
        self._finish(proc)
        if code == 0 and status == QProcess.NormalExit:
            try:
                info = json.loads(out)
            except (ValueError, RecursionError):
                info = None
            if isinstance(info, dict):
                callback(info, None)
                return
            err = "the engine gave an unreadable answer"
        callback(None, clean_engine_message(err, code))

    def _failed(self, proc: QProcess, callback: Callback) -> None:
        self._finish(proc)
        callback(None, f"could not start the engine ({describe_program()})")

    def _finish(self, proc: QProcess) -> None:
        if proc in self._running:
            self._running.discard(proc)
            proc.deleteLater()
            self.busyChanged.emit(self.busy)
