"""Exporting a finished run through `distill-engine export --events`, in a child process.

The app never loads torch or onnxruntime: the engine exports, verifies, quantizes and
measures; the app reads its progress and report as JSON lines.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QProcess, Signal

from engine.events import Error, Finished, Progress
from gui.engine_client.engine_command import describe_program
from gui.engine_client.events import EventReader, ProtocolProblem
from gui.engine_client.process import start_engine


class EngineExport(QObject):
    progress = Signal(str, float)  # stage, fraction 0..1
    done = Signal(dict, list)  # the report, its problems (e.g. int8 over the accuracy limit)
    failed = Signal(str)  # a message for the user
    cancelled = Signal()  # the user's cancel ended it: not a failure
    protocolProblem = Signal(str)  # a stdout line that is not an event of this app's protocol

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.proc: QProcess | None = None
        self._reader = EventReader()
        self._report: dict | None = None
        self._errors: list[str] = []
        self._cancelled = False

    @property
    def running(self) -> bool:
        return self.proc is not None

    def start(self, run_dir: Path, out: Path, quantize: dict | None, safetensors: bool = True) -> None:
        if self.running:
            return
        args = ["export", str(run_dir), "--out", str(out), "--events"]
        if quantize is not None:
            args += ["--quantize", "int8", "--max-drop", str(quantize["max_accuracy_drop"])]
            if quantize["mode"] == "static":
                args += ["--calibration", str(quantize["calibration_samples"])]
        if not safetensors:
            args.append("--no-safetensors")
        self._reader, self._report, self._errors, self._cancelled = EventReader(), None, [], False
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
                self._errors.append(f"{event.message} — {event.hint}")
            elif isinstance(event, Finished) and event.report:
                self._report = {**event.report, "folder": event.out}

    def _failed_to_start(self) -> None:
        self.proc = None
        self.failed.emit(f"could not start the engine ({describe_program()})")

    def _finished(self, code: int, status) -> None:
        if self.proc is None:
            return
        self._read(at_end=True)
        stderr = bytes(self.proc.readAllStandardError()).decode("utf-8", "replace").strip()
        self.proc.deleteLater()
        self.proc = None
        if self._cancelled:
            self.cancelled.emit()
        elif self._report is not None and (code == 0 or self._report.get("problems")):
            self.done.emit(self._report, self._report.get("problems", []))
        elif self._report is not None:  # a clean report, then a failure: the exit code has the last word
            last = stderr.splitlines()[-1] if stderr else "no message"
            self.failed.emit(f"the engine exited with code {code} after its report ({last})")
        elif self._errors:
            self.failed.emit(self._errors[0])
        else:
            last = stderr.splitlines()[-1] if stderr else f"exit code {code}"
            self.failed.emit(f"the engine stopped without a report ({last})")
