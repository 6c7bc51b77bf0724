"""What a teacher takes from its model file: the classes the file names (or numbered ones, one
per output), and the input contract and output kind `distill-engine inspect` proposes. A
proposal fills only what the user has not set: a value still at the spec's default, or still
what the teacher's previous file proposed. Qt-free.
"""

from __future__ import annotations

import copy

from pydantic import ValidationError

from engine.spec import TeacherInput, TeacherSpec
from gui.document.schema import defaults

OUTPUTS = ("logits", "probabilities")


def file_classes(info: dict | None) -> list[str]:
    """The classes a file names, else one numbered class per output column; [] when unknown."""
    info = info or {}
    classes = info.get("classes")
    if isinstance(classes, list) and classes:
        return [str(c) for c in classes]
    outputs = info.get("outputs") or []
    width = outputs[0]["shape"][-1] if outputs and outputs[0].get("shape") else None
    return [str(i) for i in range(width)] if isinstance(width, int) and not isinstance(width, bool) else []


def proposal(info: dict | None) -> dict:
    """{'input': {...}, 'outputs': ...} as the file proposes them, keeping only what the spec
    accepts (an older engine's answer, or a damaged one, proposes nothing)."""
    proposed = (info or {}).get("proposed")
    if not isinstance(proposed, dict):
        return {"input": {}}
    fields = proposed.get("input") if isinstance(proposed.get("input"), dict) else {}
    fields = {k: v for k, v in fields.items() if k in TeacherInput.model_fields}
    try:
        TeacherInput.model_validate(fields)
    except ValidationError:
        fields = {}
    out = {"input": copy.deepcopy(fields)}
    if proposed.get("outputs") in OUTPUTS:
        out["outputs"] = proposed["outputs"]
    return out


def with_proposal(props: dict, info: dict, previous: dict | None = None) -> dict:
    """A teacher's properties with what its file proposes, where the user has set nothing: a
    value at the spec's default, or the one the previous file (`previous`, its info) gave."""
    new = copy.deepcopy(props)
    before, now = proposal(previous), proposal(info)
    base = defaults(TeacherInput)
    given = dict(new.get("input") or {})
    for field in TeacherInput.model_fields:
        current = given.get(field, base.get(field))
        if field in now["input"] and current in (base.get(field), before["input"].get(field)):
            given[field] = copy.deepcopy(now["input"][field])
        elif field in before["input"] and current == before["input"][field]:
            given[field] = copy.deepcopy(base.get(field))  # the old file's word, not the user's
    new["input"] = given
    default_outputs = TeacherSpec.model_fields["outputs"].default
    if new.get("outputs", default_outputs) in (default_outputs, before.get("outputs")):
        new["outputs"] = now.get("outputs", default_outputs)
    classes = file_classes(info)
    if classes and (new.get("classes") or []) in ([], file_classes(previous) if previous else []):
        new["classes"] = classes  # and a mapping of classes the file no longer has goes
        new["mapping"] = {k: v for k, v in (new.get("mapping") or {}).items() if k in classes}
    return new


def contract_words(props: dict) -> list[str]:
    """The teacher's input contract and output kind in short words, where not the defaults:
    ['input: NHWC · 224×224 · mean/std · ×1/255', 'outputs: probabilities']."""
    given = props.get("input") or {}
    base = defaults(TeacherInput)
    value = {k: given.get(k, base.get(k)) for k in base} | {k: given.get(k) for k in ("size", "crop", "mean",
                                                                                    "std", "columns")}
    bits = []
    if value["layout"] not in (None, "auto"):
        bits.append(str(value["layout"]).upper())
    for field, prefix in (("size", ""), ("crop", "crop ")):
        hw = value.get(field)
        if isinstance(hw, list) and len(hw) == 2:
            bits.append(f"{prefix}{hw[0]}×{hw[1]}")
    if value["channel_order"] not in (None, "rgb"):
        bits.append(str(value["channel_order"]).upper())
    scale = value["scale"]
    if isinstance(scale, (int, float)) and not isinstance(scale, bool) and scale not in (0, 1):
        bits.append(f"×1/{1 / scale:.6g}" if scale < 1 and abs(1 / scale - round(1 / scale)) < 1e-3 else f"×{scale:g}")
    norm = [name for name in ("mean", "std") if value.get(name)]
    if norm:
        bits.append("/".join(norm))
    if value.get("columns"):
        bits.append(f"{len(value['columns'])} columns")
    lines = [f"input: {' · '.join(bits)}"] if bits else []
    outputs = props.get("outputs")
    if outputs in OUTPUTS:
        lines.append(f"outputs: {outputs}")
    return lines
