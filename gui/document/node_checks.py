"""Checks of one node on its own: its properties against the spec's own pydantic models (one
source of truth), what it still needs to be chosen, and what it tells about sample shapes.
"""

from __future__ import annotations

import os

from pydantic import TypeAdapter, ValidationError

from engine.errors import problems_from_validation_error
from engine.spec import (
    DataSource,
    ExportSpec,
    PruneStep,
    QuantizeStep,
    StrategySpec,
    StudentSpec,
    TeacherSpec,
    TrainingSpec,
)
from gui.document.model import Node
from gui.document.schema import DATA_FORMATS, file_fields

ADAPTERS = {"data": TypeAdapter(DataSource), "teacher": TypeAdapter(TeacherSpec),
            "strategy": TypeAdapter(StrategySpec), "prune": TypeAdapter(PruneStep),
            "quantize": TypeAdapter(QuantizeStep), "export": TypeAdapter(ExportSpec)}
STUDENT = TypeAdapter(StudentSpec)
_TRAINING = TypeAdapter(TrainingSpec)
_CLASSES = TypeAdapter(list[str])


def prop_problems(node: Node) -> list[tuple[str, str]]:
    """(field path, message) for every property of the node the spec would refuse."""
    p = node.props
    checks = []
    if node.kind == "student":  # an init still being filled in is unfinished, not wrong
        student = {"architecture": p.get("architecture")}
        if p.get("init") is not None and not unfinished(node):
            student["init"] = p["init"]
        checks = [(_CLASSES, p.get("classes"), "classes"),
                  (STUDENT, student, ""),
                  (_TRAINING, p.get("training"), "training")]
    elif node.kind == "export":  # an empty folder means the run folder's 'export'
        checks = [(ADAPTERS["export"], {k: v for k, v in p.items() if v != ""}, "")]
    elif node.kind in ADAPTERS:
        checks = [(ADAPTERS[node.kind], p, "")]
    out = []
    for adapter, value, prefix in checks:
        try:
            adapter.validate_python(value)
        except ValidationError as exc:
            for prob in problems_from_validation_error(exc):
                where = ".".join(x for x in (prefix, prob.path if prob.path != "(spec)" else "") if x)
                if adapter is STUDENT and where in ("", "student"):  # the student's one check across its
                    where = "init.pretraining.method"                 # parts: the method its kind can take
                out.append((where, prob.message))
    if node.kind == "teacher" and not p.get("classes"):  # the spec's words are pydantic's: say it plainly
        out = [(w, m) for w, m in out if w.split(".")[0].split("[")[0] != "classes"]
        out.insert(0, ("classes", classes_needed(node)))
    if node.kind == "student":
        classes = p.get("classes") or []
        if len(classes) < 2:
            out.append(("classes", "the student needs at least two classes"))
        if len(set(classes)) != len(classes):
            out.append(("classes", "class names repeat"))
    return out


def classes_needed(teacher: Node) -> str:
    """What a teacher without classes needs, in plain words (with its file's output width)."""
    outputs = teacher.info.get("outputs") or []
    width = outputs[0].get("shape", [None])[-1] if outputs and isinstance(outputs[0], dict) else None
    has = f"; its file has {width} outputs" if isinstance(width, int) and not isinstance(width, bool) else ""
    return f"list the teacher's classes, one per output{has}"


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


def weights_only(teacher: Node) -> bool:
    """Safetensors and PyTorch files hold weights only: they need a zoo architecture."""
    fmt = teacher.props.get("format") or os.path.splitext(teacher.props.get("path") or "")[1].lower()
    return fmt in ("safetensors", "pytorch", ".safetensors", ".pt", ".pth")


def sample_shape(data: Node) -> tuple[int, ...] | None:
    """The data's per-sample shape, where it is known without reading the data."""
    if data.info.get("sample_shape"):
        return tuple(data.info["sample_shape"])
    checked = data.info.get("checked_shape") or {}  # read by Check Pipeline, for these settings
    if checked.get("props") == data.props and checked.get("shape"):
        return tuple(checked["shape"])
    member = DATA_FORMATS.get(data.props.get("format"))
    if hasattr(member, "sample_shape_of"):  # a folder: its settings fix the shape
        try:
            return member.sample_shape_of(data.props)
        except (TypeError, ValueError):
            return None
    return getattr(member, "sample_shapes", {}).get(data.props.get("name"))


def sample_rank(data: Node) -> int | None:
    """The rank of one sample, where the data's shape or format fixes it."""
    shape = sample_shape(data)
    return len(shape) if shape else getattr(DATA_FORMATS.get(data.props.get("format")), "sample_rank", None)


def teacher_sample_shape(teacher: Node) -> tuple[int, ...] | None:
    inputs = teacher.info.get("inputs") or []
    if len(inputs) == 1 and all(isinstance(d, int) for d in inputs[0]["shape"][1:]):
        return tuple(inputs[0]["shape"][1:])
    return None


def unmapped_classes(teacher: Node, student: Node) -> list[str]:
    mapping = teacher.props.get("mapping") or {}
    known = set(student.props.get("classes") or [])
    return [c for c in teacher.props.get("classes") or [] if mapping.get(c, c) not in known]

