"""The strategy catalogue on the canvas: every strategy setting and the student's initial
weights edited in the inspector, saved as a spec the engine accepts, and the spec's strategy
checks shown on the node they concern."""

import json

import pytest
from PySide6.QtWidgets import QCheckBox, QComboBox, QLabel, QLineEdit

from engine.spec import parse_spec
from gui.canvas.items import summary
from gui.document.commands import AddLink, SetProps
from gui.document.convert import document_to_project, project_to_nodes
from gui.document.hints import format_hints, parse_hints
from gui.document.model import Document, Link
from gui.document.validation import ERROR, INCOMPLETE, OK, node_status
from gui.panels.inspector import LinesEdit
from tests.gui.helpers import add, load_into
from tests.helpers import DEMO

# ── driving the inspector as a person does ───────────────────────────────────────────────


def widget(window, cls, dotted):
    return window.inspector.findChild(cls, f"field-{dotted}")


def type_into(window, dotted, text):
    line = widget(window, QLineEdit, dotted)
    assert line is not None, f"no field {dotted}"
    line.setText(text)
    line.textEdited.emit(text)
    line.editingFinished.emit()


def choose(window, dotted, value):
    combo = widget(window, QComboBox, dotted)
    index = combo.findData(value)
    assert index >= 0, f"{value!r} is not offered by {dotted}"
    combo.setCurrentIndex(index)


def tick(window, dotted, on=True):
    widget(window, QCheckBox, dotted).setChecked(on)


def write_hints(window, text):
    edit = widget(window, LinesEdit, "hints")
    edit.setPlainText(text)
    edit.editingFinished.emit()


def error_of(window, dotted):
    label = window.inspector.findChild(QLabel, f"error-{dotted}")
    return label.text() if label is not None and label.isVisible() else ""


def saved_spec(doc, folder):
    """What saving the document writes, read back by the engine's own parser."""
    return parse_spec(json.loads(json.dumps(document_to_project(doc, folder))), folder)


def open_demo_at(window, kind):
    assert window.open_project(DEMO, ask=False)
    node = window.doc.of_kind(kind)[0]
    window.inspector.show_node(node.id)
    return node.id


# ── the strategy node ────────────────────────────────────────────────────────────────────


@pytest.mark.slow
def test_every_strategy_setting_is_edited_in_the_inspector_into_a_valid_spec(window, tmp_path):
    sid = open_demo_at(window, "strategy")
    previous = tmp_path / "earlier" / "student.safetensors"
    previous.parent.mkdir()
    previous.write_bytes(b"weights")
    for conditional in ("calibration.labels_per_class", "hint_weight", "task_head_weight",
                        "confidence_warmup"):  # shown only once what they refine is on
        assert widget(window, QLineEdit, conditional) is None, conditional

    type_into(window, "temperature", "3")
    type_into(window, "hard_label_weight", "0.3")
    choose(window, "teacher_weighting", "selective")
    choose(window, "partial_classes", "zero_fill")
    tick(window, "calibration")
    type_into(window, "calibration.labels_per_class", "5")
    type_into(window, "calibration.weight", "0.5")
    write_hints(window, "low digits:/body/body.1/Relu_output_0 -> body.1\n\nhigh digits:dense/Relu:0")
    type_into(window, "hint_weight", "2")
    tick(window, "task_heads")
    type_into(window, "task_head_weight", "0.25")
    type_into(window, "confidence_weight", "0.3")
    type_into(window, "confidence_warmup", "0.1")
    type_into(window, "previous_student", str(previous))

    assert node_status(window.doc, window.doc.nodes[sid]) == (OK, "ready")
    strategy = saved_spec(window.doc, tmp_path).strategy
    assert (strategy.temperature, strategy.hard_label_weight) == (3.0, 0.3)
    assert (strategy.teacher_weighting, strategy.partial_classes) == ("selective", "zero_fill")
    assert (strategy.calibration.labels_per_class, strategy.calibration.weight) == (5, 0.5)
    assert [h.model_dump() for h in strategy.hints] == [
        {"teacher": "low digits", "teacher_layer": "/body/body.1/Relu_output_0", "student_layer": "body.1"},
        {"teacher": "high digits", "teacher_layer": "dense/Relu:0", "student_layer": "body"}]
    assert (strategy.hint_weight, strategy.task_heads, strategy.task_head_weight) == (2.0, True, 0.25)
    assert (strategy.confidence_weight, strategy.confidence_warmup) == (0.3, 0.1)
    assert strategy.previous_student == previous
    assert document_to_project(window.doc, tmp_path)["strategy"]["previous_student"] == \
        "earlier/student.safetensors"  # beside the project: written relative
    assert widget(window, LinesEdit, "hints").toPlainText() == \
        "low digits:/body/body.1/Relu_output_0 -> body.1\nhigh digits:dense/Relu:0 -> body"

    tick(window, "calibration", False)
    type_into(window, "previous_student", "")
    props = window.doc.nodes[sid].props
    assert "calibration" not in props and "previous_student" not in props
    assert widget(window, QLineEdit, "calibration.labels_per_class") is None
    saved = document_to_project(window.doc, tmp_path)["strategy"]
    assert "calibration" not in saved and "previous_student" not in saved
    window.undo_stack.undo()  # the previous student comes back
    assert saved_spec(window.doc, tmp_path).strategy.previous_student == previous


