"""The real window driven from a script as a person would use it (bench/first_run.py,
scripts/screenshots.py): fresh settings and a fresh run store in a temporary home, waits that
keep the event loop turning, screenshots of the window or of one widget."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path


class WindowDriver:
    def __init__(self, size: str = "1600x1000", prefix: str = "window-"):
        from PySide6.QtCore import QSettings
        from PySide6.QtWidgets import QApplication

        from gui.main_window import MainWindow

        self.app = QApplication.instance() or QApplication(sys.argv[:1])
        self.home = Path(tempfile.mkdtemp(prefix=prefix))
        self.started = time.perf_counter()
        self.window = MainWindow(QSettings(str(self.home / "settings.ini"), QSettings.IniFormat),
                                 db=self.home / "runs.sqlite")
        self.window.resize(*(int(v) for v in size.split("x")))
        self.window.show()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def pump(self, seconds: float = 0.2) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            self.app.processEvents()
            time.sleep(0.02)

    def wait(self, cond, timeout_s: float, what: str) -> None:
        end = time.perf_counter() + timeout_s
        while not cond():
            if time.perf_counter() > end:
                raise TimeoutError(f"waited {timeout_s:.0f} s for {what}")
            self.app.processEvents()
            time.sleep(0.02)

    def shoot(self, path: Path, widget=None) -> str:
        self.pump()
        (widget or self.window).grab().save(str(path))
        return str(path)

    def theme(self, which: str) -> None:
        """View → Theme → `which` (system, light or dark), as the menu does."""
        from PySide6.QtGui import QAction

        next(a for a in self.window.findChildren(QAction) if a.objectName() == f"theme-{which}").trigger()
        self.pump()

    def close(self) -> None:
        self.window.undo_stack.setClean()
        self.window.close()
