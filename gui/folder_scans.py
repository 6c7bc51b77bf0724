"""A folder data node's scan follows its folder: when its path is set (a drop, an edit, undo,
redo, opening a project) the engine scans the folder in a child process (gui/engine_client/
scan.py) and the node's info says how far it got, then what the folder holds
(gui/document/folder_info.py). Nothing here blocks: progress and results arrive as signals.
Cancel kills the scan and leaves the node as it was, editable and runnable; Scan again starts it
anew.
"""

from __future__ import annotations

import copy

from PySide6.QtCore import QObject, Signal

from gui.document.commands import SetProps
from gui.document.folder_info import folder_classes, is_folder_node
from gui.document.model import Document
from gui.engine_client.scan import FolderScanner


class FolderScans(QObject):
    message = Signal(str)

    def __init__(self, doc: Document, undo_stack, parent=None):
        super().__init__(parent)
        self.doc, self.undo_stack = doc, undo_stack
        self.scanner = FolderScanner(self)
        self.scanner.progress.connect(self._progress)
        self.scanner.done.connect(self._done)
        self.scanner.failed.connect(self._failed)
        self.scanner.cancelled.connect(self._cancelled)
        doc.nodeAdded.connect(self._follow)
        doc.nodeChanged.connect(self._follow)
        doc.nodeRemoved.connect(lambda node_id: self.scanner.cancel(node_id, quiet=True))

    def _follow(self, node_id: str) -> None:
        node = self.doc.nodes.get(node_id)
        if node is None or node.kind != "data":
            return
        path = node.props.get("path") if is_folder_node(node) else None
        if not path:
            self.scanner.cancel(node_id, quiet=True)
            if "folder" in node.info:
                self.doc.set_info(node_id, {})
            return
        if node.info.get("folder") != path and self.scanner.scanning(node_id) != path:
            self.rescan(node_id)

    def rescan(self, node_id: str) -> None:
        node = self.doc.nodes.get(node_id)
        if node is None or not is_folder_node(node) or not node.props.get("path"):
            return
        path = node.props["path"]
        self.scanner.scan(node_id, path)
        self.doc.set_info(node_id, {"folder": path, "scanning": 0, "stage": "listing"})

    def cancel(self, node_id: str) -> None:
        self.scanner.cancel(node_id)

    def _current(self, node_id: str, folder: str) -> bool:
        node = self.doc.nodes.get(node_id)
        return node is not None and is_folder_node(node) and node.props.get("path") == folder

    def _progress(self, node_id: str, folder: str, stage: str, count: int) -> None:
        if self._current(node_id, folder):
            self.doc.set_info(node_id, {"folder": folder, "scanning": count, "stage": stage})

    def _done(self, node_id: str, folder: str, result: dict) -> None:
        if self._current(node_id, folder):
            self.doc.set_info(node_id, {"folder": folder, "scan": result})

    def _failed(self, node_id: str, folder: str, message: str) -> None:
        if self._current(node_id, folder):
            self.doc.set_info(node_id, {"folder": folder, "error": message})
            self.message.emit(f"Cannot scan {folder}: {message}")

    def _cancelled(self, node_id: str, folder: str) -> None:
        if self._current(node_id, folder):
            self.doc.set_info(node_id, {"folder": folder, "cancelled": True})
            self.message.emit("Folder scan cancelled")

    def use_classes(self, node_id: str) -> bool:
        """The student's classes become the folder's class subfolders: one undoable edit."""
        node, student = self.doc.nodes.get(node_id), self.doc.student()
        classes = folder_classes(node) if node is not None else []
        if student is None or not classes:
            return False
        props = copy.deepcopy(student.props)
        props["classes"] = classes
        if props != student.props:
            self.undo_stack.push(SetProps(self.doc, student.id, props, "classes from the folder"))
        return True