def test_bad_hint_syntax_is_shown_in_red_and_commits_nothing(window):
    sid = open_demo_at(window, "strategy")
    edits = window.undo_stack.count()
    edit = widget(window, LinesEdit, "hints")
    edit.setPlainText("low digits:body.1 -> body\nlow digits body.1")
    message = error_of(window, "hints")
    assert "hint line 2 ('low digits body.1')" in message and "':' must separate" in message
    assert "teacher:layer -> student_layer" in message and "e.g. 'low digits:" in message
    assert "#c62828" in window.inspector.findChild(QLabel, "error-hints").styleSheet()  # red
    edit.editingFinished.emit()
    assert window.doc.nodes[sid].props["hints"] == [] and window.undo_stack.count() == edits
    write_hints(window, "low digits:body.1 ->")
    assert "the student layer after '->' is missing" in error_of(window, "hints")
    assert window.doc.nodes[sid].props["hints"] == []
    write_hints(window, "low digits:body.1")
    assert not error_of(window, "hints") and window.doc.nodes[sid].props["hints"] == [
        {"teacher": "low digits", "teacher_layer": "body.1", "student_layer": "body"}]


def test_a_hint_naming_a_missing_teacher_shows_on_the_strategy_node(window):
    sid = open_demo_at(window, "strategy")
    note = window.inspector.findChild(QLabel, "note-hints").text()
    assert "Teachers: low digits, middle digits, high digits" in note  # the names to use
    write_hints(window, "nobody:body.1 -> body")
    state, reason = node_status(window.doc, window.doc.nodes[sid])
    assert state == ERROR and reason.startswith("hints[0].teacher: no teacher is named 'nobody'")
    assert "use one of: low digits, middle digits, high digits" in reason
    assert window.scene.node_items[sid].state == ERROR
    assert "no teacher is named 'nobody'" in window.inspector.status.text()
    assert node_status(window.doc, window.doc.student())[0] == OK  # the strategy's problem, not the student's


@pytest.mark.parametrize("strategy, data, message", [
    ({"combine": "average_logits"}, {}, "combine: averaging logits needs teachers that know every class"),
    ({"teacher_weighting": "label_aware"}, {"use_labels": False},
     "teacher_weighting: teacher_weighting 'label_aware' needs labels"),
])
def test_strategy_problems_of_the_spec_show_on_the_strategy_node(qapp, strategy, data, message):
    doc = load_into(Document(), DEMO)
    node, source = doc.of_kind("strategy")[0], doc.of_kind("data")[0]
    assert node_status(doc, node) == (OK, "ready")
    doc.set_props(node.id, {**node.props, **strategy})
    doc.set_props(source.id, {**source.props, **data})
    state, reason = node_status(doc, doc.nodes[node.id])
    assert state == ERROR and reason.startswith(message)


# ── the student node ─────────────────────────────────────────────────────────────────────


@pytest.mark.slow
def test_the_students_initial_weights_are_chosen_in_the_inspector(window, tmp_path):
    open_demo_at(window, "student")
    student = window.doc.student  # the pipeline's student, looked up afresh
    assert widget(window, QComboBox, "init.teacher") is None
    choose(window, "init.kind", "grow")
    assert student().props["init"] == {"kind": "grow"}
    assert node_status(window.doc, student()) == (
        INCOMPLETE, "choose the teacher to grow the student from (Initial weights)")
    combo = widget(window, QComboBox, "init.teacher")
    assert [combo.itemData(i) for i in range(combo.count())] == ["", "low digits", "middle digits", "high digits"]
    assert combo.itemText(0) == "(choose a teacher)"
    choose(window, "init.teacher", "middle digits")
    assert student().props["init"] == {"kind": "grow", "teacher": "middle digits"}
    assert "grown from middle digits" in summary(student())[1]
    state, reason = node_status(window.doc, student())  # the demo's teachers are ONNX files
    assert state == ERROR and "growing (Net2Net) works from mlp, cnn or resnet teachers" in reason

    choose(window, "init.kind", "weights")
    assert student().props["init"] == {"kind": "weights"}
    assert node_status(window.doc, student())[0] == INCOMPLETE
    weights = tmp_path / "w.safetensors"
    type_into(window, "init.path", str(weights))
    assert node_status(window.doc, student()) == (ERROR, f"no file at {weights}")
    weights.write_bytes(b"weights")
    window.scene.refresh_states()
    assert node_status(window.doc, student()) == (OK, "ready")
    assert document_to_project(window.doc, tmp_path)["student"]["init"] == {"kind": "weights", "path": "w.safetensors"}
    assert saved_spec(window.doc, tmp_path).student.init.path == weights
    assert summary(student())[1].startswith("from w.safetensors")

    choose(window, "init.kind", "fedavg")
    state, reason = node_status(window.doc, student())
    assert state == ERROR and "fedavg averages the teachers' weights" in reason
    choose(window, "init.kind", "scratch")
    assert student().props["init"] == {"kind": "scratch"} and saved_spec(window.doc, tmp_path)


