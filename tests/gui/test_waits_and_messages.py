"""What a new user hit: silent waits (engine start, Check Pipeline), a jumpy ETA, status-bar
messages cut off or stale after Stop, an Undo button that grew with each edit, and a teacher
that showed an undone file's details."""

from __future__ import annotations

import random
import time

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QMessageBox, QToolBar

from engine.events import PROTOCOL_VERSION, Progress, Started
from gui.document.commands import SetProps
from gui.engine_client.eta import MIN_MEASURED_S, EtaEstimator, about
from gui.panels.status_bar import MORE
from tests.helpers import demo_spec, image_onnx, write_spec

NOW = time.time()


def progress(step: int, total: int = 30_000, rate: float = 3200.0, eta: float = 144.0, **kw) -> Progress:
    return Progress(time=NOW, phase="distill", fraction=step / total, step=step, total_steps=total,
                    epoch=20 * step / total, epochs=20, samples_per_s=rate, eta_s=eta, **kw)


def noisy_stream(seed: int = 0, seconds: float = 120.0):
    """(time, step, the engine's samples/s) every quarter second: about 100 steps/s that vary
    ±60 % from one reading to the next, a 2 s validation pass every 10 s (no steps)."""
    rng, t, step = random.Random(seed), 0.0, 0
    while t < seconds:
        t += 0.25
        if t % 10 < 2:  # validating
            continue
        done = rng.uniform(0.4, 1.6) * 25
        step += int(done)
        yield t, step, done / 0.25 * 32


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_eta_waits_for_measured_progress_then_moves_steadily(seed):
    eta, total = EtaEstimator(), 30_000
    prev, engine_prev, jumps, engine_jumps = None, None, [], []
    for t, step, rate in noisy_stream(seed):
        eta.update(t, step, total, rate)
        if t < MIN_MEASURED_S:
            assert eta.eta_s is None and eta.text() == "estimating…"
        engine_eta = (total - step) * 32 / rate  # what the engine says: this quarter second's speed
        if eta.eta_s is not None and t > 10:
            if prev is not None:  # from one reading to the next: the time passed, and a little more
                jumps.append((t, abs(eta.eta_s - (prev - 0.25)) / prev))
                engine_jumps.append(abs(engine_eta - engine_prev) / engine_prev)
            prev, engine_prev = eta.eta_s, engine_eta
    assert max(engine_jumps) > 0.8  # the engine's own figure jumps by most of itself
    assert max(j for t, j in jumps) < 0.15 and max(j for t, j in jumps if t > 60) < 0.07
    # right on average: with the validation passes counted, the speed is about 80 steps/s
    truth = (total - step) / (step / (t - 2))
    assert abs(eta.eta_s - truth) / truth < 0.1, (eta.eta_s, truth)
    assert eta.text() in ("about 4 min", "about 5 min")


def test_a_pause_and_a_new_phase_start_their_own_estimates():
    eta = EtaEstimator()
    for i in range(40):
        eta.update(i * 0.25, i * 25, 10_000, 3200)
    before = eta.eta_s
    eta.hold()  # paused for 60 s: not training time
    eta.update(70.0, 1000, 10_000, 3200)
    eta.update(70.25, 1025, 10_000, 3200)
    assert abs(eta.eta_s - (before - 0.5)) < 0.05 * before
    eta.update(71.0, 10, 500, 3200, ("prune", 0))  # a fine-tune: measured afresh
    assert eta.text() == "estimating…"


def test_eta_words_are_round():
    assert [about(s) for s in (4, 23, 144, 246, 1300, 4800)] == [
        "a few seconds", "about 25 s", "about 2 min", "about 4 min", "about 20 min", "about 1 h 20 min"]


