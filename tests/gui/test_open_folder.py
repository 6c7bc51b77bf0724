"""Open Folder where no file manager is registered: QDesktopServices.openUrl says False, and the
app shows the folder's path (selectable) with a Copy Path button, never nothing."""

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QLineEdit

from gui.folder_opener import FolderPathDialog
from gui.panels.insights_file import insights_folder


@pytest.fixture
def no_file_manager(monkeypatch):
    asked = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: asked.append(url.toLocalFile()) or False)
    return asked


def shown_dialog(window) -> FolderPathDialog:
    dialogs = [d for d in window.findChildren(FolderPathDialog) if d.isVisible()]
    assert len(dialogs) == 1
    return dialogs[0]


def check_dialog(qtbot, dialog: FolderPathDialog, path) -> None:
    field = dialog.findChild(QLineEdit, "folder-path")
    assert field.text() == str(path) and field.isReadOnly() and field.selectedText() == str(path)
    QGuiApplication.clipboard().setText("something else")
    qtbot.mouseClick(dialog.copy_button, Qt.LeftButton)
    assert QGuiApplication.clipboard().text() == str(path)
    assert "Copied" in dialog.copied.text()
    dialog.close()


def test_the_export_panels_open_folder_shows_the_path_when_nothing_opens_it(window, qtbot, tmp_path,
                                                                            no_file_manager):
    panel = window.export_panel
    folder = tmp_path / "shipped"
    folder.mkdir()
    panel.report = {"folder": str(folder)}
    panel._update_enabled()
    assert panel.open_button.isEnabled()
    qtbot.mouseClick(panel.open_button, Qt.LeftButton)
    assert no_file_manager == [str(folder)]
    check_dialog(qtbot, shown_dialog(window), folder)


def test_the_insights_panels_open_folder_shows_the_path_when_nothing_opens_it(window, qtbot, tmp_path,
                                                                              no_file_manager):
    panel = window.insights
    insights_folder(tmp_path).mkdir()
    panel.run_dir = tmp_path
    panel._update_enabled()
    assert panel.open_button.isEnabled()
    qtbot.mouseClick(panel.open_button, Qt.LeftButton)
    assert no_file_manager == [str(insights_folder(tmp_path))]
    check_dialog(qtbot, shown_dialog(window), insights_folder(tmp_path))


def test_the_result_bars_open_folder_shows_the_path_when_nothing_opens_it(window, qtbot, tmp_path,
                                                                          no_file_manager):
    window.result_bar.show_completed(1, 0.959, 0.978, exported_to=str(tmp_path))
    assert window.result_bar.open_button.isVisible()
    qtbot.mouseClick(window.result_bar.open_button, Qt.LeftButton)
    assert no_file_manager == [str(tmp_path)]
    check_dialog(qtbot, shown_dialog(window), tmp_path)


def test_no_dialog_when_the_file_manager_opens_it(window, qtbot, tmp_path, monkeypatch):
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()) or True)
    window.result_bar.show_completed(1, 0.959, 0.978, exported_to=str(tmp_path))
    qtbot.mouseClick(window.result_bar.open_button, Qt.LeftButton)
    assert opened == [str(tmp_path)] and window.folder_dialog is None
    assert not [d for d in window.findChildren(FolderPathDialog) if d.isVisible()]
