"""The Export panel: a real `distill-engine export` behind the button, the report as a table."""

import json

import pytest
from PySide6.QtGui import QDesktopServices

from engine.report_words import speedup_text
from tests.gui.helpers import start_run
from tests.helpers import COMPRESSED, run_engine, write_spec

pytestmark = pytest.mark.slow  # every test trains a run to export


def trained(tmp_path, demo_dict, db):
    demo_dict["training"]["epochs"] = 3
    run = run_engine("run", write_spec(tmp_path, demo_dict), "--run-dir", tmp_path / "run", "--db", db)
    assert run.returncode == 0, run.stderr
    return tmp_path / "run"


def cells(table):
    return [[table.item(r, c).text() for c in range(table.columnCount())] for r in range(table.rowCount())]


def test_export_a_run_and_read_the_report(window, qtbot, tmp_path, demo_dict, monkeypatch):
    run_dir = trained(tmp_path, demo_dict, tmp_path / "runs.sqlite")  # the window's store
    window.runs.refresh()
    window.runs.select_ids([window.runs.rows[0]["id"]])
    assert window.runs.buttons["export"].isEnabled()
    window.runs.buttons["export"].click()
    panel = window.export_panel
    assert window.export_dock.isVisible() and panel.run_box.currentData()["run_dir"] == str(run_dir)
    assert panel.folder.text() == str(run_dir / "export")
    panel.folder.setText(str(tmp_path / "shipped"))
    panel.mode.setCurrentIndex(panel.mode.findData("static"))
    panel.calibration.setValue(64)
    stages = []
    panel.engine.progress.connect(lambda stage, _f: stages.append(stage))
    panel.export_button.click()
    assert not panel.export_button.isEnabled() and panel.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: panel.report is not None, timeout=120000)

    report = json.loads((tmp_path / "shipped" / "report.json").read_text())
    assert "quantize" in stages and panel.progress_bar.value() == 100
    rows = cells(panel.table)
    assert [r[0] for r in rows] == ["PyTorch fp32", "ONNX fp32", "ONNX int8"]
    assert rows[2][1] == "student.int8.onnx" and rows[2][3] == f"{report['accuracy']['onnx_int8']:.2%}"
    assert rows[1][4] == f"{report['latency_ms_per_batch']['onnx_fp32']:.3f}"
    latency = report["latency"]  # the speed-up: the engine's, a ratio of the warmed-up medians
    assert rows[2][5] == speedup_text(latency["speedup_vs_pytorch"]["onnx_int8"]) + (
        " (indicative)" if latency["indicative"] else "")
    assert report["quantization"]["calibration_samples"] == 64
    assert "Exported to" in panel.status.text() and str(tmp_path / "shipped") in panel.status.text()

    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()) or True)
    assert panel.open_button.isEnabled()
    panel.open_button.click()
    assert opened == [str(tmp_path / "shipped")]


def test_an_export_that_cannot_write_says_why(window, qtbot, tmp_path, demo_dict):
    trained(tmp_path, demo_dict, tmp_path / "runs.sqlite")
    window.show_export()
    panel = window.export_panel
    qtbot.waitUntil(lambda: panel.run_box.count() == 1, timeout=5000)
    (tmp_path / "a-file").write_text("not a folder")
    panel.folder.setText(str(tmp_path / "a-file" / "out"))
    panel.export_button.click()
    qtbot.waitUntil(lambda: "Export failed" in panel.status.text(), timeout=60000)
    assert "cannot write to" in panel.status.text() and panel.report is None
    assert panel.export_button.isEnabled() and not panel.cancel_button.isEnabled()


def test_a_run_with_an_export_node_shows_its_report(window, qtbot, tmp_path):
    spec = json.loads(COMPRESSED.read_text())
    for t in spec["teachers"]:
        t["path"] = str((COMPRESSED.parent / t["path"]).resolve())
    spec["training"]["epochs"] = 3
    spec["compression"][0]["finetune_epochs"] = 1
    ended = start_run(window, qtbot, write_spec(tmp_path, spec, "compressed.distill.json"))
    qtbot.waitUntil(lambda: bool(ended), timeout=120000)
    assert ended[0][0] == "completed", ended
    panel = window.export_panel
    assert panel.report is not None and window.export_dock.isVisible()
    assert [r[0] for r in cells(panel.table)] == ["PyTorch fp32", "ONNX fp32", "ONNX int8"]
    assert "sparsity 50%" in panel.summary.text() and "prune magnitude" in panel.summary.text()
    assert panel.report["folder"].endswith("export") and panel.open_button.isEnabled()
    live = {n.kind: window.scene.node_items[n.id].live for n in window.doc.nodes.values()}
    assert live["prune"] == "fine-tune completed" and "× smaller" in live["quantize"]
    assert live["export"] == "exported (Export panel)"
    bar = window.result_bar  # the result bar says where the files went, with Open Folder
    assert bar.isVisible() and f"Exported to {panel.report['folder']}" in bar.label.text()
    assert bar.label.text().startswith("Run completed: test accuracy ") and bar.open_button.isVisible()
    assert bar.export_button.text() == "Export Again…"


def test_cancelling_an_export_says_so_plainly_and_keeps_the_last_report(window, qtbot, tmp_path, demo_dict):
    trained(tmp_path, demo_dict, tmp_path / "runs.sqlite")
    window.show_export()
    panel = window.export_panel
    qtbot.waitUntil(lambda: panel.run_box.count() == 1, timeout=5000)
    panel.int8.setChecked(False)  # the first export, quick: the report to keep
    panel.folder.setText(str(tmp_path / "first"))
    panel.export_button.click()
    qtbot.waitUntil(lambda: panel.report is not None, timeout=120000)
    report, rows = panel.report, cells(panel.table)
    assert "Exported to" in panel.status.text()

    panel.folder.setText(str(tmp_path / "second"))
    panel.engine.progress.connect(lambda _stage, _f: panel.cancel_button.click() if panel.engine.running else None)
    panel.export_button.click()
    assert panel.report is report and cells(panel.table) == rows  # on show while the next one runs
    qtbot.waitUntil(lambda: not panel.engine.running, timeout=60000)
    status = panel.status.text()
    assert status.startswith("Export cancelled") and "failed" not in status.lower(), status
    assert "#c62828" not in panel.status.styleSheet()  # not shown as an error
    assert panel.report is report and cells(panel.table) == rows and "last finished export" in status
    assert window.statusBar().currentMessage() == "export cancelled"
    assert panel.export_button.isEnabled() and not panel.cancel_button.isEnabled()
