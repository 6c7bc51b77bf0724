"""The student's inspector shows its parameter count and the memory training takes, from the
spec's own formulas, and follows what the user types before it is committed."""

from __future__ import annotations

import re

import pytest
from PySide6.QtWidgets import QLabel, QLineEdit

from gui.document.commands import AddNode
from gui.document.kinds import default_props
from gui.document.model import Node
from gui.panels.inspector import Inspector


@pytest.fixture
def student_form(qtbot, doc, stack):
    inspector = Inspector(doc, stack)
    qtbot.addWidget(inspector)
    inspector.show()
    data = Node(doc.new_id("data"), "data", {**default_props("data"), "format": "builtin", "name": "digits"}, (0, 0))
    stack.push(AddNode(doc, data))
    student = Node(doc.new_id("student"), "student", {
        **default_props("student"), "classes": [str(i) for i in range(10)],
        "architecture": {"kind": "resnet", "depth": 18, "width": 0.25}}, (200, 0))
    stack.push(AddNode(doc, student))
    inspector.show_node(student.id)
    return inspector, doc, student


def parameters_shown(inspector) -> float:
    text = inspector.findChild(QLabel, "student-size").text()
    m = re.match(r"([\d.]+) ([kMB]) parameters\nto train: about ([\d.]+) (KB|MB|GB) at batch", text)
    assert m, text
    return float(m.group(1)) * {"k": 1e3, "M": 1e6, "B": 1e9}[m.group(2)]


def test_the_student_size_is_the_models_and_follows_typing(student_form, qtbot):
    from engine.models import build_model, count_parameters
    from engine.spec import ResNetArch

    inspector, doc, student = student_form
    exact = count_parameters(build_model(ResNetArch(depth=18, width=0.25), (1, 8, 8), 10))
    assert parameters_shown(inspector) == pytest.approx(exact, rel=0.01)
    width = inspector.findChild(QLineEdit, "field-architecture.width")
    width.setFocus()
    width.selectAll()
    qtbot.keyClicks(width, "0.5")  # typed, not yet committed
    assert doc.nodes[student.id].props["architecture"]["width"] == 0.25
    wider = count_parameters(build_model(ResNetArch(depth=18, width=0.5), (1, 8, 8), 10))
    assert parameters_shown(inspector) == pytest.approx(wider, rel=0.01)


def test_the_size_waits_for_a_known_shape(qtbot, doc, stack):
    inspector = Inspector(doc, stack)
    qtbot.addWidget(inspector)
    data = Node(doc.new_id("data"), "data", {**default_props("data"), "format": "npz", "path": "x.npz"}, (0, 0))
    stack.push(AddNode(doc, data))
    student = Node(doc.new_id("student"), "student", {**default_props("student"), "classes": ["a", "b"]}, (200, 0))
    stack.push(AddNode(doc, student))
    inspector.show_node(student.id)
    assert "Check Pipeline" in inspector.findChild(QLabel, "student-size").text()
    doc.set_info(data.id, {"checked_shape": {"props": data.props, "shape": [20]}})
    assert parameters_shown(inspector) > 0


def test_check_pipeline_gives_the_size_and_the_student_layers_for_hints(window, qtbot, tmp_path):
    import numpy as np

    from tests.helpers import write_spec

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "images.npz", x=rng.random((60, 1, 12, 12), dtype=np.float32), y=np.arange(60) % 3)
    spec = {"schema_version": 1, "name": "npz resnet", "classes": ["a", "b", "c"],
            "data": {"format": "npz", "path": str(tmp_path / "images.npz")}, "teachers": [],
            "student": {"architecture": {"kind": "resnet", "depth": 18, "width": 0.125}},
            "strategy": {"hard_label_weight": 1.0}}
    assert window.open_project(write_spec(tmp_path, spec), ask=False)
    student = window.doc.student()
    window.inspector.show_node(student.id)
    assert "Check Pipeline" in window.inspector.findChild(QLabel, "student-size").text()
    window.check_pipeline()
    qtbot.waitUntil(lambda: "parameters" in window.inspector.findChild(QLabel, "student-size").text(),
                    timeout=60000)
    strategy = window.doc.of_kind("strategy")[0]
    window.inspector.show_node(strategy.id)
    note = window.inspector.findChild(QLabel, "note-hints")
    assert note is not None and "body.stage3 [32, 3, 3]" in note.text(), note.text() if note else None


def test_invalid_training_settings_leave_the_size_line_readable(student_form):
    inspector, doc, student = student_form
    for training in ({"accumulate": 0}, {"batch_size": "x"}, {"batch_size": 8, "accumulate": 16}):
        doc.set_props(student.id, {**student.props, "training": training})
        assert inspector.findChild(QLabel, "student-size").text() == "size: shown when the training settings are valid"
