"""Node kinds, their ports, and what a new node of each kind starts with."""

from __future__ import annotations

from dataclasses import dataclass

from engine.spec import BuiltinData, MlpArch, StrategySpec, TrainingSpec


@dataclass(frozen=True)
class Port:
    name: str
    accepts: str = ""  # for inputs: the node kind that may connect here
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
                    inputs=(Port("data", "data"), Port("teachers", "teacher", multi=True),
                            Port("strategy", "strategy"))),
}

DIGITS = [str(i) for i in range(10)]


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
                "training": TrainingSpec(epochs=20, lr=0.002).model_dump(mode="json", exclude_none=True)}
    raise KeyError(kind)
