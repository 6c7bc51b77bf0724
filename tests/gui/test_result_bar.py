"""After a completed run, its result and the next step in place: the result bar above the canvas
says the test and best validation accuracy and offers Export… (which exports at once, int8
included, showing its progress) and Insights; a run that exported says where its files are."""

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from gui.panels.result_bar import ResultBar, result_words
from tests.gui.helpers import start_run
from tests.helpers import write_spec


def test_the_words_say_what_was_measured(qapp):
    assert result_words(0.9591, 0.9777) == "Run completed: test accuracy 95.9 % (best validation 97.8 %)"
    assert result_words(0.9591, None) == "Run completed: test accuracy 95.9 %"
    assert "best validation accuracy 97.8 %" in result_words(None, 0.9777)
    assert "no accuracy measured" in result_words(None, None)
    bar = ResultBar()
    bar.show_completed(7, 0.9, 0.95)
    assert not bar.isHidden()
    assert not bar.open_button.isVisibleTo(bar) and bar.export_button.text() == "Export…"
    bar.show_completed(7, 0.9, 0.95, exported_to="/somewhere/export")
    assert "Exported to /somewhere/export" in bar.label.text() and bar.open_button.isVisibleTo(bar)
    assert bar.export_button.text() == "Export Again…"
    bar.show_exporting("quantizing to int8", 0.5)
    assert bar.progress.value() == 50 and not bar.export_button.isEnabled()
    assert "quantizing to int8" in bar.label.text()


@pytest.mark.slow
def test_a_completed_run_offers_export_in_place_and_exports(window, qtbot, tmp_path, demo_dict):
    demo_dict["training"]["epochs"] = 3
    ended = start_run(window, qtbot, write_spec(tmp_path, demo_dict))
    assert not window.result_bar.isVisible()  # nothing to say before the run ends
    qtbot.waitUntil(lambda: bool(ended), timeout=180000)
    assert ended[0][0] == "completed", ended
    bar = window.result_bar
    finished = window.runner.engine.finished_event
    run_id, run_dir = window.runner.engine.run_id, Path(window.runner.engine.run_dir)
    assert bar.isVisible() and bar.run_id == run_id
    assert bar.label.text() == result_words(finished.final["test/acc"], finished.best["val/acc"]) + "."
    assert bar.label.text().startswith("Run completed: test accuracy ")
    assert bar.export_button.isVisible() and bar.insights_button.isVisible() and not bar.open_button.isVisible()

    window.dashboard_dock.raise_()
    qtbot.mouseClick(bar.insights_button, Qt.LeftButton)
    assert window.insights_dock.isVisible() and not window.insights_dock.visibleRegion().isEmpty()

    analysing = window.insights.engine.running  # the run's analysis started when it completed
    qtbot.mouseClick(bar.export_button, Qt.LeftButton)
    assert not bar.export_button.isEnabled() and bar.progress.isVisible()
    if analysing:  # the export waits: two engines never share a run folder
        assert window.pending_export == run_id and "waiting for the Insights analysis" in bar.label.text()
    assert window.export_dock.isVisible() and window.export_panel.int8.isChecked()
    qtbot.waitUntil(lambda: "Exported to" in bar.label.text() or "failed" in bar.label.text(), timeout=300000)
    folder = run_dir / "export"
    assert bar.label.text().endswith(f"Exported to {folder}"), bar.label.text()
    assert (folder / "student.onnx").is_file() and (folder / "student.int8.onnx").is_file()
    report = json.loads((folder / "report.json").read_text())
    assert "onnx_int8" in report["files"]
    assert not any("another engine" in n.get("message", "") for n in report.get("notes", []))
    assert bar.open_button.isVisible() and bar.folder == str(folder)
    assert bar.export_button.isEnabled() and bar.export_button.text() == "Export Again…"
    assert window.export_panel.report is not None and window.export_panel.report["folder"] == str(folder)
