"""The editor as a person uses it: real widgets offscreen, real mouse events and drops,
a real engine subprocess reading the model files."""

import json
import subprocess
import sys

import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtWidgets import QComboBox, QLineEdit, QMessageBox

from engine.spec import load_spec
from gui.canvas.items import LinkItem, NodeItem, RefusalLabel
from tests.gui.helpers import drag, drop, file_mime, mouse, palette_mime
from tests.helpers import DEMO, ROOT, TEACHERS, engine_cmd


def connect(window, src_id, src_port, dst_id, dst_port):
    items = window.scene.node_items
    drag(window.view, items[src_id].port(src_port, True).scenePos(),
         items[dst_id].port(dst_port, False).scenePos())


def click(window, node_id):
    item = window.scene.node_items[node_id]
    point = item.scenePos() + QPointF(120, 60)
    mouse(window.view, QEvent.MouseButtonPress, point)
    mouse(window.view, QEvent.MouseButtonRelease, point, Qt.LeftButton, Qt.NoButton)


@pytest.mark.slow
def test_build_the_demo_from_an_empty_canvas_with_the_mouse(window, qtbot, tmp_path):
    doc, view = window.doc, window.view
    view.resetTransform()
    view.centerOn(0, 0)
    drop(view, palette_mime(window, "data"), QPointF(-300, -250))
    drop(view, palette_mime(window, "student"), QPointF(250, 0))
    drop(view, palette_mime(window, "strategy"), QPointF(-300, 250))
    files = ["digits-0-4.onnx", "digits-4-7.onnx", "digits-7-0.onnx"]
    for i, name in enumerate(files):
        drop(view, file_mime(TEACHERS / name), QPointF(-300, -120 + 125 * i))
    qtbot.waitUntil(lambda: len(doc.of_kind("teacher")) == 3, timeout=30000)
    assert len(window.scene.node_items) == 6  # the scene mirrors the document
    data, student, strategy = (doc.of_kind(k)[0] for k in ("data", "student", "strategy"))
    teachers = {t.props["name"]: t for t in doc.of_kind("teacher")}
    assert teachers["digits-7-0"].props["classes"] == ["seven", "eight", "nine", "zero"]  # read by the engine

    connect(window, data.id, "data", student.id, "data")
    connect(window, teachers["digits-0-4"].id, "teaches", student.id, "teachers")
    connect(window, teachers["digits-4-7"].id, "teaches", student.id, "teachers")
    connect(window, strategy.id, "strategy", student.id, "strategy")
    assert len(doc.links) == 4
    assert len([i for i in window.scene.items() if isinstance(i, LinkItem)]) == 4

    # the expert with its own class names is refused until its classes are mapped
    connect(window, teachers["digits-7-0"].id, "teaches", student.id, "teachers")
    assert len(doc.links) == 4
    refusal = [i for i in window.scene.items() if isinstance(i, RefusalLabel)]
    assert refusal and "does not know: seven" in refusal[0].text
    click(window, teachers["digits-7-0"].id)
    assert window.inspector.node_id == teachers["digits-7-0"].id
    for name, target in (("seven", "7"), ("eight", "8"), ("nine", "9"), ("zero", "0")):
        combo = window.inspector.findChild(QComboBox, f"mapping-{name}")
        combo.setCurrentIndex(combo.findData(target))
    assert teachers["digits-7-0"].props["mapping"] == {"seven": "7", "eight": "8", "nine": "9", "zero": "0"}
    connect(window, teachers["digits-7-0"].id, "teaches", student.id, "teachers")
    assert len(doc.links) == 5
    assert all(item.state == "ok" for item in window.scene.node_items.values())

    saved = tmp_path / "mine.distill.json"
    assert window.save_to(saved)
    assert "[*]" in window.windowTitle() and not window.isWindowModified()
    spec = load_spec(saved)
    assert [t.path.name for t in spec.teachers] == files
    assert spec.classes == [str(i) for i in range(10)] and spec.data.format == "builtin"
    check = subprocess.run(engine_cmd("validate", saved), cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr

    steps = window.undo_stack.count()
    assert steps == 12  # 6 nodes, 5 links, the mapping (its edits merge into one step)
    while window.undo_stack.canUndo():
        window.undo_stack.undo()
    assert doc.nodes == {} and doc.links == []
    assert not [i for i in window.scene.items() if isinstance(i, (NodeItem, LinkItem))]
    while window.undo_stack.canRedo():
        window.undo_stack.redo()
    assert len(doc.links) == 5 and window.undo_stack.isClean()


def test_reopening_a_saved_project_gives_the_same_spec(window, qtbot, tmp_path):
    assert window.open_project(DEMO, ask=False)
    name = window.inspector.findChild(QLineEdit, "field-pipeline-name")
    assert name.text() == "digits experts"  # the pipeline form follows the document
    saved = tmp_path / "again.distill.json"
    assert window.save_to(saved)
    window.new_project()
    assert window.doc.nodes == {}
    assert window.open_project(saved, ask=False)
    assert load_spec(saved).model_copy(update={"layout": None}) == \
        load_spec(DEMO).model_copy(update={"layout": None})
    assert str(saved) in json.loads(window.settings.value("recent"))


def test_moving_deleting_and_undo_from_the_keyboard(window, qtbot):
    window.open_project(DEMO, ask=False)
    window.view.resetTransform()
    strategy = window.doc.of_kind("strategy")[0]
    item = window.scene.node_items[strategy.id]
    before = strategy.pos
    start = item.scenePos() + QPointF(120, 60)
    window.view.centerOn(start)
    drag(window.view, start, start + QPointF(80, 40))
    assert window.doc.nodes[strategy.id].pos != before
    assert window.isWindowModified()
    window.undo_stack.undo()
    assert window.doc.nodes[strategy.id].pos == before and item.pos().toTuple() == before

    click(window, strategy.id)
    qtbot.keyClick(window.view, Qt.Key_Delete)
    assert strategy.id not in window.doc.nodes and len(window.doc.links) == 4
    window.act_undo.trigger()
    assert strategy.id in window.doc.nodes and len(window.doc.links) == 5


def field_of(window, node_id, name):
    """Select the node and return its inspector field and that field's error label."""
    click(window, node_id)
    return (window.inspector.findChild(QLineEdit, f"field-{name}"),
            window.inspector.findChild(type(window.status_label), f"error-{name}"))


def type_into(qtbot, field, text, enter=True):
    field.setFocus()
    field.selectAll()
    qtbot.keyClicks(field, text)
    if enter:
        qtbot.keyClick(field, Qt.Key_Return)


def test_inspector_checks_values_as_you_type(window, qtbot):
    window.open_project(DEMO, ask=False)
    student = window.doc.student()
    lr, error = field_of(window, student.id, "training.lr")
    type_into(qtbot, lr, "-3", enter=False)
    assert error.isVisible() and "greater than 0" in error.text()  # while typing
    qtbot.keyClick(lr, Qt.Key_Return)
    assert window.doc.nodes[student.id].props["training"]["lr"] == 0.002  # not committed
    type_into(qtbot, lr, "abc", enter=False)
    assert "write a number" in error.text()
    type_into(qtbot, lr, "0.01")
    assert not error.isVisible()
    assert window.doc.nodes[student.id].props["training"]["lr"] == 0.01
    window.undo_stack.undo()
    assert window.doc.nodes[student.id].props["training"]["lr"] == 0.002
    assert lr.text() == "0.002" or lr.hasFocus()


def test_a_broken_project_is_refused_and_changes_nothing(window, qtbot, tmp_path):
    window.open_project(DEMO, ask=False)
    before = (dict(window.doc.nodes), list(window.doc.links), window.windowTitle())
    bad = tmp_path / "broken.distill.json"
    bad.write_text('{"schema_version": 99, "name": "from the future"}')
    assert not window.open_project(bad, ask=False)
    box = window.findChild(QMessageBox, "problems-box")
    assert box is not None and "newer Distill Studio" in box.informativeText()
    assert (dict(window.doc.nodes), list(window.doc.links), window.windowTitle()) == before


def test_an_unreadable_model_file_gives_a_message_and_no_node(window, qtbot, tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x00garbage" * 20)
    drop(window.view, file_mime(bad), QPointF(0, 0))
    qtbot.waitUntil(lambda: "Cannot use broken.onnx" in window.statusBar().currentMessage(), timeout=30000)
    assert "not a valid ONNX model" in window.statusBar().currentMessage()
    assert window.doc.nodes == {}


def test_closing_with_unsaved_changes_asks(window, qtbot, monkeypatch):
    window.open_project(DEMO, ask=False)
    from gui.document.commands import SetName

    window.undo_stack.push(SetName(window.doc, "changed"))
    assert window.isWindowModified() and window.windowTitle().startswith("digits-experts.distill.json[*]")
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Cancel)
    assert not window.close()
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Discard)
    assert window.close()
    assert window.settings.value("window/geometry") is not None


