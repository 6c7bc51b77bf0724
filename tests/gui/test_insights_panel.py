"""The Insights panel on real widgets (offscreen), from a hand-written RUN_DIR/insights/
(tests/gui/insights_fixture.py, the format of docs/INSIGHTS.md), and its engine client against a
stand-in engine program that writes `analyze`'s events."""

from __future__ import annotations

import json
import stat
import sys
import textwrap

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QDesktopServices
from PySide6.QtWidgets import QToolTip

from gui import theme
from gui.engine_client.analyze import EngineAnalyze
from gui.panels.heatmap import HeatMap
from gui.panels.insights import InsightsPanel
from tests.gui.insights_fixture import CLASSES, TEACHERS, insights_arrays, insights_json, write_insights


@pytest.fixture
def panel(qtbot):
    widget = InsightsPanel()
    widget.resize(1100, 600)
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def run_with_insights(tmp_path, kind="image"):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "student.safetensors").write_bytes(b"weights")
    write_insights(run_dir, kind)
    return run_dir


def cells(table):
    return [[table.item(r, c).text() if table.item(r, c) else "" for c in range(table.columnCount())]
            for r in range(table.rowCount())]


def headers(table):
    return [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]


def test_the_amalgamation_table_has_every_cell_and_colours_the_verdicts(panel, tmp_path):
    panel.show_run(3, run_with_insights(tmp_path), "completed")
    table = panel.amalgamation
    assert headers(table) == ["class", "support", "student", *TEACHERS, "best teacher", "Δ (student − best)",
                              "verdict"]
    assert cells(table) == [
        ["cat", "30", "90.0%", "97.0%", "", TEACHERS[0], "−7.0 pts", "trails"],
        ["dog", "30", "93.0%", "90.0%", "80.0%", TEACHERS[0], "+3.0 pts", "beats"],
        [CLASSES[2], "30", "87.0%", "", "86.0%", TEACHERS[1], "+1.0 pts", "matches"]]
    beats, trails = QColor(theme.current().beats), QColor(theme.current().trails)
    assert table.item(0, 2).background().color() == trails and table.item(0, 7).background().color() == trails
    assert table.item(1, 6).background().color() == beats and table.item(1, 7).background().color() == beats
    assert table.item(2, 7).background().style() == Qt.NoBrush  # matches: not coloured
    assert "does not know" in table.item(0, 4).toolTip()
    assert table.item(0, 3).font().bold()  # the best teacher's score
    summary = panel.amalgamation_summary.text()
    assert "beats its best teacher on 1 class" in summary and "trails on 1 class" in summary
    assert "run #3" in panel.title.text() and "pets and birds" in panel.title.text()
    facts = panel.facts.text()
    assert "the test split: 90 samples" in facts and "90.0%" in facts and "ECE 0.031" in facts


def test_the_confusion_heat_map_shows_the_matrix_in_the_given_order(panel, tmp_path):
    panel.show_run(3, run_with_insights(tmp_path))
    heat = panel.confusion
    counts = np.array(insights_json()["confusion"]["counts"], dtype=float)
    order = [0, 2, 1]
    np.testing.assert_array_equal(heat.image.image, counts[np.ix_(order, order)])
    assert heat.row_labels == [CLASSES[i] for i in order] == heat.col_labels
    assert heat.colorbar.levels() == (0.0, 28.0) and heat.colorbar.axis.isVisible()
    ticks = heat.plot.getAxis("bottom")._tickLevels[0]
    assert [t[1] for t in ticks] == ["cat", "a bird with a…", "dog"]  # long names cut
    assert [t.toPlainText() for t in heat.texts[:3]] == ["27", "1", "2"]
    assert heat.plot.getAxis("left").labelText == "true class"
    assert "value: 4" in heat.cell_tip(1, 2) and "true class: a bird" in heat.cell_tip(1, 2)
    dark = heat.texts[0].color  # 27 of 28: a dark cell, white text; a light one: dark text
    assert dark.lightness() > 200 and heat.texts[1].color.lightness() < 100

    panel.confusion_normalized.setChecked(True)
    normalized = np.array(insights_json()["confusion"]["normalized"])
    np.testing.assert_allclose(heat.image.image, normalized[np.ix_(order, order)], rtol=1e-6)
    assert heat.colorbar.levels() == (0.0, 1.0)


