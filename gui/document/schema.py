"""What the spec says about each node's settings, read off the pydantic models of engine/spec.py:
types, choices (`Literal`s and union tags), defaults, bounds (`Field(ge=…)`) and help
(`description`). The inspector's forms, the node cards and the document's checks read the spec
here, so a new architecture or data source needs no change in the app. Qt-free.
"""

from __future__ import annotations

import inspect
import types
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path, PurePath
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from engine.spec import (
    Architecture,
    DataSource,
    ExportSpec,
    PipelineSpec,
    PruneStep,
    QuantizeStep,
    StrategySpec,
    StudentSpec,
    TeacherSpec,
)

MISSING = PydanticUndefined  # the default of a required setting


def members(union) -> dict[str, type[BaseModel]]:
    """tag -> class of a discriminated union such as `DataSource` or `Architecture`."""
    found = _union_of(union, None)
    return found[1] if found else {}


# what a node's properties hold: a model, a union, or (the student) fields of several sections
NODE_MODELS: dict[str, Any] = {
    "data": DataSource, "teacher": TeacherSpec, "strategy": StrategySpec, "prune": PruneStep,
    "quantize": QuantizeStep, "export": ExportSpec,
    "student": {"classes": PipelineSpec.model_fields["classes"],
                "architecture": StudentSpec.model_fields["architecture"],
                "init": StudentSpec.model_fields["init"],
                "training": PipelineSpec.model_fields["training"]},
}


@dataclass(frozen=True)
class Bounds:
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def words(self) -> str:
        """'> 0, ≤ 10'"""
        signs = (("≥", self.ge), (">", self.gt), ("≤", self.le), ("<", self.lt))
        parts = [f"{sign} {v:g}" if isinstance(v, float) else f"{sign} {v}" for sign, v in signs if v is not None]
        return ", ".join(parts)


@dataclass(frozen=True)
class Setting:
    """One setting of a node, at `path` in its properties."""

    path: tuple[str, ...]
    type: str  # choice, bool, int, float, text, path, folder, list, dict, models, model, union
    optional: bool = False  # None (no value) is allowed
    default: Any = MISSING  # as JSON; MISSING: required
    help: str = ""
    choices: tuple = ()  # choice: the Literal's values (text or numbers); union: the tags
    bounds: Bounds = field(default_factory=Bounds)
    model: type[BaseModel] | None = None  # model: its class; union: the chosen member, if any
    members: dict[str, type[BaseModel]] = field(default_factory=dict)  # union: tag -> class
    discriminator: str = ""  # union: the field that names the member
    item: str = ""  # list: the type of its items (int, float, text)
    title: str = ""  # the spec's `Field(title=…)`, where it gives one

    @property
    def dotted(self) -> str:
        return ".".join(self.path)

    @property
    def choice_path(self) -> tuple[str, ...]:
        """Where the value chosen lives: a union's is its discriminator field."""
        return self.path + (self.discriminator,) if self.type == "union" else self.path


def settings_of(kind: str, props: dict) -> list[Setting]:
    """The node's settings in the spec's order; a section's settings follow it (a union's:
    those of the member chosen in `props`; an optional section's: only when it is on)."""
    root = NODE_MODELS[kind]
    if isinstance(root, dict):
        return [s for name, info in root.items()
                for s in _walk((name,), info.annotation, info, props.get(name), None)]
    return _walk((), root, None, props, None)


def _walk(path, annotation, info, value, owner) -> list[Setting]:
    s = describe(path, annotation, info, owner)
    out = [s] if path or s.type == "union" else []  # a node's own model is no section
    if s.type == "model" and (value is not None or not s.optional):
        value = value if isinstance(value, dict) else {}
        out += [x for name, sub in s.model.model_fields.items()
                for x in _walk(path + (name,), sub.annotation, sub, value.get(name), s.model)]
    if s.type == "union":
        value = value if isinstance(value, dict) else {}
        tag = value.get(s.discriminator)
        if tag is None and not s.optional and isinstance(s.default, dict):
            tag = s.default.get(s.discriminator)
        member = s.members.get(tag)
        if member is not None:
            out[-1] = _with(s, model=member)
            out += [x for name, sub in member.model_fields.items() if name != s.discriminator
                    for x in _walk(path + (name,), sub.annotation, sub, value.get(name), member)]
    return out


def _with(s: Setting, **changes) -> Setting:
    return Setting(**{**s.__dict__, **changes})


