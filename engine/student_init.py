"""The student's starting weights, as `student.init` asks: random, grown from a teacher
(Net2Net), the FedAvg of the teachers, or copied from a file (also for continual distillation).
The methods themselves are in engine/growth.py."""

from __future__ import annotations

import torch
from torch import nn

from engine import growth
from engine.errors import InputError
from engine.models import require
from engine.spec import PipelineSpec


def init_student(model: nn.Module, spec: PipelineSpec, teachers: list) -> str | None:
    """Set the student's starting weights as the spec asks; says what it did (None: random).
    A student that starts from weights keeps their input normalisation."""
    init = spec.student.init
    path = init.path if init.kind == "weights" else spec.strategy.previous_student if init.kind == "scratch" else None
    if init.kind == "grow":
        teacher = next(t for t in teachers if t.name == init.teacher)
        require(model, "growable", "student.architecture")
        try:
            growth.grow(model, _zoo_model(teacher, "student.init.teacher"), _head_rows(teacher), spec.training.seed)
        except ValueError as exc:
            raise InputError.one("student.architecture", str(exc), getattr(
                exc, "hint", "make the student at least as wide and deep as the teacher it grows from")) from None
        return f"grown from teacher '{teacher.name}' (Net2Net: it starts out computing what the teacher computes)"
    if init.kind == "fedavg":
        states = []
        for t in teachers:
            state = {k: v.clone() for k, v in _zoo_model(t, "student.init").state_dict().items()}
            rows = torch.as_tensor(t.student_index)
            for key in ("head.weight", "head.bias"):  # the student's class order
                ordered = torch.zeros_like(state[key])
                ordered[rows] = state[key]
                state[key] = ordered
            states.append(state)
        model.load_state_dict(growth.average_states(states))
        return f"FedAvg of the {len(teachers)} teachers' weights"
    if path is None:
        return None
    from engine.model_files import load_safetensors, student_metadata

    where = "student.init.path" if init.kind == "weights" else "strategy.previous_student"
    classes, _ = student_metadata(path, where)
    rows = {spec.classes.index(c): i for i, c in enumerate(classes) if c in spec.classes}
    skipped = growth.copy_weights(model, load_safetensors(path, where), rows)
    if skipped:
        raise InputError.one(where, f"{path.name} does not fit the student: {', '.join(skipped[:4])} "
                             "differ in shape", "give the student the architecture of the earlier student")
    return f"started from the weights in {path.name}"


def _zoo_model(teacher, where: str) -> nn.Module:
    """The torch model of a teacher given as zoo weights (growth and FedAvg read its weights)."""
    model = getattr(teacher, "model", None)
    if not hasattr(model, "head"):
        raise InputError.one(where, f"teacher '{teacher.name}' is not zoo weights, so its weights "
                             "cannot be read", "give it as a safetensors or .pt file with its architecture")
    return model


def _head_rows(teacher) -> dict[int, int]:
    return {int(s): i for i, s in enumerate(teacher.student_index)}
