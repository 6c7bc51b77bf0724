"""A training run in an engine child process, seen from the app: events in, commands out.

`EngineRun` starts `distill-engine run|resume …` (see engine_command) with QProcess in its own session (process
group), turns stdout lines into typed `event` signals (engine.events models; a line that does
not fit the protocol is a `protocolProblem` message instead), sends pause/resume/stop on stdin, and reports
how the run ended — also when the engine dies without a word (a crash, a kill, out of memory):
then the run is marked failed in the store and the message says what happened in plain words.
Nothing here blocks the event loop.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QTimer, Signal

from engine.checkpoint import has_checkpoint
from engine.events import Error, Finished, Progress, Started
from gui.engine_client.engine_command import describe_program, engine_command
from gui.engine_client.events import EventReader, ProtocolProblem
from gui.engine_client.process import start_engine

STOP_GRACE_MS = 15_000  # time to checkpoint after "stop", then SIGTERM
TERM_GRACE_MS = 3_000  # after SIGTERM, SIGKILL
_DETACHED: list[QProcess] = []  # engines left running when the app closes
STDERR_TAIL = 4000
# training progress comes a few times a second (engine.meter.EMIT_EVERY_S): this long without a
# word while training, and not paused, the engine is not responding; a stopped process (SIGSTOP,
# a debugger) is seen at once where the system tells (Linux /proc)
NOT_RESPONDING_S = 30.0
WATCH_EVERY_MS = 1000


class EngineRun(QObject):
    event = Signal(object)  # every engine event, typed (engine.events)
    protocolProblem = Signal(str)  # a stdout line that is not an event of this app's protocol
    ended = Signal(str, str)  # status (completed, stopped, failed), message for the user
    responding = Signal(bool, str)  # on each change: False with why ("the engine is not responding: …"), True

    def __init__(self, db: Path | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.db = db
        self.proc: QProcess | None = None
        self.run_id: int | None = None
        self.run_dir: Path | None = None
        self.last_error: Error | None = None
        self.finished_event: Finished | None = None
        self.stderr_tail = ""
        self.fatal = ""
        self._reader = EventReader()
        self._stop_timer = QTimer(self, singleShot=True, interval=STOP_GRACE_MS)
        self._stop_timer.timeout.connect(self._terminate)
        self._kill_timer = QTimer(self, singleShot=True, interval=TERM_GRACE_MS)
        self._kill_timer.timeout.connect(self._force_kill)
        self._watch = QTimer(self, interval=WATCH_EVERY_MS)
        self._watch.timeout.connect(self._check_responding)
        self.not_responding = ""  # why the engine is not responding now; empty while it is
        self._heard = 0.0  # time.monotonic() of its last output
        self._training = False  # its last event was training progress: silence is not expected
        self._paused = False
        self._forced = ""  # how the app ended it after Stop: "SIGTERM" or "SIGKILL"
        self._unresponsive_at_stop = False

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.state() != QProcess.NotRunning

    # starting
    def start_run(self, spec: Path, run_dir: Path, processes: int = 1) -> None:
        self._start(["run", str(spec), "--run-dir", str(run_dir)], run_dir, processes)

    def start_resume(self, run_dir: Path, processes: int = 1) -> None:
        self._start(["resume", str(run_dir)], run_dir, processes)

    def _start(self, args: list[str], run_dir: Path, processes: int = 1) -> None:
        if self.running:
            raise RuntimeError("a run is already going on in this client")
        self.run_id, self.run_dir = None, Path(run_dir)
        self.last_error = self.finished_event = None
        self.stderr_tail, self.fatal, self._reader = "", "", EventReader()
        self.not_responding, self._forced, self._training, self._paused = "", "", False, False
        self._unresponsive_at_stop = False
        self._heard = time.monotonic()
        self._watch.start()
        self.proc = start_engine(self, args + (["--db", str(self.db)] if self.db else []),
                                 processes=processes, stdout=self._read_stdout, stderr=self._read_stderr,
                                 finished=self._finished, failed_to_start=self._failed_to_start,
                                 commands=True)

    # commands
    def send(self, command: str) -> None:
        if self.running:
            self.proc.write(f"{command}\n".encode())

    def pause(self) -> None:
        self.send("pause")
        self._paused = True

    def resume(self) -> None:
        self.send("resume")
        self._paused = False
        self._heard = time.monotonic()  # its silence while paused was expected

    def stop(self) -> None:
        """Checkpoint, then exit; if the engine does not answer in time, terminate, then kill.
        An engine that is not responding cannot answer: it is terminated at once."""
        self.send("stop")
        if self.running:
            if self.not_responding:
                self._unresponsive_at_stop = True
                self._terminate()
            else:
                self._stop_timer.start()

    def kill(self) -> None:
        self._signal_group(signal.SIGKILL)

    def _terminate(self) -> None:
        if self.running:
            self._forced = "SIGTERM"
            self._signal_group(signal.SIGTERM)
            self._signal_group(signal.SIGCONT)  # a stopped engine takes SIGTERM only once it runs
            self._kill_timer.start()

    def _force_kill(self) -> None:
        if self.running:
            self._forced = "SIGKILL"
            self._signal_group(signal.SIGKILL)

    def _check_responding(self) -> None:
        """Every second while it runs: is the engine stopped, or silent while training?"""
        if not self.running:
            return
        pid = int(self.proc.processId())
        silent = time.monotonic() - self._heard
        if process_stopped(pid):
            why = (f"the engine is not responding: its process ({pid}) is stopped (SIGSTOP or a "
                   f"debugger; `kill -CONT {pid}` lets it go on). Stop ends it by force")
        elif self._training and not self._paused and silent >= NOT_RESPONDING_S:
            why = (f"the engine is not responding: no word from it for {silent:.0f} s while training "
                   "(it reports a few times a second). Stop ends it by force")
        else:
            why = ""
        if bool(why) != bool(self.not_responding):
            self.not_responding = why
            self.responding.emit(not why, why)

    def _signal_group(self, sig: int) -> None:
        if not self.running:
            return
        pid = int(self.proc.processId())
        try:
            os.killpg(os.getpgid(pid), sig)
        except (ProcessLookupError, PermissionError, OSError):
            try:
                os.kill(pid, sig)
            except OSError:
                pass

    def detach(self) -> int | None:
        """Let the engine outlive the app: stop listening and keep its process object alive
        (a QProcess kills its child when destroyed; the app then exits without destroying it).
        The engine carries on, writing to the store; its pid is returned."""
        if not self.running:
            return None
        proc, self.proc = self.proc, None
        for sig in (proc.readyReadStandardOutput, proc.readyReadStandardError, proc.finished,
                    proc.errorOccurred):
            sig.disconnect()
        proc.setParent(None)
        _DETACHED.append(proc)
        return int(proc.processId())

    # reading
    def _read_stdout(self, at_end: bool = False) -> None:
        data = bytes(self.proc.readAllStandardOutput())
        if data:
            self._heard = time.monotonic()
        items = self._reader.feed(data)
        for item in items + (self._reader.flush() if at_end else []):
            if not isinstance(item, ProtocolProblem):
                self._training = isinstance(item, Progress) and item.phase != "export"
            if isinstance(item, ProtocolProblem):
                self.stderr_tail = (self.stderr_tail + item.line + "\n")[-STDERR_TAIL:]
                if item.message:
                    self.protocolProblem.emit(item.message)
                continue
            if isinstance(item, Started):
                self.run_id, self.run_dir = item.run_id, Path(item.run_dir)
            elif isinstance(item, Error):
                self.last_error = item
            elif isinstance(item, Finished):
                self.finished_event = item
            self.event.emit(item)

    def _read_stderr(self) -> None:
        text = bytes(self.proc.readAllStandardError()).decode("utf-8", "replace")
        if text:
            self._heard = time.monotonic()
        tail = self.stderr_tail + text
        start = tail.rfind("Fatal Python error: ")  # faulthandler: keep its report whole
        if start >= 0:
            self.fatal = tail[start:start + STDERR_TAIL]
        self.stderr_tail = tail[-STDERR_TAIL:]

    def _failed_to_start(self) -> None:
        self.proc = None
        self.ended.emit("failed", f"The engine could not start ({describe_program()}). "
                        "Check the installation.")

    def _finished(self, code: int, exit_status) -> None:
        self._read_stdout(at_end=True)
        self._read_stderr()
        self._stop_timer.stop()
        self._kill_timer.stop()
        self._watch.stop()
        crashed = exit_status == QProcess.CrashExit
        self.proc = None
        if self.finished_event is not None and not crashed:
            status = self.finished_event.status
            if status == "completed" and code != 0:  # the exit code has the last word
                message = (f"The run failed: the engine reported it completed, then exited with code "
                           f"{code}.") + self._last_output()
                self._mark_failed(message, overriding=("running", "completed"))
                self.ended.emit("failed", message)
                return
            self.ended.emit(status, self._message(status, code))
            return
        # the engine died without finishing: say how, and record it
        if self._forced:  # Stop had to end it: say so, not a guess at its cause
            how = ("it was not responding, so Stop ended it by force" if self._unresponsive_at_stop else
                   f"it did not answer Stop within {STOP_GRACE_MS // 1000} s, so the app ended it by force") \
                + f" ({self._forced})"
        elif crashed:
            how = crash_cause(self.fatal, self.last_error)
        else:
            how = f"it exited with code {code} without finishing"
        message = f"The training process ended: {how}."
        if self.last_error:
            message += f"\nLast error: {self.last_error.message}\n{self.last_error.hint}"
        if self.fatal:  # where it crashed: the first frames of faulthandler's report
            trace = self.fatal.split("\nExtension modules")[0].strip().splitlines()
            message += "\nWhere it crashed:\n" + "\n".join(trace[:14])
        else:
            message += self._last_output()
        if self.run_dir is not None and has_checkpoint(self.run_dir):
            message += "\nIts last checkpoint is kept: the run can be resumed."
        self._mark_failed(message)
        self.ended.emit("failed", message)

    def _last_output(self) -> str:
        tail = self.stderr_tail.strip()
        return "\nLast output:\n" + "\n".join(tail.splitlines()[-8:]) if tail else ""

    def _message(self, status: str, code: int) -> str:
        if status == "completed":
            best = (self.finished_event.best if self.finished_event else None) or {}
            acc = f" Best validation accuracy {best['val/acc']:.3f}." if "val/acc" in best else ""
            return f"The run completed.{acc}"
        if status == "stopped":
            return "The run was stopped; its checkpoint is kept and it can be resumed."
        if self.last_error:
            return f"{self.last_error.message}\n{self.last_error.hint}"
        return f"The run failed (exit code {code})."

    def _mark_failed(self, message: str, overriding: tuple[str, ...] = ("running",)) -> None:
        """The engine could not record its own end (or recorded one its exit code denies): the
        app records it, so no run stays 'running' and none that failed reads 'completed'."""
        if self.run_id is None:
            return
        from engine.store import Store

        store = Store(self.db)
        try:
            row = store.run(self.run_id)
            if row is not None and row["status"] in overriding:
                store.finish_run(self.run_id, "failed", store.best_metrics(self.run_id), message)
        finally:
            store.close()


FATAL = {"Segmentation fault": "it crashed with a segmentation fault (a bug in native code: "
                               "PyTorch, onnxruntime or a driver)",
         "Aborted": "it was aborted by a native library",
         "Bus error": "it crashed with a bus error (a file it mapped changed or vanished?)",
         "Floating point exception": "it crashed with a floating point exception in native code",
         "Illegal instruction": "it crashed on an instruction this CPU does not have"}


def crash_cause(fatal: str, last_error: Error | None) -> str:
    """Which way the engine died, from what it managed to say (faulthandler writes the first
    line of a native crash; a SIGKILL, like the kernel's out-of-memory killer, leaves nothing)."""
    if last_error and last_error.kind == "out_of_memory":
        return "it ran out of memory"
    for line in fatal.splitlines()[:1]:
        if line.startswith("Fatal Python error: "):
            name = line.removeprefix("Fatal Python error: ").strip()
            return FATAL.get(name, f"it crashed ({name})")
    return ("it was killed (SIGKILL or similar): by hand, or by the system when memory ran out "
            "(on Linux, `journalctl -k | grep -i oom` tells which)")


def process_stopped(pid: int) -> bool:
    """Whether the process is stopped (state T: SIGSTOP, or t: a debugger), where the system
    tells (Linux /proc); False where it does not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat[stat.rfind(")") + 1:].split()
    return bool(fields) and fields[0] in ("T", "t")


def engine_arguments(args: list[str], processes: int = 1) -> list[str]:
    """The arguments after the program that start the engine: itself, or under torchrun on
    several GPUs (one process per GPU; rank 0 writes the events the app reads)."""
    return engine_command(args, processes)[1]
