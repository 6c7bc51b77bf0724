"""The input contract and output kind `distill-engine inspect` proposes for a teacher, from
what the file says: its input shape (layout) and the metadata its export script wrote (mean,
std, size, crop, channel order, scale, columns, outputs). Liberal in what it reads, strict in
what it proposes: a value is proposed only when it is unambiguous and `TeacherInput` accepts
it; anything read but not proposed is said in the reasons. Torch-free.
"""

from __future__ import annotations

import math

from pydantic import ValidationError

from engine import model_metadata as md
from engine.spec import TeacherInput

IMAGE_CHANNELS = (1, 3, 4)
LAYOUT_WORDS = {"nhwc": "nhwc", "channels_last": "nhwc", "hwc": "nhwc", "bhwc": "nhwc",
                "nchw": "nchw", "channels_first": "nchw", "chw": "nchw", "bchw": "nchw"}
OUTPUT_WORDS = {"probabilities": "probabilities", "probability": "probabilities", "probs": "probabilities",
                "prob": "probabilities", "softmax": "probabilities", "logits": "logits", "logit": "logits"}


class Proposal:
    """Settings proposed so far, each with the reason a reader is shown, and notes."""

    def __init__(self):
        self.input: dict = {}
        self.outputs: str | None = None
        self.reasons: list[tuple[str | None, str]] = []  # (the setting it is for, or None; text)

    def set(self, field: str, value, why: str) -> None:
        """Propose one input setting, saying why."""
        self.input[field] = value
        self.reasons.append((field, f"{why}: {field} {_shown(value)}"))

    def drop(self, field: str) -> None:
        """Take back a proposed setting and its reason."""
        self.input.pop(field, None)
        self.reasons = [(f, text) for f, text in self.reasons if f != field]

    def note(self, text: str, field: str | None = None) -> None:
        """Something read that is not a setting (or was not proposed), for the reader."""
        self.reasons.append((field, text))

    def as_dict(self) -> dict:
        """The JSON `inspect` prints: proposed settings that differ from the defaults, reasons."""
        out = {"input": self.input, "reasons": [text for _, text in self.reasons]}
        if self.outputs:
            out["outputs"] = self.outputs
        return out


def propose(inputs: list[dict], meta: dict, graph_outputs: tuple[str, str, str] | None = None) -> dict:
    """The proposal for one model: `inputs` as inspect lists them (name, shape), `meta` its
    metadata, `graph_outputs` (output name, kind, why) where the graph shows what the scores are."""
    p = Proposal()
    shape = inputs[0]["shape"] if len(inputs) == 1 else None
    layout = _layout(p, shape, meta)
    channels = _channels(shape, layout)
    spatial = _spatial(shape, layout)
    _size_and_crop(p, meta, spatial)
    _channel_order(p, meta)
    _scale(p, meta)
    _mean_std(p, meta, channels)
    _columns(p, meta)
    _outputs(p, meta, graph_outputs)
    _keep_what_validates(p)
    return p.as_dict()


def _layout(p: Proposal, shape: list | None, meta: dict) -> str | None:
    """nhwc or nchw from a rank-4 input's shape, else from the metadata; None when unclear."""
    from_shape = None
    if shape is not None and len(shape) == 4:
        first, last = shape[1] in IMAGE_CHANNELS, shape[3] in IMAGE_CHANNELS
        dims = _dims(shape)
        if last and not first:
            from_shape, why = "nhwc", f"input {dims} is channels-last"
        elif first and not last:
            from_shape, why = "nchw", f"input {dims} is channels-first"
        elif first and last:
            p.note(f"input {dims} could be channels-first or channels-last: layout left to you")
    found = md.lookup(meta, "layout")
    from_meta = LAYOUT_WORDS.get(md.word(found[1])) if found else None
    if found and from_meta is None:
        p.note(f"metadata {found[0]} '{found[1]}' is not a layout (nchw, nhwc): ignored")
    if from_shape and from_meta and from_shape != from_meta:
        p.note(f"metadata {found[0]} says {from_meta} but input {_dims(shape)} reads as {from_shape}: "
               "layout left to you")
        return None
    if from_shape:
        p.set("layout", from_shape, why)
        return from_shape
    if from_meta:
        p.set("layout", from_meta, f"metadata {found[0]} is '{found[1]}'")
    return from_meta


