"""Node kinds, their ports, and what a new node of each kind starts with."""

from __future__ import annotations

from dataclasses import dataclass

from engine.spec import (
    BuiltinData,
    ExportSpec,
    MlpArch,
    PruneStep,
    QuantizeStep,
    StrategySpec,
    StudentInit,
    TrainingSpec,
)


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
                 "The samples the student learns from (digits, .npz, CSV, IDX)",
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
FILE_FIELDS = (("path",), ("images",), ("labels",), ("previous_student",), ("init", "path"))
PATH_FIELDS = FILE_FIELDS + (("folder",),)


def default_props(kind: str) -> dict:
    """What a node dropped from the palette starts with: the spec's own defaults, written out
    so that the inspector shows every setting's value."""
    if kind == "data":
        return BuiltinData(name="digits").model_dump(mode="json", exclude_none=True)
    if kind == "teacher":  # empty until a model file is chosen
        return {"name": "teacher", "path": "", "classes": [], "mapping": {}, "weight": 1.0,
                "outputs": "logits"}
    if kind == "strategy":
        return StrategySpec().model_dump(mode="json")
    if kind == "student":
        return {"classes": list(DIGITS),
                "architecture": MlpArch().model_dump(mode="json"),
                "init": StudentInit().model_dump(mode="json", exclude_none=True),
                "training": TrainingSpec(epochs=20, lr=0.002).model_dump(mode="json", exclude_none=True)}
    if kind == "prune":
        return PruneStep().model_dump(mode="json")
    if kind == "quantize":
        return QuantizeStep().model_dump(mode="json")
    if kind == "export":
        return {"folder": "", "safetensors": ExportSpec().safetensors}
    raise KeyError(kind)
