"""The engine as users and the app start it: a real subprocess, real files, a real store."""

import json
import sqlite3
import subprocess

import pytest

from engine.checkpoint import checkpoint_dirs, has_checkpoint
from engine.device import choose_device
from tests.helpers import (
    DEMO,
    ROOT,
    TEACHERS,
    csv_and_damaged_teacher,
    engine_cmd,
    parse_events,
    run_engine,
    write_spec,
)

pytestmark = pytest.mark.slow  # every test starts the engine as a subprocess


def test_demo_runs_to_completion_with_events_and_store_rows(tmp_path):
    db, run_dir = tmp_path / "runs.sqlite", tmp_path / "run"
    proc = run_engine("run", DEMO, "--run-dir", run_dir, "--db", db)
    assert proc.returncode == 0, proc.stderr
    events = parse_events(proc.stdout)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "started" and kinds[-1] == "finished"
    assert {"metric", "progress", "log", "checkpoint", "artifact"} <= set(kinds)
    finished = events[-1]
    assert finished["status"] == "completed" and finished["exit_code"] == 0
    assert finished["best"]["val/acc"] >= 0.9
    names = set().union(*(e["values"] for e in events if e["event"] == "metric"))
    assert {"loss/total", "loss/kd", "loss/ce", "val/acc", "lr", "test/acc",
            "loss/kd/low digits", "loss/kd/high digits"} <= names
    progress = [e for e in events if e["event"] == "progress"][-1]
    assert progress["fraction"] == 1.0 and progress["samples_per_s"] > 0

    assert has_checkpoint(run_dir) and len(checkpoint_dirs(run_dir / "checkpoints")) == 2  # the newest two
    assert (run_dir / "student.safetensors").is_file()
    assert json.loads((run_dir / "spec.distill.json").read_text())["name"] == "digits experts"
    conn = sqlite3.connect(db)
    run_id = events[0]["run_id"]
    status, best, device = conn.execute("select status, best_metrics, device from runs where id=?",
                                        (run_id,)).fetchone()
    assert status == "completed" and json.loads(best)["val/acc"] >= 0.9
    assert device.startswith(choose_device("auto").type)  # "auto": the GPU where there is one
    stored = conn.execute("select count(*) from metrics where run_id=? and name='val/acc'",
                          (run_id,)).fetchone()[0]
    assert stored == 20  # one per epoch
    kinds = {k for (k,) in conn.execute("select kind from artifacts where run_id=?", (run_id,))}
    assert kinds == {"checkpoint", "student"}

    listing = run_engine("runs", "--db", db)
    assert listing.returncode == 0 and "digits experts" in listing.stdout and "completed" in listing.stdout


def test_the_student_can_teach_in_turn(tmp_path, demo_dict):
    """A finished student's safetensors loads as a teacher: small models feed larger ones."""
    demo_dict["training"]["epochs"] = 2
    first = run_engine("run", write_spec(tmp_path, demo_dict), "--run-dir", tmp_path / "a",
                       "--db", tmp_path / "db.sqlite")
    assert first.returncode == 0, first.stderr
    demo_dict["teachers"] = [{"name": "previous student", "path": str(tmp_path / "a" / "student.safetensors"),
                              "classes": demo_dict["classes"], "architecture": demo_dict["student"]["architecture"]}]
    check = run_engine("validate", write_spec(tmp_path, demo_dict, "second.distill.json"))
    assert check.returncode == 0, check.stderr


def test_invalid_spec_exits_2_naming_the_field(tmp_path, demo_dict):
    demo_dict["training"]["batch_size"] = "sixty-four"
    proc = run_engine("run", write_spec(tmp_path, demo_dict), "--db", tmp_path / "db.sqlite",
                      "--run-dir", tmp_path / "r")
    assert proc.returncode == 2
    events = parse_events(proc.stdout)
    error = next(e for e in events if e["event"] == "error")
    assert error["kind"] == "invalid_input" and error["field"] == "training.batch_size"
    assert events[-1] == {**events[-1], "event": "finished", "status": "failed", "exit_code": 2}
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "db.sqlite").exists()  # nothing ran, nothing recorded


def test_corrupt_teacher_file_exits_2_naming_the_file(tmp_path, demo_dict):
    bad = tmp_path / "expert.onnx"
    bad.write_bytes(b"\x08\x07" + bytes(range(256)) * 8)
    demo_dict["teachers"][1]["path"] = str(bad)
    proc = run_engine("run", write_spec(tmp_path, demo_dict), "--db", tmp_path / "db.sqlite",
                      "--run-dir", tmp_path / "r")
    assert proc.returncode == 2, proc.stderr
    error = next(e for e in parse_events(proc.stdout) if e["event"] == "error")
    assert error["field"] == "teachers[1].path" and "expert.onnx" in error["message"]
    assert error["hint"]
    assert "Traceback" not in proc.stderr


