"""What can be dropped on the canvas: a node kind from the palette, a model from the library,
or files from the desktop's file manager (model files become teachers, data files data sources,
folders image-folder data sources, a model folder (model.onnx and its tokenizer.json) a teacher;
a folder dropped on an image-folder data node becomes its folder).
"""

from __future__ import annotations

import copy
import json
import os
from fnmatch import fnmatch
from pathlib import Path

from PySide6.QtCore import QMimeData, QObject, QPointF, Signal

from gui.document.commands import AddNode, SetProps
from gui.document.folder_info import is_folder_node
from gui.document.kinds import KINDS, default_props
from gui.document.model import Document, Node
from gui.document.schema import DATA_FORMATS, file_fields, swap_member
from gui.document.teacher_proposal import with_proposal
from gui.drag_formats import KIND_MIME, MODEL_MIME, MODEL_SUFFIXES
from gui.engine_client.inspect import ModelInspector


def unique_teacher_name(doc: Document, base: str) -> str:
    taken = {n.props.get("name") for n in doc.of_kind("teacher")}
    name, i = base, 2
    while name in taken:
        name, i = f"{base} {i}", i + 1
    return name


def teacher_node(doc: Document, path: str, info: dict, pos: tuple[float, float]) -> Node:
    """A teacher for a model file, filled in from what the engine read off the file: its classes
    (or one numbered class per output), and the input contract and output kind it proposes."""
    props = {**default_props("teacher"), "name": unique_teacher_name(doc, Path(path).stem),
             "path": str(Path(path).resolve())}
    if info.get("format") in ("safetensors", "pytorch"):
        props["format"] = info["format"]
    return Node(doc.new_id("teacher"), "teacher", with_proposal(props, info), pos, info=info)


def data_format(path: Path) -> str | None:
    """The data format whose file patterns (the spec's `file_patterns`) the file's name fits."""
    name = path.name.lower()
    return next((fmt for fmt, cls in DATA_FORMATS.items()
                 if any(fnmatch(name, pattern) for pattern in cls.file_patterns)), None)


def data_node(doc: Document, path: Path, pos: tuple[float, float]) -> Node:
    """A data source of the file's format, the file in its first required file field."""
    fmt = data_format(path)
    props = default_props("data")
    props = swap_member(DATA_FORMATS[fmt], props, DATA_FORMATS.get(props.get("format")))
    props[file_fields(DATA_FORMATS[fmt], required=True)[0]] = str(path.resolve())
    return Node(doc.new_id("data"), "data", props, pos)


def folder_node(doc: Document, path: Path, pos: tuple[float, float]) -> Node:
    """An image-folder data source for a folder (its scan starts when it is added)."""
    props = default_props("data")
    props = swap_member(DATA_FORMATS["folder"], props, DATA_FORMATS.get(props.get("format")))
    props["path"] = os.path.abspath(path)
    return Node(doc.new_id("data"), "data", props, pos)


def model_in_folder(path: Path) -> Path | None:
    """The model of a model folder (a Hugging Face-style export: model.onnx, often with its
    tokenizer.json): its model.onnx, else its one .onnx file when a tokenizer.json lies beside
    it; None for another folder (images: a data folder). Looks at a few names, never lists a
    large folder."""
    model = path / "model.onnx"
    if model.is_file():
        return model
    if not (path / "tokenizer.json").is_file():
        return None
    found = []
    with os.scandir(path) as entries:
        for i, entry in enumerate(entries):
            if i >= 200:
                return None
            if entry.name.lower().endswith(".onnx") and entry.is_file():
                found.append(Path(entry.path))
    return found[0] if len(found) == 1 else None


MAX_REMEMBERED = 256  # folder-or-not answers kept for the drag under way


def data_patterns() -> str:
    return " ".join(p for cls in DATA_FORMATS.values() for p in cls.file_patterns)


