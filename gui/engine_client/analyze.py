"""Analysing a finished run through `distill-engine analyze RUN_DIR --events`, in a child process.

The engine runs the student and its teachers on one split and writes RUN_DIR/insights/
(docs/INSIGHTS.md); the app reads its progress as JSON lines, then the files it wrote. One child
at a time, cancel kills it (gui/engine_client/one_shot.py).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from engine.events import Finished
from gui.engine_client.one_shot import OneShotEngine


class EngineAnalyze(OneShotEngine):
    # progress: stage (load, predict, attribution, pictures, done), fraction 0..1
    done = Signal(str)  # the insights folder the engine wrote

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.run_dir: Path | None = None  # of the analysis under way (or the last one)
        self._out: str | None = None

    def start(self, run_dir: Path, split: str | None = None, mistakes: int | None = None,
              attributions: int | None = None) -> None:
        if self.running:
            return
        args = ["analyze", str(run_dir), "--events"]
        if split is not None:
            args += ["--split", split]
        if mistakes is not None:
            args += ["--mistakes", str(mistakes)]
        if attributions is not None:
            args += ["--attributions", str(attributions)]
        self.run_dir = Path(run_dir)
        self._out = None
        self._start(args)

    def _event(self, event) -> None:
        if isinstance(event, Finished) and event.status == "completed" and event.out:
            self._out = event.out

    def _ended(self, code: int, last_stderr_line: str) -> None:
        if self._out is not None and code == 0:
            self.done.emit(self._out)
        elif self._errors:
            self.failed.emit(self._errors[0])
        else:
            self.failed.emit("the engine stopped without finishing the analysis "
                             f"({last_stderr_line or f'exit code {code}'})")
