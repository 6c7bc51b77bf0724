"""Engine children never import anything from the working directory: a folder named `engine`
(or `torch`) where the app was started is never run, neither by the app's one helper, nor
under torchrun, nor by the tests' own helpers (issue 22: `python -m engine` put the working
directory first on sys.path)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from PySide6.QtCore import QProcess

from gui.engine_client.engine_command import engine_command
from gui.engine_client.process import start_engine
from tests.helpers import DEMO, SAFE_PATH, engine_cmd, run_engine

PLANT = 'open({marker!r}, "w").write("ran")\n'


def hostile_folder(tmp_path):
    """A scratch folder holding `engine` and `torch` packages that leave a marker file when
    imported (or run); returns the folder and the markers."""
    folder = tmp_path / "p"
    markers = []
    for name in ("engine", "torch"):
        package = folder / name
        package.mkdir(parents=True)
        marker = folder / f"PWNED-{name}"
        markers.append(marker)
        for module in ("__init__.py", "__main__.py"):
            (package / module).write_text(PLANT.format(marker=str(marker)))
    return folder, markers


def run_from_app(qtbot, args, processes=1):
    proc = start_engine(None, args, processes=processes)
    qtbot.waitUntil(lambda: proc.state() == QProcess.NotRunning, timeout=120000)
    answer = proc.exitCode(), bytes(proc.readAllStandardOutput()).decode(), bytes(proc.readAllStandardError()).decode()
    qtbot.wait(200)  # its queued signals are handled while the process object (no parent) still exists
    return answer


def test_the_apps_engine_child_ignores_an_engine_folder_in_the_working_directory(qtbot, tmp_path, monkeypatch):
    folder, markers = hostile_folder(tmp_path)
    monkeypatch.chdir(folder)  # the app was started here: its children start here too
    code, out, err = run_from_app(qtbot, ["devices", "--json"])
    assert code == 0, err
    assert "cuda" in json.loads(out)
    code, out, err = run_from_app(qtbot, ["validate", str(DEMO)])
    assert code == 0, err
    assert [m.name for m in markers if m.exists()] == []


@pytest.mark.slow  # torchrun and two workers, each importing torch
def test_under_torchrun_neither_the_launcher_nor_its_workers_import_from_the_working_directory(
        qtbot, tmp_path, monkeypatch):
    folder, markers = hostile_folder(tmp_path)
    monkeypatch.chdir(folder)
    code, out, err = run_from_app(qtbot, ["devices", "--json"], processes=2)
    assert code == 0, err[-3000:]
    assert [json.loads(line)["cuda"] >= 0 for line in out.splitlines()] == [True, True]  # each worker answered
    assert [m.name for m in markers if m.exists()] == []


def test_the_tests_helpers_start_the_engine_the_same_way(tmp_path):
    folder, markers = hostile_folder(tmp_path)
    out = subprocess.run(engine_cmd("validate", DEMO), cwd=folder, capture_output=True, text=True,
                         timeout=120, env={**os.environ, **SAFE_PATH}, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    assert run_engine("devices", "--json").returncode == 0
    assert [m.name for m in markers if m.exists()] == []
    program, arguments = engine_command(["devices"])
    assert "-m" not in arguments and "-P" in arguments  # the app's: by absolute path, safe sys.path
