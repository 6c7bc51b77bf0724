"""The welcome page: on a plain launch and after File → New, until a project opens or a node is
added; Help → Welcome brings it back. Its buttons open the demo, the examples, a project file and
the recent projects."""

from pathlib import Path

from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QFileDialog

from gui.asset_paths import DEMO, EXAMPLES
from gui.panels.welcome import STEPS
from tests.gui.helpers import drop, palette_mime


def test_a_plain_launch_shows_the_welcome_and_its_big_button_opens_the_demo(window, qtbot):
    welcome = window.welcome
    assert window.welcome_shown and welcome.isVisible() and not window.view.isVisible()
    assert welcome.demo_button.text() == "Open the demo" and welcome.demo_button.isVisible()
    texts = [label.text() for frame in welcome.step_frames for label in frame.findChildren(type(window.status_label))]
    assert ["1", "2", "3"] == [t for t in texts if t in "123"]
    assert all(head in texts and body in texts for head, body in STEPS)
    others = sorted(p.name for p in EXAMPLES.glob("*.distill.json") if p != DEMO)
    assert sorted(welcome.example_buttons) == others and DEMO.name not in welcome.example_buttons
    assert welcome.no_recent.isVisible()  # a fresh user: nothing recent yet

    qtbot.mouseClick(welcome.demo_button, Qt.LeftButton)
    assert not window.welcome_shown and window.view.isVisible() and not welcome.isVisible()
    assert window.doc.student() is not None and len(window.doc.of_kind("teacher")) == 3
    assert window.path is None  # an example opens as a copy: Save never overwrites it
    assert window.doc.name == "digits experts"


def test_help_welcome_brings_it_back_and_new_shows_it_until_a_node_is_added(window, qtbot):
    qtbot.mouseClick(window.welcome.demo_button, Qt.LeftButton)
    assert not window.welcome_shown
    window.act_welcome.trigger()  # Help → Welcome
    assert window.welcome_shown and window.welcome.empty_button.text() == "Back to the canvas"
    qtbot.mouseClick(window.welcome.empty_button, Qt.LeftButton)
    assert not window.welcome_shown and len(window.doc.nodes) == 6  # nothing changed

    window.act_new.trigger()  # File → New: an empty canvas, so the welcome again
    assert window.welcome_shown and not window.doc.nodes
    assert window.welcome.empty_button.text() == "Start with an empty canvas"
    qtbot.mouseClick(window.welcome.empty_button, Qt.LeftButton)
    assert not window.welcome_shown and not window.doc.nodes  # an empty canvas to drag onto
    window.act_new.trigger()
    assert window.welcome_shown
    assert not drop(window.welcome, palette_mime(window, "student"))  # dragged onto the page:
    assert not window.welcome_shown and window.view.isVisible()  # the canvas comes up for the drop
    window.act_new.trigger()
    assert drop(window.view, palette_mime(window, "student"), QPointF(0, 0))  # a node added
    assert not window.welcome_shown and window.doc.student() is not None


def test_the_other_examples_and_open_project_from_the_welcome(window, qtbot, monkeypatch):
    name = "digits-compressed.distill.json"
    qtbot.mouseClick(window.welcome.example_buttons[name], Qt.LeftButton)
    assert not window.welcome_shown and window.doc.of_kind("prune")
    window.new_project()
    asked = []

    def choose(_parent, _title, start, _filter):
        asked.append(start)
        return str(DEMO), ""

    monkeypatch.setattr(QFileDialog, "getOpenFileName", choose)
    qtbot.mouseClick(window.welcome.open_button, Qt.LeftButton)
    assert asked and not window.welcome_shown and window.path == DEMO.resolve()


def test_recent_projects_are_on_the_welcome_and_open(window, qtbot, tmp_path):
    qtbot.mouseClick(window.welcome.demo_button, Qt.LeftButton)
    saved = tmp_path / "mine.distill.json"
    assert window.save_to(saved)
    window.new_project()
    assert window.welcome_shown and not window.welcome.no_recent.isVisible()
    buttons = window.welcome.recent_buttons
    assert [b.text() for b in buttons] == ["mine.distill.json"] and buttons[0].toolTip() == str(saved.resolve())
    qtbot.mouseClick(buttons[0], Qt.LeftButton)
    assert not window.welcome_shown and window.path == saved.resolve() and len(window.doc.nodes) == 6
    saved.unlink()  # a recent file that is gone is shown, not offered
    window.new_project()
    assert not window.welcome.recent_buttons[0].isEnabled()
    assert "no longer there" in window.welcome.recent_buttons[0].toolTip()


def test_a_project_given_at_start_shows_the_canvas_not_the_welcome(qapp, qtbot, settings, tmp_path):
    from gui.main_window import MainWindow

    win = MainWindow(settings, db=tmp_path / "runs.sqlite")
    try:
        assert win.open_project(Path(DEMO), ask=False)
        win.show()
        qtbot.waitExposed(win)
        assert not win.welcome_shown and win.view.isVisible()
    finally:
        win.undo_stack.setClean()
        win.close()
        win.deleteLater()