def describe(path, annotation, info: FieldInfo | None, owner: type[BaseModel] | None) -> Setting:
    """A setting's type, choices, default, bounds and help, read off its annotation and Field."""
    args = get_args(annotation)
    optional = get_origin(annotation) in (Union, types.UnionType) and type(None) in args
    inner = annotation
    if optional:
        rest = [a for a in args if a is not type(None)]
        inner = rest[0] if len(rest) == 1 else Union[tuple(rest)]  # noqa: UP007 (built at run time, not an annotation)
    default = _default(info)
    bounds = _bounds(info, inner)
    help_text = (info.description if info is not None else "") or ""
    common = {"path": path, "optional": optional, "default": default, "bounds": bounds,
              "title": (info.title if info is not None else "") or ""}
    union = _union_of(inner, info)
    if union is not None:
        disc, tags = union
        return Setting(type="union", choices=tuple(tags), members=tags, discriminator=disc,
                       help=help_text or _members_help(tags), **common)
    if get_origin(inner) is Annotated:
        inner = get_args(inner)[0]
    if get_origin(inner) is Literal:
        return Setting(type="choice", choices=tuple(get_args(inner)),  # as the spec has them: 1, 3 for channels
                       help=help_text or _docstring_if_first(path, owner), **common)
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        return Setting(type="model", model=inner, help=help_text or _doc(inner), **common)
    if get_origin(inner) is list:
        item = get_args(inner)[0]
        kind = "models" if isinstance(item, type) and issubclass(item, BaseModel) else "list"
        item = get_args(item)[0] if get_origin(item) is Annotated else item
        return Setting(type=kind, help=help_text, item={int: "int", float: "float"}.get(item, "text"), **common)
    if get_origin(inner) is dict:
        return Setting(type="dict", help=help_text, **common)
    extra = info.json_schema_extra if info is not None and isinstance(info.json_schema_extra, dict) else {}
    simple = {bool: "bool", int: "int", float: "float", str: "text",
              Path: "folder" if extra.get("format") == "directory-path" else "path"}
    return Setting(type=simple.get(inner, "text"), help=help_text, **common)


def _union_of(annotation, info: FieldInfo | None):
    """(discriminator, {tag: class}) when the annotation is a discriminated union."""
    disc = info.discriminator if info is not None else None
    if get_origin(annotation) is Annotated:
        for meta in get_args(annotation)[1:]:
            disc = getattr(meta, "discriminator", None) or disc
        annotation = get_args(annotation)[0]
    if not disc or get_origin(annotation) not in (Union, types.UnionType):
        return None
    return disc, {get_args(m.model_fields[disc].annotation)[0]: m for m in get_args(annotation)}


def _default(info: FieldInfo | None):
    if info is None:
        return MISSING
    if info.default_factory is not None:
        return jsonable(info.default_factory())
    return MISSING if info.default is PydanticUndefined else jsonable(info.default)


def jsonable(value):
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Path):
        return str(value)
    return value


def _bounds(info: FieldInfo | None, inner) -> Bounds:
    found = {}
    metadata = list(info.metadata) if info is not None else []
    if get_origin(inner) is Annotated:  # e.g. Seed = Annotated[int, Field(ge=…)]
        for meta in get_args(inner)[1:]:
            metadata += list(getattr(meta, "metadata", [])) + [meta]
    for meta in metadata:
        for name, cls in (("ge", at.Ge), ("gt", at.Gt), ("le", at.Le), ("lt", at.Lt)):
            if isinstance(meta, cls):
                found[name] = getattr(meta, name)
    return Bounds(**found)


def _doc(model: type[BaseModel]) -> str:
    doc = model.__doc__ or ""
    return "" if doc.startswith(model.__name__ + "(") else inspect.cleandoc(doc)


def _members_help(tags: dict[str, type[BaseModel]]) -> str:
    """'mlp: A multi-layer perceptron …' for each member, from its docstring's first line."""
    return "\n".join(f"{tag}: {_doc(cls).split(chr(10))[0]}" for tag, cls in tags.items())


def _docstring_if_first(path, owner: type[BaseModel] | None) -> str:
    """A model's first choosable setting, when it has no description, is what its docstring
    explains (StudentInit.kind, PruneStep.method)."""
    if owner is None:
        return ""
    for name, info in owner.model_fields.items():
        choices = get_args(info.annotation) if get_origin(info.annotation) is Literal else None
        if choices is not None and len(choices) == 1:
            continue
        return _doc(owner) if name == path[-1] else ""
    return ""


