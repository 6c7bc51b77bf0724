"""Exporting a finished run through `distill-engine export --events`, in a child process.

The app never loads torch or onnxruntime: the engine exports, verifies, quantizes and
measures; the app reads its progress and report as JSON lines (gui/engine_client/one_shot.py).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from engine.events import Finished
from gui.engine_client.one_shot import OneShotEngine


class EngineExport(OneShotEngine):
    # progress: stage (load, insights, onnx, verify, quantize, evaluate, report, done), fraction 0..1
    done = Signal(dict, list)  # the report, its problems (e.g. int8 over the accuracy limit)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._report: dict | None = None

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
        self._report = None
        self._start(args)

    def _event(self, event) -> None:
        if isinstance(event, Finished) and event.report:
            self._report = {**event.report, "folder": event.out}

    def _ended(self, code: int, last_stderr_line: str) -> None:
        if self._report is not None and (code == 0 or self._report.get("problems")):
            self.done.emit(self._report, self._report.get("problems", []))
        elif self._report is not None:  # a clean report, then a failure: the exit code has the last word
            self.failed.emit(f"the engine exited with code {code} after its report "
                             f"({last_stderr_line or 'no message'})")
        elif self._errors:
            self.failed.emit(self._errors[0])
        else:
            self.failed.emit(f"the engine stopped without a report ({last_stderr_line or f'exit code {code}'})")
