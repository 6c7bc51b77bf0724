"""Rules of the pipeline graph: which links are allowed, and each node's state at a glance.

Node properties are checked with the spec's own pydantic models: one source of truth.
"""

from __future__ import annotations

import math
import os

from pydantic import TypeAdapter, ValidationError

from engine.errors import Problem, problems_from_validation_error
from engine.spec import (DataSource, ExportSpec, PipelineSpec, PruneStep, QuantizeStep, StrategySpec,
                         StudentSpec, TeacherSpec, TrainingSpec, strategy_problems)
from gui.document.kinds import CHAIN, FILE_FIELDS, KINDS
from gui.document.model import Document, Link, Node, get_in
from gui.document.schema import ARCHITECTURES, DATA_FORMATS, file_fields

OK, INCOMPLETE, ERROR = "ok", "incomplete", "error"

_ADAPTERS = {"data": TypeAdapter(DataSource), "teacher": TypeAdapter(TeacherSpec),
             "strategy": TypeAdapter(StrategySpec), "prune": TypeAdapter(PruneStep),
             "quantize": TypeAdapter(QuantizeStep), "export": TypeAdapter(ExportSpec)}
_STUDENT = TypeAdapter(StudentSpec)
_TRAINING = TypeAdapter(TrainingSpec)
_CLASSES = TypeAdapter(list[str])
_DATA = _ADAPTERS["data"]


def prop_problems(node: Node) -> list[tuple[str, str]]:
    """(field path, message) for every property of the node the spec would refuse."""
    p = node.props
    checks = []
    if node.kind == "student":  # an init still being filled in is unfinished, not wrong
        student = {"architecture": p.get("architecture")}
        if p.get("init") is not None and not unfinished(node):
            student["init"] = p["init"]
        checks = [(_CLASSES, p.get("classes"), "classes"),
                  (_STUDENT, student, ""),
                  (_TRAINING, p.get("training"), "training")]
    elif node.kind == "export":  # an empty folder means the run folder's 'export'
        checks = [(_ADAPTERS["export"], {k: v for k, v in p.items() if v != ""}, "")]
    elif node.kind in _ADAPTERS:
        checks = [(_ADAPTERS[node.kind], p, "")]
    out = []
    for adapter, value, prefix in checks:
        try:
            adapter.validate_python(value)
        except ValidationError as exc:
            for prob in problems_from_validation_error(exc):
                where = ".".join(x for x in (prefix, prob.path if prob.path != "(spec)" else "") if x)
                out.append((where, prob.message))
    if node.kind == "student":
        classes = p.get("classes") or []
        if len(classes) < 2:
            out.append(("classes", "the student needs at least two classes"))
        if len(set(classes)) != len(classes):
            out.append(("classes", "class names repeat"))
    return out


def unfinished(node: Node) -> str | None:
    """What the node still needs to be chosen before it can be used, or None."""
    p = node.props
    if node.kind == "teacher" and not p.get("path"):
        return "drop a model file here, or choose one in the inspector"
    if node.kind == "data" and p.get("format") in DATA_FORMATS:
        files = file_fields(DATA_FORMATS[p["format"]], required=True)
        missing = [name for name in files if not p.get(name)]
        if missing:
            return f"choose the {p['format']} file" if len(files) == 1 else \
                f"choose the {p['format']} {missing[0]} file"
    init = (p.get("init") or {}) if node.kind == "student" else {}
    if init.get("kind") == "grow" and not init.get("teacher"):
        return "choose the teacher to grow the student from (Initial weights)"
    if init.get("kind") == "weights" and not init.get("path"):
        return "choose the .safetensors file the student starts from (Initial weights)"
    return None


def is_complete(node: Node) -> bool:
    """Whether the node's properties make a valid spec section (what saving can put in the spec)."""
    return not unfinished(node) and not prop_problems(node)


def linked_teacher_names(doc: Document) -> list[str]:
    """The names of the teachers linked to the pipeline's student, in link order."""
    student = doc.student()
    teachers = doc.inputs_of(student.id, "teachers") if student is not None else []
    return [t.props.get("name") for t in teachers if t.props.get("name")]


def pipeline_problems(doc: Document) -> list[Problem]:
    """What the spec's strategy checks (engine.spec.strategy_problems) find in the pipeline as
    it would be saved: unknown hint or grow teachers, a label-only run that cannot be one, …"""
    from gui.document.convert import document_to_project  # convert builds on this module

    saved = document_to_project(doc)
    if "student" not in saved:
        return []
    try:
        spec = PipelineSpec.model_construct(
            classes=saved["classes"], data=_DATA.validate_python(saved["data"]) if "data" in saved else None,
            teachers=[_ADAPTERS["teacher"].validate_python(t) for t in saved["teachers"]],
            student=_STUDENT.validate_python(saved["student"]),
            strategy=_ADAPTERS["strategy"].validate_python(saved.get("strategy", {})))
    except ValidationError:  # saving keeps only valid sections; nothing more to check here
        return []
    return strategy_problems(spec)


def _spec_problem_for(doc: Document, node: Node) -> Problem | None:
    """The first pipeline problem that belongs to this student or strategy node."""
    student = doc.student()
    linked = node.kind == "student" or (student is not None and node in doc.inputs_of(student.id, "strategy"))
    if node.kind not in ("student", "strategy") or not linked:
        return None
    section = "strategy" if node.kind == "strategy" else "student"
    for problem in pipeline_problems(doc):
        where = problem.path.split(".")[0].split("[")[0]
        if where == section or (section == "student" and where == "teachers"):
            return problem
    return None