class DropHandler(QObject):
    message = Signal(str)

    def __init__(self, doc: Document, undo_stack, inspector: ModelInspector, parent=None):
        super().__init__(parent)
        self.doc, self.undo_stack, self.inspector = doc, undo_stack, inspector
        self._folders: dict[str, bool] = {}  # a drag asks on every move: one stat per path

    def is_folder(self, path: Path) -> bool:
        key = str(path)
        if key not in self._folders:
            if len(self._folders) >= MAX_REMEMBERED:
                self._folders.clear()
            self._folders[key] = path.is_dir()
        return self._folders[key]

    def accepts(self, mime: QMimeData) -> bool:
        if mime.hasFormat(KIND_MIME) or mime.hasFormat(MODEL_MIME):
            return True
        return any(self._usable(Path(u.toLocalFile())) for u in mime.urls() if u.isLocalFile())

    def _usable(self, path: Path) -> bool:
        suffix = path.suffix.lower()
        return suffix in MODEL_SUFFIXES or data_format(path) is not None or self.is_folder(path)

    def drop(self, mime: QMimeData, at: QPointF, onto: str | None = None) -> None:
        """`onto`: the node under the drop, if any (a folder dropped on an image-folder data
        node becomes its folder)."""
        self._folders.clear()
        pos = (at.x() - 115, at.y() - 40)
        if mime.hasFormat(KIND_MIME):
            kind = bytes(mime.data(KIND_MIME)).decode()
            if kind in KINDS:
                self.add(Node(self.doc.new_id(kind), kind, default_props(kind), pos))
            return
        if mime.hasFormat(MODEL_MIME):
            entry = json.loads(bytes(mime.data(MODEL_MIME)).decode())
            self.add(teacher_node(self.doc, entry["path"], entry.get("info", {}), pos))
            return
        offset = 0
        for url in mime.urls():
            path = Path(url.toLocalFile())
            here = (pos[0] + offset, pos[1] + offset)
            if path.suffix.lower() in MODEL_SUFFIXES:
                self.add_model_file(path, here)
            elif data_format(path) is not None:
                self.add(data_node(self.doc, path, here))
            elif self.is_folder(path):
                self.add_folder(path, here, onto if offset == 0 else None)
            else:
                self.message.emit(f"{path.name}: not a model or data file Distill Studio reads "
                                  f"(models: .onnx .safetensors .pt .pth; data: {data_patterns()}, "
                                  "or a folder of images)")
            offset += 30

    def add_model_file(self, path: Path, pos: tuple[float, float]) -> None:
        """Ask the engine what the file holds; the teacher appears when it answers."""
        self.message.emit(f"Reading {path.name}…")

        def done(info: dict | None, error: str | None) -> None:
            if info is None:
                self.message.emit(f"Cannot use {path.name}: {error}")
                return
            self.add(teacher_node(self.doc, str(path), info, pos))
            self.message.emit(f"Added teacher {path.name}")

        self.inspector.inspect(path, done)

    def add_folder(self, path: Path, pos: tuple[float, float], onto: str | None) -> None:
        """A model folder (model.onnx, its tokenizer.json beside it) becomes a teacher; another
        folder an image-folder data node, or the folder of the image-folder node it is dropped on."""
        try:
            model = model_in_folder(path)
        except OSError:
            model = None
        if model is not None:
            self.add_model_file(model, pos)
            return
        target = self.doc.nodes.get(onto) if onto else None
        if target is not None and is_folder_node(target):
            props = copy.deepcopy(target.props)
            props["path"] = os.path.abspath(path)
            if props != target.props:
                self.undo_stack.push(SetProps(self.doc, target.id, props, "path"))
            self.message.emit(f"Images from {path.name}: scanning the folder…")
            return
        self.add(folder_node(self.doc, path, pos))
        self.message.emit(f"Added the image folder {path.name}: scanning it…")

    def add(self, node: Node) -> None:
        self.undo_stack.push(AddNode(self.doc, node))
