"""Exporting a finished run through `distill-engine export --events`, in a child process.

The app never loads torch or onnxruntime: the engine exports, verifies, quantizes and
measures; the app reads its progress and report as JSON lines.
"""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, Signal

from gui.engine_client.engine_command import describe_program, engine_command


class EngineExport(QObject):
    progress = Signal(str, float)  # stage, fraction 0..1
    done = Signal(dict, list)  # the report, its problems (e.g. int8 over the accuracy limit)
    failed = Signal(str)  # a message for the user

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.proc: QProcess | None = None
        self._buffer = b""
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
        self._buffer, self._report, self._errors, self._cancelled = b"", None, [], False
        proc = QProcess(self)
        program, arguments = engine_command(args)
        proc.setProgram(program)
        proc.setArguments(arguments)
        proc.readyReadStandardOutput.connect(self._read)
        proc.finished.connect(self._finished)
        proc.errorOccurred.connect(self._error)
        self.proc = proc
        proc.start()

    def cancel(self) -> None:
        if self.proc is not None:
            self._cancelled = True
            self.proc.kill()

    def _read(self) -> None:
        self._buffer += bytes(self.proc.readAllStandardOutput())
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            kind = event.get("event")
            if kind == "progress":
                self.progress.emit(event.get("stage", ""), float(event.get("fraction", 0)))
            elif kind == "error":
                self._errors.append(f"{event.get('message')} — {event.get('hint')}")
            elif kind == "finished" and event.get("report"):
                self._report = {**event["report"], "folder": event.get("out")}

    def _error(self, error) -> None:
        if error == QProcess.FailedToStart:
            self.proc = None
            self.failed.emit(f"could not start the engine ({describe_program()})")

    def _finished(self, code: int, status) -> None:
        if self.proc is None:
            return
        self._read()
        stderr = bytes(self.proc.readAllStandardError()).decode("utf-8", "replace").strip()
        self.proc.deleteLater()
        self.proc = None
        if self._cancelled:
            self.failed.emit("export cancelled; files finished so far are in the folder")
        elif self._report is not None:
            self.done.emit(self._report, self._report.get("problems", []))
        elif self._errors:
            self.failed.emit(self._errors[0])
        else:
            last = stderr.splitlines()[-1] if stderr else f"exit code {code}"
            self.failed.emit(f"the engine stopped without a report ({last})")
