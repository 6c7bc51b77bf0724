"""The engine's problems (Check Pipeline, a run that could not start) said on the canvas: each
belongs to the node its spec path names, and its place and hint are said in the inspector's
words ("Data source › Missing values") rather than the spec's (`data.missing`). Qt-free.
"""

from __future__ import annotations

import re

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


def node_of(path: str, sections: dict[str, Node]) -> tuple[Node | None, str]:
    """The node a problem's spec path belongs to, and the rest of the path within its
    properties. The student holds its architecture, init, training and classes; a path the
    pipeline as a whole owns ('teachers', '(spec)') goes to the student too."""
    match = _SECTION.match(path)
    section = match.group(1) if match else ""
    rest = path[len(section):].lstrip(".")
    if section in ("training", "classes"):
        rest = f"{section}.{rest}".rstrip(".")
    if section in ("student", "training", "classes", "teachers", ""):
        return sections.get("student"), rest if section != "teachers" else ""
    return sections.get(section), rest


def field_label(node: Node, rest: str, teachers: list[str] = ()) -> str:
    """The inspector's label of a field of the node (`rest`: its path in the node's props); a
    field the form does not show is named by its own name in words."""
    rest = re.sub(r"\[\d+\]", "", rest)
    labels = {f.dotted: f.label for f in fields_for(node, teachers)}
    return labels.get(rest) or rest.rpartition(".")[2].replace("_", " ")


def place(node: Node | None, rest: str) -> str:
    """Where a problem is, in the window's words: the node, and its field."""
    if node is None:
        return "The pipeline"
    name = f"Teacher '{node.title}'" if node.kind == "teacher" else node.title
    label = field_label(node, rest)
    return f"{name} › {label}" if label else name


def plain_hint(hint: str, sections: dict[str, Node]) -> str:
    """The hint with each spec path it names replaced by the node and field it means."""
    def words(m: re.Match) -> str:
        node, rest = node_of(m.group(1), sections)
        return place(node, rest) if node is not None else m.group(0)

    return _SPEC_PATH.sub(words, hint)


def problems_on_nodes(doc: Document, problems: list[Problem]) -> tuple[dict[str, list[dict]], list[str]]:
    """Each problem on its node ({node id: [{message, hint, place}]}), and every problem in one
    line of plain words, in the engine's order."""
    sections = section_nodes(doc)
    on_nodes: dict[str, list[dict]] = {}
    lines = []
    for p in problems:
        node, rest = node_of(p.path, sections)
        hint = plain_hint(p.hint, sections)
        where = place(node, rest)
        lines.append(f"{where}: {p.message}" + (f"\n   → {hint}" if hint else ""))
        if node is not None:
            on_nodes.setdefault(node.id, []).append({"message": p.message, "hint": hint, "place": where})
    return on_nodes, lines
