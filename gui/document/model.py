"""The document: nodes with properties and positions, links between typed ports.

Only undo commands call the mutating methods; views listen to the signals.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal

from gui.document.kinds import KINDS


def get_in(props: dict, path: tuple[str, ...]):
    """The value at a path of nested keys, or None where any part is missing."""
    for key in path:
        if not isinstance(props, dict):
            return None
        props = props.get(key)
    return props


def set_in(props: dict, path: tuple[str, ...], value) -> None:
    """Set the value at a path of nested keys; None removes it (an unset optional field)."""
    for key in path[:-1]:
        props = props.setdefault(key, {})
    if value is None:
        props.pop(path[-1], None)
    else:
        props[path[-1]] = value


@dataclass
class Node:
    id: str
    kind: str
    props: dict
    pos: tuple[float, float] = (0.0, 0.0)
    info: dict = field(default_factory=dict)  # read from files (e.g. inspect); not undoable

    @property
    def title(self) -> str:
        name = self.props.get("name") if self.kind == "teacher" else None
        return name or KINDS[self.kind].title

    def clone(self) -> Node:
        return Node(self.id, self.kind, copy.deepcopy(self.props), self.pos, dict(self.info))


@dataclass(frozen=True)
class Link:
    src: str  # node id (an output port)
    src_port: str
    dst: str  # node id (an input port)
    dst_port: str


class Document(QObject):
    nodeAdded = Signal(str)
    nodeRemoved = Signal(str)
    nodeChanged = Signal(str)  # props or info
    nodeMoved = Signal(str)
    linkAdded = Signal(object)
    linkRemoved = Signal(object)
    nameChanged = Signal(str)
    changed = Signal()  # after any of the above

    def __init__(self, name: str = "untitled pipeline"):
        super().__init__()
        self.name = name
        self.nodes: dict[str, Node] = {}
        self.links: list[Link] = []
        self._held = 0  # inside batch(): `changed` waits for its end
        self._missed = False
        self._ids = itertools.count(1)

    def _changed(self) -> None:
        if self._held:
            self._missed = True
        else:
            self.changed.emit()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Many edits (opening a project), one `changed` at the end: what listens to it (node
        states, the summary, the inspector) runs once, not once per node (quadratic)."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
            if not self._held and self._missed:
                self._missed = False
                self.changed.emit()

    # queries
    def new_id(self, kind: str) -> str:
        while True:
            candidate = f"{kind}-{next(self._ids)}"
            if candidate not in self.nodes:
                return candidate

    def of_kind(self, kind: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.kind == kind]

    def student(self) -> Node | None:
        students = self.of_kind("student")
        return students[0] if students else None

    def links_of(self, node_id: str) -> list[Link]:
        return [link for link in self.links if node_id in (link.src, link.dst)]

    def inputs_of(self, node_id: str, port: str | None = None) -> list[Node]:
        """Nodes linked into `node_id` (in link order), optionally into one port."""
        return [self.nodes[link.src] for link in self.links
                if link.dst == node_id and (port is None or link.dst_port == port)]

    def outputs_of(self, node_id: str) -> list[Node]:
        return [self.nodes[link.dst] for link in self.links if link.src == node_id]

    # mutations: for undo commands only
    def add_node(self, node: Node, index: int | None = None) -> None:
        """Add a node; `index` puts it back where it was (undo keeps the order, which decides
        e.g. which of two students is the pipeline's)."""
        if index is None or index >= len(self.nodes):
            self.nodes[node.id] = node
        else:
            items = list(self.nodes.items())
            items.insert(index, (node.id, node))
            self.nodes = dict(items)
        self.nodeAdded.emit(node.id)
        self._changed()

    def remove_node(self, node_id: str) -> int:
        assert not self.links_of(node_id), "remove the node's links first"
        index = list(self.nodes).index(node_id)
        del self.nodes[node_id]
        self.nodeRemoved.emit(node_id)
        self._changed()
        return index

    def set_props(self, node_id: str, props: dict) -> None:
        self.nodes[node_id].props = copy.deepcopy(props)
        self.nodeChanged.emit(node_id)
        self._changed()

    def set_info(self, node_id: str, info: dict) -> None:
        if node_id in self.nodes:
            self.nodes[node_id].info = dict(info)
            self.nodeChanged.emit(node_id)
            self._changed()

    def move_node(self, node_id: str, pos: tuple[float, float]) -> None:
        self.nodes[node_id].pos = (float(pos[0]), float(pos[1]))
        self.nodeMoved.emit(node_id)
        self._changed()

    def add_link(self, link: Link, index: int | None = None) -> None:
        self.links.insert(len(self.links) if index is None else index, link)
        self.linkAdded.emit(link)
        self._changed()

    def remove_link(self, link: Link) -> int:
        index = self.links.index(link)
        self.links.pop(index)
        self.linkRemoved.emit(link)
        self._changed()
        return index

    def set_name(self, name: str) -> None:
        self.name = name
        self.nameChanged.emit(name)
        self._changed()

    def clear(self) -> None:
        for link in list(self.links):
            self.remove_link(link)
        for node_id in list(self.nodes):
            self.remove_node(node_id)
