"""The inspector's form for a node, generated from the spec (gui/document/schema.py) with the
layout and wording of form_overrides.py, and what an edit does to the node's properties.
Qt-free: the widgets are made in inspector.py.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from engine.spec import TeacherInput
from gui.document.model import Node, get_in, set_in
from gui.document.schema import (
    DATA_FORMATS,
    MISSING,
    Bounds,
    Setting,
    defaults,
    read_patterns,
    settings_of,
    swap_member,
)
from gui.document.text_info import teacher_text
from gui.panels.form_overrides import override

EDITORS = {"choice": "choice", "union": "choice", "bool": "bool", "int": "int", "float": "float",
           "text": "text", "path": "path", "folder": "folder", "list": "list"}


@dataclass
class FormField:
    path: tuple[str, ...]  # where the value lives in the node's properties
    label: str
    kind: str  # choice, bool, int, float, text, path, folder, list, heading, section, hints, teacher
    choices: list  # the values offered (text or numbers); "" is the choice of no value
    help: str = ""
    default: Any = None  # the spec's; None where it has none
    bounds: Bounds = field(default_factory=Bounds)
    file_filter: str = ""
    optional: bool = False  # an empty text means no value (None)
    none_label: str = "(none)"  # how a choice shows "" (no value)
    section: dict | None = None  # section: what a ticked box puts at `path` (unticked: None)
    members: dict | None = None  # a union's choice: tag -> class, whose defaults a choice fills in
    depth: int = 0  # how deep in sections
    item: str = ""  # list: the type of its items (int, float, text)
    placeholder: str = ""  # what an empty text field shows

    @property
    def dotted(self) -> str:
        return ".".join(self.path)

    def choice_text(self, choice) -> str:
        """How a choice reads in its list: no value as `none_label`, a yes/no as on/off."""
        if choice in ("", None):
            return self.none_label
        if isinstance(choice, bool):
            return "on" if choice else "off"
        return str(choice)


def fields_for(node: Node, teachers: list[str] = ()) -> list[FormField]:
    """The inspector's fields for a node; `teachers`: the names of the teachers linked to the
    student, offered where a setting names a teacher."""
    skip = _other_kind_of_input(node)
    return [f for s in visible_settings(node.kind, node.props)
            if s.dotted not in skip and (f := _field(node, s, teachers))]


_PLAIN_INPUT = TeacherInput().model_dump(mode="json")  # what a teacher's input is when nothing is set
NUMBER_INPUT = {f"input.{k}" for k in ("layout", "size", "crop", "channel_order", "scale", "mean", "std", "columns")}
TEXT_INPUT = {"input.tokenizer", "input.max_length", "input.roles"}


def _other_kind_of_input(node: Node) -> set[str]:
    """A teacher whose file has been read shows only the input settings of its kind: a text
    model its tokenizer, another its image and table settings (unless they are set)."""
    if node.kind != "teacher" or not node.info or "error" in node.info:
        return set()
    plain = _PLAIN_INPUT
    set_here = {f"input.{k}" for k, v in (node.props.get("input") or {}).items() if k in plain and v != plain[k]}
    return (NUMBER_INPUT if teacher_text(node) is not None else TEXT_INPUT) - set_here


def visible_settings(kind: str, props: dict) -> list[Setting]:
    """The node's settings the form shows: not hidden, shown where what they refine is on, and
    not a choice of one value the spec fills in itself (a strategy's or a step's `kind`)."""
    out, hidden = [], []
    for s in settings_of(kind, props):
        o = override(kind, s.dotted)
        if any(s.path[:len(h)] == h for h in hidden) or o.hidden or (o.shown_if and not o.shown_if(props)) \
                or (s.type == "choice" and len(s.choices) == 1 and s.default is not MISSING) \
                or (s.type in ("models", "dict") and not o.widget):
            hidden.append(s.path)
            continue
        out.append(s)
    return out


def _field(node: Node, s: Setting, teachers) -> FormField | None:
    o = override(node.kind, s.dotted)
    path = s.choice_path
    name = path[-1] if s.type != "union" or not s.path else s.path[-1]
    label = o.label or name.replace("_", " ").capitalize()
    default = None if s.default is MISSING else s.default
    if s.type == "union":
        default = (default or {}).get(s.discriminator)
    common = {"help": s.help, "default": default, "bounds": s.bounds, "optional": s.optional,
              "depth": len(s.path) - (0 if s.type in ("model", "union") else 1),
              "none_label": o.none_label or "(none)", "item": s.item, "placeholder": o.placeholder}
    if o.widget == "teacher":
        current = get_in(node.props, path)
        names = ["", *teachers] + ([current] if current and current not in teachers else [])
        return FormField(path, label, "choice", names, **common)
    if o.widget == "hints":
        return FormField(path, label, "hints", [], **common)
    if s.type == "model":
        if s.optional:
            return FormField(path, label, "section", [], section=defaults(s.model), **common)
        return FormField(path, label, "heading", [], **common)
    if s.type == "bool" and s.optional:  # three ways: the spec's own choice (none), on, off
        return FormField(path, label, "choice", ["", True, False], **common)
    choices = [*([""] if s.optional else []), *s.choices] if s.type in ("choice", "union") else []
    file_filter = o.file_filter
    if not file_filter and s.type == "path" and node.kind == "data":
        member = DATA_FORMATS.get(node.props.get("format"))
        patterns = " ".join(read_patterns(member)) if member is not None else ""
        file_filter = f"{node.props.get('format', '').upper()} ({patterns or '*'})"
    return FormField(path, label, EDITORS[s.type], choices, file_filter=file_filter,
                     members=s.members if s.type == "union" else None, **common)


def apply_change(node: Node, f: FormField, value) -> dict:
    """The node's properties after this edit, with what it implies: choosing another member of
    a union fills in that member's defaults; a setting the edit reveals starts at the spec's
    default, and one it hides that has no value of its own (or is reset when hidden) is dropped."""
    props = copy.deepcopy(node.props)
    if f.members is not None:  # a union's choice swaps the section below it
        at = f.path[:-1]
        old = get_in(props, at) if at else props
        old_member = f.members.get((old or {}).get(f.path[-1]))
        new = swap_member(f.members[value], old, old_member) if value else None
        if not at:
            props = new or {}
        else:
            set_in(props, at, new)
    else:
        set_in(props, f.path, value)
    before = {s.path: s for s in visible_settings(node.kind, node.props)}
    after = {s.path: s for s in visible_settings(node.kind, props)}
    for path, s in after.items():
        if path not in before and get_in(props, path) is None and s.default not in (MISSING, None) \
                and s.type not in ("model", "union"):
            set_in(props, path, copy.deepcopy(s.default))
    for path, s in before.items():
        if path not in after and path[:-1] in after | {(): None} \
                and (s.default is None or override(node.kind, s.dotted).reset_when_hidden):
            set_in(props, path, None)
    return props
