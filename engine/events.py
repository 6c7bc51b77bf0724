"""The event protocol: one JSON object per line on stdout, commands one per line on stdin.

Every event is one of the typed models below (pydantic, torch-free: the app imports this module
too). The engine's `Emitter` checks each line it writes against them; the app reads each line
with `parse_event`. `PROTOCOL_VERSION` goes up when a reader of the old version would misread a
line; the `started` event carries it.

Kinds of event: started, metric, progress, log, teacher_outputs, teacher_check, checkpoint,
artifact, error, finished. Commands: pause, resume, stop (checkpoint, then exit), checkpoint.
Only events go to stdout; `Emitter.take_stdout` sends every stray print to stderr.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from typing import IO, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

PROTOCOL_VERSION = 1
COMMANDS = ("pause", "resume", "stop", "checkpoint")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _Event(_Strict):
    time: float  # seconds since the epoch, when the engine wrote it


class TeacherInfo(_Strict):
    name: str
    classes: list[str]
    sha256: str


class Split(_Strict):
    train: int
    val: int
    test: int


class Started(_Event):
    """The run is set up (store row, run folder, data, teachers) and training begins."""

    event: Literal["started"] = "started"
    protocol: int  # PROTOCOL_VERSION of the engine that wrote it
    run_id: int
    resumed: bool
    name: str
    run_dir: str
    db: str
    device: str
    threads: int
    precision: str
    processes: int  # >1 under torchrun; rank 0 writes the events
    torch: str
    split: Split
    labeled: bool
    teachers: list[TeacherInfo]
    epochs: int  # of all phases together


class Metric(_Event):
    event: Literal["metric"] = "metric"
    step: int
    epoch: float
    values: dict[str, float | None]  # open: loss/…, val/…, test/…, lr; null where not finite



class Progress(_Event):
    """Training progress (phase pretrain, distill or prune: steps, speed, ETA), an export's stage, or a
    folder scan's (phase scan: stage listing or thumbnails, `step` the images listed or the
    thumbnails made so far; listing has no fraction to tell, it stays 0)."""

    event: Literal["progress"] = "progress"
    phase: Literal["pretrain", "distill", "prune", "export", "scan", "analyze"]
    fraction: float = Field(ge=0, le=1)
    prune_step: int | None = Field(None, ge=0)  # 0-based index of the spec's prune step
    stage: str | None = None  # export: load, onnx, verify, quantize, evaluate, report, done; scan: listing,
    # thumbnails; analyze: load, predict, attribution, pictures, done
    step: int | None = None
    total_steps: int | None = None
    epoch: float | None = None
    epochs: int | None = None
    samples_per_s: float | None = None
    eta_s: float | None = None
    gpu_mem_mb: float | None = None  # CUDA only: the allocator's peak
    data_wait: float | None = Field(None, ge=0, le=1)  # streamed data: the share of the time since
    # the last progress the loop waited for its next batch (0: the data keeps up)

    @model_validator(mode="after")
    def _fits_phase(self) -> Progress:
        if (self.phase == "prune") != (self.prune_step is not None):
            raise ValueError("prune_step is set exactly when phase is 'prune'")
        if self.phase in ("export", "analyze"):
            if self.stage is None:
                raise ValueError(f"an {self.phase} progress names its stage")
        elif self.phase == "scan":
            if self.stage not in ("listing", "thumbnails") or self.step is None:
                raise ValueError("a scan progress has stage listing or thumbnails, and step")
        elif None in (self.step, self.total_steps, self.epoch, self.epochs, self.samples_per_s, self.eta_s):
            raise ValueError("a training progress has step, total_steps, epoch, epochs, "
                             "samples_per_s and eta_s")
        return self


class Log(_Event):
    event: Literal["log"] = "log"
    level: Literal["info", "warning"]
    message: str


class TeacherOutputs(_Event):
    """A teacher's soft targets are ready: read from the disk cache (hit) or computed (miss)."""

    event: Literal["teacher_outputs"] = "teacher_outputs"
    teacher: str
    cache: Literal["hit", "miss"]
    message: str