def _dims(shape: list) -> str:
    """'[N, 28, 28, 1]': a shape with its batch dimension named N."""
    return "[" + ", ".join(["N", *(str(d) for d in shape[1:])]) + "]"


def _channels(shape: list | None, layout: str | None) -> int | None:
    """The channel count a rank-4 input fixes, under the layout."""
    if shape is None or len(shape) != 4 or layout is None:
        return None
    c = shape[3] if layout == "nhwc" else shape[1]
    return c if isinstance(c, int) else None


def _spatial(shape: list | None, layout: str | None) -> list[int] | None:
    """[H, W] when a rank-4 input fixes them."""
    if shape is None or len(shape) != 4 or layout is None:
        return None
    hw = shape[1:3] if layout == "nhwc" else shape[2:4]
    return list(hw) if all(isinstance(d, int) and d > 0 for d in hw) else None


def _hw(values: list[float] | None) -> list[int] | None:
    """[H, W] from '224', '224,224', or timm's [C, H, W] (or [H, W, C])."""
    if not values or any(v != int(v) or v < 1 for v in values):
        return None
    v = [int(x) for x in values]
    if len(v) == 1:
        return [v[0], v[0]]
    if len(v) == 2:
        return v
    if len(v) == 3:
        if v[0] in IMAGE_CHANNELS and v[2] not in IMAGE_CHANNELS:
            return v[1:]
        if v[2] in IMAGE_CHANNELS and v[0] not in IMAGE_CHANNELS:
            return v[:2]
    return None


def _size_and_crop(p: Proposal, meta: dict, spatial: list[int] | None) -> None:
    """size (and crop) from input_size / crop_size / crop_pct, as timm's eval transform: resize
    to input_size / crop_pct, then centre crop to input_size."""
    found = md.lookup(meta, "input_size")
    if not found:
        if spatial:
            p.note(f"the model takes {spatial[0]}×{spatial[1]} images: the data must be that size, "
                   "or set input size")
        return
    size = _hw(md.numbers(found[1]))
    if size is None:
        p.note(f"metadata {found[0]} '{found[1]}' is not a size: ignored")
        return
    crop, size_why = None, f"metadata {found[0]} is {found[1]}"
    crop_size = md.lookup(meta, "crop_size")
    crop_pct = md.lookup(meta, "crop_pct")
    if crop_size and _hw(md.numbers(crop_size[1])):
        crop, crop_why = _hw(md.numbers(crop_size[1])), f"metadata {crop_size[0]} is {crop_size[1]}"
    elif crop_pct:
        pct = (md.numbers(crop_pct[1]) or [None])[0]
        if pct is not None and 0 < pct < 1:
            crop, crop_why = size, f"metadata {crop_pct[0]} {crop_pct[1]} of {found[1]} (timm's eval resize, then crop)"
            size = [math.floor(d / pct) for d in crop]
            size_why = crop_why
        elif pct != 1:
            p.note(f"metadata {crop_pct[0]} '{crop_pct[1]}' is not a fraction in (0, 1]: ignored")
    final = crop or size
    if crop and (crop[0] > size[0] or crop[1] > size[1]):
        p.note(f"crop {crop} is larger than the size {size}: neither proposed")
        return
    if spatial and final != spatial:
        p.note(f"metadata says {final[0]}×{final[1]} but the model takes {spatial[0]}×{spatial[1]}: "
               "size left to you")
        return
    p.set("size", size, size_why)
    if crop:
        p.set("crop", crop, crop_why)
    interp = md.lookup(meta, "interpolation")
    if interp and md.word(interp[1]) not in ("bilinear", "linear", "2"):
        p.note(f"metadata {interp[0]} is '{interp[1]}'; the engine resizes bilinearly")


