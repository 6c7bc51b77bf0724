"""`distill-engine resume RUN_DIR`: a stopped or killed run goes on from its last checkpoint."""

import os
import signal
import sqlite3

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import parse_events, run_engine, start_engine, wait_for, write_spec

pytestmark = pytest.mark.slow  # every test trains through the engine subprocess

CATALOGUE = {  # the strategy parts with state of their own: adapters, heads, calibration batches
    "hints": [{"teacher": "low digits", "teacher_layer": "/body/body.2/Relu_output_0", "student_layer": "body.2"}],
    "task_heads": True, "calibration": {"labels_per_class": 5}, "confidence_weight": 0.3}


@pytest.mark.parametrize("strategy", [{}, CATALOGUE], ids=["kd", "catalogue"])
def test_stopped_then_resumed_ends_with_the_same_weights_as_uninterrupted(tmp_path, demo_dict, strategy):
    demo_dict["training"].update(epochs=25, cpu_threads=1)
    demo_dict["student"]["architecture"]["dropout"] = 0.2  # the RNG state matters too
    demo_dict["strategy"].update(strategy)
    spec = write_spec(tmp_path, demo_dict)
    db = tmp_path / "db.sqlite"
    whole = run_engine("run", spec, "--run-dir", tmp_path / "whole", "--db", db)
    assert whole.returncode == 0, whole.stderr

    proc = start_engine(spec, tmp_path / "parts", db)
    wait_for(proc, "checkpoint", 3)  # stop somewhere in epoch 4
    proc.stdin.write("stop\n")
    proc.stdin.flush()
    rest = parse_events(proc.stdout.read())
    assert proc.wait(timeout=60) == 3 and rest[-1]["status"] == "stopped"
    stopped_at = [e for e in rest if e["event"] == "checkpoint"][-1]["step"]
    assert 0 < stopped_at < 25 * 20

    resumed = run_engine("resume", tmp_path / "parts")  # the store is remembered in the run folder
    assert resumed.returncode == 0, resumed.stderr
    events = parse_events(resumed.stdout)
    assert events[0]["event"] == "started" and events[0]["resumed"] is True
    assert any(e["event"] == "log" and f"step {stopped_at}" in e["message"] for e in events)
    assert events[-1]["status"] == "completed"

    a = load_file(str(tmp_path / "whole" / "student.safetensors"))
    b = load_file(str(tmp_path / "parts" / "student.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    conn = sqlite3.connect(db)
    runs = conn.execute("select id, status from runs order by id").fetchall()
    assert [status for _, status in runs] == ["completed", "completed"]  # same row, not a new one
    steps = [s for (s,) in conn.execute("select step from metrics where run_id = ? and name = 'val/acc' "
                                        "order by step", (runs[1][0],))]
    assert len(steps) == 25 and len(set(steps)) == 25  # every epoch once, across both parts


def test_a_killed_run_resumes_and_completes(tmp_path, demo_dict):
    demo_dict["training"]["epochs"] = 30
    db = tmp_path / "db.sqlite"
    proc = start_engine(write_spec(tmp_path, demo_dict), tmp_path / "run", db)
    wait_for(proc, "checkpoint", 2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert sqlite3.connect(db).execute("select status from runs").fetchone()[0] == "running"
    resumed = run_engine("resume", tmp_path / "run", "--db", db)
    assert resumed.returncode == 0, resumed.stderr
    assert parse_events(resumed.stdout)[-1]["best"]["val/acc"] >= 0.9
    assert sqlite3.connect(db).execute("select status from runs").fetchone()[0] == "completed"


def test_resume_refuses_what_it_cannot_continue(tmp_path, demo_dict):
    not_a_run = run_engine("resume", tmp_path)
    assert not_a_run.returncode == 2
    error = next(e for e in parse_events(not_a_run.stdout) if e["event"] == "error")
    assert "not a run folder" in error["message"] and error["hint"]

    demo_dict["training"]["epochs"] = 1
    done = run_engine("run", write_spec(tmp_path, demo_dict), "--run-dir", tmp_path / "r", "--db", tmp_path / "db")
    assert done.returncode == 0
    again = run_engine("resume", tmp_path / "r")
    assert again.returncode == 2
    assert "already completed" in next(e for e in parse_events(again.stdout) if e["event"] == "error")["message"]
    import sqlite3

    assert sqlite3.connect(tmp_path / "db").execute("select status from runs").fetchone()[0] == "completed"


def test_a_damaged_newest_checkpoint_is_skipped_and_the_run_still_resumes(tmp_path, demo_dict):
    from engine.checkpoint import checkpoint_dirs

    demo_dict["training"]["epochs"] = 30
    db = tmp_path / "db.sqlite"
    proc = start_engine(write_spec(tmp_path, demo_dict), tmp_path / "run", db)
    wait_for(proc, "checkpoint", 3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    newest, older = checkpoint_dirs(tmp_path / "run" / "checkpoints")[:2]
    (newest / "state.pt").write_bytes(b"bit rot")
    resumed = run_engine("resume", tmp_path / "run")
    assert resumed.returncode == 0, resumed.stderr
    events = parse_events(resumed.stdout)
    warning = next(e for e in events if e["event"] == "log" and e["level"] == "warning")
    assert warning["message"] == f"checkpoint {newest.name} is skipped: state.pt does not match its manifest (damaged)"
    step = int(older.name.split("-")[1])
    assert any(e["event"] == "log" and f"step {step}" in e["message"] for e in events)
    assert events[-1]["status"] == "completed"
