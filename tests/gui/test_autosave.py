"""Nothing the user made is lost: a backup of the previous version on save, and unsaved edits
autosaved and offered back when the app starts after a crash."""

import json
import shutil

import pytest

from gui.document.commands import SetName


def project(tmp_path, demo_dict):
    path = tmp_path / "p.distill.json"
    path.write_text(json.dumps(demo_dict))
    return path


def test_saving_keeps_the_previous_version_as_a_backup(window, tmp_path, demo_dict):
    path = project(tmp_path, demo_dict)
    before = path.read_text()
    assert window.open_project(path, ask=False)
    window.undo_stack.push(SetName(window.doc, "renamed"))
    assert window.save()
    assert (tmp_path / "p.distill.json.bak").read_text() == before
    assert json.loads(path.read_text())["name"] == "renamed"


@pytest.mark.slow
def test_unsaved_edits_come_back_after_a_crash(window, qtbot, settings, tmp_path, demo_dict):
    from gui.main_window import MainWindow

    path = project(tmp_path, demo_dict)
    assert window.open_project(path, ask=False)
    window.autosave.timer.setInterval(50)
    recovery = window.autosave.file
    window.undo_stack.push(SetName(window.doc, "edited, never saved"))
    qtbot.waitUntil(recovery.is_file, timeout=5000)
    assert json.loads(recovery.read_text())["path"] == str(path)
    crashed = tmp_path / "left-by-the-crash.json"
    shutil.copyfile(recovery, crashed)  # what stays on disk when the app dies here

    window.undo_stack.setClean()  # the fixture's window closes normally: its autosave goes
    assert not recovery.exists()
    shutil.copyfile(crashed, recovery)

    second = MainWindow(settings, db=tmp_path / "runs.sqlite")  # the next start
    second.show()
    qtbot.waitUntil(lambda: second.recovery_box is not None and second.recovery_box.isVisible(), timeout=5000)
    assert "edited, never saved" in second.recovery_box.text()
    recover = next(b for b in second.recovery_box.buttons() if b.text() == "Recover")
    recover.click()
    assert second.doc.name == "edited, never saved" and second.path == path
    assert not second.undo_stack.isClean() and len(second.doc.of_kind("teacher")) == 3
    assert second.save() and not recovery.exists()
    assert json.loads(path.read_text())["name"] == "edited, never saved"

    shutil.copyfile(crashed, recovery)  # and Discard deletes them
    third = MainWindow(settings, db=tmp_path / "runs.sqlite")
    third.show()
    qtbot.waitUntil(lambda: third.recovery_box is not None and third.recovery_box.isVisible(), timeout=5000)
    next(b for b in third.recovery_box.buttons() if b.text() == "Discard").click()
    assert not recovery.exists() and third.doc.name != "edited, never saved"
    for w in (second, third):
        qtbot.waitUntil(lambda w=w: w.model_inspector.busy == 0, timeout=30000)
        w.undo_stack.setClean()
        w.close()
