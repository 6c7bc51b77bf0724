"""Every edit is one small undo command that changes only the document."""

from __future__ import annotations

import copy

from PySide6.QtGui import QUndoCommand

from gui.document.model import Document, Link, Node


class AddNode(QUndoCommand):
    def __init__(self, doc: Document, node: Node, links: list[Link] = ()):
        super().__init__(f"Add {node.title}")
        self.doc, self.node, self.new_links = doc, node.clone(), list(links)

    def redo(self):
        self.doc.add_node(self.node.clone())
        for link in self.new_links:
            self.doc.add_link(link)

    def undo(self):
        for link in reversed(self.new_links):
            self.doc.remove_link(link)
        self.doc.remove_node(self.node.id)


class RemoveItems(QUndoCommand):
    """Remove nodes (with every link that touches them) and links, as one step."""

    def __init__(self, doc: Document, node_ids: list[str], links: list[Link] = ()):
        names = [doc.nodes[i].title for i in node_ids]
        super().__init__(f"Delete {', '.join(names)}" if names else "Delete link")
        self.doc = doc
        self.nodes = [doc.nodes[i].clone() for i in node_ids]
        touched = {link for i in node_ids for link in doc.links_of(i)} | set(links)
        self.links = [link for link in doc.links if link in touched]  # document order
        self.indices: list[int] = []
        self.node_indices: list[int] = []

    def redo(self):
        self.indices = [self.doc.remove_link(link) for link in reversed(self.links)][::-1]
        self.node_indices = [self.doc.remove_node(node.id) for node in reversed(self.nodes)][::-1]

    def undo(self):
        for node, index in zip(self.nodes, self.node_indices, strict=True):
            self.doc.add_node(node.clone(), index)
        for link, index in zip(self.links, self.indices, strict=True):
            self.doc.add_link(link, index)


class MoveNodes(QUndoCommand):
    def __init__(self, doc: Document, moves: dict[str, tuple[tuple[float, float], tuple[float, float]]]):
        super().__init__("Move" if len(moves) > 1 else f"Move {doc.nodes[next(iter(moves))].title}")
        self.doc, self.moves = doc, moves  # id -> (old, new)

    def redo(self):
        for node_id, (_, new) in self.moves.items():
            self.doc.move_node(node_id, new)

    def undo(self):
        for node_id, (old, _) in self.moves.items():
            self.doc.move_node(node_id, old)


class AddLink(QUndoCommand):
    def __init__(self, doc: Document, link: Link):
        super().__init__(f"Connect {doc.nodes[link.src].title} to {doc.nodes[link.dst].title}")
        self.doc, self.link = doc, link

    def redo(self):
        self.doc.add_link(self.link)

    def undo(self):
        self.doc.remove_link(self.link)


class SetProps(QUndoCommand):
    """Change a node's properties. Consecutive edits of the same field merge into one step."""

    ID = 1001

    def __init__(self, doc: Document, node_id: str, new_props: dict, field: str):
        super().__init__(f"Change {field} of {doc.nodes[node_id].title}")
        self.doc, self.node_id, self.field = doc, node_id, field
        self.old = copy.deepcopy(doc.nodes[node_id].props)
        self.new = copy.deepcopy(new_props)

    def id(self):
        return self.ID

    def mergeWith(self, other):
        if other.node_id != self.node_id or other.field != self.field:
            return False
        self.new = other.new
        return True

    def redo(self):
        self.doc.set_props(self.node_id, self.new)

    def undo(self):
        self.doc.set_props(self.node_id, self.old)


class SetName(QUndoCommand):
    def __init__(self, doc: Document, name: str):
        super().__init__("Rename pipeline")
        self.doc, self.old, self.new = doc, doc.name, name

    def redo(self):
        self.doc.set_name(self.new)

    def undo(self):
        self.doc.set_name(self.old)
