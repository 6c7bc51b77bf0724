"""Document ⇄ project file (`*.distill.json`: the spec plus the canvas layout).

The spec part holds the nodes linked to the student; `layout` holds every node's position,
the links, and any node not (yet) part of the pipeline, so nothing the user made is lost.
Opening is lenient about what is missing (an unfinished pipeline) and strict about what is
wrong (every present section must pass the spec's own rules).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from engine.errors import InputError, Problem, problems_from_validation_error
from engine.regular_files import read_regular_text
from engine.spec import (
    SCHEMA_VERSION,
    SPEC_MAX_BYTES,
    CompressionStep,
    DataSource,
    ExportSpec,
    StrategySpec,
    StudentSpec,
    TeacherSpec,
    TrainingSpec,
    check_json_depth,
    check_schema_version,
)
from gui.document.chain import chain_after
from gui.document.kinds import KINDS, PATH_FIELDS, default_props
from gui.document.model import Document, Link, Node, get_in, set_in
from gui.document.node_checks import is_complete

_SECTIONS = {"data": TypeAdapter(DataSource), "strategy": TypeAdapter(StrategySpec),
             "training": TypeAdapter(TrainingSpec), "student": TypeAdapter(StudentSpec),
             "classes": TypeAdapter(list[str]), "name": TypeAdapter(str),
             "export": TypeAdapter(ExportSpec)}
_TEACHER = TypeAdapter(TeacherSpec)
_STEP = TypeAdapter(CompressionStep)
_PATH_KEYS = {at[0] for at in PATH_FIELDS if len(at) == 1}  # top-level keys that hold a path


# ── saving ───────────────────────────────────────────────────────────────────────────────


def document_to_project(doc: Document, project_dir: Path | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "name": doc.name}
    refs: dict[str, str] = {}
    student = doc.student()
    if student is not None and is_complete(student):  # unfinished nodes are kept in the layout
        refs[student.id] = "student"
        data = [n for n in doc.inputs_of(student.id, "data") if is_complete(n)]
        if data:
            out["data"] = _paths(_prune(data[0].props), project_dir)
            refs[data[0].id] = "data"
        out["classes"] = list(student.props.get("classes", []))
        teachers = [n for n in doc.inputs_of(student.id, "teachers") if is_complete(n)]
        out["teachers"] = [_paths(_prune(t.props), project_dir) for t in teachers]
        refs.update({t.id: f"teachers[{i}]" for i, t in enumerate(teachers)})
        out["student"] = _paths(_prune({key: student.props.get(key) for key in ("architecture", "init")}),
                                project_dir)
        strategy = [n for n in doc.inputs_of(student.id, "strategy") if is_complete(n)]
        if strategy:
            out["strategy"] = _paths(_prune(strategy[0].props), project_dir)
            refs[strategy[0].id] = "strategy"
        out["training"] = copy.deepcopy(student.props.get("training", {}))
        steps = []
        for node in chain_after(doc, student):  # up to the first unfinished step
            if not is_complete(node):
                break
            if node.kind == "export":
                out["export"] = _paths(_prune(node.props), project_dir)
                refs[node.id] = "export"
                break
            refs[node.id] = f"compression[{len(steps)}]"
            steps.append(_prune(node.props))
        if steps:
            out["compression"] = steps
    nodes = {}
    for node in doc.nodes.values():
        entry = {"kind": node.kind, "x": round(node.pos[0], 1), "y": round(node.pos[1], 1)}
        if node.id in refs:
            entry["ref"] = refs[node.id]
        else:
            entry["props"] = _paths(copy.deepcopy(node.props), project_dir)
        nodes[node.id] = entry
    out["layout"] = {"nodes": nodes,
                     "links": [[k.src, k.src_port, k.dst, k.dst_port] for k in doc.links]}
    return out


def project_json(doc: Document, project_dir: Path | None = None) -> str:
    return json.dumps(document_to_project(doc, project_dir), indent=2) + "\n"


def _prune(props: dict) -> dict:
    """Leave out unset optional fields (at any depth), as a person writing the spec would."""
    return {k: _prune(v) if isinstance(v, dict) else copy.deepcopy(v)
            for k, v in props.items() if v is not None and v != ""}


def _paths(props: dict, project_dir: Path | None) -> dict:
    """Paths near the project are written relative to it, so the folder can move."""
    if project_dir is None:
        return props
    for at in PATH_FIELDS:
        value = get_in(props, at)
        if value and os.path.isabs(value):
            rel = os.path.relpath(value, project_dir)
            if rel.count("..") <= 2:
                set_in(props, at, rel)
    return props


# ── opening ──────────────────────────────────────────────────────────────────────────────


def read_project(path: Path) -> dict[str, Any]:
    """The parsed project file, or InputError if it is unreadable, broken or too new."""
    try:
        data = json.loads(read_regular_text(path, max_bytes=SPEC_MAX_BYTES))  # never blocks on a FIFO
    except FileNotFoundError:
        raise InputError.one("(file)", f"no project file at {path}", "check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError.one("(file)", f"cannot read {path}: {exc}", "check the file") from None
    except json.JSONDecodeError as exc:
        raise InputError.one("(file)", f"{Path(path).name} is not valid JSON: {exc.msg} at line "
                             f"{exc.lineno}", "fix the file in a text editor, or open another") from None
    except RecursionError:
        raise InputError.one("(file)", f"{Path(path).name} is nested too deeply to read",
                             "the file is damaged or not a project; open another") from None
    check_json_depth(data, Path(path).name)
    if not isinstance(data, dict):
        raise InputError.one("(file)", "a project file must hold a JSON object", "open a .distill.json file")
    check_schema_version(data)
    return data


def project_to_nodes(data: dict[str, Any], project_dir: Path,
                     fixed: list[str] | None = None) -> tuple[str, list[Node], list[Link]]:
    """Nodes and links of a parsed project. Every present section must be valid. A layout
    coordinate that is not a finite number within reach (NaN, inf, 1e300: Python's json reads
    them) is replaced by the node's default place, and a line saying so is added to `fixed`."""
    fixed = [] if fixed is None else fixed

    def place(node_id: str, entry: dict, auto: tuple[float, float]) -> tuple[float, float]:
        pos = []
        for axis, default in zip(("x", "y"), auto):
            value = entry.get(axis)
            pos.append(_number(value, default))
            if _is_number(value) and not _in_reach(value):
                fixed.append(f"{node_id}: {axis} was {value!r}, placed at {default:g}")
        return pos[0], pos[1]
    problems: list[Problem] = []
    valid: dict[str, Any] = {}
    for key, adapter in _SECTIONS.items():
        if key in data:
            try:
                valid[key] = _complete(adapter, adapter.validate_python(data[key]))
            except ValidationError as exc:
                problems += _prefixed(exc, key)
    teachers = _list_section(data, "teachers", _TEACHER, problems)
    steps = _list_section(data, "compression", _STEP, problems)
    known = set(_SECTIONS) | {"teachers", "compression", "schema_version", "layout"}
    problems += [Problem(k, "unknown field", "remove it, or check its spelling")
                 for k in data if k not in known]
    if problems:
        raise InputError(problems)

    layout = data.get("layout") if isinstance(data.get("layout"), dict) else {}
    placed = layout.get("nodes") if isinstance(layout.get("nodes"), dict) else {}
    by_ref = {v.get("ref"): k for k, v in placed.items() if isinstance(v, dict) and v.get("ref")}
    nodes: list[Node] = []
    links: list[Link] = []

    def make(kind: str, props: dict, ref: str, auto: tuple[float, float]) -> Node:
        node_id = by_ref.get(ref)
        if node_id is None or any(n.id == node_id for n in nodes):
            node_id = _fresh_id(kind, set(placed) | {n.id for n in nodes})
        entry = placed.get(node_id, {}) if isinstance(placed.get(node_id), dict) else {}
        pos = place(node_id, entry, auto)
        node = Node(node_id, kind, _absolute(props, project_dir), pos)
        nodes.append(node)
        return node

    student = None
    if "classes" in valid or "student" in valid or "training" in valid or teachers or "data" in valid:
        sp = default_props("student")
        sp["classes"] = valid.get("classes", sp["classes"])
        sp.update({key: valid["student"][key] for key in ("architecture", "init") if key in valid.get("student", {})})
        sp["training"] = valid.get("training", sp["training"])
        student = make("student", sp, "student", (560, 160))
    # a layout that fits a window at a readable zoom: the data and the teachers in a column (140
    # apart: room for a card with its contract lines), the strategy beside the last teacher and
    # below its link
    if "data" in valid:
        node = make("data", valid["data"], "data", (-40, 10))
        links.append(Link(node.id, "data", student.id, "data"))
    for i, t in enumerate(teachers):
        node = make("teacher", {**default_props("teacher"), **t}, f"teachers[{i}]", (-40, 150 + 140 * i))
        links.append(Link(node.id, "teaches", student.id, "teachers"))
    if "strategy" in valid:
        node = make("strategy", valid["strategy"], "strategy", (250, 150 + 140 * max(len(teachers) - 1, 0)
                                                                   + (90 if teachers else 0)))
        links.append(Link(node.id, "strategy", student.id, "strategy"))

    before = student
    for i, step in enumerate(steps if student is not None else []):
        node = make(step["kind"], {**default_props(step["kind"]), **step}, f"compression[{i}]",
                    (870 + 300 * i, 160))
        links.append(Link(before.id, "model", node.id, "model"))
        before = node
    if "export" in valid and student is not None:
        node = make("export", {**default_props("export"), **valid["export"]}, "export",
                    (870 + 300 * len(steps), 160))
        links.append(Link(before.id, "model", node.id, "model"))

    ids = {n.id for n in nodes}
    bound = set(ids)  # their links come from the spec itself
    for node_id, entry in placed.items():  # nodes not part of the pipeline (yet)
        if node_id in ids or not isinstance(entry, dict) or entry.get("kind") not in KINDS \
                or not isinstance(entry.get("props"), dict):
            continue
        props = {**default_props(entry["kind"]), **entry["props"]}
        problems += _type_problems(f"layout.nodes.{node_id}.props", props, default_props(entry["kind"]))
        nodes.append(Node(node_id, entry["kind"], props, place(node_id, entry, (0.0, 0.0))))
        ids.add(node_id)
    if problems:
        raise InputError(problems)
    for node in nodes[len(bound):]:
        node.props = _absolute(node.props, project_dir)
    kinds = {n.id: n.kind for n in nodes}
    for raw in layout.get("links", []) if isinstance(layout.get("links"), list) else []:
        if isinstance(raw, list) and len(raw) == 4 and raw[0] in ids - bound and raw[2] in ids:
            link = Link(*map(str, raw))
            fits = link.src_port in [p.name for p in KINDS[kinds[link.src]].outputs] and \
                link.dst_port in [p.name for p in KINDS[kinds[link.dst]].inputs]
            if fits and link not in links and link.src != link.dst:
                links.append(link)
    name = valid.get("name") or "untitled pipeline"
    return name, nodes, links