def test_the_run_says_it_is_starting_then_a_smoothed_eta(window):
    runner, now = window.runner, [100.0]
    runner.clock = lambda: now[0]
    runner._start(lambda: None)  # the engine takes its time to start: nothing said by it yet
    assert runner.run_label.text() == "Starting the engine…"
    assert runner.progress.isVisible() and runner.progress.maximum() == 0  # a busy bar
    runner.engine.event.emit(Started(time=NOW, protocol=PROTOCOL_VERSION, run_id=7, resumed=False, name="demo",
                                     run_dir="/tmp/r", db="/tmp/db", device="cpu", threads=2, precision="fp32",
                                     processes=1, torch="2.5",
                                     split={"train": 10, "val": 2, "test": 2}, labeled=True, teachers=[], epochs=20))
    assert runner.run_label.text().startswith("run #7 on cpu") and runner.progress.maximum() == 0
    shown = []
    for i, jumpy in enumerate([144, 246, 19, 40, 118] * 8):  # the ETAs, a reading per 0.4 s
        now[0] += 0.4
        runner.engine.event.emit(progress(1000 + 40 * i, rate=3000 + 400 * (i % 3), eta=float(jumpy)))
        shown.append(runner.run_label.text())
    assert runner.progress.maximum() == 1000 and runner.progress.value() > 0
    assert "ETA estimating…" in shown[0] and "ETA estimating…" in shown[8]  # under 4 s measured
    later = {s.split("ETA ")[1] for s in shown[15:]}
    assert len(later) == 1 and later.pop().startswith("about "), shown[15:]  # one steady figure
    assert not any(f"ETA {j}" in s for s in shown for j in (144, 246, 19, 40, 118))


def test_after_stop_late_progress_is_ignored_stopping_then_stopped(window, monkeypatch):
    runner = window.runner
    runner._start(lambda: None)
    runner.engine.event.emit(progress(17_400, eta=206.0))
    monkeypatch.setattr(type(runner.engine), "running", property(lambda _self: True))
    sent = []
    monkeypatch.setattr(runner.engine, "stop", lambda: sent.append("stop"))
    runner.stop()
    assert sent == ["stop"] and runner.run_label.text().startswith("stopping")
    assert not runner.act_stop.isEnabled() and not runner.act_pause.isEnabled()
    runner.engine.event.emit(progress(17_450, eta=206.0))  # written before the engine read "stop"
    assert runner.run_label.text().startswith("stopping") and "ETA" not in runner.run_label.text()
    monkeypatch.undo()
    runner.engine.ended.emit("stopped", "The run was stopped; its checkpoint is kept and it can be resumed.")
    assert runner.run_label.text() == "run stopped"
    assert runner.act_run.isEnabled() and not runner.stopping


