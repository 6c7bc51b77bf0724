"""The app never hangs on a hostile file or a stuck engine (issue 22): a project that is a named
pipe, an engine stopped with SIGSTOP, an event line without end, and a project of many nodes
or many teachers."""

from __future__ import annotations

import os

import pytest
from PySide6.QtWidgets import QMessageBox

from tests.engine.test_regular_files import unblock_later


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_project_that_is_a_fifo_is_refused_and_the_window_stays(window, qtbot, tmp_path):
    fifo = tmp_path / "p.distill.json"
    os.mkfifo(fifo)
    unblock_later(fifo)  # before the fix the window froze in read(); this ends the freeze
    assert window.open_project(fifo, ask=False) is False
    box = window.findChild(QMessageBox, "problems-box")
    assert box is not None and "named pipe (FIFO), not a regular file" in box.informativeText()
    box.close()


@pytest.mark.slow  # a real run from the window
def test_a_stopped_engine_is_said_to_be_not_responding_and_stop_says_it_ended_it(
        window, qtbot, tmp_path, demo_dict):
    """Issue 22: SIGSTOP of the engine left a stale ETA and no warning; Stop worked after 18 s
    and its message suggested an out-of-memory kill."""
    import signal
    import time

    from tests.gui.helpers import start_run
    from tests.helpers import write_spec

    demo_dict["training"]["epochs"] = 2000
    ended = start_run(window, qtbot, write_spec(tmp_path, demo_dict))
    runner = window.runner
    qtbot.waitUntil(lambda: "ETA" in runner.run_label.text(), timeout=90000)
    pid = runner.engine.proc.processId()
    os.kill(pid, signal.SIGSTOP)
    try:
        qtbot.waitUntil(lambda: runner.run_label.text().startswith("not responding"), timeout=10000)
        assert "ETA" not in runner.run_label.text()  # no stale estimate
        log = window.dashboard.log.toPlainText()
        assert "the engine is not responding" in log and f"kill -CONT {pid}" in log
        start = time.monotonic()
        runner.act_stop.trigger()
        qtbot.waitUntil(lambda: bool(ended), timeout=15000)
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    assert time.monotonic() - start < 10  # not the 15 s a responsive engine gets to checkpoint
    status, message = ended[0]
    if status == "failed":  # it may also take the SIGTERM as a stop, checkpoint and say "stopped"
        assert "it was not responding, so Stop ended it by force" in message
        assert "memory" not in message


def test_an_engine_silent_while_training_is_said_to_be_not_responding(qapp, qtbot, tmp_path, monkeypatch):
    """Without a stopped process to see: no word for NOT_RESPONDING_S after training progress."""
    import json
    import sys
    import time

    from gui.engine_client import run as run_module
    from gui.engine_client.run import EngineRun

    monkeypatch.setattr(run_module, "NOT_RESPONDING_S", 1.0)
    progress = {"event": "progress", "time": time.time(), "phase": "distill", "fraction": 0.1, "step": 1,
                "total_steps": 10, "epoch": 0.1, "epochs": 1, "samples_per_s": 100.0, "eta_s": 9.0}
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(progress) + "\n")
    fake = tmp_path / "engine-stand-in"
    fake.write_text(f'#!/bin/sh\ncat "{events}"\nexec sleep 60\n')
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    run, changes, ended = EngineRun(db=tmp_path / "db.sqlite"), [], []
    run.responding.connect(lambda ok, why: changes.append((ok, why)))
    run.ended.connect(lambda status, message: ended.append(message))
    run.start_run(tmp_path / "p.distill.json", tmp_path / "run")
    qtbot.waitUntil(lambda: bool(changes), timeout=10000)
    assert changes[0][0] is False and "the engine is not responding: no word from it" in changes[0][1]
    run.stop()  # terminated at once, and said so
    qtbot.waitUntil(lambda: bool(ended), timeout=10000)
    assert "it was not responding, so Stop ended it by force (SIGTERM)" in ended[0]


def many_teachers_project(tmp_path, count: int):
    import json

    from tests.helpers import TEACHERS, demo_spec

    spec = demo_spec()
    first = spec["teachers"][0]
    spec["teachers"] = [{**first, "name": f"t{i}", "path": str(TEACHERS / "digits-0-4.onnx")} for i in range(count)]
    path = tmp_path / "many.distill.json"
    path.write_text(json.dumps(spec))
    return path


def test_opening_a_project_validates_once_and_inspects_with_a_few_processes(window, qtbot, tmp_path, monkeypatch):
    """Issue 22: every node added re-checked every node (500 nodes froze the window 9 s), and
    every teacher started its own `engine inspect` at once (60 teachers: 58 processes)."""
    from gui.document import validation
    from gui.engine_client.inspect import MAX_PROCESSES

    calls = []
    real = validation.node_status
    monkeypatch.setattr("gui.canvas.scene.node_status", lambda doc, node: calls.append(1) or real(doc, node))
    inspector, peak = window.model_inspector, []
    inspector.busyChanged.connect(lambda _: peak.append(inspector.processes))
    assert window.open_project(many_teachers_project(tmp_path, 12), ask=False)
    nodes = len(window.doc.nodes)
    assert nodes > 12 and len(calls) <= 2 * nodes  # one pass (or two), not one per node added
    assert inspector.busy == 12 and inspector.processes <= MAX_PROCESSES
    qtbot.waitUntil(lambda: inspector.busy <= 12 - MAX_PROCESSES - 1, timeout=120000)  # queued ones started
    assert max(peak) <= MAX_PROCESSES
    inspector._queue.clear()  # the rest is not needed here
