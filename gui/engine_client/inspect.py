"""Reading model files through `distill-engine inspect --json` (and text data files through
`preview-text --json`), in a child process.

The app never opens a model file itself: onnx, torch and untrusted bytes stay out of it.
At most MAX_PROCESSES inspections run at once; the others wait in a queue, in order (a project
of 60 teachers started 58 processes at once, 2.1 GB).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from pathlib import Path

import shiboken6
from PySide6.QtCore import QObject, QProcess, Signal

from gui.engine_client.engine_command import describe_program
from gui.engine_client.engine_message import clean_engine_message
from gui.engine_client.process import start_engine

Callback = Callable[[dict | None, str | None], None]  # (info, error message)
MAX_PROCESSES = 3  # engine children reading model files at once (each loads onnx/torch: ~40 MB+)


class ModelInspector(QObject):
    busyChanged = Signal(int)  # how many inspections are under way

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._running: set[QProcess] = set()
        self._queue: deque[tuple[list[str], Callback, str]] = deque()

    @property
    def busy(self) -> int:
        """Inspections under way: running, or waiting for a free process."""
        return len(self._running) + len(self._queue)

    @property
    def processes(self) -> int:
        return len(self._running)

    def inspect(self, path: str | Path, callback: Callback, tokenizer: str | None = None,
                roles: dict | None = None) -> None:
        """What the model file holds; `tokenizer`, `roles`: a text teacher's input.tokenizer and
        input.roles, where set."""
        args = ["inspect", "--json", str(path)]
        if tokenizer:
            args += ["--tokenizer", str(tokenizer)]
        if roles:
            args += ["--roles", json.dumps(roles)]
        self.ask(args, callback)

    def preview_text(self, path: str | Path, text_column: str, label_column: str | None,
                     callback: Callback) -> None:
        """A text data file's counts and first texts per class (engine/text_preview.py)."""
        args = ["preview-text", "--json", str(path), "--text-column", text_column]
        if label_column:
            args += ["--label-column", label_column]
        self.ask(args, callback, "cannot preview: ")

    def ask(self, args: list[str], callback: Callback, prefix: str = "cannot inspect: ") -> None:
        """Run `distill-engine ARGS` that prints one JSON object; `callback(info, None)` with it,
        or `callback(None, message)` with the engine's message (its line starting `prefix`)."""
        self._queue.append((args, callback, prefix))
        self._start_next()
        self.busyChanged.emit(self.busy)

    def _start_next(self) -> None:
        while self._queue and len(self._running) < MAX_PROCESSES:
            self._start(*self._queue.popleft())

    def _start(self, args: list[str], callback: Callback, prefix: str) -> None:
        proc = start_engine(self, args,  # the callbacks run later: proc is known
                            finished=lambda code, status: self._done(proc, code, status, callback, prefix),
                            failed_to_start=lambda: self._failed(proc, callback))
        self._running.add(proc)

    def _done(self, proc: QProcess, code: int, status, callback: Callback, prefix: str) -> None:
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
        callback(None, clean_engine_message(err, code, prefix))

    def _failed(self, proc: QProcess, callback: Callback) -> None:
        self._finish(proc)
        callback(None, f"could not start the engine ({describe_program()})")

    def _finish(self, proc: QProcess) -> None:
        if proc in self._running:
            self._running.discard(proc)
            proc.deleteLater()
            self._start_next()
            self.busyChanged.emit(self.busy)
