"""What the engine's checks find about a teacher reaches its node and the user: Check Pipeline
(the real `validate` child) and a run's teacher_check events."""

from __future__ import annotations

import time

from PySide6.QtWidgets import QMessageBox

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


def test_a_run_teacher_check_event_warns_on_the_node_and_in_the_log(window, tmp_path):
    assert window.open_project(write_spec(tmp_path, demo_spec()), ask=False)
    event = TeacherCheck(time=time.time(), teacher="high digits", level="warning",
                         message="teacher 'high digits' is near chance", hint="check its input contract",
                         field="teachers[2]")
    window.runner._on_event(event)
    item = teacher_item(window, "high digits")
    assert item.warning == "teacher 'high digits' is near chance — check its input contract"
    assert "near chance — check its input contract" in window.dashboard.log.toPlainText()