def defaults(model: type[BaseModel]) -> dict:
    """What a fresh section of this class holds: the spec's defaults, and for a required field a
    blank to fill in (a Literal's first value, an empty path, text or list)."""
    out = {}
    for name, info in model.model_fields.items():
        s = describe((name,), info.annotation, info, model)
        value = s.default
        if value is MISSING:
            value = (s.choices[0] if s.type == "choice" else
                     [] if s.type in ("list", "models") else {} if s.type == "dict" else
                     defaults(s.model) if s.type == "model" else
                     defaults(next(iter(s.members.values()))) if s.type == "union" else "")
        if value is not None:
            out[name] = value
    return out


def with_defaults(model: type[BaseModel], value: dict | None) -> dict:
    """A section's values where set, else the spec's defaults: what the engine would read. A
    nested section set in part (a split with only its seed) gets the rest from the defaults."""
    return _merged(defaults(model), value or {})


def _merged(base: dict, value: dict) -> dict:
    out = dict(base)
    for k, v in value.items():
        if v is not None:
            out[k] = _merged(base[k], v) if isinstance(base.get(k), dict) and isinstance(v, dict) else v
    return out


def read_patterns(member: type[BaseModel]) -> tuple[str, ...]:
    """The file names (fnmatch, lower case) a data format reads: its `read_patterns`, else the
    names a drop turns into it (`file_patterns`)."""
    return getattr(member, "read_patterns", None) or getattr(member, "file_patterns", ())


def swap_member(member: type[BaseModel], old: dict | None, old_member: type[BaseModel] | None) -> dict:
    """A union's value after choosing another member: that member's defaults, keeping what the
    old value set for the settings both members share with the same default (e.g. a data
    source's split; not an architecture's depth), and a file the new member reads under the
    same field (a .csv switched from a table to text; not an .npz switched to text)."""
    shared = {name for name, info in member.model_fields.items()
              if old_member is not None and name in old_member.model_fields and not info.is_required()
              and _default(info) == _default(old_member.model_fields[name])}
    keep = {name: v for name, v in (old or {}).items() if name in shared and v is not None}
    if old_member is not None:
        patterns = read_patterns(member)
        for name in set(file_fields(member)) & set(file_fields(old_member)):
            value = (old or {}).get(name)
            if isinstance(value, str) and value and any(
                    fnmatch(PurePath(value).name.lower(), p) for p in patterns):
                keep[name] = value
    return {**defaults(member), **keep}


def path_fields(kind: str | None = None, folders: bool = True) -> tuple[tuple[str, ...], ...]:
    """Where a node's properties (any node's, without `kind`) may hold a file path, in any union
    member: `folders` False leaves out folders (paths that need not exist)."""
    kinds = [kind] if kind else list(NODE_MODELS)
    found: list[tuple[str, ...]] = []
    for k in kinds:
        root = NODE_MODELS[k]
        fields = root.items() if isinstance(root, dict) else [((), root)]
        for name, info in fields:
            if isinstance(info, FieldInfo):
                _paths_in((name,), info.annotation, info, found, folders)
            else:
                _paths_in((), info, None, found, folders)
    return tuple(dict.fromkeys(found))


def _paths_in(path, annotation, info, found: list, folders: bool) -> None:
    s = describe(path, annotation, info, None)
    if s.type == "path" or (folders and s.type == "folder"):
        found.append(path)
    for model in ([s.model] if s.type == "model" else list(s.members.values())):
        for name, sub in model.model_fields.items():
            _paths_in(path + (name,), sub.annotation, sub, found, folders)


def file_fields(member: type[BaseModel], required: bool = False) -> list[str]:
    """The fields of a class that name a file (`required`: those that must, before it is used)."""
    return [name for name, info in member.model_fields.items()
            if (info.is_required() or not required)
            and describe((name,), info.annotation, info, member).type == "path"]


def card_line(member: type[BaseModel], value: dict) -> str:
    """A class's `card` template filled with the section's values (files and folders as base names)."""
    named = {name for name, info in member.model_fields.items()
             if describe((name,), info.annotation, info, member).type in ("path", "folder")}
    shown = {k: base_name(v.rstrip("/\\")) if isinstance(v, str) and k in named else v
             for k, v in with_defaults(member, value).items()}
    shown = {k: ("?" if v in ("", None) else v) for k, v in shown.items()}
    return member.card.format_map(_Blank(shown))


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def base_name(path: str | None) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1] if path else ""


DATA_FORMATS = members(DataSource)  # format -> data class
ARCHITECTURES = members(Architecture)  # kind -> architecture class
