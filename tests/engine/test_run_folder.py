"""A run folder is one run's; the engine never overwrites or deletes what it did not write; the
store's failures (a full disk, a file deleted under it) are said, and `finished` always comes."""

import hashlib
import io
import json
import os
import signal
import sqlite3
import subprocess

import pytest

from engine.run_folder import LOCK_FILE, FolderLock
from engine.store import Store
from tests.helpers import parse_events, run_engine, start_engine, wait_for, write_spec


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(folder):
    """Every file under a folder with its sha256."""
    return {str(p.relative_to(folder)): digest(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def error_of(proc):
    return next(e for e in parse_events(proc.stdout) if e["event"] == "error")


# ── the folder lock, in-process ──────────────────────────────────────────────────────────


def test_a_held_folder_is_refused_and_a_dead_holders_lock_is_taken(tmp_path):
    first = FolderLock(tmp_path)
    with pytest.raises(Exception) as err:
        FolderLock(tmp_path)
    assert f"process {os.getpid()}" in str(err.value) and "is working in the run folder" in str(err.value)
    first.release()
    assert not (tmp_path / LOCK_FILE).exists()

    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / LOCK_FILE).write_text(str(dead.pid))  # left by a process that is gone
    FolderLock(tmp_path).release()


def test_the_store_says_when_its_file_was_deleted_or_replaced(tmp_path):
    store = Store(tmp_path / "runs.sqlite")
    assert store.lost(force=True) is None
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("create table t (x)").connection.commit()
    os.replace(other, tmp_path / "runs.sqlite")
    assert store.lost(force=True) == "replaced"
    (tmp_path / "runs.sqlite").unlink()
    assert store.lost(force=True) == "deleted"
    store.close()


# ── real engine runs ─────────────────────────────────────────────────────────────────────


@pytest.mark.slow
def test_a_used_run_folder_is_refused_and_the_first_run_is_kept(tmp_path, demo_dict):
    demo_dict["training"].update(epochs=2, cpu_threads=1)
    run = tmp_path / "run"
    run.mkdir()
    first = run_engine("run", write_spec(run, demo_dict, "pipeline.distill.json"),  # as the app does
                       "--run-dir", run, "--db", tmp_path / "db")
    assert first.returncode == 0, first.stderr
    before = tree(run)

    demo_dict["training"]["epochs"] = 1
    second = run_engine("run", write_spec(tmp_path, demo_dict), "--run-dir", run, "--db", tmp_path / "db")
    assert second.returncode == 2, second.stderr
    error = error_of(second)
    assert "already holds another run" in error["message"] and "resume" in error["hint"]
    assert tree(run) == before  # not a byte of the first run changed

    again = run_engine("resume", run)
    assert again.returncode == 2 and "already completed" in error_of(again)["message"]
    assert [s for (s,) in sqlite3.connect(tmp_path / "db").execute("select status from runs")] == ["completed"]


@pytest.mark.slow
def test_a_users_folder_is_refused_and_left_as_it_was(tmp_path, demo_dict):
    demo_dict["training"].update(epochs=1, cpu_threads=1)
    mine = tmp_path / "mine"
    (mine / "checkpoints" / "step-000000001").mkdir(parents=True)
    (mine / "checkpoints" / "step-000000001" / "notes.txt").write_text("my notes")
    (mine / "student.safetensors").write_bytes(b"my own weights")
    before = tree(mine)
    proc = run_engine("run", write_spec(tmp_path, demo_dict), "--run-dir", mine, "--db", tmp_path / "db")
    assert proc.returncode == 2, proc.stderr
    error = error_of(proc)
    assert "is not empty" in error["message"] and "student.safetensors" in error["message"]
    assert "never overwrites" in error["hint"]
    assert tree(mine) == before and sorted(p.name for p in mine.iterdir()) == ["checkpoints", "student.safetensors"]


@pytest.mark.slow
def test_a_second_engine_on_a_folder_in_use_is_refused(tmp_path, demo_dict):
    demo_dict["training"].update(epochs=300, cpu_threads=1)
    spec = write_spec(tmp_path, demo_dict)
    proc = start_engine(spec, tmp_path / "run", tmp_path / "db")
    try:
        wait_for(proc, "checkpoint", 1)
        for args in (("resume", tmp_path / "run"), ("run", spec, "--run-dir", tmp_path / "run")):
            other = run_engine(*args, "--db", tmp_path / "db")
            assert other.returncode == 2, other.stderr
            error = error_of(other)
            assert f"another engine (process {proc.pid}) is working in the run folder" in error["message"]
        proc.stdin.write("stop\n")
        proc.stdin.flush()
        proc.stdout.read()  # the events it wrote meanwhile
        assert proc.wait(timeout=60) == 3
    finally:
        proc.kill()
    assert not (tmp_path / "run" / LOCK_FILE).exists()
    rows = sqlite3.connect(tmp_path / "db").execute("select status from runs").fetchall()
    assert rows == [("stopped",)]  # the refused engines made no row


@pytest.mark.slow
def test_resume_refuses_a_spec_copy_edited_after_the_start(tmp_path, demo_dict):
    demo_dict["training"].update(epochs=300, cpu_threads=1)
    proc = start_engine(write_spec(tmp_path, demo_dict), tmp_path / "run", tmp_path / "db")
    wait_for(proc, "checkpoint", 1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    copy = tmp_path / "run" / "spec.distill.json"
    original = json.loads(copy.read_text())
    for change in ({"kind": "mlp", "width": 64, "depth": 2},  # was silently ignored
                   {"kind": "cnn"}):  # was a raw RuntimeError from load_state_dict
        edited = json.loads(json.dumps(original))
        edited["student"]["architecture"] = change
        copy.write_text(json.dumps(edited))
        resumed = run_engine("resume", tmp_path / "run")
        assert resumed.returncode == 2, resumed.stderr
        error = error_of(resumed)
        assert "was changed after run 1 started" in error["message"], error
        assert "put the original spec back" in error["hint"] and "start a new run" in error["hint"]
        assert "Traceback" not in resumed.stderr


@pytest.mark.slow
def test_a_spec_export_into_a_folder_of_user_files_never_touches_them(tmp_path, demo_dict):
    demo_dict["training"].update(epochs=1, cpu_threads=1)
    home = tmp_path / "home"  # `"export": {"folder": "~", "safetensors": false}` in a shared project
    home.mkdir()
    for name in ("student.safetensors", "student.int8.onnx", "report.json", "MODEL_CARD.md", "notes.txt"):
        (home / name).write_text(f"the user's {name}")
    before = tree(home)
    demo_dict["export"] = {"folder": str(home), "safetensors": False}
    proc = run_engine("run", write_spec(tmp_path, demo_dict), "--run-dir", tmp_path / "run", "--db", tmp_path / "db")
    assert proc.returncode == 0, proc.stderr  # the student is trained and kept; its export is refused
    finished = parse_events(proc.stdout)[-1]
    assert finished["status"] == "completed" and "no export wrote" in finished["export_error"]
    assert "student.safetensors" in finished["export_error"] and "notes.txt" not in finished["export_error"]
    assert tree(home) == before
    assert (tmp_path / "run" / "student.safetensors").is_file()


@pytest.mark.slow
def test_a_store_deleted_during_the_run_is_said(tmp_path, demo_dict):
    demo_dict["training"].update(epochs=8, cpu_threads=1)
    db = tmp_path / "db.sqlite"
    proc = start_engine(write_spec(tmp_path, demo_dict), tmp_path / "run", db)
    wait_for(proc, "started")
    for name in ("db.sqlite", "db.sqlite-wal", "db.sqlite-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    events = parse_events(proc.stdout.read())
    assert proc.wait(timeout=120) == 0
    warnings = [e["message"] for e in events if e["event"] == "log" and e["level"] == "warning"]
    assert any(f"the run store {db} was deleted during the run" in m and "not in it" in m for m in warnings), warnings
    assert events[-1]["event"] == "finished" and events[-1]["status"] == "completed"


@pytest.mark.slow
def test_a_full_disk_under_the_store_still_ends_with_finished(tmp_path, demo_dict, monkeypatch):
    """The engine in-process, its store on a "full disk": every write after the first metrics
    raises sqlite's own error. The run fails with a disk-full message, its cleanup does not
    crash, and `finished` is the last event."""
    import sqlite_utils.db

    from engine.events import Control, Emitter
    from engine.run import execute

    demo_dict["training"].update(epochs=2, cpu_threads=1)
    full = []

    def failing(real):
        def write(self, *args, **kwargs):
            if full:
                raise sqlite3.OperationalError("database or disk is full")
            if self.name == "metrics":
                full.append(True)  # the disk fills up with the first metrics
                raise sqlite3.OperationalError("database or disk is full")
            return real(self, *args, **kwargs)
        return write

    for name in ("insert", "insert_all", "update"):
        monkeypatch.setattr(sqlite_utils.db.Table, name, failing(getattr(sqlite_utils.db.Table, name)))
    monkeypatch.setattr("engine.store.FLUSH_EVERY_S", 0.0)  # the first metrics are written at once
    buffer = io.StringIO()
    emitter = Emitter(buffer)
    code = execute(write_spec(tmp_path, demo_dict), tmp_path / "run", tmp_path / "db", emitter, Control(emitter))
    events = parse_events(buffer.getvalue())
    assert code == 1
    error = next(e for e in events if e["event"] == "error")
    assert error["kind"] == "disk_full" and f"run store {tmp_path / 'db'} is full" in error["message"]
    assert "resume" in error["hint"]
    assert events[-1]["event"] == "finished" and events[-1]["status"] == "failed" and events[-1]["exit_code"] == 1
    warning = next(e for e in events if e["event"] == "log" and e["level"] == "warning")
    assert "could not be recorded in the store" in warning["message"]
    assert not (tmp_path / "run" / LOCK_FILE).exists()
