"""The compression chain after the student: student → prune → … → quantize → export."""

from __future__ import annotations

from gui.document.kinds import CHAIN
from gui.document.model import Document, Node


def chain_root(doc: Document, node: Node) -> Node | None:
    """The student at the start of a compression chain, or None."""
    seen = set()
    while node is not None and node.kind in CHAIN and node.id not in seen:
        seen.add(node.id)
        before = doc.inputs_of(node.id, "model")
        node = before[0] if before else None
    return node if node is not None and node.kind == "student" else None


def chain_after(doc: Document, student: Node) -> list[Node]:
    """The compression steps and export after the student, in order."""
    out, node = [], student
    while True:
        nxt = [n for n in doc.outputs_of(node.id) if n.kind in CHAIN]
        if not nxt or nxt[0] in out:
            return out
        node = nxt[0]
        out.append(node)

