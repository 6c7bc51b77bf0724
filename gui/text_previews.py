"""A text data node's preview follows its file: when its path, text column or label column is
set (a drop, an edit, the format switched to text, undo, redo, opening a project) the engine
reads the file's first texts in a child process (`distill-engine preview-text`, through
gui/engine_client/inspect.py) and the node's info says what it holds
(gui/document/text_info.py). Nothing here blocks: the answer arrives later, and one for a file
or columns the node no longer has is dropped.
"""

from __future__ import annotations

import copy

from PySide6.QtCore import QObject, Signal

from gui.document.commands import SetProps
from gui.document.model import Document
from gui.document.text_info import preview_of, text_key
from gui.engine_client.inspect import ModelInspector


class TextPreviews(QObject):
    message = Signal(str)

    def __init__(self, doc: Document, undo_stack, inspector: ModelInspector, parent=None):
        super().__init__(parent)
        self.doc, self.undo_stack, self.inspector = doc, undo_stack, inspector
        doc.nodeAdded.connect(self._follow)
        doc.nodeChanged.connect(self._follow)

    def _follow(self, node_id: str) -> None:
        node = self.doc.nodes.get(node_id)
        if node is None or node.kind != "data":
            return
        key = text_key(node)
        if key is None:
            if "text_file" in node.info:
                self.doc.set_info(node_id, {})
            return
        if node.info.get("text_file") != key:
            self.read(node_id)

    def read(self, node_id: str) -> None:
        node = self.doc.nodes.get(node_id)
        key = text_key(node) if node is not None else None
        if key is None:
            return
        self.doc.set_info(node_id, {"text_file": key, "reading": True})

        def done(result: dict | None, error: str | None) -> None:
            now = self.doc.nodes.get(node_id)
            if now is None or text_key(now) != key or now.info.get("text_file") != key:
                return  # the node's file or columns changed meanwhile: a newer read follows
            if result is not None:
                self.doc.set_info(node_id, {"text_file": key, "preview": result})
            else:
                self.doc.set_info(node_id, {"text_file": key, "error": error})
                self.message.emit(f"Cannot read the texts of {key[0]}: {error}")

        self.inspector.preview_text(key[0], key[1], key[2], done)

    def use_classes(self, node_id: str) -> bool:
        """The student's classes become the file's labels (in order of first appearance): one
        undoable edit."""
        node, student = self.doc.nodes.get(node_id), self.doc.student()
        result = preview_of(node) if node is not None else None
        classes = [g["class"] for g in (result or {}).get("groups") or [] if g.get("class") is not None]
        if student is None or not classes or len(classes) < (result or {}).get("classes_total", 0):
            return False
        props = copy.deepcopy(student.props)
        props["classes"] = classes
        if props != student.props:
            self.undo_stack.push(SetProps(self.doc, student.id, props, "classes from the texts"))
        return True
