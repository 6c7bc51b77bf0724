"""The event protocol: one JSON object per line on stdout, commands one per line on stdin.

Kinds of event: started, metric, progress, log, checkpoint, artifact, error, finished.
Commands: pause, resume, stop (checkpoint, then exit), checkpoint.
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
from typing import IO, Any

COMMANDS = ("pause", "resume", "stop", "checkpoint")


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
        if not self.enabled:
            return
        record = {"event": event, "time": round(time.time(), 3), **_clean(fields)}
        line = json.dumps(record, separators=(",", ":"))
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
        stream = stream if stream is not None else sys.stdin
        if stream is not None and not stream.closed:
            threading.Thread(target=self._read, args=(stream,), daemon=True, name="control").start()
        if signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: self.command("stop"))

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