def test_a_long_message_can_be_read_in_full(window, qtbot):
    bar = window.statusBar()
    message = ("Cannot use /home/someone/Downloads/models/experts/low-digits-expert-2024-03-final.onnx: not a "
               "valid ONNX model (the file ends before its graph does; it may have been cut short while copying)"
               "\n→ download it again, or export it again from its framework (torch.onnx.export, skl2onnx)")
    bar.showMessage(message, 8000)
    assert bar.currentMessage() == message and bar.toolTip() == message
    assert bar.cut and MORE in super(type(bar), bar).currentMessage()  # drawn cut, saying so
    qtbot.mouseClick(bar, Qt.LeftButton, pos=QPoint(40, bar.height() // 2))
    box = window.findChild(QMessageBox, "status-message-box")
    assert box is not None and box.isVisible() and box.informativeText() == message
    box.close()
    bar.showMessage("Saved", 5000)  # a short one: drawn whole, no tooltip, a click opens nothing
    assert not bar.cut and bar.toolTip() == "" and bar.currentMessage() == "Saved"


def test_the_undo_button_keeps_its_width_and_says_plain_words(window, tmp_path):
    assert window.open_project(write_spec(tmp_path, demo_spec()), ask=False)
    toolbar = window.findChild(QToolBar, "main-toolbar")
    button = toolbar.widgetForAction(window.act_undo)
    run = toolbar.widgetForAction(window.runner.act_run)
    data = window.doc.of_kind("data")[0]
    student = window.doc.student()
    where = run.x()
    window.undo_stack.push(SetProps(window.doc, data.id, {**data.props, "label_column": "y"}, "label_column"))
    window.undo_stack.push(SetProps(window.doc, student.id, student.props, "training.lr"))
    assert window.act_undo.text() == "&Undo" and button.text() == "Undo"
    assert window.act_undo.toolTip() == f"Undo Change the learning rate of {student.title}"
    window.undo_stack.undo()
    assert window.act_undo.toolTip() == f"Undo Change the label column of {data.title}"
    assert window.act_redo.toolTip() == f"Redo Change the learning rate of {student.title}"
    assert run.x() == where  # Run did not move


def test_checking_shows_a_busy_bar_that_goes_when_the_result_shows(window, qtbot, tmp_path):
    spec = demo_spec()
    spec["teachers"][0]["path"] = str(tmp_path / "missing.onnx")
    assert window.open_project(write_spec(tmp_path, spec), ask=False)
    assert window.busy.words == f"Reading {len(spec['teachers'])} model files…"  # read again
    qtbot.waitUntil(lambda: window.model_inspector.busy == 0, timeout=60000)
    assert not window.busy.isVisible()
    window.check_pipeline()
    assert window.busy.isVisible() and window.busy.words == "Checking the pipeline…"
    assert window.busy.bar.maximum() == 0 and not window.act_check.isEnabled()
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "problems-box") is not None, timeout=60000)
    assert not window.busy.isVisible() and window.busy.words == "" and window.act_check.isEnabled()
    assert "Checking" not in window.statusBar().currentMessage()


@pytest.mark.slow  # real engine children read the model file
def test_a_teachers_details_follow_its_file_through_undo_and_redo(window, qtbot, tmp_path):
    from tests.gui.helpers import add

    model = image_onnx(tmp_path / "m.onnx", ["batch", 1, 8, 8], {}, classes=3)
    teacher = add(window.doc, window.undo_stack, "teacher", name="t")
    item = window.scene.node_items[teacher.id]
    window.undo_stack.push(SetProps(window.doc, teacher.id, {**teacher.props, "path": str(model)}, "path"))
    info = lambda: window.doc.nodes[teacher.id].info  # noqa: E731
    assert window.busy.words.startswith("Reading 1 model file")
    qtbot.waitUntil(lambda: info().get("file") == str(model) and "format" in info(), timeout=60000)
    qtbot.waitUntil(lambda: not window.busy.isVisible(), timeout=10000)
    assert "ONNX" in item.lines[1]
    item.set_live("accuracy 0.910 on 300 labelled samples")
    while window.doc.nodes[teacher.id].props.get("path"):  # back to before the file
        window.undo_stack.undo()
    assert info() == {} and item.lines[1] == "no model file" and item.live == ""
    window.undo_stack.redo()  # the file is back, and what was read of it with it
    assert info().get("file") == str(model) and "ONNX" in item.lines[1]
    other = image_onnx(tmp_path / "other.onnx", ["batch", 1, 4, 4], {}, classes=2)
    window.undo_stack.push(SetProps(window.doc, teacher.id, {**window.doc.nodes[teacher.id].props, "name": "t2"},
                                    "name"))  # an edit between: the next file is an undo step of its own
    window.undo_stack.push(SetProps(window.doc, teacher.id, {**window.doc.nodes[teacher.id].props,
                                                             "path": str(other)}, "path"))
    assert info() == {}  # not the first file's details while the second one is read
    qtbot.waitUntil(lambda: info().get("file") == str(other) and "format" in info(), timeout=60000)
    assert "in 1×4×4" in item.lines[1]
    window.undo_stack.undo()  # back to the first file: read again
    assert window.doc.nodes[teacher.id].props["path"] == str(model)
    assert info() == {} or info().get("file") == str(model)
    qtbot.waitUntil(lambda: info().get("file") == str(model) and "format" in info(), timeout=60000)
    assert "in 1×8×8" in item.lines[1]