def test_a_label_only_student_needs_no_teacher(doc, stack, tmp_path):
    data, student, strategy = add(doc, stack, "data"), add(doc, stack, "student"), add(doc, stack, "strategy")
    for link in (Link(data.id, "data", student.id, "data"), Link(strategy.id, "strategy", student.id, "strategy")):
        stack.push(AddLink(doc, link))
    state, reason = node_status(doc, doc.nodes[student.id])
    assert state == INCOMPLETE and "set the strategy's label weight α to 1" in reason
    stack.push(SetProps(doc, strategy.id, {**strategy.props, "hard_label_weight": 1.0}, "α"))
    assert node_status(doc, doc.nodes[student.id]) == (OK, "ready")
    assert node_status(doc, doc.nodes[strategy.id]) == (OK, "ready")
    spec = saved_spec(doc, tmp_path)
    assert spec.teachers == [] and spec.strategy.hard_label_weight == 1.0
    stack.push(SetProps(doc, data.id, {**data.props, "use_labels": False}, "labels"))
    assert node_status(doc, doc.nodes[student.id])[0] == INCOMPLETE  # no labels, no teachers: nothing to learn


# ── saving and opening ───────────────────────────────────────────────────────────────────


def test_the_strategy_catalogue_round_trips_through_a_project_file(qapp, tmp_path):
    (tmp_path / "small.safetensors").write_bytes(b"weights")
    (tmp_path / "old.safetensors").write_bytes(b"weights")
    classes = [str(i) for i in range(10)]
    hints = [{"teacher": "small", "teacher_layer": "body.1", "student_layer": "body.0"}]
    project = {
        "schema_version": 1, "name": "catalogue", "data": {"format": "builtin", "name": "digits"},
        "classes": classes,
        "teachers": [{"name": "small", "path": "small.safetensors", "classes": classes,
                      "architecture": {"kind": "mlp", "width": 32, "depth": 1}}],
        "student": {"architecture": {"kind": "mlp", "width": 64, "depth": 2},
                    "init": {"kind": "scratch"}},  # a continual run starts from the previous student
        "strategy": {"teacher_weighting": "entropy", "combine": "average_logits",
                     "calibration": {"labels_per_class": 3}, "hints": hints, "hint_weight": 0.5,
                     "task_heads": True, "confidence_weight": 0.2, "previous_student": "old.safetensors"},
        "training": {"epochs": 5},
        "layout": {"nodes": {"strategy-9": {"kind": "strategy", "x": 0, "y": 0,  # a loose one
                                            "props": {"hints": hints, "calibration": None}}}}}
    name, nodes, links = project_to_nodes(project, tmp_path)
    doc = Document(name)
    for n in nodes:
        doc.add_node(n)
    for link in links:
        doc.add_link(link)
    assert all(node_status(doc, n)[0] == OK for n in nodes if n.id != "strategy-9")
    assert doc.nodes["strategy-9"].props["hints"] == hints
    saved = document_to_project(doc, tmp_path)
    assert saved["strategy"]["previous_student"] == "old.safetensors"
    assert saved["student"]["init"] == {"kind": "scratch"}
    expected = parse_spec({k: v for k, v in project.items() if k != "layout"}, tmp_path)
    assert saved_spec(doc, tmp_path).model_dump(exclude={"layout"}) == expected.model_dump(exclude={"layout"})
    _, again, _ = project_to_nodes(json.loads(json.dumps(saved)), tmp_path)
    assert {n.id: n.props for n in again} == {n.id: n.props for n in doc.nodes.values()}


def test_hint_lines_parse_and_format():
    hints, error = parse_hints(" a b:body.1 -> body.0 \n\nc:x:0")
    assert error is None and hints == [{"teacher": "a b", "teacher_layer": "body.1", "student_layer": "body.0"},
                                       {"teacher": "c", "teacher_layer": "x:0", "student_layer": "body"}]
    assert parse_hints(format_hints(hints)) == (hints, None)
    assert parse_hints("") == ([], None)
    for bad, why in ((":body.1", "name before ':' is missing"), ("a:", "layer after ':' is missing"),
                     ("a:b -> c -> d", "one '->' per line")):
        assert parse_hints(bad)[0] is None and why in parse_hints(bad)[1]


def test_the_strategy_card_names_the_methods(qapp):
    from gui.document.kinds import default_props
    from gui.document.model import Node

    plain = Node("s", "strategy", default_props("strategy"))
    assert summary(plain) == ["KD T=4 · α 0.5 · uniform", "UHC"]
    full = Node("s", "strategy", {**default_props("strategy"), "teacher_weighting": "label_aware",
                                  "calibration": {"labels_per_class": 10, "weight": 1.0},
                                  "hints": [{"teacher": "a", "teacher_layer": "b"}], "task_heads": True,
                                  "confidence_weight": 0.5})
    assert summary(full) == ["KD T=4 · α 0.5 · label-aware", "UHC · 1 hint · heads · calib 10/class · conf 0.5"]
