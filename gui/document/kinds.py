"""Node kinds, their ports, and what a new node of each kind starts with."""

from __future__ import annotations

from dataclasses import dataclass

from gui.document.schema import DATA_FORMATS, NODE_MODELS, defaults, path_fields, settings_of


@dataclass(frozen=True)
class Port:
    name: str
    accepts: tuple[str, ...] = ()  # for inputs: the node kinds that may connect here
    multi: bool = False  # for inputs: whether several links may arrive


@dataclass(frozen=True)
class Kind:
    name: str
    title: str
    color: str
    description: str
    inputs: tuple[Port, ...] = ()
    outputs: tuple[Port, ...] = ()


KINDS: dict[str, Kind] = {
    "data": Kind("data", "Data source", "#3b82c4",
                 f"The samples the student learns from ({', '.join(DATA_FORMATS)})",
                 outputs=(Port("data"),)),
    "teacher": Kind("teacher", "Teacher", "#d97b2b",
                    "A small expert model (ONNX, safetensors, PyTorch weights)",
                    outputs=(Port("teaches"),)),
    "strategy": Kind("strategy", "Strategy", "#8a5cc2",
                     "How the teachers teach: temperature, labels, teacher weights",
                     outputs=(Port("strategy"),)),
    "student": Kind("student", "Student", "#2f9e6b",
                    "The larger model that learns from every teacher, and how it trains",
                    inputs=(Port("data", ("data",)), Port("teachers", ("teacher",), multi=True),
                            Port("strategy", ("strategy",))),
                    outputs=(Port("model"),)),
    "prune": Kind("prune", "Prune", "#b45309",
                  "Remove small weights or whole units, then fine-tune from the same teachers",
                  inputs=(Port("model", ("student", "prune")),), outputs=(Port("model"),)),
    "quantize": Kind("quantize", "Quantize int8", "#0e7490",
                     "int8 ONNX with onnxruntime, checked on the test split",
                     inputs=(Port("model", ("student", "prune")),), outputs=(Port("model"),)),
    "export": Kind("export", "Export", "#475569",
                   "A verified ONNX model, weights and a report when the run completes",
                   inputs=(Port("model", ("student", "prune", "quantize")),)),
}
CHAIN = ("prune", "quantize", "export")  # the nodes after the student, in a single chain

DIGITS = [str(i) for i in range(10)]

# where node properties hold file paths: files that must exist, then also folders
FILE_FIELDS = path_fields(folders=False)
PATH_FIELDS = path_fields()


def default_props(kind: str) -> dict:
    """What a node dropped from the palette starts with: the spec's own defaults, written out
    so that the inspector shows every setting's value (a required value starts blank: a
    teacher's file, its classes)."""
    if kind not in NODE_MODELS:
        raise KeyError(kind)
    if kind == "student":  # its sections come from several parts of the spec
        top = {s.path[0]: s for s in settings_of(kind, {}) if len(s.path) == 1}
        props = {name: defaults(s.model) if s.type in ("model", "union") else s.default
                 for name, s in top.items()}
        return {**props, "classes": list(DIGITS)}  # as the built-in data's
    root = NODE_MODELS[kind]
    model = next(iter(DATA_FORMATS.values())) if kind == "data" else root
    props = defaults(model)
    return {**props, "name": "teacher"} if kind == "teacher" else props
