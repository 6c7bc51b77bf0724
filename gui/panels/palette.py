"""The palette: node kinds to drag onto the canvas, and the library of imported model files."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QByteArray, QMimeData, QSettings, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gui import theme
from gui.document.kinds import KINDS
from gui.drag_formats import KIND_MIME, MODEL_MIME, MODEL_SUFFIXES
from gui.engine_client.inspect import ModelInspector

LIBRARY_KEY = "library/models"


def kind_icon(color: str) -> QIcon:
    pix = QPixmap(16, 16)
    pix.fill(Qt.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.Antialiasing)
    p.setBrush(QColor(color))
    p.setPen(Qt.NoPen)
    p.drawRoundedRect(1, 1, 14, 14, 4, 4)
    p.end()
    return QIcon(pix)


class KindList(QListWidget):
    """Node kinds; dragging one carries its kind name."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("palette-kinds")
        self.setAccessibleName("Node kinds")
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragOnly)
        for kind in KINDS.values():
            item = QListWidgetItem(kind_icon(kind.color), kind.title)
            item.setData(Qt.UserRole, kind.name)
            item.setToolTip(f"{kind.description}. Drag onto the canvas.")
            self.addItem(item)
        # every kind in view, no scrolling: the list is as tall as its rows
        self.setFixedHeight(self.sizeHintForRow(0) * self.count() + 2 * self.frameWidth() + 4)

    def mimeData(self, items):
        mime = QMimeData()
        mime.setData(KIND_MIME, QByteArray(items[0].data(Qt.UserRole).encode()))
        return mime

    def mimeTypes(self):
        return [KIND_MIME]


class ModelLibrary(QListWidget):
    """Imported model files, kept between sessions; drop files here or drag entries out."""

    message = Signal(str)

    def __init__(self, inspector: ModelInspector, settings: QSettings, parent=None):
        super().__init__(parent)
        self.inspector, self.settings = inspector, settings
        self.setObjectName("model-library")
        self.setAccessibleName("Model library")
        self.setDragEnabled(True)
        self.setAcceptDrops(True)
        self.setDragDropMode(QAbstractItemView.DragDrop)
        self.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.entries: list[dict] = []
        try:
            stored = json.loads(settings.value(LIBRARY_KEY, "[]") or "[]")
        except (json.JSONDecodeError, TypeError):
            stored = []
        for entry in stored if isinstance(stored, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                self._show(entry)
        theme.follow(self, lambda w: w._recolor())

    def _recolor(self) -> None:
        """A missing file's entry in the theme's error colour (the others in the list's own)."""
        for i in range(self.count()):
            item = self.item(i)
            if item.toolTip().startswith("missing: "):
                item.setForeground(QColor(theme.current().error))

    def _show(self, entry: dict) -> None:
        self.entries.append(entry)
        info = entry.get("info", {})
        classes = info.get("classes") or []
        item = QListWidgetItem(Path(entry["path"]).name)
        item.setToolTip(f"{entry['path']}\n{info.get('format', '?')}, "
                        f"{info.get('parameters', 0):,} parameters"
                        + (f"\nclasses: {', '.join(classes)}" if classes else "")
                        + "\nDrag onto the canvas to add it as a teacher.")
        if not Path(entry["path"]).exists():
            item.setForeground(QColor(theme.current().error))
            item.setToolTip(f"missing: {entry['path']}")
        self.addItem(item)

    def _save(self) -> None:
        self.settings.setValue(LIBRARY_KEY, json.dumps(self.entries))

    def add_file(self, path: Path) -> None:
        path = path.resolve()
        if any(e["path"] == str(path) for e in self.entries):
            self.message.emit(f"{path.name} is already in the library")
            return
        self.message.emit(f"Reading {path.name}…")

        def done(info, error):
            if info is None:
                self.message.emit(f"Cannot use {path.name}: {error}")
                return
            self._show({"path": str(path), "info": info})
            self._save()
            self.message.emit(f"Added {path.name} to the library")

        self.inspector.inspect(path, done)

    def remove_selected(self) -> None:
        for row in sorted((self.row(i) for i in self.selectedItems()), reverse=True):
            self.takeItem(row)
            self.entries.pop(row)
        self._save()

    def mimeData(self, items):
        mime = QMimeData()
        mime.setData(MODEL_MIME, QByteArray(json.dumps(self.entries[self.row(items[0])]).encode()))
        return mime

    def mimeTypes(self):
        return [MODEL_MIME, "text/uri-list"]

    def dragEnterEvent(self, event):
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event):
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event):
        if not event.mimeData().hasUrls():
            event.ignore()
            return
        for url in event.mimeData().urls():
            path = Path(url.toLocalFile())
            if path.suffix.lower() in MODEL_SUFFIXES:
                self.add_file(path)
            else:
                self.message.emit(f"{path.name}: the library holds model files "
                                  "(.onnx .safetensors .pt .pth)")
        event.acceptProposedAction()


class Palette(QWidget):
    message = Signal(str)

    def __init__(self, inspector: ModelInspector, settings: QSettings, parent=None):
        super().__init__(parent)
        self.setObjectName("palette")
        self.setAccessibleName("Palette")
        self.kinds = KindList()
        self.library = ModelLibrary(inspector, settings)
        self.library.message.connect(self.message)
        add, remove = QPushButton("Add model…"), QPushButton("Remove")
        add.setObjectName("library-add")
        remove.setObjectName("library-remove")
        add.clicked.connect(self._choose_files)
        remove.clicked.connect(self.library.remove_selected)
        buttons = QHBoxLayout()
        buttons.addWidget(add)
        buttons.addWidget(remove)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<b>Nodes</b> — drag onto the canvas"))
        layout.addWidget(self.kinds, 1)
        layout.addWidget(QLabel("<b>Model library</b> — drop model files here"))
        layout.addWidget(self.library, 2)
        layout.addLayout(buttons)

    def _choose_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add models to the library", "",
                                                "Models (*.onnx *.safetensors *.pt *.pth)")
        for f in files:
            self.library.add_file(Path(f))