def test_stop_on_stdin_checkpoints_and_exits_3(tmp_path, demo_dict):
    demo_dict["training"].update(epochs=2000, checkpoint_every_epochs=1000)
    db = tmp_path / "db.sqlite"
    proc = subprocess.Popen(engine_cmd("run", write_spec(tmp_path, demo_dict), "--db", db,
                                       "--run-dir", tmp_path / "r"),
                            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    events = []
    for line in proc.stdout:
        events.append(json.loads(line))
        if events[-1]["event"] == "metric":
            proc.stdin.write("pause\nresume\nstop\n")
            proc.stdin.flush()
            break
    events += parse_events(proc.stdout.read())
    assert proc.wait(timeout=60) == 3, proc.stderr.read()
    kinds = [e["event"] for e in events]
    assert kinds[-1] == "finished" and events[-1]["status"] == "stopped"
    assert "checkpoint" in kinds  # saved before exiting, long before an epoch-end checkpoint
    messages = [e["message"] for e in events if e["event"] == "log"]
    assert "paused" in messages and "resumed" in messages
    assert has_checkpoint(tmp_path / "r")
    status = sqlite3.connect(db).execute("select status from runs").fetchone()[0]
    assert status == "stopped"


def test_validate_good_and_bad(tmp_path, demo_dict):
    good = run_engine("validate", DEMO)
    assert good.returncode == 0 and "valid" in good.stdout and "85,002 parameters" in good.stdout
    demo_dict["strategy"]["temperature"] = 0
    demo_dict["teachers"][0]["classes"] = ["0", "1", "2", "3", "x"]
    bad = run_engine("validate", write_spec(tmp_path, demo_dict))
    assert bad.returncode == 2
    assert "strategy.temperature" in bad.stderr and "teachers[0].classes" in bad.stderr
    assert bad.stderr.count("hint:") == 2
    as_json = run_engine("validate", "--json", write_spec(tmp_path, demo_dict))
    assert {p["path"] for p in json.loads(as_json.stdout)["problems"]} == {
        "strategy.temperature", "teachers[0].classes"}


def test_validate_checks_the_files_too(tmp_path, demo_dict):
    demo_dict["teachers"][0]["classes"] = ["0", "1", "2"]  # the model has 5 outputs
    demo_dict["teachers"][2]["path"] = str(tmp_path / "gone.onnx")
    proc = run_engine("validate", write_spec(tmp_path, demo_dict))
    assert proc.returncode == 2
    assert "declares 3 classes" in proc.stderr and "gone.onnx" in proc.stderr


def test_validate_lists_a_damaged_teacher_beside_a_bad_data_file(tmp_path):
    """The data cannot be read (an empty cell): the teachers cannot be tried on it, but their
    files are still read, so one check lists both problems, each with its own fix."""
    proc = run_engine("validate", "--json", write_spec(tmp_path, csv_and_damaged_teacher(tmp_path)))
    assert proc.returncode == 2
    problems = {p["path"]: p for p in json.loads(proc.stdout)["problems"]}
    assert set(problems) == {"data.path", "teachers[1].path"}
    assert "row 7, column 'p10'" in problems["data.path"]["message"]
    assert "fill the cell" in problems["data.path"]["hint"] and "label" not in problems["data.path"]["hint"]
    assert "broken.onnx is not a valid ONNX model" in problems["teachers[1].path"]["message"]


def test_inspect_reports_what_the_file_holds():
    proc = run_engine("inspect", "--json", TEACHERS / "digits-7-0.onnx")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["format"] == "onnx" and info["classes"] == ["seven", "eight", "nine", "zero"]
    assert info["inputs"][0]["shape"] == ["batch", 1, 8, 8]
    assert info["outputs"][0]["shape"] == ["batch", 4]
    assert info["parameters"] > 0 and len(info["sha256"]) == 64
    text = run_engine("inspect", TEACHERS / "digits-0-4.onnx")
    assert "classes:    0, 1, 2, 3, 4" in text.stdout


@pytest.mark.parametrize("name, content, words", [
    ("empty.onnx", b"", "empty"),
    ("random.onnx", bytes(range(256)) * 4, "not a valid ONNX model"),
    ("random.safetensors", b"\xff" * 64, "not a valid safetensors"),
    ("model.txt", b"hello", "not a model format"),
    ("random.pt", b"PK\x03\x04 not really a zip", "not a readable PyTorch file"),
])
def test_inspect_refuses_unreadable_files_without_a_traceback(tmp_path, name, content, words):
    path = tmp_path / name
    path.write_bytes(content)
    proc = run_engine("inspect", path)
    assert proc.returncode == 2
    assert words in proc.stderr and "hint:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_inspect_refuses_a_pickle_that_would_run_code(tmp_path):
    marker = tmp_path / "pwned"
    payload = tmp_path / "evil.pt"
    code = ("import os, pickle, torch\n"
            "class Evil:\n"
            f"    def __reduce__(self): return (os.system, ('touch {marker}',))\n"
            f"torch.save({{'w': Evil()}}, {str(payload)!r})\n")
    subprocess.run([*engine_cmd()[:1], "-c", code], check=True)
    proc = run_engine("inspect", payload)
    assert proc.returncode == 2 and "could run code" in proc.stderr
    assert not marker.exists()


def test_missing_model_file(tmp_path):
    proc = run_engine("inspect", tmp_path / "nothing.onnx")
    assert proc.returncode == 2 and "no model file" in proc.stderr


def test_non_finite_loss_stops_the_run_with_a_clear_error(tmp_path, demo_dict):
    import numpy as np

    x = np.random.default_rng(0).random((200, 1, 8, 8)).astype(np.float32)
    x[:, 0, 0, 0] = 3e38  # finite, but statistics over it overflow: the loss becomes NaN
    np.savez(tmp_path / "extreme.npz", x=x, y=np.arange(200) % 10)
    demo_dict["data"] = {"format": "npz", "path": str(tmp_path / "extreme.npz")}
    db = tmp_path / "db.sqlite"
    proc = run_engine("run", write_spec(tmp_path, demo_dict), "--db", db, "--run-dir", tmp_path / "r")
    assert proc.returncode == 1
    events = parse_events(proc.stdout)
    error = next(e for e in events if e["event"] == "error")
    assert error["kind"] == "non_finite_loss" and "nan" in error["message"] and error["hint"]
    assert events[-1]["status"] == "failed"
    status, message = sqlite3.connect(db).execute("select status, error from runs").fetchone()
    assert status == "failed" and "nan" in message


def test_a_run_folder_that_cannot_be_written_is_named_before_training(tmp_path, demo_dict):
    (tmp_path / "a-file").write_text("not a folder")
    proc = run_engine("run", write_spec(tmp_path, demo_dict), "--run-dir", tmp_path / "a-file" / "run",
                      "--db", tmp_path / "db")
    events = parse_events(proc.stdout)
    assert proc.returncode == 2 and events[-1]["status"] == "failed"
    error = next(e for e in events if e["event"] == "error")
    assert "cannot write to the run folder" in error["message"] and "--run-dir" in error["hint"]
    assert not any(e["event"] == "metric" for e in events)


def test_an_empty_data_file_is_named_before_training(tmp_path, demo_dict):
    import numpy as np

    np.savez(tmp_path / "empty.npz", x=np.zeros((0, 1, 8, 8), np.float32), y=np.zeros(0, np.int64))
    demo_dict["data"] = {"format": "npz", "path": "empty.npz"}
    proc = run_engine("run", write_spec(tmp_path, demo_dict), "--run-dir", tmp_path / "r", "--db", tmp_path / "db")
    assert proc.returncode == 2
    error = next(e for e in parse_events(proc.stdout) if e["event"] == "error")
    assert "holds no samples" in error["message"] and error["field"] == "data"


def test_a_compiled_student_trains_to_the_same_place(tmp_path, demo_dict):
    demo_dict["training"].update(epochs=2, cpu_threads=1, compile=True)
    proc = run_engine("run", write_spec(tmp_path, demo_dict), "--run-dir", tmp_path / "c", "--db", tmp_path / "db",
                      timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    events = parse_events(proc.stdout)
    assert any("compiling the student" in e.get("message", "") for e in events if e["event"] == "log")
    demo_dict["training"]["compile"] = False
    plain = run_engine("run", write_spec(tmp_path, demo_dict, "plain.distill.json"), "--run-dir", tmp_path / "p",
                       "--db", tmp_path / "db")
    a, b = events[-1]["best"]["val/acc"], parse_events(plain.stdout)[-1]["best"]["val/acc"]
    assert abs(a - b) <= 0.02, (a, b)
