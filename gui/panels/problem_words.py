"""The engine's problems (Check Pipeline, a run that could not start) said on the canvas: each
belongs to the node its spec path names, and its place and hint are said in the inspector's
words ("Data source › Missing values") rather than the spec's (`data.missing`). Qt-free.

The nodes are those the checked spec was written from (`Checked`, taken when it is written): an
answer that comes after the node was changed, or after another project was opened, is listed
but marks nothing.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

from engine.errors import Problem
from gui.document.convert import document_to_project
from gui.document.model import Document, Node
from gui.panels.schema_form import fields_for

# where a spec path starts: its section and, for lists, the index
_SECTION = re.compile(r"^(data|strategy|export|student|training|classes|teachers\[\d+\]|compression\[\d+\]|teachers)")
# a spec path written inside a hint, such as `data.missing` or teachers[1].input.mean
_SPEC_PATH = re.compile(r"`?\b((?:data|strategy|export|student|training|teachers\[\d+\]|compression\[\d+\])"
                        r"(?:\.[a-z_]+(?:\[\d+\])?)+)`?")


def section_nodes(doc: Document) -> dict[str, Node]:
    """The node each spec section was written from ('data', 'teachers[1]', 'compression[0]', …),
    as saving writes it: the same order of teachers and steps the engine numbers."""
    layout = document_to_project(doc)["layout"]["nodes"]
    return {entry["ref"]: doc.nodes[node_id] for node_id, entry in layout.items()
            if "ref" in entry and node_id in doc.nodes}


@dataclass
class Checked:
    """The nodes a spec was written from, as they were then."""

    sections: dict[str, Node]
    props: dict[str, dict]  # node id -> its properties when the spec was written

    @classmethod
    def of(cls, doc: Document) -> Checked:
        sections = section_nodes(doc)
        return cls(sections, {n.id: copy.deepcopy(n.props) for n in sections.values()})

    def unchanged(self, doc: Document, node: Node) -> bool:
        """The node is still in the document, as it was checked (not another project's node
        of the same id, not edited since)."""
        return doc.nodes.get(node.id) is node and node.props == self.props.get(node.id)


def node_of(path: str, sections: dict[str, Node]) -> tuple[Node | None, str]:
    """The node a problem's spec path belongs to, and the rest of the path within its
    properties. The student holds its architecture, init, training and classes, and what the
    spec as a whole lacks ('teachers', '(spec)'); a path outside the spec (the run folder, the
    store: `--run-dir`, `--db`, a file) belongs to no node."""
    match = _SECTION.match(path)
    section = match.group(1) if match else ""
    rest = path[len(section):].lstrip(".")
    if section in ("training", "classes"):
        rest = f"{section}.{rest}".rstrip(".")
    if section in ("student", "training", "classes", "teachers") or path == "(spec)":
        return sections.get("student"), rest if section not in ("teachers", "") else ""
    return (sections.get(section), rest) if section else (None, "")


def form_label(node: Node, rest: str) -> str:
    """The inspector's label of a field of the node (`rest`: its path in the node's props), or
    '' where its form shows no such field."""
    return {f.dotted: f.label for f in fields_for(node)}.get(re.sub(r"\[\d+\]", "", rest), "")


def field_label(node: Node, rest: str) -> str:
    """The field's label, or that of the field holding it (a class in Classes, a class's
    mapping in Mapping); a field the form does not show, by its own name in words."""
    parts = re.sub(r"\[\d+\]", "", rest).split(".")
    for end in range(len(parts), 0, -1):
        label = form_label(node, ".".join(parts[:end]))
        if label:
            return label
    return parts[0].replace("_", " ")


def place(node: Node | None, rest: str) -> str:
    """Where a problem is, in the window's words: the node, and its field."""
    if node is None:
        return "The run"
    name = f"Teacher '{node.title}'" if node.kind == "teacher" else node.title
    label = field_label(node, rest)
    return f"{name} › {label}" if label else name


def plain_hint(hint: str, sections: dict[str, Node]) -> str:
    """The hint with each spec path it names replaced by the node and field it means; only a
    field the node's form shows is replaced, so a file name such as data.csv stays as it is."""
    def words(m: re.Match) -> str:
        node, rest = node_of(m.group(1), sections)
        return place(node, rest) if node is not None and form_label(node, rest) else m.group(0)

    return _SPEC_PATH.sub(words, hint)


def problems_on_nodes(doc: Document, problems: list[Problem],
                      checked: Checked | None = None) -> tuple[dict[str, list[dict]], list[str]]:
    """Each problem on the node it belongs to, where that node is as it was checked ({node id:
    [{message, hint, place}]}), and every problem in one line of plain words, in the engine's
    order. `checked`: the nodes the spec was written from (default: the document as it is)."""
    checked = checked or Checked.of(doc)
    sections = checked.sections
    on_nodes: dict[str, list[dict]] = {}
    lines = []
    for p in problems:
        node, rest = node_of(p.path, sections)
        hint = plain_hint(p.hint, sections)
        where = place(node, rest)
        lines.append(f"{where}: {p.message}" + (f"\n   → {hint}" if hint else ""))
        if node is not None and checked.unchanged(doc, node):
            on_nodes.setdefault(node.id, []).append({"message": p.message, "hint": hint, "place": where})
    return on_nodes, lines
