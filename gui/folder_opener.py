"""Open a folder in the desktop's file manager; where none is registered (openUrl says False),
show its path in a small dialog, selectable, with a Copy Path button."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


class FolderPathDialog(QDialog):
    """The folder no file manager could show: its path to select or copy."""

    def __init__(self, path: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("folder-path-dialog")
        self.setWindowTitle("Open Folder")
        self.path = path
        text = QLabel("No file manager could open the folder on this system. Its path:")
        text.setWordWrap(True)
        self.field = QLineEdit(path)
        self.field.setObjectName("folder-path")
        self.field.setReadOnly(True)  # selectable, not editable
        self.field.setAccessibleName("Folder path")
        self.field.setMinimumWidth(min(900, self.field.fontMetrics().horizontalAdvance(path) + 40))
        self.copy_button = QPushButton("Copy Path")
        self.copy_button.setObjectName("folder-copy-path")
        self.copy_button.clicked.connect(self.copy_path)
        self.copied = QLabel("")
        self.copied.setObjectName("folder-copied")
        row = QHBoxLayout()
        row.addWidget(self.field, 1)
        row.addWidget(self.copy_button)
        close = QDialogButtonBox(QDialogButtonBox.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        layout.addLayout(row)
        layout.addWidget(self.copied)
        layout.addWidget(close)
        self.setAttribute(Qt.WA_DeleteOnClose)

    def copy_path(self) -> None:
        QGuiApplication.clipboard().setText(self.path)
        self.copied.setText("Copied to the clipboard.")
        self.field.selectAll()


def open_folder(path: str | Path, parent: QWidget | None = None) -> FolderPathDialog | None:
    """Ask the desktop to show the folder; when it cannot, show the path (a non-modal dialog,
    returned). None: the desktop took it."""
    path = str(path)
    if QDesktopServices.openUrl(QUrl.fromLocalFile(path)):
        return None
    dialog = FolderPathDialog(path, parent)
    dialog.open()  # not exec(): nothing waits on it
    dialog.field.selectAll()
    return dialog
