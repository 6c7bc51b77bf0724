"""The app's engine client against a real engine process: events, stop, and a killed engine."""

import os
import signal
import sqlite3

import pytest

from engine.checkpoint import has_checkpoint
from gui.engine_client.run import EngineRun
from tests.helpers import write_spec

pytestmark = pytest.mark.slow  # every test runs the engine from the client


@pytest.fixture
def client(qapp, tmp_path):
    run = EngineRun(db=tmp_path / "db.sqlite")
    events, ended = [], []
    run.event.connect(events.append)
    run.ended.connect(lambda status, message: ended.append((status, message)))
    run.events, run.ended_with = events, ended
    yield run
    if run.running:
        run.kill()


def test_a_run_streams_events_and_completes(client, qtbot, tmp_path, demo_dict):
    demo_dict["training"]["epochs"] = 3
    client.start_run(write_spec(tmp_path, demo_dict), tmp_path / "run")
    qtbot.waitUntil(lambda: bool(client.ended_with), timeout=120000)
    status, message = client.ended_with[0]
    assert status == "completed" and "Best validation accuracy" in message
    kinds = [e.event for e in client.events]
    assert kinds[0] == "started" and kinds[-1] == "finished" and "metric" in kinds
    assert client.run_id == 1 and client.run_dir == (tmp_path / "run").resolve()


def test_stop_checkpoints_and_ends_stopped(client, qtbot, tmp_path, demo_dict):
    demo_dict["training"]["epochs"] = 2000
    client.start_run(write_spec(tmp_path, demo_dict), tmp_path / "run")
    qtbot.waitUntil(lambda: any(e.event == "metric" for e in client.events), timeout=60000)
    client.pause()
    client.resume()
    client.stop()
    qtbot.waitUntil(lambda: bool(client.ended_with), timeout=60000)
    assert client.ended_with[0][0] == "stopped"
    assert has_checkpoint(tmp_path / "run")
    logs = [e.message for e in client.events if e.event == "log"]
    assert "paused" in logs and "resumed" in logs


def test_a_killed_engine_is_a_failed_run_with_a_plain_message(client, qtbot, tmp_path, demo_dict):
    demo_dict["training"]["epochs"] = 2000
    client.start_run(write_spec(tmp_path, demo_dict), tmp_path / "run")
    qtbot.waitUntil(lambda: any(e.event == "checkpoint" for e in client.events), timeout=60000)
    os.kill(client.proc.processId(), signal.SIGKILL)  # as a user would from a terminal
    qtbot.waitUntil(lambda: bool(client.ended_with), timeout=30000)
    status, message = client.ended_with[0]
    assert status == "failed" and "was killed (SIGKILL" in message and "memory ran out" in message
    assert "can be resumed" in message
    row = sqlite3.connect(tmp_path / "db.sqlite").execute("select status, error from runs").fetchone()
    assert row[0] == "failed" and "was killed" in row[1]

    client.ended_with.clear()
    client.events.clear()
    client.start_resume(tmp_path / "run")  # and it goes on from its checkpoint
    qtbot.waitUntil(lambda: any(e.event == "metric" for e in client.events), timeout=60000)
    assert client.events[0].resumed is True
    client.stop()
    qtbot.waitUntil(lambda: bool(client.ended_with), timeout=60000)
    assert client.ended_with[0][0] == "stopped"


def test_an_engine_that_does_not_answer_stop_is_terminated_then_killed(client, qtbot, tmp_path, demo_dict):
    demo_dict["training"]["epochs"] = 2000
    client._stop_timer.setInterval(300)
    client.start_run(write_spec(tmp_path, demo_dict), tmp_path / "run")
    qtbot.waitUntil(lambda: any(e.event == "metric" for e in client.events), timeout=60000)
    os.kill(client.proc.processId(), signal.SIGSTOP)  # a hung engine: it cannot answer
    client.stop()
    qtbot.waitUntil(lambda: bool(client.ended_with), timeout=30000)
    status, message = client.ended_with[0]
    # SIGTERM comes with SIGCONT: the engine may take it as a stop and checkpoint; else it is killed
    assert status == "stopped" or (status == "failed" and "so the app ended it by force" in message
                                   and "memory" not in message), message


def test_a_detached_engine_keeps_training_and_writing_the_store(client, qtbot, tmp_path, demo_dict):
    demo_dict["training"]["epochs"] = 2000
    client.start_run(write_spec(tmp_path, demo_dict), tmp_path / "run")
    qtbot.waitUntil(lambda: any(e.event == "metric" for e in client.events), timeout=60000)
    pid = client.detach()
    assert pid and not client.running
    db = sqlite3.connect(tmp_path / "db.sqlite")
    count = lambda: db.execute("select count(*) from metrics").fetchone()[0]  # noqa: E731
    before = count()
    qtbot.wait(1500)
    try:
        os.kill(pid, 0)  # still alive
        assert count() > before  # and still writing the store
        assert db.execute("select status from runs").fetchone()[0] == "running"
    finally:
        os.kill(pid, signal.SIGKILL)


def test_a_segfault_is_named_with_where_it_happened(client, qtbot, tmp_path, demo_dict):
    demo_dict["training"]["epochs"] = 2000
    client.start_run(write_spec(tmp_path, demo_dict), tmp_path / "run")
    qtbot.waitUntil(lambda: any(e.event == "metric" for e in client.events), timeout=60000)
    os.kill(client.proc.processId(), signal.SIGSEGV)  # what a bug in native code does
    qtbot.waitUntil(lambda: bool(client.ended_with), timeout=30000)
    status, message = client.ended_with[0]
    assert status == "failed" and "segmentation fault" in message
    assert "Fatal Python error: Segmentation fault" in message and 'File "' in message  # faulthandler's trace
    row = sqlite3.connect(tmp_path / "db.sqlite").execute("select status, error from runs").fetchone()
    assert row[0] == "failed" and "segmentation fault" in row[1]


def test_out_of_memory_is_said_plainly(client, qtbot, tmp_path, demo_dict, monkeypatch):
    import sys

    limited = tmp_path / "python-with-4g"  # the engine under a 4 GiB address-space limit
    limited.write_text(f"#!/bin/sh\nulimit -v {4 << 20}\nexec {sys.executable} \"$@\"\n")
    limited.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(limited))  # the engine is `sys.executable -m engine`
    demo_dict["student"]["architecture"] = {"kind": "mlp", "width": 40000, "depth": 3}  # 6.4 GB a layer
    client.start_run(write_spec(tmp_path, demo_dict), tmp_path / "run")
    qtbot.waitUntil(lambda: bool(client.ended_with), timeout=60000)
    status, message = client.ended_with[0]
    assert status == "failed" and message.startswith("the engine ran out of memory")
    assert "smaller student or batch_size" in message
    row = sqlite3.connect(tmp_path / "db.sqlite").execute("select status, error from runs").fetchone()
    assert row[0] == "failed" and "out of memory" in row[1]


def test_a_run_under_torchrun_streams_rank_0s_events(client, qtbot, tmp_path, demo_dict):
    demo_dict["training"].update(epochs=2, cpu_threads=1)
    client.start_run(write_spec(tmp_path, demo_dict), tmp_path / "run", processes=2)  # 2 gloo processes
    qtbot.waitUntil(lambda: bool(client.ended_with), timeout=120000)
    assert client.ended_with[0][0] == "completed", client.ended_with
    started = [e for e in client.events if e.event == "started"]
    assert len(started) == 1 and started[0].processes == 2
    assert sqlite3.connect(tmp_path / "db.sqlite").execute("select status from runs").fetchall() == [("completed",)]
