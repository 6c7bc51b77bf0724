"""Autosave and recovery: unsaved edits survive a crash of the app.

While the document has unsaved changes, it is written every few seconds (atomically) to
`autosave/recovery.json` beside the settings file, with the project's own path. Saving, or
discarding the changes, removes it. When the app starts and finds one, the edits were never
saved: it offers them back.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from PySide6.QtCore import QObject, QTimer

from engine.atomic_io import atomic_write_text
from gui.document.convert import document_to_project

INTERVAL_MS = 10_000


class Autosave(QObject):
    def __init__(self, window, folder: Path, interval_ms: int = INTERVAL_MS):
        super().__init__(window)
        self.window = window
        self.file = Path(folder) / "recovery.json"
        self._dirty_since_write = False
        self.timer = QTimer(self, interval=interval_ms)
        self.timer.timeout.connect(self.write_now)
        self.timer.start()
        window.undo_stack.indexChanged.connect(self._edited)
        window.undo_stack.cleanChanged.connect(self._clean_changed)

    def _edited(self, _index: int) -> None:
        self._dirty_since_write = True  # written at the next tick, unless it is clean by then

    def _clean_changed(self, clean: bool) -> None:
        if clean:
            self.discard()

    def write_now(self) -> None:
        """Write the unsaved document, if there is anything new to write."""
        if not self._dirty_since_write or self.window.undo_stack.isClean():
            return
        path = self.window.path
        record = {"path": str(path) if path else None, "name": self.window.doc.name, "saved": time.time(),
                  "project": document_to_project(self.window.doc, path.parent if path else None)}
        try:
            atomic_write_text(self.file, json.dumps(record))
            self._dirty_since_write = False
        except OSError as exc:  # autosave must never get in the way; say it once in the status bar
            self.window.statusBar().showMessage(f"autosave failed: {exc.strerror or exc}", 10000)

    def discard(self) -> None:
        self._dirty_since_write = False
        self.file.unlink(missing_ok=True)

    def pending(self) -> dict | None:
        """The edits a previous session left unsaved, or None."""
        try:
            record = json.loads(self.file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        ok = isinstance(record, dict) and isinstance(record.get("project"), dict) and \
            isinstance(record.get("saved"), (int, float))
        return record if ok else None
