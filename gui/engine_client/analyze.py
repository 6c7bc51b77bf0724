"""Analysing a finished run through `distill-engine analyze RUN_DIR --events`, in a child process.

The engine runs the student and its teachers on one split and writes RUN_DIR/insights/
(docs/INSIGHTS.md); the app reads its progress as JSON lines, then the files it wrote. Same
shape as the export client (gui/engine_client/export.py): one child at a time, cancel kills it.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QProcess, Signal

from engine.events import Error, Finished, Progress
from gui.engine_client.engine_command import describe_program
from gui.engine_client.events import EventReader, ProtocolProblem
from gui.engine_client.process import start_engine


class EngineAnalyze(QObject):
    progress = Signal(str, float)  # stage (load, predict, attribution, pictures, done), fraction 0..1
    done = Signal(str)  # the insights folder the engine wrote
    failed = Signal(str)  # a message for the user
    cancelled = Signal()  # the user's cancel ended it: not a failure
    protocolProblem = Signal(str)  # a stdout line that is not an event of this app's protocol

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.proc: QProcess | None = None
        self.run_dir: Path | None = None  # of the analysis under way (or the last one)
        self._reader = EventReader()
        self._out: str | None = None
        self._errors: list[str] = []
        self._cancelled = False

    @property
    def running(self) -> bool:
        return self.proc is not None

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
        self._reader, self._out, self._errors, self._cancelled = EventReader(), None, [], False
        self.proc = start_engine(self, args, stdout=self._read, finished=self._finished,
                                 failed_to_start=self._failed_to_start)

    def cancel(self) -> None:
        if self.proc is not None:
            self._cancelled = True
            self.proc.kill()

    def _read(self, at_end: bool = False) -> None:
        items = self._reader.feed(bytes(self.proc.readAllStandardOutput()))
        for event in items + (self._reader.flush() if at_end else []):
            if isinstance(event, ProtocolProblem):
                if event.message:
                    self.protocolProblem.emit(event.message)
            elif isinstance(event, Progress):
                self.progress.emit(event.stage or event.phase, event.fraction)
            elif isinstance(event, Error):
                self._errors.append(f"{event.message} — {event.hint}" if event.hint else event.message)
            elif isinstance(event, Finished) and event.status == "completed" and event.out:
                self._out = event.out

    def _failed_to_start(self) -> None:
        self.proc = None
        self.failed.emit(f"could not start the engine ({describe_program()})")

    def _finished(self, code: int, _status) -> None:
        if self.proc is None:
            return
        self._read(at_end=True)
        stderr = bytes(self.proc.readAllStandardError()).decode("utf-8", "replace").strip()
        self.proc.deleteLater()
        self.proc = None
        if self._cancelled:
            self.cancelled.emit()
        elif self._out is not None and code == 0:
            self.done.emit(self._out)
        elif self._errors:
            self.failed.emit(self._errors[0])
        else:
            last = stderr.splitlines()[-1] if stderr else f"exit code {code}"
            self.failed.emit(f"the engine stopped without finishing the analysis ({last})")