@pytest.mark.slow
def test_screenshot_from_the_command_line(tmp_path):
    png = tmp_path / "shot.png"
    proc = subprocess.run([sys.executable, "-m", "gui.app", str(DEMO), "--screenshot", str(png)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert proc.returncode == 0, proc.stderr
    from PySide6.QtGui import QImage

    image = QImage(str(png))
    assert (image.width(), image.height()) == (1400, 860)
    assert len({image.pixel(x, 400) for x in range(0, 1400, 7)}) > 5  # not a blank picture


def test_key_widgets_have_names(window):
    for name in ("canvas", "palette", "inspector", "model-library", "palette-kinds"):
        widget = window.findChild(__import__("PySide6.QtWidgets", fromlist=["QWidget"]).QWidget, name)
        assert widget is not None and widget.accessibleName(), name


def test_model_library_reads_files_keeps_them_and_feeds_the_canvas(window, qtbot, settings):
    from gui.engine_client.inspect import ModelInspector
    from gui.panels.palette import ModelLibrary

    library = window.palette.library
    assert drop(library, file_mime(TEACHERS / "digits-4-7.onnx"))
    qtbot.waitUntil(lambda: library.count() == 1, timeout=30000)
    assert library.entries[0]["info"]["classes"] == ["4", "5", "6", "7"]
    again = ModelLibrary(ModelInspector(), settings)  # the next session
    assert [e["path"] for e in again.entries] == [str(TEACHERS / "digits-4-7.onnx")]
    drop(window.view, library.mimeData([library.item(0)]), QPointF(0, 0))
    (teacher,) = window.doc.of_kind("teacher")
    assert teacher.props["classes"] == ["4", "5", "6", "7"] and teacher.info["parameters"] > 0
    library.setCurrentRow(0)
    library.item(0).setSelected(True)
    library.remove_selected()
    assert library.count() == 0 and ModelLibrary(ModelInspector(), settings).entries == []


def test_inspector_refuses_bad_data_settings_with_the_specs_message(window, qtbot):
    window.open_project(DEMO, ask=False)
    data = window.doc.of_kind("data")[0]
    field, error = field_of(window, data.id, "split.val")
    type_into(qtbot, field, "5")
    assert error.isVisible() and "less than 1" in error.text()
    type_into(qtbot, field, "0.85")  # with test 0.15: nothing left to train on
    assert "leaves almost nothing to train on" in error.text()
    assert window.doc.nodes[data.id].props["split"]["val"] == 0.15 and window.undo_stack.count() == 0
    teacher = window.doc.of_kind("teacher")[1]
    name, error = field_of(window, teacher.id, "name")
    type_into(qtbot, name, "low digits")
    assert "another teacher has this name" in error.text()
    assert window.doc.nodes[teacher.id].props["name"] == "middle digits"


def test_a_project_with_nan_coordinates_opens_drawn_and_says_what_it_moved(window, qtbot, tmp_path):
    import json as _json
    import math

    from engine.spec import SCHEMA_VERSION

    path = tmp_path / "nan.distill.json"
    path.write_text(_json.dumps({
        "schema_version": SCHEMA_VERSION, "name": "x", "classes": ["a", "b"],
        "layout": {"nodes": {"student-1": {"ref": "student", "x": float("nan"), "y": float("inf")},
                             "d": {"kind": "data", "x": float("-inf"), "y": 40, "props": {}}}}}))
    assert window.open_project(path, ask=False)
    assert "student-1: x was nan" in window.statusBar().currentMessage()
    for node in window.doc.nodes.values():
        assert all(math.isfinite(v) for v in node.pos)
    rect = window.view.scene().itemsBoundingRect()
    assert all(math.isfinite(v) for v in (rect.x(), rect.y(), rect.width(), rect.height()))
    assert not window.view.grab().isNull()


def test_a_corrupt_teacher_file_shows_the_engines_message_never_a_traceback(window, qtbot, tmp_path, demo_dict):
    import json as _json

    from tests.engine.test_messages_from_file_content import unknown_dtype_onnx

    demo_dict["teachers"] = demo_dict["teachers"][:1]
    demo_dict["teachers"][0]["path"] = str(unknown_dtype_onnx(tmp_path / "odd.onnx"))
    path = tmp_path / "bad-teacher.distill.json"
    path.write_text(_json.dumps(demo_dict))
    assert window.open_project(path, ask=False)
    teacher = window.doc.of_kind("teacher")[0]
    qtbot.waitUntil(lambda: "error" in window.doc.nodes[teacher.id].info, timeout=60000)
    error = window.doc.nodes[teacher.id].info["error"]
    assert error.startswith("odd.onnx cannot be read") and "hint:" in error and "Traceback" not in error


def test_an_engine_traceback_never_reaches_a_node(qapp, qtbot, tmp_path, monkeypatch):
    """Whatever the engine prints when it dies, the node gets one clean line."""
    from gui.engine_client.inspect import ModelInspector

    fake = tmp_path / "engine-stand-in"
    fake.write_text("#!/bin/sh\ncat >&2 <<'END'\nTraceback (most recent call last):\n"
                    '  File "/x/engine/cli.py", line 9, in main\n    boom()\n'
                    "ValueError: Enum DataType has no name defined for value 99\nEND\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    said, inspector = [], ModelInspector()
    inspector.inspect(tmp_path / "m.onnx", lambda info, error: said.append((info, error)))
    qtbot.waitUntil(lambda: bool(said), timeout=30000)
    info, error = said[0]
    assert info is None and "Traceback" not in error and "File " not in error
    assert "ValueError: Enum DataType has no name defined for value 99" in error


@pytest.mark.slow
def test_screenshot_of_a_project_with_nan_coordinates(tmp_path):
    """The issue's reproduction: this crashed the app with a segmentation fault."""
    import json as _json

    from engine.spec import SCHEMA_VERSION

    project = tmp_path / "nan.distill.json"
    project.write_text(_json.dumps({
        "schema_version": SCHEMA_VERSION, "name": "x", "classes": ["a", "b"],
        "layout": {"nodes": {"student-1": {"ref": "student", "x": float("nan"), "y": float("nan")},
                             "d": {"kind": "data", "x": float("-inf"), "y": 1e308, "props": {}}}}}))
    png = tmp_path / "shot.png"
    proc = subprocess.run([sys.executable, "-m", "gui.app", str(project), "--screenshot", str(png)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert proc.returncode == 0, proc.stderr
    from PySide6.QtGui import QImage

    image = QImage(str(png))
    assert len({image.pixel(x, y) for x in range(0, 1400, 7) for y in (200, 400, 600)}) > 5


def test_the_undo_button_keeps_its_word_and_tells_the_rest_in_its_tooltip(window, tmp_path):
    from tests.helpers import demo_spec, write_spec

    assert window.open_project(write_spec(tmp_path, demo_spec()), ask=False)
    data = window.doc.of_kind("data")[0]
    from gui.document.commands import SetProps

    window.undo_stack.push(SetProps(window.doc, data.id, {**data.props, "split": {"val": 0.2, "test": 0.15, "seed": 0}},
                                    "split"))
    what = f"Change the split of {data.title}"  # in words, not the spec's field name
    assert window.act_undo.text() == "&Undo"
    assert window.act_undo.toolTip() == f"Undo {what}"
    window.undo_stack.undo()
    assert window.act_redo.text() == "&Redo" and window.act_redo.toolTip() == f"Redo {what}"


def test_a_failed_check_leaves_no_checking_message_behind(window, qtbot, tmp_path):
    from PySide6.QtWidgets import QMessageBox

    from tests.helpers import demo_spec, write_spec

    spec = demo_spec()
    spec["teachers"][0]["path"] = str(tmp_path / "missing.onnx")
    assert window.open_project(write_spec(tmp_path, spec), ask=False)
    window.check_pipeline()
    assert "Checking the pipeline" in window.busy.words
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "problems-box") is not None, timeout=60000)
    assert "Checking" not in window.statusBar().currentMessage()
