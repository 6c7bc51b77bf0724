"""Starting an engine child process: the one place the app makes a QProcess for the engine.

Program and arguments come from engine_command; the environment is the app's plus
ENGINE_ENVIRONMENT (Python's streams unbuffered and UTF-8); stdout and stderr stay apart
(stdout carries only events or a JSON answer). stdin stays open only for a run, which takes
commands there; a run also gets its own session (process group), so that stop and kill reach
all of it, torchrun's workers included.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Qt

from gui.engine_client.engine_command import ENGINE_ENVIRONMENT, engine_command


def start_engine(parent: QObject, args: list[str], *, processes: int = 1,
                 stdout: Callable[[], None] | None = None, stderr: Callable[[], None] | None = None,
                 finished: Callable[[int, QProcess.ExitStatus], None] | None = None,
                 failed_to_start: Callable[[], None] | None = None,
                 commands: bool = False) -> QProcess:
    """Start `distill-engine ARGS` (under torchrun with `processes` > 1) as a child of `parent`.

    The callbacks are connected before it starts; `failed_to_start` is called from the event
    loop, never from inside this function, so the caller may keep the process it returns first.
    `commands`: keep stdin open for pause/resume/stop/checkpoint and give the engine its own
    process group."""
    proc = QProcess(parent)
    program, arguments = engine_command(args, processes)
    proc.setProgram(program)
    proc.setArguments(arguments)
    env = QProcessEnvironment.systemEnvironment()
    for name, value in ENGINE_ENVIRONMENT.items():
        env.insert(name, value)
    proc.setProcessEnvironment(env)
    proc.setProcessChannelMode(QProcess.ProcessChannelMode.SeparateChannels)
    if commands and hasattr(proc, "setUnixProcessParameters"):
        proc.setUnixProcessParameters(QProcess.UnixProcessFlag.CreateNewSession)
    if stdout is not None:
        proc.readyReadStandardOutput.connect(stdout)
    if stderr is not None:
        proc.readyReadStandardError.connect(stderr)
    if finished is not None:
        proc.finished.connect(finished)
    if failed_to_start is not None:
        proc.errorOccurred.connect(lambda error: failed_to_start() if error == QProcess.FailedToStart
                                   else None, Qt.ConnectionType.QueuedConnection)
    proc.start()
    if not commands:
        proc.closeWriteChannel()  # an engine that read stdin would see its end at once
    return proc