class TeacherCheck(_Event):
    """What the checks before training found about one teacher (engine/teacher_checks.py): its
    accuracy on labelled samples, how its input or outputs were read, or a warning with a fix."""

    event: Literal["teacher_check"] = "teacher_check"
    teacher: str
    level: Literal["info", "warning"]
    message: str
    hint: str = ""
    field: str  # the spec field it concerns, e.g. teachers[0].input
    accuracy: float | None = None
    samples: int | None = None
    fix: dict[str, Any] = Field(default_factory=dict)  # the fields under `field` that would fix it


class Checkpoint(_Event):
    event: Literal["checkpoint"] = "checkpoint"
    path: str
    step: int
    epoch: int
    bytes: int


class Artifact(_Event):
    event: Literal["artifact"] = "artifact"
    kind: str  # student, report, onnx_fp32, onnx_int8, safetensors, …
    path: str
    sha256: str
    bytes: int


class ProblemInfo(_Strict):
    path: str
    message: str
    hint: str


class Error(_Event):
    event: Literal["error"] = "error"
    kind: str  # invalid_input, out_of_memory, disk_full, io, crash, …
    message: str
    hint: str
    field: str | None = None  # bad input: where (a spec field path, a file)
    problems: list[ProblemInfo] | None = None  # bad input: every problem found


class Finished(_Event):
    """The last event. A run has run_id (once known) and its results; `engine export` has out
    and report; `engine scan --json` has the scan as report (engine/scan_folder.py)."""

    event: Literal["finished"] = "finished"
    status: Literal["completed", "stopped", "failed"]
    exit_code: int
    run_id: int | None = None
    best: dict[str, float | None] | None = None
    final: dict[str, float | None] | None = None
    parameters: int | None = None
    sparsity: float | None = None
    student: str | None = None
    export: dict[str, Any] | None = None  # the export report (report.json) plus its folder
    export_error: str | None = None
    out: str | None = None
    report: dict[str, Any] | None = None


MODELS = (Started, Metric, Progress, Log, TeacherOutputs, TeacherCheck, Checkpoint, Artifact, Error, Finished)
Event = Annotated[Started | Metric | Progress | Log | TeacherOutputs | TeacherCheck | Checkpoint | Artifact | Error
                  | Finished, Field(discriminator="event")]
EVENTS: TypeAdapter[Event] = TypeAdapter(Event)
KINDS = tuple(model.model_fields["event"].default for model in MODELS)


class ProtocolError(ValueError):
    """A line that is not an event of this protocol. `protocol`: what a 'started' line declared."""

    def __init__(self, message: str, line: str, protocol: int | None = None):
        super().__init__(message)
        self.line, self.protocol = line, protocol