def weights_only(teacher: Node) -> bool:
    """Safetensors and PyTorch files hold weights only: they need a zoo architecture."""
    fmt = teacher.props.get("format") or os.path.splitext(teacher.props.get("path") or "")[1].lower()
    return fmt in ("safetensors", "pytorch", ".safetensors", ".pt", ".pth")


def sample_shape(data: Node) -> tuple[int, ...] | None:
    """The data's per-sample shape, where it is known without reading the data."""
    if data.info.get("sample_shape"):
        return tuple(data.info["sample_shape"])
    known = getattr(DATA_FORMATS.get(data.props.get("format")), "sample_shapes", {})
    return known.get(data.props.get("name"))


def sample_rank(data: Node) -> int | None:
    """The rank of one sample, where the data's shape or format fixes it."""
    shape = sample_shape(data)
    return len(shape) if shape else getattr(DATA_FORMATS.get(data.props.get("format")), "sample_rank", None)


def architecture_refusal(arch: str | None, data: Node) -> str | None:
    """Why a student of this architecture cannot learn from this data (its sample rank)."""
    wanted, rank = getattr(ARCHITECTURES.get(arch), "sample_ranks", None), sample_rank(data)
    if wanted is None or rank is None or rank in wanted:
        return None
    fits = [k for k, cls in ARCHITECTURES.items() if cls.sample_ranks is None or rank in cls.sample_ranks]
    return (f"a {arch} student needs {ARCHITECTURES[arch].takes}; "
            f"use the {' or '.join(fits) or 'another'} architecture for this data")


def teacher_sample_shape(teacher: Node) -> tuple[int, ...] | None:
    inputs = teacher.info.get("inputs") or []
    if len(inputs) == 1 and all(isinstance(d, int) for d in inputs[0]["shape"][1:]):
        return tuple(inputs[0]["shape"][1:])
    return None


def unmapped_classes(teacher: Node, student: Node) -> list[str]:
    mapping = teacher.props.get("mapping") or {}
    known = set(student.props.get("classes") or [])
    return [c for c in teacher.props.get("classes") or [] if mapping.get(c, c) not in known]


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
    if src.kind in ("data", "strategy") and any(l.src == src.id for l in doc.links):
        return f"this {KINDS[src.kind].title.lower()} is already connected"
    if link.src_port == "model" and any(l.src == src.id and l.src_port == "model" for l in doc.links):
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
            stack += [l.dst for l in doc.links if l.src == node]
    return False


def node_status(doc: Document, node: Node) -> tuple[str, str]:
    """(state, reason): configured, incomplete (what is missing) or error (what is wrong)."""
    script = node.kind == "teacher" and node.props.get("format") == "torchscript"
    if script and not node.props.get("trusted"):
        return ERROR, ("TorchScript runs its code when loaded: tick Trusted only if you trust "
                       "where the file comes from")
    if node.info.get("error") and not script:  # TorchScript is never opened to be inspected
        return ERROR, node.info["error"]
    student = doc.student()
    if node.kind == "student" and student is not None and node.id != student.id:
        return ERROR, "a pipeline has exactly one student: delete this one"
    if unfinished(node):
        return INCOMPLETE, unfinished(node)
    if node.kind == "teacher" and any(t.id != node.id and t.props.get("name") == node.props.get("name")
                                      for t in doc.of_kind("teacher")):
        return ERROR, f"another teacher is also named '{node.props.get('name')}'"
    if node.kind == "teacher" and weights_only(node) and not node.props.get("architecture"):
        return INCOMPLETE, "choose the architecture its weights belong to"
    problems = prop_problems(node)
    if problems:
        where, message = problems[0]
        return ERROR, f"{where}: {message}" if where else message
    for at in FILE_FIELDS:
        value = get_in(node.props, at)
        if value and not os.path.exists(value):
            return ERROR, f"no file at {value}"
    if node.kind == "student":
        if not doc.inputs_of(node.id, "data"):
            return INCOMPLETE, "connect a data source"
        return _spec_status(doc, node)
    if node.kind == "teacher" and student is not None:
        missing = unmapped_classes(node, student)
        if missing:
            return ERROR, f"map its classes {', '.join(missing[:5])} to student classes"
    if node.kind in CHAIN:
        if not doc.inputs_of(node.id, "model"):
            return INCOMPLETE, "connect the student (or the step before) to its input"
        if chain_root(doc, node) is None:
            return INCOMPLETE, "its chain does not start at the student"
        return OK, "ready"
    if not doc.outputs_of(node.id):
        return INCOMPLETE, "connect it to the student"
    return _spec_status(doc, node)


def _spec_status(doc: Document, node: Node) -> tuple[str, str]:
    """A linked student's or strategy's state under the spec's strategy checks."""
    problem = _spec_problem_for(doc, node)
    if problem is None:
        return OK, "ready"
    if problem.path == "teachers":
        return INCOMPLETE, ("connect at least one teacher, or learn from labels alone: keep the "
                            "data's labels on and set the strategy's label weight α to 1")
    where = problem.path.removeprefix(f"{'strategy' if node.kind == 'strategy' else 'student'}.")
    return ERROR, f"{where}: {problem.message} — {problem.hint}"


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
