"""A teacher takes what its model file proposes (classes, input contract, output kind) where the
user has set nothing, shows the contract on its card, and edits it in the inspector; the edits
reach the spec the document saves."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import QComboBox, QLabel, QLineEdit

from engine.spec import TeacherInput, parse_spec
from gui.canvas.drops import teacher_node
from gui.canvas.items import NODE_H, NodeItem, summary
from gui.document.convert import document_to_project
from gui.document.model import Document
from gui.document.teacher_proposal import contract_words, with_proposal
from gui.panels.inspector import Inspector
from tests.gui.helpers import drop, file_mime, load_into
from tests.helpers import DEMO, image_onnx

NHWC = {"format": "onnx", "file": "m.onnx", "classes": None,
        "outputs": [{"name": "probs", "shape": ["batch", 10]}],
        "proposed": {"input": {"layout": "nhwc", "size": [224, 224], "mean": [0.5], "std": [0.25],
                               "scale": 1 / 255}, "outputs": "probabilities", "reasons": ["…"]}}


def test_a_new_teacher_takes_the_proposal_and_numbered_classes(doc):
    node = teacher_node(doc, "/models/m.onnx", NHWC, (0, 0))
    assert node.props["input"]["layout"] == "nhwc" and node.props["input"]["mean"] == [0.5]
    assert node.props["outputs"] == "probabilities"
    assert node.props["classes"] == [str(i) for i in range(10)]  # no names in the file: one per output
    TeacherInput.model_validate(node.props["input"])
    graph = teacher_node(doc, "/models/s.onnx", {**NHWC, "classes": ["cat", "dog"]}, (0, 0))
    assert graph.props["classes"] == ["cat", "dog"]


def test_a_proposal_fills_only_what_the_user_has_not_set():
    props = teacher_node(Document(), "/m.onnx", {"format": "onnx"}, (0, 0)).props
    props["input"]["mean"] = [0.1]  # typed by the user
    props["outputs"] = "logits"
    new = with_proposal(props, NHWC)
    assert new["input"]["mean"] == [0.1] and new["outputs"] == "logits"  # kept
    assert new["input"]["layout"] == "nhwc" and new["input"]["std"] == [0.25]  # filled
    # another file: what the first file proposed is not the user's word, and goes
    other = {"classes": ["a", "b"], "proposed": {"input": {"channel_order": "bgr"}}}
    again = with_proposal(new, other, previous=NHWC)
    assert again["input"]["layout"] == "auto" and again["input"]["size"] is None
    assert again["input"]["channel_order"] == "bgr" and again["input"]["mean"] == [0.1]
    assert again["classes"] == ["a", "b"]  # the old file's numbered classes are replaced
    # a proposal the spec refuses (an engine's damaged answer) proposes nothing
    assert with_proposal(props, {"proposed": {"input": {"std": [0]}}})["input"] == props["input"]


def test_the_card_shows_the_contract_when_it_is_not_the_default(doc, qapp):
    plain = teacher_node(doc, "/m.onnx", {"format": "onnx"}, (0, 0))
    assert contract_words(plain.props) == [] and len(summary(plain)) == 2
    node = teacher_node(doc, "/m.onnx", NHWC, (0, 0))
    assert contract_words(node.props) == ["input: NHWC · 224×224 · ×1/255 · mean/std", "outputs: probabilities"]
    assert summary(node)[2:] == contract_words(node.props)
    item = NodeItem(node)
    assert item.boundingRect().height() > NODE_H + 4  # the card grows for the two lines
    assert "outputs: probabilities" in item.toolTip()


@pytest.fixture
def demo_form(qtbot, doc, stack):
    """The demo project, its first teacher shown in the inspector."""
    load_into(doc, DEMO)
    inspector = Inspector(doc, stack)
    qtbot.addWidget(inspector)
    inspector.show()
    teacher = doc.of_kind("teacher")[0]
    inspector.show_node(teacher.id)
    return inspector, teacher.id


def _type(inspector, dotted: str, text: str) -> QLineEdit:
    line = inspector.findChild(QLineEdit, f"field-{dotted}")
    assert line is not None, dotted
    line.setText(text)
    line.textEdited.emit(text)
    line.editingFinished.emit()
    return line


def test_editing_mean_in_the_inspector_reaches_the_spec(demo_form, doc, stack):
    inspector, teacher_id = demo_form
    assert inspector.findChild(QLabel, "heading-input") is not None
    _type(inspector, "input.mean", "0.5")
    _type(inspector, "input.std", "0.25")
    _type(inspector, "input.size", "16 16")
    layout = inspector.findChild(QComboBox, "field-input.layout")
    layout.setCurrentIndex(layout.findData("nchw"))
    given = doc.nodes[teacher_id].props["input"]
    assert (given["mean"], given["std"], given["size"], given["layout"]) == ([0.5], [0.25], [16, 16], "nchw")
    spec = parse_spec(document_to_project(doc))
    teacher = next(t for t in spec.teachers if t.name == doc.nodes[teacher_id].props["name"])
    assert teacher.input.mean == [0.5] and teacher.input.size == [16, 16] and teacher.input.layout == "nchw"
    stack.undo()  # the layout
    stack.undo()  # the size
    assert doc.nodes[teacher_id].props["input"].get("size") is None
    assert inspector.findChild(QLineEdit, "field-input.mean").text() == "0.5"


def test_list_fields_say_what_is_wrong_and_keep_the_last_good_value(demo_form, doc):
    inspector, teacher_id = demo_form
    _type(inspector, "input.mean", "0.5, zero")
    error = inspector.findChild(QLabel, "error-input.mean")
    assert not error.isHidden() and "numbers separated by commas" in error.text()
    _type(inspector, "input.size", "224")  # one value: the spec wants [height, width]
    assert not inspector.findChild(QLabel, "error-input.size").isHidden()
    _type(inspector, "input.crop", "2.5, 3")
    assert "whole numbers" in inspector.findChild(QLabel, "error-input.crop").text()
    _type(inspector, "input.columns", "age, height")
    props = doc.nodes[teacher_id].props["input"]
    assert props.get("mean") is None and props.get("size") is None and props["columns"] == ["age", "height"]


@pytest.fixture
def nhwc_file(tmp_path):
    return image_onnx(tmp_path / "nhwc-digits.onnx", ["batch", 28, 28, 1],
                      {"mean": "[0.1307]", "std": "[0.3081]", "classes": "a,b,c"}, softmax=True)


@pytest.mark.slow  # a real engine child process reads the file
def test_a_dropped_file_gives_a_teacher_with_the_proposal(window, qtbot, nhwc_file):
    drop(window.view, file_mime(nhwc_file), QPointF(0, 0))
    qtbot.waitUntil(lambda: len(window.doc.of_kind("teacher")) == 1, timeout=60000)
    teacher = window.doc.of_kind("teacher")[0]
    assert teacher.props["classes"] == ["a", "b", "c"]
    assert teacher.props["input"] == {**teacher.props["input"], "layout": "nhwc", "mean": [0.1307], "std": [0.3081]}
    assert teacher.props["outputs"] == "probabilities"
    assert window.scene.node_items[teacher.id].lines[2:] == ["input: NHWC · mean/std", "outputs: probabilities"]


@pytest.mark.slow  # a real engine child process reads the files
def test_choosing_a_file_in_the_inspector_fills_what_is_unset_in_one_undo_step(window, qtbot, nhwc_file, tmp_path):
    window.drops.drop(_kind_mime("teacher"), QPointF(0, 0))
    teacher_id = window.doc.of_kind("teacher")[0].id
    window.inspector.show_node(teacher_id)
    outputs = window.inspector.findChild(QComboBox, "field-outputs")
    outputs.setCurrentIndex(outputs.findData("logits"))  # the user's word
    steps = window.undo_stack.count()
    _type(window.inspector, "path", str(nhwc_file))
    props = lambda: window.doc.nodes[teacher_id].props  # noqa: E731
    qtbot.waitUntil(lambda: props()["classes"] == ["a", "b", "c"], timeout=60000)
    assert props()["input"]["layout"] == "nhwc" and props()["input"]["mean"] == [0.1307]
    assert props()["outputs"] == "logits"  # set by the user: kept
    assert window.undo_stack.count() == steps + 1  # the file and what it says: one step
    window.undo_stack.undo()
    assert props()["path"] == "" and props()["classes"] == [] and props()["input"]["layout"] == "auto"
    window.undo_stack.redo()
    assert props()["input"]["layout"] == "nhwc" and props()["classes"] == ["a", "b", "c"]

    layout = window.inspector.findChild(QComboBox, "field-input.layout")
    layout.setCurrentIndex(layout.findData("auto"))  # another edit: the next file is a step of its own
    other = image_onnx(tmp_path / "chw.onnx", ["batch", 3, 8, 8], {"channel_order": "bgr"}, classes=2)
    _type(window.inspector, "path", str(other))
    qtbot.waitUntil(lambda: props()["classes"] == ["0", "1"], timeout=60000)  # the old file's classes go
    assert props()["input"]["layout"] == "nchw" and props()["input"]["mean"] is None  # the old file's word goes
    assert props()["input"]["channel_order"] == "bgr" and props()["outputs"] == "logits"
    window.undo_stack.undo()  # back to the first file, as it was; reading it again changes nothing
    qtbot.waitUntil(lambda: window.doc.nodes[teacher_id].info.get("file") == str(nhwc_file), timeout=60000)
    qtbot.wait(200)
    assert props()["input"]["layout"] == "auto" and window.undo_stack.canRedo()


def _kind_mime(kind: str):
    from PySide6.QtCore import QByteArray, QMimeData

    from gui.drag_formats import KIND_MIME

    mime = QMimeData()
    mime.setData(KIND_MIME, QByteArray(kind.encode()))
    return mime


def test_the_inspector_shows_where_the_classes_came_from(qtbot):
    doc, stack = Document(), QUndoStack()
    inspector = Inspector(doc, stack)
    qtbot.addWidget(inspector)
    info = {**NHWC, "classes": ["x"], "classes_from": "graph",
            "proposed": {**NHWC["proposed"], "reasons": ["metadata mean is <b>0.5</b>: mean [0.5]"]}}
    node = teacher_node(doc, "/m.onnx", info, (0, 0))
    from gui.document.commands import AddNode

    stack.push(AddNode(doc, node))
    inspector.show_node(node.id)
    text = inspector.findChild(QLabel, "teacher-file-info").text()
    assert "classes: read from the graph" in text and "&lt;b&gt;0.5&lt;/b&gt;" in text  # the file's words, escaped


def test_a_teacher_without_classes_says_so_in_plain_words(doc):
    from gui.document.validation import ERROR, node_status

    info = {**NHWC, "outputs": [{"name": "logits", "shape": ["batch", 5]}]}
    node = teacher_node(doc, "/m.onnx", {}, (0, 0))  # read later: no classes yet
    node.info = info
    doc.add_node(node)
    assert node.props["classes"] == []
    state, why = node_status(doc, node)
    assert state != ERROR and why == "list the teacher's classes, one per output; its file has 5 outputs"
    assert "List should" not in why


@pytest.mark.slow  # a real engine child process reads the file
def test_choosing_the_demo_file_for_a_new_teacher_gives_its_classes(window, qtbot):
    from tests.helpers import TEACHERS

    window.drops.drop(_kind_mime("teacher"), QPointF(0, 0))
    teacher_id = window.doc.of_kind("teacher")[0].id
    window.inspector.show_node(teacher_id)
    _type(window.inspector, "path", str(TEACHERS / "digits-0-4.onnx"))
    props = lambda: window.doc.nodes[teacher_id].props  # noqa: E731
    qtbot.waitUntil(lambda: len(props()["classes"]) == 5, timeout=60000)
    item = window.scene.node_items[teacher_id]
    assert item.state != "error" and "List should" not in item.toolTip()


@pytest.mark.slow  # a real engine child process reads the file
def test_a_teacher_read_without_a_choice_gets_its_classes_as_one_undo_step(window, qtbot):
    """A model dragged in without what its file holds (the library's entry from an older app):
    when the file is read, its classes fill the empty list, one undo step, said in the status bar."""
    import json

    from PySide6.QtCore import QByteArray, QMimeData

    from gui.drag_formats import MODEL_MIME
    from tests.helpers import TEACHERS

    mime = QMimeData()
    mime.setData(MODEL_MIME, QByteArray(json.dumps({"path": str(TEACHERS / "digits-0-4.onnx")}).encode()))
    window.drops.drop(mime, QPointF(0, 0))
    teacher = window.doc.of_kind("teacher")[0]
    assert teacher.props["classes"] == []
    steps = window.undo_stack.count()
    props = lambda: window.doc.nodes[teacher.id].props  # noqa: E731
    qtbot.waitUntil(lambda: len(props()["classes"]) == 5, timeout=60000)
    assert window.undo_stack.count() == steps + 1
    assert "5 classes" in window.statusBar().currentMessage()
    assert window.scene.node_items[teacher.id].state != "error"
    window.undo_stack.undo()
    assert props()["classes"] == [] and props()["path"].endswith("digits-0-4.onnx")
    assert "list the teacher's classes" in window.scene.node_items[teacher.id].toolTip()