def parse_event(line: str | bytes) -> Event:
    """One line of the engine's stdout as a typed event, or ProtocolError saying what is wrong."""
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    text = text.strip()
    shown = text if len(text) <= 160 else text[:157] + "..."
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError, an int too long, nesting too deep
        raise ProtocolError(f"a line that is not JSON: {shown!r}", text) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("event"), str):
        raise ProtocolError(f"a JSON line that is not an event (no 'event' kind): {shown}", text)
    kind = raw["event"]
    declared = raw.get("protocol") if kind == "started" and isinstance(raw.get("protocol"), int) else None
    if kind not in KINDS:
        raise ProtocolError(f"an event of unknown kind '{kind}'", text, declared)
    try:
        return EVENTS.validate_python(raw, strict=True)
    except ValidationError as exc:
        wrong = "; ".join(f"{'.'.join(map(str, e['loc'][1:])) or kind}: {e['msg']}"
                          for e in exc.errors(include_url=False)[:3])
        raise ProtocolError(f"a '{kind}' event that does not fit protocol {PROTOCOL_VERSION} ({wrong})",
                            text, declared) from None


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null so every line parses everywhere."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class Emitter:
    """Writes events as JSON lines to the real stdout; thread-safe."""

    def __init__(self, stream: IO[str] | None = None):
        self._stream = stream if stream is not None else sys.stdout
        self._lock = threading.Lock()
        self.enabled = True  # false on ranks other than 0 under torchrun

    @classmethod
    def take_stdout(cls) -> Emitter:
        """Own the process's stdout for events; anything else printed goes to stderr."""
        events = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8")
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # C-level writes too
        sys.stdout = sys.stderr
        return cls(events)

    def emit(self, event: str, **fields: Any) -> None:
        """Write one event; ProtocolError if it does not fit its model (a bug in the engine)."""
        if not self.enabled:
            return
        if event == "started":
            fields.setdefault("protocol", PROTOCOL_VERSION)
        record = {"event": event, "time": round(time.time(), 3), **_clean(fields)}
        line = json.dumps(record, separators=(",", ":"))
        parse_event(line)  # a few events a second: checking each costs microseconds
        with self._lock:
            try:
                self._stream.write(line + "\n")
                self._stream.flush()
            except (BrokenPipeError, ValueError):
                self._reader_gone()

    def _reader_gone(self) -> None:
        """The app that read the events has gone: train on, write the store, print nowhere."""
        self.enabled = False
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            self._stream = open(os.devnull, "w")
        except OSError:
            pass

    def log(self, message: str, level: str = "info") -> None:
        self.emit("log", level=level, message=message)

    def error(self, kind: str, message: str, hint: str, **extra: Any) -> None:
        self.emit("error", kind=kind, message=message, hint=hint, **extra)


class Control:
    """Commands from stdin (and SIGINT/SIGTERM as 'stop'), read on a background thread.

    The training loop polls `stop_requested` / `checkpoint_requested` (plain attribute reads)
    and calls `wait_while_paused()` between steps.
    """

    def __init__(self, emitter: Emitter):
        self._emitter = emitter
        self._running = threading.Event()
        self._running.set()
        self.stop_requested = False
        self.checkpoint_requested = False

    def listen(self, stream: IO[str] | None = None, signals: bool = True) -> None:
        if stream is None:
            stream = self._take_stdin()
        if stream is not None and not stream.closed:
            threading.Thread(target=self._read, args=(stream,), daemon=True, name="control").start()
        if signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: self.command("stop"))

    @staticmethod
    def _take_stdin() -> IO[str] | None:
        """The commands' pipe, read through a file object of its own; `sys.stdin` becomes
        /dev/null. A worker process forked while the control thread waits on stdin (image
        decoding: engine/data/feed.py) closes `sys.stdin` first thing, and would wait forever
        for the lock that thread holds on it."""
        if sys.stdin is None or sys.stdin.closed:
            return None
        try:
            fd = os.dup(sys.stdin.fileno())
        except (OSError, ValueError, AttributeError):  # not a real file (a test's stand-in)
            return sys.stdin
        sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 — for the process's lifetime
        return os.fdopen(fd, "r", encoding="utf-8", errors="replace")

    def _read(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                if line.strip():
                    self.command(line.strip().lower())
        except (OSError, ValueError):
            pass

    def command(self, cmd: str) -> None:
        if cmd == "pause":
            self._running.clear()
            self._emitter.log("paused")
        elif cmd == "resume":
            self._running.set()
            self._emitter.log("resumed")
        elif cmd == "stop":
            self.stop_requested = True
            self._running.set()
        elif cmd == "checkpoint":
            self.checkpoint_requested = True
        else:
            self._emitter.log(f"unknown command '{cmd}'; known: {', '.join(COMMANDS)}", "warning")

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_while_paused(self) -> None:
        while not self._running.wait(timeout=0.5):
            pass