def test_the_agreement_heat_map_greys_missing_cells_and_tells_the_samples(panel, qtbot, tmp_path):
    panel.show_run(3, run_with_insights(tmp_path))
    heat = panel.agreement
    rates = insights_json()["agreement"]["rate"]
    expected = np.array([[np.nan if v is None else v for v in row] for row in rates])
    np.testing.assert_array_equal(heat.image.image, expected)
    assert heat.missing.rect().width() == 3  # grey behind the transparent (missing) cells
    assert "30 samples compared" in heat.cell_tip(0, 1)
    assert "no value" in heat.cell_tip(1, 2) and "no class in common" in heat.cell_tip(1, 2)
    panel.tabs.setCurrentWidget(panel.pages["agreement"])
    qtbot.wait(50)
    heat._hover(heat.plot.getViewBox().mapViewToScene(QPointF(1.5, 0.5)))  # the mouse over row 0, column 1
    assert QToolTip.text() == heat.cell_tip(0, 1)


def test_a_heat_map_with_many_classes_writes_no_values_on_the_cells(qtbot):
    heat = HeatMap("many")
    qtbot.addWidget(heat)
    labels = [f"class {i}" for i in range(20)]
    heat.set_matrix(np.eye(20).tolist(), labels, labels)
    assert heat.texts == [] and heat.image.image.shape == (20, 20)
    heat.set_matrix([], [], [])  # nothing to compare: an empty map, no error
    assert heat.matrix.shape == (0, 0) and heat.texts == []


def test_the_calibration_curves_are_the_files_figures(panel, tmp_path):
    panel.show_run(3, run_with_insights(tmp_path))
    models = insights_json()["calibration"]["models"]
    assert list(panel.calibration_curves) == ["student", *TEACHERS]
    for model in models:
        x, y = panel.calibration_curves[model["name"]].getData()
        keep = [i for i, c in enumerate(model["confidence"]) if c is not None]
        np.testing.assert_allclose(x, [model["confidence"][i] for i in keep])
        np.testing.assert_allclose(y, [model["accuracy"][i] for i in keep])
    legend = [label.text for _sample, label in panel.calibration_legend.items]
    assert "student (ECE 0.031)" in legend and f"{TEACHERS[1]} (ECE 0.080)" in legend
    assert cells(panel.ece_table)[0] == ["student (student)", "90.0%", "0.031", "90"]
    plot = panel.calibration_plot.getPlotItem()
    assert plot.getAxis("left").labelText == "accuracy" and "confidence" in plot.getAxis("bottom").labelText


def test_the_mistakes_show_thumbnails_and_a_dash_where_a_teacher_does_not_know_the_class(panel, tmp_path):
    panel.show_run(3, run_with_insights(tmp_path))
    table = panel.mistakes
    assert headers(table) == ["sample", "input", "true class", "student says", *[f"{t} says" for t in TEACHERS]]
    assert panel.mistake_thumbnails == 2 and not table.item(0, 1).icon().isNull()
    rows = cells(table)
    assert rows[0] == ["#17", "", "cat", "dog (91.0%)", "cat (80.0%)", "—"]
    assert rows[1] == ["#42", "", CLASSES[2], "dog (66.0%)", "—", "dog (55.0%)"]
    assert "does not know" in table.item(0, 5).toolTip()


def test_the_text_and_table_variants_show_their_inputs(qtbot, tmp_path):
    for kind in ("text", "table"):
        widget = InsightsPanel()
        qtbot.addWidget(widget)
        widget.show()
        run_dir = tmp_path / kind
        run_dir.mkdir()
        write_insights(run_dir, kind)
        assert widget.load(run_dir / "insights")
        first = widget.mistakes.item(0, 1).text()
        assert first == ("a small dog barking at the cat next door" if kind == "text"
                         else "legs=4, weight=3.2, wings=0")


def test_the_attribution_view_shows_each_map_of_an_image(panel, tmp_path):
    panel.show_run(3, run_with_insights(tmp_path))
    panel.tabs.setCurrentWidget(panel.pages["attribution"])
    arrays = insights_arrays()
    assert panel.attribution.sample_box.count() == 2
    items = panel.attribution.image_items
    assert list(items) == ["input", "student", "attention", f"teacher: {TEACHERS[0]}", f"teacher: {TEACHERS[1]}"]
    np.testing.assert_array_equal(items["input"].image, arrays["attr_0_input"])
    np.testing.assert_array_equal(items["student"].image, arrays["attr_0_student"])
    np.testing.assert_array_equal(items["attention"].image, arrays["attr_0_attention"])
    np.testing.assert_array_equal(items[f"teacher: {TEACHERS[1]}"].image, arrays["attr_0_teacher_1"])
    bars = [i for i in panel.attribution.images.ci.items if type(i).__name__ == "ColorBarItem"]
    assert len(bars) == 4  # one colour bar per map
    panel.attribution.sample_box.setCurrentIndex(1)
    assert list(panel.attribution.image_items) == ["input", "student", f"teacher: {TEACHERS[1]}"]
    np.testing.assert_array_equal(panel.attribution.image_items["student"].image, arrays["attr_1_student"])


