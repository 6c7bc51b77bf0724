"""One engine command in a child process that reports progress and ends with a result: what the
export and the analysis clients share (gui/engine_client/export.py, analyze.py).

One child at a time; its stdout is read as events (a line that is not one of this app's events
is passed on as `protocolProblem`); `cancel` kills it; when it ends, the subclass's `_ended`
decides what the user is told from the events it kept, the exit code and stderr's last line.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QProcess, Signal

from engine.events import Error, Progress
from gui.engine_client.engine_command import describe_program
from gui.engine_client.events import EventReader, ProtocolProblem
from gui.engine_client.process import start_engine


class OneShotEngine(QObject):
    progress = Signal(str, float)  # stage, fraction 0..1
    failed = Signal(str)  # a message for the user
    cancelled = Signal()  # the user's cancel ended it: not a failure
    protocolProblem = Signal(str)  # a stdout line that is not an event of this app's protocol

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.proc: QProcess | None = None
        self._ended_proc: QProcess | None = None  # the last child, kept until the next start
        self._reader = EventReader()
        self._errors: list[str] = []  # the engine's error events, as "message — hint"
        self._cancelled = False

    @property
    def running(self) -> bool:
        return self.proc is not None

    def _start(self, args: list[str]) -> None:
        if self._ended_proc is not None:
            self._ended_proc.deleteLater()  # long finished: nothing of it is in flight
            self._ended_proc = None
        self._reader, self._errors, self._cancelled = EventReader(), [], False
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
            else:
                self._event(event)

    def _event(self, event) -> None:
        """Any other event (the result comes in `finished`)."""

    def _failed_to_start(self) -> None:
        self.proc = None
        self.failed.emit(f"could not start the engine ({describe_program()})")

    def _finished(self, code: int, _status) -> None:
        if self.proc is None:
            return
        self._read(at_end=True)
        stderr = bytes(self.proc.readAllStandardError()).decode("utf-8", "replace").strip()
        # not deleteLater() here: a client without a parent may be gone before that event runs,
        # and the event would then reach a deleted process (a crash); it goes with its client
        self._ended_proc, self.proc = self.proc, None
        if self._cancelled:
            self.cancelled.emit()
        else:
            self._ended(code, stderr.splitlines()[-1] if stderr else "")

    def _ended(self, code: int, last_stderr_line: str) -> None:
        """The child ended by itself: emit the result, or `failed` with the reason."""
        raise NotImplementedError
