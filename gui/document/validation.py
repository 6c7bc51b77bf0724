"""Each node's state at a glance (configured, incomplete, error) and the pipeline's problems
under the spec's strategy checks. The link rule is in links.py, one node's own checks in
node_checks.py.
"""

from __future__ import annotations

import os

from pydantic import ValidationError

from engine.errors import Problem
from engine.spec import PipelineSpec, strategy_problems
from gui.document.chain import chain_root
from gui.document.convert import document_to_project
from gui.document.folder_info import folder_classes, unknown_classes
from gui.document.kinds import CHAIN, FILE_FIELDS
from gui.document.model import Document, Node, get_in
from gui.document.node_checks import (
    ADAPTERS,
    STUDENT,
    classes_needed,
    prop_problems,
    unfinished,
    unmapped_classes,
    weights_only,
)
from gui.document.text_info import unknown_labels

OK, INCOMPLETE, ERROR = "ok", "incomplete", "error"


def linked_teacher_names(doc: Document) -> list[str]:
    """The names of the teachers linked to the pipeline's student, in link order."""
    student = doc.student()
    teachers = doc.inputs_of(student.id, "teachers") if student is not None else []
    return [t.props.get("name") for t in teachers if t.props.get("name")]


def pipeline_problems(doc: Document) -> list[Problem]:
    """What the spec's strategy checks (engine.spec.strategy_problems) find in the pipeline as
    it would be saved: unknown hint or grow teachers, a label-only run that cannot be one, …"""
    saved = document_to_project(doc)
    if "student" not in saved:
        return []
    try:
        spec = PipelineSpec.model_construct(
            classes=saved["classes"], data=ADAPTERS["data"].validate_python(saved["data"]) if "data" in saved else None,
            teachers=[ADAPTERS["teacher"].validate_python(t) for t in saved["teachers"]],
            student=STUDENT.validate_python(saved["student"]),
            strategy=ADAPTERS["strategy"].validate_python(saved.get("strategy", {})))
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


def checked_problems(node: Node) -> list[dict]:
    """What the engine's last check (or a run that could not start) found wrong in this node,
    while the node is as it was checked: an edit to it lifts them until the next check."""
    found = node.info.get("problems") or {}
    return found.get("list", []) if found.get("props") == node.props else []


def node_status(doc: Document, node: Node) -> tuple[str, str]:
    """(state, reason): configured, incomplete (what is missing) or error (what is wrong)."""
    script = node.kind == "teacher" and node.props.get("format") == "torchscript"
    if script and not node.props.get("trusted"):
        return ERROR, ("TorchScript runs its code when loaded: tick Trusted only if you trust "
                       "where the file comes from")
    if node.info.get("error") and not script:  # TorchScript is never opened to be inspected
        return ERROR, node.info["error"]
    found = checked_problems(node)
    if found:
        return ERROR, "; ".join(f"{p['message']} — {p['hint']}" if p["hint"] else p["message"] for p in found)
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
    if node.kind == "teacher" and not node.props.get("classes"):  # to be listed, not a fault
        return INCOMPLETE, classes_needed(node)
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
    if node.kind == "data" and student is not None:
        unknown = unknown_classes(node, student.props.get("classes") or [])
        if unknown:
            n, many = len(folder_classes(node)), len(unknown) > 1
            return ERROR, (f"{len(unknown)} class subfolder{'s are' if many else ' is'} not a class of "
                           f"the student ({', '.join(unknown[:5])}{' …' if len(unknown) > 5 else ''}): "
                           f"'Use these {n} classes' in the inspector, or move {'them' if many else 'it'} out")
        unknown = unknown_labels(node, student.props.get("classes") or [])
        if unknown:
            n, many = len(unknown), len(unknown) > 1
            return ERROR, (f"{n} label{'s' if many else ''} of the file {'are' if many else 'is'} not a class "
                           f"of the student ({', '.join(unknown[:5])}{' …' if n > 5 else ''}): 'Use these "
                           "classes' in the inspector, or set the student's classes")
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