def test_the_attribution_of_a_text_colours_its_tokens_and_of_a_table_draws_bars(qtbot, tmp_path):
    widget = InsightsPanel()
    qtbot.addWidget(widget)
    widget.show()
    (tmp_path / "text").mkdir()
    assert widget.load(write_insights(tmp_path / "text", "text"))
    page = widget.attribution.token_view.toHtml()
    assert widget.attribution.stack.currentWidget() is widget.attribution.token_view
    assert all(f">{token}</span>" in page for token in ("small", "barking")) and "background-color" in page
    assert f"teacher: {TEACHERS[0]}" in page
    view = widget.attribution.token_view
    widget.tabs.setCurrentWidget(widget.pages["attribution"])
    qtbot.wait(50)
    cursor = view.document().find("barking")
    assert cursor.charFormat().toolTip().startswith("score ")
    rect = view.cursorRect(cursor)
    assert view.token_tip(rect.center() - QPoint(5, 0)).startswith("score ")  # the token under the mouse
    (tmp_path / "table").mkdir()
    assert widget.load(write_insights(tmp_path / "table", "table"))
    assert widget.attribution.stack.currentWidget() is widget.attribution.bars
    arrays = insights_arrays("table")
    assert list(widget.attribution.bar_items) == ["student", *[f"teacher: {t}" for t in TEACHERS]]
    np.testing.assert_array_equal(widget.attribution.bar_items["student"].opts["height"], arrays["attr_0_student"])
    ticks = widget.attribution.bars.getPlotItem().getAxis("bottom")._tickLevels[0]
    assert [t[1] for t in ticks] == ["legs", "weight", "wings"]  # the table's columns


def test_a_damaged_file_is_said_in_the_panel(panel, tmp_path):
    run_dir = run_with_insights(tmp_path)
    path = run_dir / "insights" / "insights.json"
    path.write_text('{"format": 1, "classes": ["a", ', encoding="utf-8")
    panel.show_run(3, run_dir)
    assert panel.insights is None and "not valid JSON" in panel.status.text()
    assert "Analyze the run again" in panel.status.text() and panel.analyze_button.isEnabled()

    data = insights_json()
    data["format"] = 7
    path.write_text(json.dumps(data), encoding="utf-8")
    assert not panel.load(path.parent) and "newer than this app reads" in panel.status.text()

    data = insights_json()
    data["confusion"]["counts"][1] = "many"  # one part damaged: the rest still shows
    data["models"][0]["accuracy"] = 0.9
    path.write_text(json.dumps(data), encoding="utf-8")
    assert panel.load(path.parent)
    assert "confusion.counts[1]" in panel.notices["confusion"].text()
    assert not panel.confusion.isVisibleTo(panel) and panel.amalgamation.rowCount() == 3

    data = insights_json()
    del data["models"]
    path.write_text(json.dumps(data), encoding="utf-8")
    assert not panel.load(path.parent) and "models" in panel.status.text()

    write_insights(run_dir)
    (run_dir / "insights" / "arrays.npz").write_bytes(b"not a zip")
    assert panel.load(run_dir / "insights")
    assert "arrays.npz cannot be read" in panel.notices["attribution"].text()


def test_saving_a_picture_writes_a_png(panel, tmp_path):
    panel.show_run(3, run_with_insights(tmp_path))
    for key in ("confusion", "calibration", "attribution", "amalgamation"):
        panel.tabs.setCurrentWidget(panel.pages[key])
        out = tmp_path / f"{key}.png"
        assert panel.save_picture(key, out)
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 1000
    assert all(b.isEnabled() for b in panel.save_buttons.values())


def test_open_folder_opens_the_insights_folder(panel, tmp_path, monkeypatch):
    run_dir = run_with_insights(tmp_path)
    panel.show_run(3, run_dir)
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()) or True)
    panel.open_button.click()
    assert opened == [str(run_dir / "insights")]


