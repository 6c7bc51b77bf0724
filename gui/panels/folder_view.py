"""The inspector's section for an image-folder data node: how the scan goes (with Cancel), what
the folder holds (images per class, files left alone), a grid of thumbnails per class, and,
when the folder's classes are not the student's, the one-click fix.

Class and file names come from the user's folder: they are shown as plain text, never as rich
text. Thumbnails are small PNGs the engine made (engine/scan_folder.py); one that does not
decode, or is larger than a thumbnail can be, is shown as unreadable.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from gui import theme
from gui.document.folder_info import folder_classes, scan_words, unknown_classes
from gui.document.model import Node

THUMB_PX = 48
MAX_PNG_BYTES = 64 << 10  # a 48×48 thumbnail is a few KB
COLUMNS = 4


def plain(text: str, name: str = "", style: str = "") -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.PlainText)
    label.setWordWrap(True)
    if name:
        label.setObjectName(name)
    if style:
        label.setStyleSheet(style)
    return label


def thumbnail(png_b64: str) -> QPixmap | None:
    """The engine's PNG as a pixmap, or None when it is not one a thumbnail can be."""
    if not isinstance(png_b64, str) or len(png_b64) > MAX_PNG_BYTES * 4 // 3 + 4:
        return None
    try:
        data = base64.b64decode(png_b64, validate=True)
    except (binascii.Error, ValueError):
        return None
    pixmap = QPixmap()
    if not data.startswith(b"\x89PNG") or not pixmap.loadFromData(data, "PNG"):
        return None
    if pixmap.width() > 4 * THUMB_PX or pixmap.height() > 4 * THUMB_PX:
        return None
    return pixmap


class FolderSection(QWidget):
    """Built for one node's state; the inspector rebuilds it when the state changes (not on
    every progress count: `show_progress` updates the line in place)."""

    def __init__(self, node: Node, student_classes: list[str] | None, cancel: Callable[[], None],
                 rescan: Callable[[], None], use_classes: Callable[[], None], parent=None):
        super().__init__(parent)
        self.setObjectName("folder-section")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 8, 0, 0)
        info = node.info
        layout.addWidget(QLabel("<b>Folder</b>"))
        self.status = plain(scan_words(info), "folder-scan-status")
        layout.addWidget(self.status)
        if "scanning" in info:
            button = QPushButton("Cancel scan")
            button.setObjectName("folder-scan-cancel")
            button.setToolTip("Stop reading the folder; the node stays as it is (Scan again later)")
            button.clicked.connect(cancel)
            layout.addWidget(button, 0, Qt.AlignLeft)
            return
        if info.get("error"):
            layout.addWidget(plain(info["error"], "folder-scan-error", f"color: {theme.current().error};"))
        if info.get("error") or info.get("cancelled"):
            button = QPushButton("Scan again")
            button.setObjectName("folder-scan-again")
            button.clicked.connect(rescan)
            layout.addWidget(button, 0, Qt.AlignLeft)
            return
        scan = info.get("scan")
        if not isinstance(scan, dict):
            return
        self._classes_fix(layout, node, student_classes, use_classes)
        ignored = scan.get("ignored") or {}
        if ignored:
            layout.addWidget(plain("left alone (not images): " + ", ".join(
                f"{n:,} {suffix or 'without suffix'}" for suffix, n in list(ignored.items())[:8]),
                "folder-ignored", f"color: {theme.current().muted};"))
        self._grid(layout, scan)

    def _classes_fix(self, layout, node: Node, student_classes, use_classes) -> None:
        if student_classes is None:
            return
        unknown = unknown_classes(node, student_classes)
        if not unknown:
            return
        n = len(folder_classes(node))
        warning = plain(f"⚠ {len(unknown)} of the folder's {n} class subfolders "
                        f"{'are' if len(unknown) > 1 else 'is'} not a class of the student: "
                        f"{', '.join(unknown[:8])}{' …' if len(unknown) > 8 else ''}. The engine refuses "
                        "such a folder.", "folder-classes-warning",
                        theme.note_style())
        layout.addWidget(warning)
        button = QPushButton(f"Use these {n} classes")
        button.setObjectName("folder-use-classes")
        button.setToolTip("The student's classes become the folder's subfolders, in order; undo reverts it")
        button.clicked.connect(use_classes)
        layout.addWidget(button, 0, Qt.AlignLeft)

    def _grid(self, layout, scan: dict) -> None:
        grid_host = QWidget()
        grid_host.setObjectName("folder-thumbs")
        grid = QVBoxLayout(grid_host)
        grid.setContentsMargins(0, 4, 0, 0)
        grid.setSpacing(2)
        labelled = scan.get("kind") == "labelled"
        for g, group in enumerate(scan.get("groups") or []):
            name = group.get("class") or ""
            count = group.get("count", 0)
            caption = f"{name} · {count:,}" if labelled else f"unlabelled · {count:,}"
            grid.addWidget(plain(caption, f"folder-class-{g}", f"color: {theme.current().text}; font-weight: bold;"))
            row = QWidget()
            cells = QGridLayout(row)
            cells.setContentsMargins(0, 0, 0, 4)
            cells.setSpacing(3)
            items = [("ok", t) for t in group.get("thumbs") or []] + \
                [("bad", b) for b in group.get("unreadable") or []]
            for i, (what, item) in enumerate(items):
                cell = QLabel()
                cell.setFixedSize(THUMB_PX + 2, THUMB_PX + 2)
                cell.setAlignment(Qt.AlignCenter)
                pixmap = thumbnail(item.get("png")) if what == "ok" else None
                if pixmap is not None:
                    cell.setPixmap(pixmap)
                    cell.setObjectName(f"thumb-{g}-{i}")
                    cell.setToolTip(str(item.get("path", "")))
                else:
                    cell.setText("✕")
                    cell.setObjectName(f"thumb-bad-{g}-{i}")
                    c = theme.current()
                    cell.setStyleSheet(f"color: {c.error}; border: 1px solid {c.bad_border};")
                    reason = item.get("reason") or "not a PNG thumbnail"
                    cell.setToolTip(f"{item.get('path', '')}: {reason}")
                cells.addWidget(cell, i // COLUMNS, i % COLUMNS)
            cells.setColumnStretch(COLUMNS, 1)
            grid.addWidget(row)
        total, shown = scan.get("classes_total", 0), len(scan.get("groups") or [])
        if labelled and total > shown:
            grid.addWidget(plain(f"thumbnails of the first {shown} of {total} classes", "folder-more",
                                 f"color: {theme.current().muted};"))
        layout.addWidget(grid_host)

