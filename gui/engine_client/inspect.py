"""Reading model files through `distill-engine inspect --json`, in a child process.

The app never opens a model file itself: onnx, torch and untrusted bytes stay out of it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import shiboken6
from PySide6.QtCore import QObject, QProcess, Signal

from gui.engine_client.engine_command import describe_program, engine_command

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
        proc = QProcess(self)
        program, arguments = engine_command(["inspect", "--json", str(path)])
        proc.setProgram(program)
        proc.setArguments(arguments)
        proc.finished.connect(lambda code, status, p=proc: self._done(p, code, status, callback))
        proc.errorOccurred.connect(lambda err, p=proc: self._failed(p, callback)
                                   if err == QProcess.FailedToStart else None)
        self._running.add(proc)
        self.busyChanged.emit(self.busy)
        proc.start()

    def _done(self, proc: QProcess, code: int, status, callback: Callback) -> None:
        if not shiboken6.isValid(proc) or not shiboken6.isValid(self):
            return  # the app is closing
        out = bytes(proc.readAllStandardOutput()).decode("utf-8", "replace")
        err = bytes(proc.readAllStandardError()).decode("utf-8", "replace")
        self._finish(proc)
        if code == 0 and status == QProcess.NormalExit:
            try:
                callback(json.loads(out), None)
                return
            except json.JSONDecodeError:
                err = "the engine gave an unreadable answer"
        lines = [line.strip() for line in err.strip().splitlines() if line.strip()]
        message = " ".join(lines[:2]) if lines else f"the engine exited with code {code}"
        callback(None, message.removeprefix("cannot inspect: "))

    def _failed(self, proc: QProcess, callback: Callback) -> None:
        self._finish(proc)
        callback(None, f"could not start the engine ({describe_program()})")

    def _finish(self, proc: QProcess) -> None:
        if proc in self._running:
            self._running.discard(proc)
            proc.deleteLater()
            self.busyChanged.emit(self.busy)