def test_a_run_without_a_student_says_why_there_is_nothing(panel, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    panel.show_run(5, run_dir, "failed")
    assert "no trained student (it failed)" in panel.status.text()
    assert not panel.analyze_button.isEnabled() and not panel.engine.running
    panel.show_run(6, run_dir, "running")
    assert "still running" in panel.status.text()


# the engine client, against a stand-in engine program

FAKE_ENGINE = '''#!{python}
import json, shutil, sys, time
from pathlib import Path
args = sys.argv[sys.argv.index("analyze") + 1:]
run_dir = Path(args[0])
def say(**event):
    print(json.dumps({{"time": time.time(), **event}}), flush=True)
if not (run_dir / "student.safetensors").is_file():
    say(event="error", kind="invalid_input", message=f"{{run_dir}} is not a completed run",
        hint="analyze a run folder that holds student.safetensors")
    say(event="finished", status="failed", exit_code=2)
    sys.exit(2)
for stage, fraction in (("load", 0.05), ("predict", 0.5)):
    say(event="progress", phase="analyze", stage=stage, fraction=fraction)
if (run_dir / "slow").exists():
    time.sleep(60)
shutil.copytree({fixture!r}, run_dir / "insights", dirs_exist_ok=True)
say(event="progress", phase="analyze", stage="done", fraction=1.0)
report = json.loads((run_dir / "insights" / "insights.json").read_text())
say(event="finished", status="completed", exit_code=0, out=str(run_dir / "insights"), report=report)
'''


@pytest.fixture
def fake_engine(tmp_path, monkeypatch):
    """`sys.executable` (the engine program from a source checkout) replaced by a script that
    answers `analyze RUN_DIR --events` as the engine does (docs/INSIGHTS.md)."""
    fixture = write_insights(tmp_path / "fixture-run")
    fake = tmp_path / "fake-engine"
    fake.write_text(textwrap.dedent(FAKE_ENGINE.format(python=sys.executable, fixture=str(fixture))))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(sys, "executable", str(fake))
    return fake


def test_the_client_reports_progress_and_the_folder(qtbot, tmp_path, fake_engine):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "student.safetensors").write_bytes(b"weights")
    engine = EngineAnalyze()
    stages, done, failed = [], [], []
    engine.progress.connect(lambda stage, fraction: stages.append((stage, fraction)))
    engine.done.connect(done.append)
    engine.failed.connect(failed.append)
    engine.start(run_dir)
    assert engine.running
    qtbot.waitUntil(lambda: bool(done or failed), timeout=30000)
    assert failed == [] and done == [str(run_dir / "insights")]
    assert stages == [("load", 0.05), ("predict", 0.5), ("done", 1.0)] and not engine.running
    qtbot.wait(200)  # the finished process's deferred deletion, while the client (no parent) still exists


def test_the_client_reports_the_engines_message_on_a_folder_that_is_not_a_run(qtbot, tmp_path, fake_engine):
    engine = EngineAnalyze()
    failed = []
    engine.failed.connect(failed.append)
    engine.start(tmp_path / "nothing-here")
    qtbot.waitUntil(lambda: bool(failed), timeout=30000)
    assert failed == [f"{tmp_path / 'nothing-here'} is not a completed run — analyze a run folder that holds "
                      "student.safetensors"]
    qtbot.wait(200)


def test_the_panel_analyses_a_run_without_insights_and_can_cancel(panel, qtbot, tmp_path, fake_engine):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "student.safetensors").write_bytes(b"weights")
    (run_dir / "slow").write_text("")
    panel.show_run(9, run_dir, "completed")
    assert panel.engine.running and panel.cancel_button.isVisible() and panel.progress_bar.isVisible()
    qtbot.waitUntil(lambda: "running the student" in panel.status.text(), timeout=30000)
    assert not panel.analyze_button.isEnabled()
    panel.cancel_button.click()
    qtbot.waitUntil(lambda: not panel.engine.running, timeout=10000)
    assert "Analysis cancelled" in panel.status.text() and not panel.cancel_button.isVisible()

    (run_dir / "slow").unlink()
    assert panel.analyze_button.isEnabled()
    panel.analyze_button.click()
    qtbot.waitUntil(lambda: panel.insights is not None, timeout=30000)
    assert panel.amalgamation.rowCount() == 3 and not panel.progress_bar.isVisible()
    assert panel.analyze_button.text() == "Analyze Again"


