"""Compression and export on the canvas: one chain after the student, saved as the spec's
`compression` and `export`, edited in the inspector."""

import json

from engine.spec import parse_spec
from gui.document.commands import AddLink
from gui.document.convert import document_to_project, project_to_nodes, read_project
from gui.document.links import check_link
from gui.document.model import Document, Link
from gui.document.validation import INCOMPLETE, OK, node_status
from tests.gui.helpers import add, load_into
from tests.helpers import COMPRESSED


def test_the_chain_rules(doc, stack):
    student, teacher = add(doc, stack, "student"), add(doc, stack, "teacher")
    prune, prune2 = add(doc, stack, "prune"), add(doc, stack, "prune")
    quant, export = add(doc, stack, "quantize"), add(doc, stack, "export")
    assert node_status(doc, prune) == (INCOMPLETE, "connect the student (or the step before) to its input")

    assert check_link(doc, Link(teacher.id, "teaches", prune.id, "model")) == \
        "the model input takes a student or prune, not a teacher"
    for src, dst in ((student, prune), (prune, prune2), (prune2, quant)):
        link = Link(src.id, "model", dst.id, "model")
        assert check_link(doc, link) is None
        stack.push(AddLink(doc, link))
    assert check_link(doc, Link(quant.id, "model", prune.id, "model")).startswith("quantization comes last")
    assert "one chain" in check_link(doc, Link(student.id, "model", export.id, "model"))
    assert check_link(doc, Link(quant.id, "model", export.id, "model")) is None
    stack.push(AddLink(doc, Link(quant.id, "model", export.id, "model")))
    assert all(node_status(doc, n)[0] == OK for n in (prune, prune2, quant, export))

    prune2.props["sparsity"] = 1.5
    state, reason = node_status(doc, prune2)
    assert state == "error" and reason.startswith("sparsity")


def test_the_compressed_example_opens_and_saves_the_same_spec(tmp_path):
    data = read_project(COMPRESSED)
    doc = load_into(Document(), COMPRESSED)
    nodes = list(doc.nodes.values())
    chain = [n.kind for n in nodes if n.kind in ("prune", "quantize", "export")]
    assert chain == ["prune", "quantize", "export"]
    saved = document_to_project(doc, tmp_path)
    assert saved["compression"] == parse_spec(data).model_dump(mode="json")["compression"]
    assert saved["export"] == {"safetensors": True}
    doc.nodes[[n.id for n in nodes if n.kind == "export"][0]].props["folder"] = str(tmp_path / "out")
    saved = document_to_project(doc, tmp_path)
    assert saved["export"]["folder"] == "out"  # beside the project: written relative
    spec = parse_spec(json.loads(json.dumps(saved)), tmp_path)
    assert spec.export.folder == tmp_path / "out" and spec.quantize.mode == "static"


def test_an_unfinished_step_ends_the_chain_and_stays_in_the_layout(doc, stack, tmp_path):
    load_into(doc, COMPRESSED)
    nodes = list(doc.nodes.values())
    quant = next(n for n in nodes if n.kind == "quantize")
    quant.props["max_accuracy_drop"] = -1  # not valid: quantize and what follows stay out of the spec
    saved = document_to_project(doc, tmp_path)
    assert [c["kind"] for c in saved["compression"]] == ["prune"] and "export" not in saved
    assert saved["layout"]["nodes"][quant.id]["props"]["max_accuracy_drop"] == -1
    _, again, _ = project_to_nodes(json.loads(json.dumps(saved)), tmp_path)
    assert sorted(n.kind for n in again) == sorted(n.kind for n in nodes)


def test_inspector_edits_a_prune_node(window, qtbot):
    from PySide6.QtWidgets import QComboBox, QLineEdit

    assert window.open_project(COMPRESSED, ask=False)
    prune = window.doc.of_kind("prune")[0]
    window.inspector.show_node(prune.id)
    sparsity = window.inspector.findChild(QLineEdit, "field-sparsity")
    sparsity.setText("1.5")
    sparsity.textEdited.emit("1.5")
    error = window.inspector.findChild(type(window.inspector.status), "error-sparsity")
    assert error.isVisible() and "less than 1" in error.text()
    sparsity.setText("0.7")
    sparsity.editingFinished.emit()
    assert window.doc.nodes[prune.id].props["sparsity"] == 0.7
    method = window.inspector.findChild(QComboBox, "field-method")
    method.setCurrentIndex(method.findData("structured"))
    assert window.doc.nodes[prune.id].props["method"] == "structured"
    qtbot.waitUntil(lambda: window.inspector.findChild(QComboBox, "field-scope") is None)
    window.undo_stack.undo()
    assert window.doc.nodes[prune.id].props["method"] == "magnitude"
