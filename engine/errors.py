"""Errors a user can fix: each names what is wrong, where, and how to fix it.

`InputError` means bad input (spec, data or model files): exit code 2, never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, get_args

from pydantic import ValidationError


@dataclass(frozen=True)
class Problem:
    path: str  # where: a spec field path such as `teachers[1].classes`, or a file
    message: str  # what is wrong
    hint: str  # how to fix it

    def __str__(self) -> str:
        return f"{self.path}: {self.message}\n    hint: {self.hint}"

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message, "hint": self.hint}


class InputError(Exception):
    """One or more problems with the user's input; the engine exits with code 2."""

    kind = "invalid_input"

    def __init__(self, problems: list[Problem], kind: str | None = None):
        self.problems = problems
        if kind:
            self.kind = kind
        super().__init__("\n".join(str(p) for p in problems))

    @classmethod
    def one(cls, path: str, message: str, hint: str, kind: str | None = None) -> InputError:
        return cls([Problem(path, message, hint)], kind=kind)


class StopRequested(Exception):
    """The user asked to stop a training run; a checkpoint has been written (engine/train.py)."""


class RunFailed(Exception):
    """The run started but cannot go on (e.g. the loss became NaN); exit code 1."""

    def __init__(self, kind: str, message: str, hint: str):
        self.kind, self.message, self.hint = kind, message, hint
        super().__init__(message)


def _discriminated_unions(annotation) -> list[tuple[str, set[str]]]:
    """(discriminator, tags) of every discriminated union inside a type (Optional, list, …)."""
    out = []
    for meta in getattr(annotation, "__metadata__", ()):
        if getattr(meta, "discriminator", None):
            members = get_args(get_args(annotation)[0])
            out.append((meta.discriminator, {get_args(m.model_fields[meta.discriminator].annotation)[0]
                                              for m in members}))
    return out + [u for arg in get_args(annotation) for u in _discriminated_unions(arg)]


_UNION_TAGS: dict[str, set[str]] = {}  # spec field name -> tags of the union members it holds


def register_unions(root: type) -> None:
    """Learn the union tags a spec's models hold (the spec's `data`, every `architecture`,
    `compression`), walking from `root`. engine.spec registers its PipelineSpec once defined:
    this module imports no other engine module, so the spec can import it."""
    seen, todo = set(), [root]
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            annotation = info.annotation
            if info.discriminator:
                annotation = Annotated[annotation, info]
            for _, member_tags in _discriminated_unions(annotation):
                _UNION_TAGS.setdefault(name, set()).update(member_tags)
            todo += [t for t in _model_types(annotation) if t not in seen]


def _union_tags() -> dict[str, set[str]]:
    """Spec field name -> the tags of the union members it holds, as registered."""
    return _UNION_TAGS


def _model_types(annotation) -> list[type]:
    if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
        return [annotation]
    return [t for arg in get_args(annotation) for t in _model_types(arg)]


def _loc_to_path(loc: tuple) -> str:
    out, union_tags = "", _union_tags()
    for i, part in enumerate(loc):
        field = next((p for p in reversed(loc[:i]) if not isinstance(p, int)), None)  # past [i]
        tags = union_tags.get(str(field), ()) if i else set().union(*union_tags.values())
        if part in tags:
            continue  # pydantic names the union member chosen; the user never wrote it
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(spec)"


_HINTS = {
    "missing": "add this field",
    "extra_forbidden": "remove this field, or check its spelling",
    "literal_error": "use one of the values listed",
    "union_tag_invalid": "use one of the values listed",
    "union_tag_not_found": "add the field that says which kind this is",
    "int_parsing": "write a whole number",
    "int_type": "write a whole number",
    "int_from_float": "write a whole number",
    "float_parsing": "write a number",
    "float_type": "write a number",
    "bool_parsing": "write true or false",
    "bool_type": "write true or false",
    "string_type": "write a text in quotes",
    "list_type": "write a list in [ ]",
    "dict_type": "write an object in { }",
    "model_type": "write an object in { }",
    "model_attributes_type": "write an object in { }",
    "too_short": "add at least one entry",
    "string_too_short": "write a non-empty text",
    "greater_than": "use a larger value",
    "greater_than_equal": "use a larger value",
    "less_than": "use a smaller value",
    "less_than_equal": "use a smaller value",
    "path_type": "write a file path as a text",
    "value_error": "change the value as the message says",
}


def problems_from_validation_error(exc: ValidationError) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False):
        path = _loc_to_path(tuple(err["loc"]))
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        hint = _HINTS.get(err["type"], "see the spec reference in README.md")
        problems.append(Problem(path, msg, hint))
    return problems