def test_a_run_selected_during_an_analysis_gets_its_turn_even_when_that_one_is_cancelled(
        panel, qtbot, tmp_path, fake_engine):
    first, second = tmp_path / "first", tmp_path / "second"
    for run_dir in (first, second):
        run_dir.mkdir()
        (run_dir / "student.safetensors").write_bytes(b"weights")
    (first / "slow").write_text("")
    panel.show_run(1, first, "completed")
    qtbot.waitUntil(lambda: "running the student" in panel.status.text(), timeout=30000)
    panel.show_run(2, second, "completed")  # waits for the first analysis
    assert panel.engine.run_dir == first
    panel.engine.cancel()
    qtbot.waitUntil(lambda: panel.insights is not None, timeout=30000)
    assert panel.run_id == 2 and panel.engine.run_dir == second and (second / "insights" / "insights.json").is_file()


def test_a_hidden_panel_analyses_when_it_is_shown(qtbot, tmp_path, fake_engine):
    widget = InsightsPanel()
    qtbot.addWidget(widget)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "student.safetensors").write_bytes(b"weights")
    widget.show_run(2, run_dir, "completed")
    assert not widget.engine.running and "as soon as this panel is shown" in widget.status.text()
    widget.show()
    assert widget.engine.running
    qtbot.waitUntil(lambda: widget.insights is not None, timeout=30000)


# in the main window

def test_the_insights_dock_follows_the_runs_selection_and_comes_up_when_a_run_completes(window, qtbot, tmp_path):
    tabbed = {d.objectName() for d in window.tabifiedDockWidgets(window.insights_dock)}
    assert {"dashboard-dock", "runs-dock", "export-dock"} <= tabbed
    menus = {m.text(): m.menu() for m in window.menuBar().actions() if m.menu()}
    assert window.insights_dock.toggleViewAction() in menus["&View"].actions()
    assert window.act_insights in menus["&Pipeline"].actions()
    analysed = run_with_insights(tmp_path)
    bare = tmp_path / "failed-run"
    bare.mkdir()
    first = window.store.create_run("pets and birds", "{}", "h1", analysed, "cpu")
    window.store.finish_run(first, "completed", {})
    second = window.store.create_run("broken", "{}", "h2", bare, "cpu")
    window.store.finish_run(second, "failed", {}, "out of memory")
    window.runs.refresh()
    window.runs.select_ids([first])
    window.runs._selection_changed()
    assert window.insights.run_id == first and window.insights.amalgamation.rowCount() == 3
    window.runs.select_ids([second])
    window.runs._selection_changed()
    assert window.insights.run_id == second and "no trained student (it failed)" in window.insights.status.text()

    window.runner.engine.run_id, window.runner.engine.run_dir = first, analysed  # as a run of the app ends
    window.runner.runEnded.emit("completed", "done")
    assert window.insights.run_id == first and window.insights.insights is not None
    assert window.insights.isVisible()  # the dock was raised over the others
    window.runner.engine.run_id, window.runner.engine.run_dir = None, None


@pytest.mark.slow
def test_the_panel_analyses_a_real_run_with_the_real_engine(panel, qtbot, tmp_path):
    """The demo trained for two epochs by the engine, then shown: the panel starts `analyze`,
    and every tab holds the run's own figures."""
    from tests.helpers import demo_spec, run_engine, write_spec

    spec = demo_spec()
    spec["training"]["epochs"] = 2
    run_dir = tmp_path / "run"
    done = run_engine("run", write_spec(tmp_path, spec), "--run-dir", run_dir, "--db", tmp_path / "runs.sqlite")
    assert done.returncode == 0, done.stderr[-2000:]
    with qtbot.waitSignal(panel.analyzed, timeout=180000):
        panel.show_run(1, run_dir, "completed")
    saved = json.loads((run_dir / "insights" / "insights.json").read_text())
    assert panel.amalgamation.rowCount() == 10
    assert headers(panel.amalgamation)[3:6] == ["low digits", "middle digits", "high digits"]
    counts = np.array(saved["confusion"]["counts"])
    order = saved["confusion"]["order"]
    normalized = np.array(saved["confusion"]["normalized"])[np.ix_(order, order)]
    shown = panel.confusion.matrix
    assert shown.shape == (10, 10)
    assert np.allclose(shown, counts[np.ix_(order, order)]) or np.allclose(shown, normalized)
    assert panel.mistakes.rowCount() == len(saved["mistakes"]) > 0
