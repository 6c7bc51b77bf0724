"""The inspector's section for a text data node: what the file holds (texts, classes) and a few
texts of each class, or the first texts when unlabelled, each on one elided line with the whole
text in its tooltip; the engine's message when it refuses the file, with Read again; and, when
the file's labels are not the student's classes, the one-click fix.

Texts and labels come from the user's file: they are shown as plain text, never as rich text.
"""

from __future__ import annotations

import html
from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from gui import theme
from gui.document.model import Node
from gui.document.text_info import preview_of, preview_words, unknown_labels
from gui.panels.folder_view import plain

TOOLTIP_CHARS = 1200  # of a text in its tooltip


class ElidedLabel(QLabel):
    """One line of plain text, elided at the right to the label's width; the whole text in the
    tooltip."""

    def __init__(self, text: str, parent=None):
        super().__init__(parent)
        self.full = text
        self.line = " ".join(text.split())
        self.setTextFormat(Qt.PlainText)
        self.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
        self.setMinimumWidth(40)
        shown = text if len(text) <= TOOLTIP_CHARS else text[:TOOLTIP_CHARS - 1] + "…"
        self.setToolTip(f"<p style='white-space:pre-wrap'>{html.escape(shown)}</p>")  # escaped: plain
        self._elide()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        width = max(20, self.width() - 2)
        self.setText(self.fontMetrics().elidedText(self.line, Qt.ElideRight, width))


class TextSection(QWidget):
    """Built for one node's state; the inspector rebuilds it when the state changes."""

    def __init__(self, node: Node, student_classes: list[str] | None, reread: Callable[[], None],
                 use_classes: Callable[[], None], parent=None):
        super().__init__(parent)
        self.setObjectName("text-section")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 8, 0, 0)
        layout.setSpacing(2)
        info = node.info
        layout.addWidget(QLabel("<b>Texts</b>"))
        self.status = plain(preview_words(info), "text-preview-status")
        layout.addWidget(self.status)
        if info.get("error"):
            layout.addWidget(plain(info["error"], "text-preview-error", f"color: {theme.current().error};"))
            button = QPushButton("Read again")
            button.setObjectName("text-preview-again")
            button.setToolTip("Read the file again (after fixing it)")
            button.clicked.connect(reread)
            layout.addWidget(button, 0, Qt.AlignLeft)
            return
        result = preview_of(node)
        if result is None:
            return
        if result.get("blank"):
            layout.addWidget(plain(f"{result['blank']:,} blank texts left out", "text-preview-blank",
                                   f"color: {theme.current().muted};"))
        self._classes_fix(layout, node, result, student_classes, use_classes)
        for g, group in enumerate(result.get("groups") or []):
            label = group.get("class")
            count = group.get("count", 0)
            caption = f"{label} · {count:,}" if label is not None else "the first texts"
            head = plain(caption, f"text-class-{g}", f"color: {theme.current().text}; font-weight: bold;")
            head.setContentsMargins(0, 4, 0, 0)
            layout.addWidget(head)
            for i, text in enumerate(group.get("texts") or []):
                line = ElidedLabel(str(text))
                line.setObjectName(f"text-{g}-{i}")
                line.setStyleSheet(f"color: {theme.current().text}; padding-left: 8px;")
                layout.addWidget(line)
        total, shown = result.get("classes_total", 0), len(result.get("groups") or [])
        if result.get("labelled") and total > shown:
            layout.addWidget(plain(f"texts of the first {shown} of {total} classes", "text-more",
                                   f"color: {theme.current().muted};"))

    def _classes_fix(self, layout, node: Node, result: dict, student_classes, use_classes) -> None:
        if student_classes is None:
            return
        unknown = unknown_labels(node, student_classes)
        if not unknown:
            return
        n = result.get("classes_total", 0)
        warning = plain(f"⚠ {len(unknown)} of the file's {n} labels {'are' if len(unknown) > 1 else 'is'} "
                        f"not a class of the student: {', '.join(unknown[:8])}{' …' if len(unknown) > 8 else ''}. "
                        "The engine refuses such a file.", "text-classes-warning",
                        theme.note_style())
        layout.addWidget(warning)
        button = QPushButton(f"Use these {n} classes")
        button.setObjectName("text-use-classes")
        button.setToolTip("The student's classes become the file's labels, in order of first appearance; "
                          "undo reverts it")
        button.clicked.connect(use_classes)
        layout.addWidget(button, 0, Qt.AlignLeft)
