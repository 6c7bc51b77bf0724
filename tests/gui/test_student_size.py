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
    m = re.match(r"([\d.]+) ([kMB]) parameters · about ([\d.]+) (KB|MB|GB) to train", text)
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
