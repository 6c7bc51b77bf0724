"""What the engine's checks find about a teacher reaches its node and the user: Check Pipeline
(the real `validate` child) and a run's teacher_check events."""

from __future__ import annotations

import time

from PySide6.QtWidgets import QLabel, QMessageBox, QPushButton

from engine.events import TeacherCheck
from tests.helpers import demo_spec, write_spec


def teacher_item(window, name):
    return next(i for i in window.scene.node_items.values()
                if i.node.kind == "teacher" and i.node.props.get("name") == name)


def test_check_pipeline_puts_a_misordered_teacher_warning_on_its_node(window, qtbot, tmp_path):
    spec = demo_spec()
    spec["teachers"][0]["classes"] = ["1", "0", "2", "3", "4"]  # listed in another order than its outputs
    assert window.open_project(write_spec(tmp_path, spec), ask=False)
    window.check_pipeline()
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "problems-box") is not None, timeout=60000)
    box = window.findChild(QMessageBox, "problems-box")
    assert "check these teachers" in box.text() and "teachers[0]" in box.informativeText()
    low = teacher_item(window, "low digits")
    assert "in the order ['0', '1', '2', '3', '4']" in low.warning
    assert low.warning in low.toolTip()
    middle = teacher_item(window, "middle digits")
    assert middle.warning == "" and middle.live.startswith("accuracy ")
    assert "1 warning(s) on the teachers" in window.statusBar().currentMessage()
    # the inspector shows it with the settings it suggests, applied as one undoable edit
    window.scene.clearSelection()
    low.setSelected(True)
    check = window.inspector.findChild(QLabel, "teacher-check")
    assert check is not None and "in the order" in check.text()
    window.inspector.findChild(QPushButton, "apply-check-fix").click()
    assert window.doc.nodes[low.node.id].props["classes"] == ["0", "1", "2", "3", "4"]
    assert low.warning == "" and window.inspector.findChild(QLabel, "teacher-check") is None
    window.undo_stack.undo()
    assert window.doc.nodes[low.node.id].props["classes"] == ["1", "0", "2", "3", "4"]


def test_a_run_teacher_check_event_warns_on_the_node_and_in_the_log(window, tmp_path):
    assert window.open_project(write_spec(tmp_path, demo_spec()), ask=False)
    event = TeacherCheck(time=time.time(), teacher="high digits", level="warning",
                         message="teacher 'high digits' is near chance", hint="check its input contract",
                         field="teachers[2]")
    window.runner._on_event(event)
    window.runner._on_event(event.model_copy(update={"teacher": "low digits", "field": "teachers[0].input",
                                                     "fix": {"scale": 0.5, "mean": [0.1]}}))
    low = teacher_item(window, "low digits")
    low.setSelected(True)
    window.inspector.findChild(QPushButton, "apply-check-fix").click()
    contract = window.doc.nodes[low.node.id].props["input"]
    assert (contract["scale"], contract["mean"]) == (0.5, [0.1])
    item = teacher_item(window, "high digits")
    assert item.warning == "teacher 'high digits' is near chance — check its input contract"
    assert "near chance — check its input contract" in window.dashboard.log.toPlainText()
