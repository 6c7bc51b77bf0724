"""Running from the window: a real engine process behind the Run, Pause and Stop buttons."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from engine.checkpoint import has_checkpoint
from tests.gui.helpers import drop, palette_mime, start_run
from tests.helpers import ROOT, engine_cmd, write_spec


def project(tmp_path, demo_dict, epochs, name="demo.distill.json"):
    demo_dict["training"]["epochs"] = epochs
    return write_spec(tmp_path, demo_dict, name)


def events_of(window, kind):
    return [e for e in window.runner.engine_events if e.event == kind]


@pytest.mark.slow
def test_a_run_from_the_window_completes_with_live_curves(window, qtbot, tmp_path, demo_dict):
    ended = start_run(window, qtbot, project(tmp_path, demo_dict, 3))
    qtbot.waitUntil(lambda: bool(ended), timeout=120000)
    assert ended[0][0] == "completed"
    qtbot.wait(250)  # one redraw tick
    dash = window.dashboard
    assert dash.points("val/acc") == 3 and dash.points("loss/total") >= 3 and dash.points("lr") >= 3
    x, y = dash.curves["val/acc"].xData, dash.curves["val/acc"].yData
    assert len(x) == 3 and np.all(y > 0.5)  # the curve on screen holds the points
    student = window.doc.student()
    assert "val/acc" in window.scene.node_items[student.id].live
    assert all("cached" in window.scene.node_items[t.id].live for t in window.doc.of_kind("teacher"))
    assert window.runner.progress.value() == 1000
    window.runs.refresh()
    assert window.runs.rows[0]["status"] == "completed"
    run_dir = window.runs.rows[0]["run_dir"]
    assert run_dir.startswith(str(tmp_path)) and os.path.isfile(os.path.join(run_dir, "pipeline.distill.json"))


@pytest.mark.slow
def test_pause_resume_and_stop_from_the_window(window, qtbot, tmp_path, demo_dict):
    ended = start_run(window, qtbot, project(tmp_path, demo_dict, 2000))
    qtbot.waitUntil(lambda: bool(events_of(window, "metric")), timeout=60000)
    window.runner.act_pause.trigger()
    assert window.runner.act_pause.text() == "&Resume"
    qtbot.waitUntil(lambda: any(e.message == "paused" for e in events_of(window, "log")), timeout=10000)
    window.runner.act_pause.trigger()
    qtbot.waitUntil(lambda: any(e.message == "resumed" for e in events_of(window, "log")), timeout=10000)
    window.runner.act_stop.trigger()
    qtbot.waitUntil(lambda: bool(ended), timeout=60000)
    assert ended[0][0] == "stopped"
    assert window.runner.act_run.isEnabled() and not window.runner.act_stop.isEnabled()
    window.runs.refresh()
    row = window.runs.rows[0]
    assert row["status"] == "stopped"
    assert has_checkpoint(row["run_dir"])
    window.runs.select_ids([row["id"]])
    assert window.runs.buttons["resume"].isEnabled()


@pytest.mark.slow
def test_a_killed_engine_leaves_the_app_working_and_the_run_resumable(window, qtbot, tmp_path, demo_dict):
    ended = start_run(window, qtbot, project(tmp_path, demo_dict, 2000))
    qtbot.waitUntil(lambda: bool(events_of(window, "checkpoint")), timeout=60000)
    os.kill(window.runner.engine.proc.processId(), signal.SIGKILL)
    qtbot.waitUntil(lambda: bool(ended), timeout=30000)
    status, message = ended[0]
    assert status == "failed" and "was killed (SIGKILL" in message
    box = window.runner.last_problem_box
    assert box is not None and box.isVisible() and "can be resumed" in box.informativeText()
    box.close()
    # the app keeps working: edit, undo
    strategy = window.doc.of_kind("strategy")[0]
    from gui.document.commands import SetProps

    window.undo_stack.push(SetProps(window.doc, strategy.id, {**strategy.props, "temperature": 2.0}, "temperature"))
    window.undo_stack.undo()
    assert window.doc.nodes[strategy.id].props["temperature"] == 4.0
    window.runs.refresh()
    row = window.runs.rows[0]
    assert row["status"] == "failed" and "killed" in row["error"]
    window.runs.select_ids([row["id"]])
    window.runs.buttons["resume"].click()
    qtbot.waitUntil(lambda: window.runner.running and bool(events_of(window, "started")), timeout=30000)
    qtbot.waitUntil(lambda: any(e.resumed for e in events_of(window, "started")), timeout=30000)
    window.runner.act_stop.trigger()
    qtbot.waitUntil(lambda: len(ended) == 2, timeout=60000)
    assert ended[1][0] == "stopped"


@pytest.mark.slow
def test_runs_panel_shows_a_cli_run_compares_and_reopens(window, qtbot, tmp_path, demo_dict):
    path = project(tmp_path, demo_dict, 2)
    for gradient_norms in (False, True):  # the second with its layer groups' gradient norms
        demo_dict["training"]["gradient_norms"] = gradient_norms
        write_spec(tmp_path, demo_dict, path.name)
        proc = subprocess.run(engine_cmd("run", path, "--db", window.store.path), cwd=ROOT,
                              capture_output=True, timeout=120)
        assert proc.returncode == 0
    window.runs.refresh()
    assert [r["status"] for r in window.runs.rows] == ["completed", "completed"]
    ids = [r["id"] for r in window.runs.rows]  # newest first
    window.runs.select_ids(ids)
    assert sorted(window.dashboard.history) == sorted(ids)
    assert all(r["parameters"] > 0 and 0 < r["active_s"] <= r["ended"] - r["started"] for r in window.runs.rows)
    table = window.runs.comparison  # side by side: the engine's own records
    assert table.isVisible() and table.comparison.summary.startswith("1 setting(s) differ: gradient norms")
    rows = {r.label: r.values for r in table.comparison.rows}
    assert rows["parameters"][0] == rows["parameters"][1] != "–" and rows["final test acc"][0] != "–"
    # loss/total, val/acc, lr; and for the second run its three layer groups, in the gradient plot
    assert [len(window.dashboard.history[i]) for i in ids] == [6, 3]
    grad = window.dashboard.plots["grad"]
    assert sum(plot is grad for plot, _ in window.dashboard.history[ids[0]]) == 3
    window.runs.select_ids([ids[1]])
    assert "grad" not in window.dashboard.plots  # no gradient norms in that run
    window.runs.select_ids([ids[0]])
    window.runs.buttons["open"].click()
    assert len(window.doc.of_kind("teacher")) == 3 and window.path is None  # an untitled copy
    window.runs.buttons["rerun"].click()
    qtbot.waitUntil(lambda: not window.runner.running, timeout=120000)
    window.runs.refresh()
    assert len(window.runs.rows) == 3 and window.runs.rows[0]["status"] == "completed"


def test_an_unfinished_pipeline_is_not_started(window, qtbot):
    from PySide6.QtCore import QPointF

    drop(window.view, palette_mime(window, "student"), QPointF(0, 0))
    assert not window.runner.run_pipeline()
    assert not window.runner.running
    box = window.runner.last_problem_box
    assert "connect a data source" in box.informativeText()


@pytest.mark.slow
def test_command_line_run_quit_when_done(tmp_path, demo_dict):
    png = tmp_path / "dash.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-m", "gui.app", str(project(tmp_path, demo_dict, 3)), "--run",
                           "--quit-when-done", "--db", str(tmp_path / "db.sqlite"), "--screenshot", str(png)],
                          cwd=ROOT, capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "run completed" in proc.stdout and png.stat().st_size > 10000

    x = np.random.default_rng(0).random((200, 1, 8, 8)).astype(np.float32)
    x[:, 0, 0, 0] = 3e38  # the loss becomes NaN: a failed run
    np.savez(tmp_path / "extreme.npz", x=x, y=np.arange(200) % 10)
    demo_dict["data"] = {"format": "npz", "path": str(tmp_path / "extreme.npz")}
    failing = write_spec(tmp_path, demo_dict, "failing.distill.json")
    proc = subprocess.run([sys.executable, "-m", "gui.app", str(failing), "--run", "--quit-when-done",
                           "--db", str(tmp_path / "db.sqlite")], cwd=ROOT, capture_output=True,
                          text=True, timeout=180, env=env)
    assert proc.returncode == 1 and "run failed" in proc.stdout


@pytest.mark.slow
def test_closing_during_a_run_stops_it_or_keeps_it_running(window, qtbot, tmp_path, demo_dict, monkeypatch):
    ended = start_run(window, qtbot, project(tmp_path, demo_dict, 2000))
    qtbot.waitUntil(lambda: bool(events_of(window, "metric")), timeout=60000)
    monkeypatch.setattr(window, "choose_close_action", lambda: "cancel")
    assert not window.close() and window.runner.running
    monkeypatch.setattr(window, "choose_close_action", lambda: "stop")
    assert not window.close()  # not yet: the engine saves a checkpoint first
    qtbot.waitUntil(lambda: bool(ended), timeout=60000)
    assert ended[0][0] == "stopped"
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10000)  # then the window closes

    window.show()
    ended.clear()
    window.runner.act_run.trigger()
    qtbot.waitUntil(lambda: len(events_of(window, "metric")) > 3, timeout=60000)
    monkeypatch.setattr(window, "choose_close_action", lambda: "keep")
    pid = window.runner.engine.proc.processId()
    assert window.close() and window.keep_engine_running
    try:
        qtbot.wait(500)
        os.kill(pid, 0)  # the engine goes on without the window
        window.runs.refresh()
        assert window.runs.rows[0]["status"] == "running"
    finally:
        os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_several_gpus_are_offered_and_then_runs_start_under_torchrun(window, qtbot):
    from PySide6.QtCore import QProcess

    from gui.engine_client.run import engine_arguments

    runner = window.runner
    qtbot.waitUntil(lambda: runner.devices_proc is not None and
                    runner.devices_proc.state() == QProcess.NotRunning, timeout=60000)  # the engine answered
    assert runner.act_all_gpus.isVisible() == (runner.gpus > 1)  # one GPU or none: nothing to offer
    runner._devices_known('{"cuda": 4}')  # what a workstation with four GPUs answers
    assert runner.act_all_gpus.isVisible() and runner.act_all_gpus.isChecked()
    assert runner.act_all_gpus.text() == "Use &All 4 GPUs" and runner.processes == 4
    main = str(ROOT / "engine" / "__main__.py")
    assert engine_arguments(["run", "p.json"], runner.processes) == [
        "-P", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4", main, "run", "p.json"]
    runner.act_all_gpus.setChecked(False)
    assert runner.processes == 1 and engine_arguments(["run", "p.json"], 1) == ["-P", main, "run", "p.json"]


def test_resuming_replays_every_stored_curve_from_the_start_of_the_run(window, tmp_path, monkeypatch):
    """A resumed run's curves so far come back whole: the per-teacher KD losses and the training
    accuracy too, not only the main curves (the engine itself is not started here)."""
    store = window.store
    run_id = store.create_run("digits experts", "{}", "hash", tmp_path / "run", "cpu")
    teachers = ["loss/kd/low digits", "loss/kd/high digits"]
    for step in range(1, 11):
        store.add_metrics(run_id, 10 * step, step / 2, {"loss/total": 1.0 / step, "train/acc": 0.05 * step,
                                                        "lr": 0.01, **{t: 0.5 / step for t in teachers}})
        if step % 2 == 0:
            store.add_metrics(run_id, 10 * step, step / 2, {"val/acc": 0.1 * step, "val/loss": 0.2})
    store.add_metrics(run_id, 100, 5.0, {"grad/head": 0.3})
    store.flush()
    store.finish_run(run_id, "failed", {}, "killed")
    started = []
    monkeypatch.setattr(window.runner.engine, "start_resume", lambda run_dir, processes=1: started.append(run_dir))
    window.runner.resume_run(run_id)
    assert started == [tmp_path / "run"]
    dash = window.dashboard
    for name in ("loss/total", "train/acc", "lr", *teachers):
        assert dash.points(name) == 10, name
        assert dash.series[name].x[0] == 0.5  # from the run's first epoch, not the resume's
    assert dash.points("val/acc") == 5 and dash.points("val/loss") == 5 and dash.points("grad/head") == 1
    assert dash.series["grad/head"].x[0] == 100  # by step
    assert dash.curves["loss/kd/low digits"].name() == "KD: low digits"
