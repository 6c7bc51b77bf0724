"""The canvas link rule: may an output port of one node be linked to an input port of another?

`check_link` answers with the reason a link is refused, in words for the user, or None.
"""

from __future__ import annotations

import math

from gui.document.kinds import KINDS
from gui.document.model import Document, Link, Node
from gui.document.node_checks import sample_rank, sample_shape, teacher_sample_shape, unmapped_classes
from gui.document.schema import ARCHITECTURES


def check_link(doc: Document, link: Link) -> str | None:
    """Why this link is refused, or None when it may be made."""
    src, dst = doc.nodes.get(link.src), doc.nodes.get(link.dst)
    if src is None or dst is None:
        return "both ends must be nodes"
    if src.id == dst.id:
        return "a node cannot connect to itself"
    port = next((p for p in KINDS[dst.kind].inputs if p.name == link.dst_port), None)
    if port is None or link.src_port not in [p.name for p in KINDS[src.kind].outputs]:
        return "connect an output (right side) to an input (left side)"
    if src.kind not in port.accepts:
        wanted = " or ".join(KINDS[k].title.lower() for k in port.accepts)
        if src.kind == "quantize":
            return "quantization comes last: connect it to an export, not to another step"
        return f"the {port.name} input takes a {wanted}, not a {KINDS[src.kind].title.lower()}"
    if link in doc.links:
        return "these are already connected"
    if _makes_cycle(doc, link):
        return "this link would make a cycle"
    student = doc.student()
    if dst.kind == "student" and student is not None and dst.id != student.id:
        return (f"a pipeline has exactly one student; connect to '{student.title}' "
                f"or delete this second student")
    if src.kind in ("data", "strategy") and any(other.src == src.id for other in doc.links):
        return f"this {KINDS[src.kind].title.lower()} is already connected"
    if link.src_port == "model" and any(other.src == src.id and other.src_port == "model" for other in doc.links):
        return (f"'{src.title}' already feeds a step: compression is one chain "
                "(student → prune → … → quantize → export)")
    if not port.multi:
        taken = doc.inputs_of(dst.id, port.name)
        if taken:
            return (f"'{dst.title}' already has a {port.name} input ('{taken[0].title}'); "
                    "delete that link first")
    if src.kind == "teacher":
        missing = unmapped_classes(src, dst)
        if missing:
            return (f"teacher '{src.title}' has classes the student does not know: "
                    f"{', '.join(missing[:5])}; map them in the teacher's inspector first")
        data = doc.inputs_of(dst.id, "data")
        reason = _shape_mismatch(src, data[0]) if data else None
        if reason:
            return reason
    if src.kind == "data":
        reason = architecture_refusal((dst.props.get("architecture") or {}).get("kind"), src)
        if reason:
            return reason
        for teacher in doc.inputs_of(dst.id, "teachers"):
            reason = _shape_mismatch(teacher, src)
            if reason:
                return reason
    return None


def architecture_refusal(arch: str | None, data: Node) -> str | None:
    """Why a student of this architecture cannot learn from this data (its sample rank)."""
    wanted, rank = getattr(ARCHITECTURES.get(arch), "sample_ranks", None), sample_rank(data)
    if wanted is None or rank is None or rank in wanted:
        return None
    fits = [k for k, cls in ARCHITECTURES.items() if cls.sample_ranks is None or rank in cls.sample_ranks]
    return (f"a {arch} student needs {ARCHITECTURES[arch].takes}; "
            f"use the {' or '.join(fits) or 'another'} architecture for this data")


def _shape_mismatch(teacher: Node, data: Node) -> str | None:
    t, d = teacher_sample_shape(teacher), sample_shape(data)
    if t and d and math.prod(t) != math.prod(d):
        return (f"teacher '{teacher.title}' takes samples of {math.prod(t)} values {list(t)}; "
                f"the data has {math.prod(d)} {list(d)}")
    return None


def _makes_cycle(doc: Document, link: Link) -> bool:
    """Would there be a path from link.dst back to link.src?"""
    seen, stack = set(), [link.dst]
    while stack:
        node = stack.pop()
        if node == link.src:
            return True
        if node not in seen:
            seen.add(node)
            stack += [other.dst for other in doc.links if other.src == node]
    return False

