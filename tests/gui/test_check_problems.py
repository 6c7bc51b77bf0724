"""Check Pipeline lists every problem, in the window's words, on the nodes they belong to, and
Run refuses until they are fixed (issue 20, item 4): a CSV with an empty cell and a damaged
teacher in the same pipeline, checked by the real engine."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QMessageBox

from engine.errors import Problem
from engine.events import Error, ProblemInfo
from gui.document.commands import SetProps
from gui.document.model import Document
from gui.document.validation import ERROR, OK, node_status
from gui.panels.problem_words import Checked, problems_on_nodes
from tests.gui.helpers import load_into
from tests.helpers import TEACHERS, csv_and_damaged_teacher, write_spec

csv_pipeline = csv_and_damaged_teacher  # a CSV with an empty cell, a damaged middle teacher


def node_named(doc, kind, name=None):
    return next(n for n in doc.of_kind(kind) if name is None or n.props.get("name") == name)


def test_problems_go_to_their_nodes_in_the_inspectors_words(tmp_path):
    doc = load_into(Document(), write_spec(tmp_path, csv_pipeline(tmp_path)))
    on_nodes, lines = problems_on_nodes(doc, [
        Problem("data.path", "row 7 is empty", "fill the cell, or set data.missing to mean"),
        Problem("teachers[1].input.mean", "three means for one channel", "set teachers[1].input.mean to one value"),
        Problem("training.lr", "too large", "lower it"),
        Problem("strategy.temperature", "must be above 0", "set strategy.temperature to 4"),
        Problem("data.path", "no file", "put data.csv beside training.jsonl, or set data.nosuchfield"),
    ])
    data, middle = node_named(doc, "data"), node_named(doc, "teacher", "middle digits")
    student, strategy = doc.student(), node_named(doc, "strategy")
    assert set(on_nodes) == {data.id, middle.id, student.id, strategy.id}
    assert on_nodes[data.id][0]["hint"] == "fill the cell, or set Data source › Missing to mean"
    assert on_nodes[middle.id][0]["place"] == "Teacher 'middle digits' › Mean"
    assert on_nodes[student.id][0]["place"] == "Student › Learning rate"
    assert lines[3] == "Strategy › Temperature: must be above 0\n   → set Strategy › Temperature to 4"
    assert on_nodes[data.id][1]["hint"] == "put data.csv beside training.jsonl, or set data.nosuchfield"


def test_what_is_not_the_spec_or_no_longer_as_checked_marks_no_node(tmp_path):
    spec = write_spec(tmp_path, csv_pipeline(tmp_path))
    doc = load_into(Document(), spec)
    checked = Checked.of(doc)
    on_nodes, lines = problems_on_nodes(doc, [
        Problem("--db", "the run store is damaged", "choose another --db"),
        Problem("(spec)", "the spec is empty", "add a student"),
    ], checked)
    assert list(on_nodes) == [doc.student().id]  # the spec as a whole: the student; the store: no node
    assert lines[0].startswith("The run: the run store is damaged")
    data = node_named(doc, "data")
    doc.set_props(data.id, {**data.props, "missing": "mean"})  # changed while the check ran
    on_nodes, _ = problems_on_nodes(doc, [Problem("data.path", "row 7 is empty", "fill it")], checked)
    assert on_nodes == {}
    doc.clear()
    load_into(doc, spec)  # another project (the same ids) opened meanwhile
    on_nodes, lines = problems_on_nodes(doc, [Problem("training.lr", "too large", "lower it")], checked)
    assert on_nodes == {} and lines == ["Student › Learning rate: too large\n   → lower it"]


def test_a_stored_specs_problems_mark_nothing_on_the_canvas(window, tmp_path):
    assert window.open_project(write_spec(tmp_path, csv_pipeline(tmp_path)), ask=False)
    window.runner.canvas = None  # a run of a stored spec (Run Again, Resume)
    window.runner._on_event(Error(time=0.0, kind="invalid_input", message="bad", hint="fix",
                                  problems=[ProblemInfo(path="data.path", message="row 7 is empty", hint="fill")]))
    assert all("problems" not in n.info for n in window.doc.nodes.values())
    assert window.findChild(QMessageBox, "problems-box") is None


@pytest.mark.slow  # the real engine checks the pipeline
def test_check_lists_every_problem_marks_the_nodes_and_run_waits(window, qtbot, tmp_path):
    assert window.open_project(write_spec(tmp_path, csv_pipeline(tmp_path)), ask=False)
    qtbot.waitUntil(lambda: window.model_inspector.busy == 0, timeout=60000)
    doc = window.doc
    data, middle = node_named(doc, "data"), node_named(doc, "teacher", "middle digits")
    window.check_pipeline()
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "problems-box") is not None, timeout=90000)
    box = window.findChild(QMessageBox, "problems-box")
    assert "2 problems" in box.text()
    text = box.informativeText()
    assert "row 7, column 'p10' of digits.csv is empty" in text and "fill the cell" in text
    assert "data.missing" not in text and "Data source › Missing" in text  # the inspector's words
    assert "Teacher 'middle digits'" in text and "broken.onnx is not a valid ONNX model" in text
    box.close()
    state, reason = node_status(doc, doc.nodes[data.id])
    assert state == ERROR and "row 7, column 'p10'" in reason  # red, with the problem on the card
    assert node_status(doc, doc.nodes[middle.id])[0] == ERROR
    assert window.scene.node_items[data.id].state == ERROR

    assert window.runner.run_pipeline() is False  # Run waits: nothing is started
    refused = window.runner.last_problem_box
    assert "digits.csv is empty" in refused.informativeText()
    assert "Check Again" in [b.text() for b in refused.buttons()]
    assert not window.runner.running
    refused.close()

    # the data fixed in the inspector lifts its problem; the damaged teacher stays red
    window.undo_stack.push(SetProps(window.doc, data.id, {**doc.nodes[data.id].props, "missing": "mean"}, "missing"))
    assert node_status(doc, doc.nodes[data.id])[0] == OK
    assert node_status(doc, doc.nodes[middle.id])[0] == ERROR

    # the teacher's file mended outside the app: Check Again reads it anew, and a check that
    # passes lifts every mark
    (tmp_path / "broken.onnx").write_bytes((TEACHERS / "digits-4-7.onnx").read_bytes())
    assert window.runner.run_pipeline() is False
    again = next(b for b in window.runner.last_problem_box.buttons() if b.text() == "Check Again")
    again.click()
    qtbot.waitUntil(lambda: not window.act_check.isEnabled(), timeout=5000)
    qtbot.waitUntil(lambda: window.act_check.isEnabled(), timeout=90000)
    assert all("problems" not in n.info for n in doc.nodes.values())
    assert window.statusBar().currentMessage().startswith("Pipeline ready")


@pytest.mark.slow  # a real run that cannot start
def test_a_run_that_cannot_start_puts_its_problems_on_the_nodes(window, qtbot, tmp_path):
    spec = csv_pipeline(tmp_path)
    spec["teachers"][1]["path"] = str(TEACHERS / "digits-4-7.onnx")  # only the data is wrong
    assert window.open_project(write_spec(tmp_path, spec), ask=False)
    qtbot.waitUntil(lambda: window.model_inspector.busy == 0, timeout=60000)
    data = node_named(window.doc, "data")
    assert node_status(window.doc, data)[0] == OK  # not checked yet: the app cannot see the cell
    with qtbot.waitSignal(window.runner.runEnded, timeout=120000):
        assert window.runner.run_pipeline()
    box = window.findChild(QMessageBox, "problems-box")
    assert box is not None and box.text().startswith("The run could not start: 1 problem")
    assert "fill the cell" in box.informativeText()
    state, reason = node_status(window.doc, window.doc.nodes[data.id])
    assert state == ERROR and "digits.csv is empty" in reason
    assert window.runner.last_problem_box is None  # no second box saying the run failed
