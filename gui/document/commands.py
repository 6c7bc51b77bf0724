"""Every edit is one small undo command that changes only the document."""

from __future__ import annotations

import copy

from PySide6.QtGui import QUndoCommand

from gui.document.model import Document, Link, Node
from gui.document.schema import settings_of


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
        super().__init__(change_words(doc.nodes[node_id], field, new_props))
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


# a setting's name in plain words where its own name does not read as words (keys: the last
# part of its dotted path, or the whole path)
WORDS = {
    "lr": "learning rate", "split.val": "validation fraction", "split.test": "test fraction",
    "teacher:path": "model file", "data:path": "data location", "init": "initial weights",
    "init.kind": "starting point", "init.teacher": "teacher to grow from", "init.path": "initial weights file",
    "init.pretraining": "self-supervised pretraining", "projection_dim": "projection width",
    "mapping": "class mapping", "hard_label_weight": "label weight", "cpu_threads": "CPU threads",
    "finetune_epochs": "fine-tune epochs", "finetune_lr": "fine-tune learning rate",
    "max_accuracy_drop": "maximum accuracy drop", "hints": "feature hints", "accumulate": "gradient accumulation",
    "compile": "torch.compile setting", "trusted": "trust in its code", "outputs": "output kind",
    "use_labels": "use of the labels", "partial_classes": "partial teachers", "combine": "way teachers combine",
    "safetensors": "safetensors weights option", "format": "format", "kind": "kind", "checkpoint_every_epochs":
    "checkpoint interval", "teacher_outputs": "teacher output cache", "augment": "augmentation",
}
# edits that are not one setting: what they do, said whole
PHRASES = {
    "suggested settings": "Apply the suggested settings to {title}",
    "settings from the model file": "Fill in the settings of {title} from its model file",
    "classes from the model file": "Take the classes of {title} from its model file",
    "classes from the folder": "Take the classes of {title} from the folder",
    "classes from the texts": "Take the classes of {title} from the texts",
}
NAMED_SECTIONS = ("input", "architecture", "split", "calibration")  # "input size", not just "size"


def change_words(node: Node, field: str, new_props: dict | None = None) -> str:
    """What an edit of a node's setting is called in Undo's tooltip and the Edit menu: "Change the
    label column of Data source", from the spec's names (its `title` where it gives one)."""
    title = node.title
    if field in PHRASES:
        return PHRASES[field].format(title=title)
    return f"Change the {setting_words(node.kind, field, [node.props, new_props or {}])} of {title}"


def setting_words(kind: str, dotted: str, props: list[dict] = ()) -> str:
    for p in props:
        try:
            titled = next((s.title for s in settings_of(kind, p) if s.dotted == dotted and s.title), "")
        except (KeyError, TypeError, AttributeError, ValueError):
            titled = ""
        if titled:
            return titled[:1].lower() + titled[1:] if titled[1:2].islower() else titled
    if f"{kind}:{dotted}" in WORDS or dotted in WORDS:
        return WORDS.get(f"{kind}:{dotted}") or WORDS[dotted]
    parts = dotted.split(".")
    leaf = WORDS.get(parts[-1]) or parts[-1].replace("_", " ")
    if len(parts) > 1 and parts[-2] in NAMED_SECTIONS:
        return f"{parts[-2]} {leaf}"
    return leaf or "settings"
