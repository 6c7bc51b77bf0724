"""`distill-studio PROJECT`: the app starts the engine as a child process and shows its events."""

import subprocess
import sys

import pytest

from gui.engine_client.event_text import EventText
from tests.helpers import ROOT, write_spec


@pytest.mark.slow
def test_app_runs_a_project_through_the_engine_process(tmp_path, demo_dict):
    demo_dict["training"]["epochs"] = 3
    project = write_spec(tmp_path, demo_dict, "demo.distill.json")
    proc = subprocess.run([sys.executable, "-m", "gui.app", str(project), "--headless",
                           "--db", str(tmp_path / "db.sqlite"), "--run-dir", str(tmp_path / "run")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("run 1 'digits experts' on cpu")
    assert sum(line.startswith("epoch ") for line in lines) == 3
    assert lines[-1].startswith("finished: completed (best val/acc 0.")


@pytest.mark.slow
def test_app_reports_a_bad_project_with_the_engines_message(tmp_path, demo_dict):
    demo_dict["classes"] = "0123456789"
    project = write_spec(tmp_path, demo_dict, "bad.distill.json")
    proc = subprocess.run([sys.executable, "-m", "gui.app", str(project), "--headless",
                           "--db", str(tmp_path / "db.sqlite")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "error (invalid_input): Input should be a valid list" in proc.stdout
    assert "finished: failed" in proc.stdout


@pytest.mark.slow
def test_missing_project_file(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "gui.app", str(tmp_path / "none.distill.json")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "no project file" in proc.stderr


def test_event_text_lists_every_problem_and_survives_stray_lines():
    text = EventText()
    lines = text.feed('{"event": "error", "time": 1.5, "kind": "invalid_input", "message": "m1", "hint": "h1", '
                      '"problems": [{"path": "a", "message": "m1", "hint": "h1"}, '
                      '{"path": "b.c", "message": "m2", "hint": "h2"}]}')
    assert lines == ["error (invalid_input): m1", "  hint: h1", "error: b.c: m2", "  hint: h2"]
    assert text.feed("not json") == ["(engine) protocol problem: a line that is not JSON: 'not json'"]
    assert text.feed('{"event": "progress", "time": 1.5, "phase": "export", "stage": "onnx", "fraction": 0.15}') == []
    assert text.feed('{"event": "progress", "step": 3}') == [
        "(engine) protocol problem: a 'progress' event that does not fit protocol 1 "
        "(time: Field required; phase: Field required; fraction: Field required)"]
