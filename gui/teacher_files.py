"""A teacher's file info follows its file: when a teacher's model file is chosen (or a project
opens) the engine reads it (`inspect`), and the node shows what it holds.

When the user chooses another file for a teacher, what the new file proposes (its classes,
input contract and output kind) fills the settings the user has not set, in the same undo step
as the choice of the file: undo puts back the old file and the old settings together. Undo,
redo and opening a project read the file only; they never change the teacher's settings.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from gui.document.commands import SetProps
from gui.document.model import Document
from gui.document.teacher_proposal import file_classes, with_proposal
from gui.engine_client.inspect import ModelInspector


def text_settings(node) -> list:
    """[input.tokenizer, input.roles]: what a text teacher's reading depends on besides its file."""
    given = node.props.get("input") or {}
    return [given.get("tokenizer") or None, given.get("roles") or None]


class TeacherFiles(QObject):
    message = Signal(str)  # what a file's reading filled in, for the status bar

    def __init__(self, doc: Document, undo_stack, inspector: ModelInspector, parent=None):
        super().__init__(parent)
        self.doc, self.undo_stack, self.inspector = doc, undo_stack, inspector
        self._reading: set[tuple[str, str]] = set()
        self._put_away: dict[str, dict] = {}  # node id -> its file's info while an undo left it without a file
        doc.nodeChanged.connect(self._path_changed)
        doc.nodeAdded.connect(self._path_changed)  # a teacher added with a file not read yet

    def read(self, node_id: str, path: str, previous: dict | None = None) -> None:
        """Ask the engine what the file holds; if the user just chose it, its proposal fills the
        teacher's unset settings (`previous`: the old file's info, to tell what it proposed)."""
        node = self.doc.nodes.get(node_id)
        asked = text_settings(node) if node is not None else [None, None]
        key = (node_id, path, json.dumps(asked))
        if key in self._reading:
            return
        self._reading.add(key)

        def done(info, error):
            self._reading.discard(key)
            node = self.doc.nodes.get(node_id)
            if node is None or node.props.get("path") != path:
                return  # another project, or the file changed meanwhile: not this node's file
            if text_settings(node) != asked:
                return  # its tokenizer or roles changed meanwhile: a newer reading follows
            read = info if info is not None else {"error": error, "file": path}
            read = {**read, "asked": asked}
            if "check" in node.info:  # a check that came back first is about this same file
                read = {**read, "check": node.info["check"]}
            self.doc.set_info(node_id, read)
            if info is not None:
                had = list(node.props.get("classes") or [])
                self._fill_in(node_id, path, info, previous)
                if not self.doc.nodes[node_id].props.get("classes"):
                    self._fill_classes(node_id, path, info)
                now = self.doc.nodes[node_id].props.get("classes") or []
                if not had and now:
                    self._say_classes(node_id, path, info, now)

        self.inspector.inspect(path, done, asked[0], asked[1])

    def _fill_in(self, node_id: str, path: str, info: dict, previous: dict | None) -> None:
        """The file's proposal joins the user's edit that chose the file while that edit is the
        last one, else it is an undo step of its own. Only the first time: not after an undo (a
        new step would throw away what the user can redo), a redo, or opening a project."""
        chosen = self._choice_of(node_id, path)
        if chosen is None:
            return
        chosen.file_read = path
        props = self.doc.nodes[node_id].props
        new = with_proposal(props, info, previous)
        if new == props:
            return
        if self.undo_stack.command(self.undo_stack.index() - 1) is chosen:
            chosen.new = new
            self.doc.set_props(node_id, new)
        else:
            self.undo_stack.push(SetProps(self.doc, node_id, new, "settings from the model file"))

    def _fill_classes(self, node_id: str, path: str, info: dict) -> None:
        """A teacher without classes whose file was read outside a choice of the file (a model
        dragged from the palette, a project saved without them): the file's classes, or one
        numbered class per output, as an undo step of its own; not while there is something to
        redo (a new step would throw it away)."""
        classes = file_classes(info)
        if not classes or self.undo_stack.index() != self.undo_stack.count():
            return
        new = copy.deepcopy(self.doc.nodes[node_id].props)
        new["classes"] = classes
        new["mapping"] = {k: v for k, v in (new.get("mapping") or {}).items() if k in classes}
        self.undo_stack.push(SetProps(self.doc, node_id, new, "classes from the model file"))

    def _say_classes(self, node_id: str, path: str, info: dict, classes: list[str]) -> None:
        name = self.doc.nodes[node_id].props.get("name") or Path(path).name
        named = isinstance(info.get("classes"), list) and bool(info["classes"])
        how = "as its file names them" if named else (
            f"numbered 0–{len(classes) - 1}, one per output; rename them in the inspector if they "
            "mean something else")
        self.message.emit(f"Teacher {name}: {len(classes)} classes {how}")

    def _choice_of(self, node_id: str, path: str) -> SetProps | None:
        """The user's edit that chose this file for the teacher, if it is the last edit of its
        path, there is nothing to redo, and its file was not read before (marked when read)."""
        stack = self.undo_stack
        if stack.index() != stack.count():
            return None
        for i in range(stack.index() - 1, -1, -1):
            cmd = stack.command(i)
            if isinstance(cmd, SetProps) and cmd.node_id == node_id and \
                    cmd.new.get("path") != cmd.old.get("path"):
                fresh = cmd.new.get("path") == path and getattr(cmd, "file_read", None) != path
                return cmd if fresh else None
        return None

    def _path_changed(self, node_id: str) -> None:
        """A teacher's file info follows its file: edits, undo and redo alike."""
        node = self.doc.nodes.get(node_id)
        if node is None or node.kind != "teacher":
            return
        path = node.props.get("path")
        stale = node.info.get("file") != path or (node.info and node.info.get("asked", [None, None])
                                                  != text_settings(node))
        if not path:  # undone back to no file (or emptied): no file's details are left on show
            if node.info:
                self._put_away[node_id] = node.info  # a redo brings the file back, and them with it
                self.doc.set_info(node_id, {})
            return
        kept = self._put_away.pop(node_id, None)
        if stale and not node.info and kept and kept.get("file") == path \
                and kept.get("asked", [None, None]) == text_settings(node):
            self.doc.set_info(node_id, kept)
            return
        if stale and (node_id, path, json.dumps(text_settings(node))) not in self._reading:
            previous = node.info
            self.read(node_id, path, previous)  # first: clearing the info below calls this again
            if previous:
                self.doc.set_info(node_id, {})
