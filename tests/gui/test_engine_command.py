"""The app starts its engine through one helper: `python -m engine` from source, the app's own
executable with `--engine` in the installed (PyInstaller, `sys.frozen`) app."""

from __future__ import annotations

import ast
import os
import stat
import sys
from pathlib import Path

from gui.engine_client import engine_command as ec

ROOT = Path(__file__).resolve().parents[2]
TEACHER = ROOT / "assets" / "teachers" / "digits-0-4.onnx"


def test_from_source_the_engine_is_this_python_running_the_engines_main_by_absolute_path(monkeypatch):
    """Never `-m engine`: that would import an `engine` folder from the working directory."""
    monkeypatch.delattr(sys, "frozen", raising=False)
    main = str(ROOT / "engine" / "__main__.py")
    assert ec.engine_program() == (sys.executable, ["-P", main])
    assert ec.engine_command(["run", "p.json"]) == (sys.executable, ["-P", main, "run", "p.json"])
    assert ec.engine_command(["run", "p.json"], processes=4) == (sys.executable, [
        "-P", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4", main, "run", "p.json"])
    assert ec.ENGINE_ENVIRONMENT["PYTHONSAFEPATH"] == "1"  # torchrun's workers inherit it


def test_in_the_installed_app_the_engine_is_the_app_itself(monkeypatch):
    bundle = "/opt/distill-studio/distill-studio"
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(sys, "executable", bundle)
    assert ec.engine_program() == (bundle, ["--engine"])
    assert ec.engine_command(["inspect", "--json", "m.onnx"]) == (bundle, ["--engine", "inspect", "--json", "m.onnx"])
    # several GPUs: torchrun from the bundle, each worker the bundle in engine mode (no Python needed)
    assert ec.engine_command(["run", "p.json"], processes=2) == (bundle, [
        "--torchrun", "--standalone", "--nproc_per_node=2", "--no-python", bundle, "--engine", "run", "p.json"])
    assert ec.describe_program() == f"{bundle} --engine"


def test_on_windows_the_engine_is_the_console_program_beside_the_app(monkeypatch):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(sys, "executable", "/Program Files/Distill Studio/distill-studio.exe")
    assert ec.engine_program() == ("/Program Files/Distill Studio/distill-engine.exe", ["--engine"])


def _starts_engine_by_hand(tree: ast.AST) -> list[int]:
    """Lines that name sys.executable, or pass "-m", "engine" side by side."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "executable" and \
                isinstance(node.value, ast.Name) and node.value.id == "sys":
            lines.append(node.lineno)
        if isinstance(node, ast.List):
            values = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
            if any(a == "-m" and b == "engine" for a, b in zip(values, values[1:], strict=False)):
                lines.append(node.lineno)
    return lines


def test_the_check_below_finds_a_hand_made_engine_command():
    code = 'import sys\nproc.setProgram(sys.executable)\nproc.setArguments(["-m", "engine", "run"])\n'
    assert _starts_engine_by_hand(ast.parse(code)) == [2, 3]


def test_no_gui_module_but_the_helper_starts_the_engine_by_hand():
    helper = ROOT / "gui" / "engine_client" / "engine_command.py"
    offenders = {str(path.relative_to(ROOT)): lines
                 for path in sorted((ROOT / "gui").rglob("*.py")) if path != helper
                 if (lines := _starts_engine_by_hand(ast.parse(path.read_text(encoding="utf-8"))))}
    assert offenders == {}, "start the engine through gui.engine_client.engine_command"


def test_a_frozen_app_reads_a_model_through_its_own_executable(qtbot, monkeypatch, tmp_path):
    """A stand-in for the bundle: a program that serves only `--engine …` (as the built app
    does) and records that it was asked."""
    log = tmp_path / "calls.txt"
    fake = tmp_path / "distill-studio"
    fake.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\n[ "$1" = --engine ] || exit 64\nshift\n'
                    f'exec "{sys.executable}" -m engine "$@"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(fake))
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    from gui.engine_client.inspect import ModelInspector

    inspector = ModelInspector()
    answers = []
    inspector.inspect(TEACHER, lambda info, error: answers.append((info, error)))
    qtbot.waitUntil(lambda: len(answers) == 1, timeout=60000)
    info, error = answers[0]
    assert error is None and info["format"] == "onnx"
    calls = log.read_text().splitlines()  # another window's background `devices` query may land here too
    assert f"--engine inspect --json {TEACHER}" in calls and all(c.startswith("--engine ") for c in calls)
    # the finished process's deferred deletion and queued signals are handled while the inspector
    # (owned by Python, no parent) still exists, not after the test dropped it
    qtbot.wait(200)


def _calls(path: Path, name: str) -> list[int]:
    return [node.lineno for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name]


def test_every_engine_child_process_is_made_by_the_one_helper():
    helper = ROOT / "gui" / "engine_client" / "process.py"
    modules = [p for p in sorted((ROOT / "gui").rglob("*.py")) if p != helper]
    assert {str(p.relative_to(ROOT)): _calls(p, "QProcess") for p in modules if _calls(p, "QProcess")} == {}
    assert {str(p.relative_to(ROOT)) for p in modules if _calls(p, "start_engine")} == {
        "gui/engine_client/one_shot.py", "gui/engine_client/inspect.py",
        "gui/engine_client/run.py", "gui/engine_client/scan.py", "gui/main_window.py", "gui/run_controller.py"}