def _list_section(data: dict, key: str, adapter: TypeAdapter, problems: list[Problem]) -> list:
    """A list section (teachers, compression), each entry validated and completed; problems
    are added to `problems` with the entry's index."""
    raw = data.get(key, [])
    if not isinstance(raw, list):
        problems.append(Problem(key, f"{key} must be a list", "write a list in [ ]"))
        return []
    entries = list(raw)
    for i, entry in enumerate(entries):
        try:
            entries[i] = _complete(adapter, adapter.validate_python(entry))
        except ValidationError as exc:
            problems += _prefixed(exc, f"{key}[{i}]")
    return entries


MAX_COORDINATE = 1e6  # far beyond any canvas; Qt's scene misbehaves (or crashes) on NaN/inf/huge


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _in_reach(value: float) -> bool:
    return abs(value) <= MAX_COORDINATE  # False for NaN and inf; no float() of a huge int


def _number(value, default: float) -> float:
    """A layout coordinate, or `default` if it is not a finite number within MAX_COORDINATE."""
    return float(value) if _is_number(value) and _in_reach(value) else default


def _fresh_id(kind: str, taken: set[str]) -> str:
    i = 1
    while f"{kind}-{i}" in taken:
        i += 1
    return f"{kind}-{i}"


def _type_problems(where: str, props: dict, defaults: dict) -> list[Problem]:
    """Props of a node kept in the layout must have the types the app works with."""
    problems = []
    for key, value in props.items():
        want = defaults.get(key)
        if value is None:
            continue
        if key in _PATH_KEYS:
            ok = isinstance(value, str)
        elif want is None:  # optional settings: a text (a path, a column), a flag or an object
            ok = isinstance(value, (str, dict, bool))
        elif isinstance(want, bool):
            ok = isinstance(value, bool)
        elif isinstance(want, (int, float)):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif isinstance(want, str):
            ok = isinstance(value, str)
        elif isinstance(want, list):  # names, or (hints) objects of names
            kinds = (dict,) if key == "hints" else (str,)
            ok = isinstance(value, list) and all(isinstance(v, kinds) for v in value) and all(
                isinstance(x, str) for v in value if isinstance(v, dict) for x in v.values())
        else:
            ok = isinstance(value, dict)
            if ok and key == "mapping":
                ok = all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
            elif ok:
                problems += _type_problems(f"{where}.{key}", value, want)
        if not ok:
            problems.append(Problem(f"{where}.{key}", f"has the wrong type ({type(value).__name__})",
                                    "fix the file in a text editor, or remove this node from its layout"))
    return problems


def _complete(adapter: TypeAdapter, value) -> Any:
    """A validated section as plain JSON with every default written out, so the inspector
    shows each setting's real value."""
    return adapter.dump_python(value, mode="json", exclude_none=True)


def _prefixed(exc: ValidationError, prefix: str) -> list[Problem]:
    return [Problem(f"{prefix}.{p.path}" if p.path != "(spec)" else prefix, p.message, p.hint)
            for p in problems_from_validation_error(exc)]


def _absolute(props: dict, project_dir: Path) -> dict:
    props = copy.deepcopy(props)
    for at in PATH_FIELDS:
        value = get_in(props, at)
        if isinstance(value, str) and value and not os.path.isabs(os.path.expanduser(value)):
            set_in(props, at, str((project_dir / value).resolve()))
    return props
