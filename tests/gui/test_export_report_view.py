"""The Export panel's table and summary from report dicts, offscreen: speed-ups from the
report's medians (never from a cold or an extreme batch), indicative timings marked, accuracy
that could not be measured said so."""

import pytest

from engine.export import judge_latency
from engine.store import Store
from gui.panels.export_panel import ExportPanel


def stat(median, low, high, p10=None, p90=None):
    return {"median": median, "p10": p10 or median * 0.95, "p90": p90 or median * 1.05, "min": low,
            "max": high, "timed_batches": 40}


def report(load=0.4, labelled=True) -> dict:
    # PyTorch's slowest (cold) batch took 120 ms, int8's fastest 0.01 ms: a ratio of those would
    # read "12000× faster"; the medians say 4×
    latency = judge_latency({"pytorch_fp32": stat(2.0, 1.8, 120.0), "onnx_fp32": stat(1.0, 0.9, 1.1),
                             "onnx_int8": stat(0.5, 0.01, 0.6)}, 2, load, 2)
    acc = {"pytorch_fp32": 0.95, "onnx_fp32": 0.95, "onnx_int8": 0.94} if labelled else \
        {"pytorch_fp32": None, "onnx_fp32": None, "onnx_int8": None}
    notes = [] if labelled else [
        {"kind": "not_measured", "message": "test accuracy was not measured: the data has no labels and no "
         "test file", "hint": "set data.test_file to a labelled file"},
        {"kind": "int8_not_checked", "message": "the int8 model was kept without its accuracy check (limit 1 "
         "points), as there are no labelled samples; it picks the same class as fp32 on 98.0% of the 50 samples",
         "hint": "set data.test_file to a labelled file"}]
    return {
        "name": "digits", "parameters": 1000, "sparsity": 0.0, "compression": [], "test_samples": 50,
        "evaluated_on": "test file digits-test.npz" if labelled else "test", "parity_max_abs_diff": 1e-6,
        "files": {"onnx_fp32": {"path": "student.onnx", "bytes": 4000},
                  "onnx_int8": {"path": "student.int8.onnx", "bytes": 1000},
                  "safetensors": {"path": "student.safetensors", "bytes": 4000}},
        "accuracy": acc,
        "accuracy_note": None if labelled else "not measured: the data has no labels and no test file (set "
                                               "data.test_file to a labelled file)",
        "latency_ms_per_batch": {k: v["median"] for k, v in latency["ms_per_batch"].items()},
        "latency_batch": 64, "threads": 2, "latency": latency, "problems": [], "notes": notes,
        "folder": "/tmp/out"}


@pytest.fixture
def panel(qtbot, tmp_path):
    store = Store(tmp_path / "runs.sqlite")
    widget = ExportPanel(store)
    qtbot.addWidget(widget)
    yield widget
    store.close()


def cells(table):
    return [[table.item(r, c).text() for c in range(table.columnCount())] for r in range(table.rowCount())]


def test_speedups_come_from_the_medians(panel):
    panel.show_report(report())
    rows = cells(panel.table)
    assert [r[0] for r in rows] == ["PyTorch fp32", "ONNX fp32", "ONNX int8"]
    assert [r[4] for r in rows] == ["2.000", "1.000", "0.500"]
    assert [r[5] for r in rows] == ["–", "2.0× faster", "4.0× faster"]
    assert rows[2][3] == "94.00%"
    assert "p10–p90 0.475–0.525 ms" in panel.table.item(2, 4).toolTip()
    text = panel.summary.text()
    assert "Accuracy on 50 test file digits-test.npz samples" in text and "median of 40 timed batches" in text
    assert "indicative" not in text and panel.status.text() == "Exported to /tmp/out"


def test_a_busy_machine_marks_the_figures_indicative(panel):
    panel.show_report(report(load=3.5))
    assert [r[5] for r in cells(panel.table)][1:] == ["2.0× faster (indicative)", "4.0× faster (indicative)"]
    assert "Timings are indicative only: the machine was busy (load 3.5 on 2 cores)" in panel.summary.text()


def test_accuracy_that_could_not_be_measured_says_so(panel):
    panel.show_report(report(labelled=False))
    rows = cells(panel.table)
    assert [r[3] for r in rows] == ["not measured"] * 3
    text = panel.summary.text()
    assert "Test accuracy not measured: the data has no labels and no test file (set data.test_file" in text
    assert "kept without its accuracy check" in text and "set data.test_file to a labelled file" in text
    assert panel.status.text().startswith("Exported to /tmp/out") and "notes" in panel.status.text()


def test_a_report_from_before_the_latency_section_still_shows(panel):
    old = report()
    del old["latency"], old["notes"], old["accuracy_note"]
    old["latency_ms_per_batch"] = {"pytorch_fp32": 3.0, "onnx_fp32": 1.0, "onnx_int8": 4.0}
    panel.show_report(old)
    assert [r[5] for r in cells(panel.table)] == ["–", "3.0× faster", "1.3× slower"]