def _channel_order(p: Proposal, meta: dict) -> None:
    """bgr where the metadata says so (OpenCV-trained models); rgb is the default."""
    found = md.lookup(meta, "channel_order")
    if not found:
        return
    order = md.word(found[1])
    if order == "bgr":
        p.set("channel_order", "bgr", f"metadata {found[0]} is '{found[1]}'")
    elif order != "rgb":
        p.note(f"metadata {found[0]} '{found[1]}' is not rgb or bgr: ignored")


def _scale(p: Proposal, meta: dict) -> None:
    """The factor values are multiplied by first (e.g. 1/255), where the metadata gives one."""
    found = md.lookup(meta, "scale")
    if not found:
        return
    values = md.numbers(found[1])
    if values and len(values) == 1 and values[0] > 0:
        if values[0] != 1.0:
            p.set("scale", values[0], f"metadata {found[0]} is {found[1]}")
    else:
        p.note(f"metadata {found[0]} '{found[1]}' is not one positive number: ignored")


def _mean_std(p: Proposal, meta: dict, channels: int | None) -> None:
    """Per-channel normalisation, where the metadata's values fit the model's channels."""
    for field in ("mean", "std"):
        found = md.lookup(meta, field)
        if not found:
            continue
        values = md.numbers(found[1])
        if values is None:
            p.note(f"metadata {found[0]} '{found[1]}' is not a list of numbers: ignored")
        elif field == "std" and any(v <= 0 for v in values):
            p.note(f"metadata {found[0]} '{found[1]}' holds a value ≤ 0, which no std can be: ignored")
        elif channels is not None and len(values) not in (1, channels):
            p.note(f"metadata {found[0]} has {len(values)} values but the model takes {channels} "
                   f"channel{'s' if channels > 1 else ''}: ignored")
        else:
            p.set(field, values, f"metadata {found[0]} is {found[1]}")


def _columns(p: Proposal, meta: dict) -> None:
    """The table columns a tabular model was trained on, by name, where the metadata lists them."""
    found = md.lookup(meta, "columns")
    names = md.strings(found[1]) if found else None
    if names:
        p.set("columns", names, f"metadata {found[0]} names {len(names)} columns")


def _outputs(p: Proposal, meta: dict, graph: tuple[str, str, str] | None) -> None:
    """What the scores hold: the graph's word first, then the metadata's."""
    found = md.lookup(meta, "outputs")
    from_meta = OUTPUT_WORDS.get(md.word(found[1])) if found else None
    if graph:
        name, kind, why = graph
        p.outputs = kind
        p.note(f"the scores output '{name}' {why}: outputs {kind}", "outputs")
        if from_meta and from_meta != kind:
            p.note(f"metadata {found[0]} says {from_meta}; the graph says {kind}")
    elif from_meta:
        p.outputs = from_meta
        p.note(f"metadata {found[0]} is '{found[1]}': outputs {from_meta}", "outputs")


def _keep_what_validates(p: Proposal) -> None:
    """Drop any proposed input setting the spec refuses, saying why (e.g. a std of 0)."""
    while p.input:
        try:
            TeacherInput.model_validate(p.input)
            return
        except ValidationError as exc:
            first = exc.errors()[0]
            field = first["loc"][0] if first["loc"] else None
            dropped = [field] if field in p.input else [f for f in ("mean", "std") if f in p.input]
            if not dropped:
                dropped = list(p.input)
            for f in dropped:
                p.drop(f)
            p.note(f"not proposed: {', '.join(dropped)} ({first['msg'].removeprefix('Value error, ')})")


def _shown(value) -> str:
    """A proposed value as the reader reads it: lists in brackets, numbers short."""
    if isinstance(value, list):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
