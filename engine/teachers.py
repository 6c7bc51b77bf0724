"""Teachers: frozen expert models, run in inference mode, mapped into the student's classes.

ONNX teachers run in onnxruntime (so they can come from any framework); safetensors and
PyTorch state-dict teachers are zoo architectures; text teachers are ONNX files fed the raw
texts (engine/text_teachers.py). The interface and the ONNX teacher are in
engine/teacher_base.py. Each sees the raw samples through its own
input contract (engine/teacher_input.py). Every teacher is checked against the data (input
shape) and its declared classes (output size) before training starts, and whether its outputs
are probabilities is read off a sample batch when the spec leaves it at `auto`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from engine.errors import InputError, Problem
from engine.model_files import (
    check_float_weights,
    check_readable,
    load_safetensors,
    load_state_dict_pt,
    load_torchscript,
    pruned_widths,
    student_metadata,
)
from engine.models import fit_weights
from engine.spec import PipelineSpec, TeacherSpec
from engine.teacher_base import INPUT_BYTES, OnnxTeacher, Teacher  # noqa: F401  (imported from here too)
from engine.teacher_checks import Finding, looks_like_probabilities
from engine.teacher_input import InputAdapter


class ZooTeacher(Teacher):
    """Weights (safetensors or a PyTorch state dict) for a zoo architecture, run where the
    student trains (a GPU when there is one: `device`)."""

    def __init__(self, spec: TeacherSpec, student_classes: list[str], where: str,
                 sample_shape: tuple[int, ...], table=None, device: torch.device | None = None):
        super().__init__(spec, student_classes, where)
        fmt = spec.resolved_format
        state = (load_safetensors if fmt == "safetensors" else load_state_dict_pt)(spec.path, f"{where}.path")
        check_float_weights(state, spec.path, f"{where}.path")  # a .pt state dict as well
        self.adapter = InputAdapter(spec.input, sample_shape, None, np.float32, table, f"{where}.input", self.name)
        self.model = fit_weights(spec.architecture, self.adapter.out_shape, len(spec.classes),
                                 f"{where}.architecture", state, spec.path.name,
                                 widths=pruned_widths(spec.path, f"{where}.path") if fmt == "safetensors" else None)
        self.device = device or torch.device("cpu")
        self.model.to(self.device)

    @torch.inference_mode()
    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.model(torch.from_numpy(x).to(self.device)).float().cpu().numpy()

    @torch.inference_mode()
    def features(self, x: np.ndarray, layer: str, where: str, batch_size: int = 1024) -> np.ndarray:
        modules = dict(self.model.named_modules())
        if layer not in modules or not layer:
            raise self._layer_error(layer, where, [n for n in modules if n])
        out: list[torch.Tensor] = []
        hook = modules[layer].register_forward_hook(lambda _m, _i, o: out.append(o.float()))
        try:
            for inputs, _ in self.batches(x, batch_size):
                self.guarded(lambda b: self.model(torch.from_numpy(b).to(self.device)), inputs)
        finally:
            hook.remove()
        return torch.cat(out).cpu().numpy()


class ScriptTeacher(Teacher):
    """A TorchScript module, loaded only because the user marked the file trusted."""

    def __init__(self, spec: TeacherSpec, student_classes: list[str], where: str,
                 sample_shape: tuple[int, ...], table=None):
        super().__init__(spec, student_classes, where)
        self.model = load_torchscript(spec.path, f"{where}.trusted", spec.trusted)
        self.adapter = InputAdapter(spec.input, sample_shape, None, np.float32, table, f"{where}.input", self.name)

    @torch.inference_mode()
    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.model(torch.from_numpy(x)).float().numpy()


def load_teachers(spec: PipelineSpec, probe: np.ndarray, threads: int, table=None) -> list[Teacher]:
    """Load every teacher and try it on `probe` (a few samples of the data), or raise one
    InputError listing every teacher that cannot be used. `table`: the data's columns, when it
    is a table (engine/data/table.py), for teachers that name theirs."""
    sample_shape = tuple(probe.shape[1:])
    device = teacher_device(spec)
    teachers, problems = [], []
    for i, t in enumerate(spec.teachers):
        where = f"teachers[{i}]"
        try:
            fmt = check_readable(Path(t.path), f"{where}.path", t.format)
            if fmt != t.resolved_format:
                raise InputError.one(f"{where}.format", f"{t.path.name} looks like {fmt}, but the "
                                     f"spec says {t.resolved_format}", "fix `format` or the file")
            if probe.dtype == object:  # texts: each teacher reads them through its own tokenizer
                from engine.text_teachers import text_teacher

                teacher = text_teacher(t, spec.classes, where, fmt, threads)
            else:
                kind = OnnxTeacher if fmt == "onnx" else ScriptTeacher if fmt == "torchscript" else ZooTeacher
                teacher = kind(t, spec.classes, where, sample_shape, *([threads] if kind is OnnxTeacher else []),
                               table=table, **({"device": device} if kind is ZooTeacher else {}))
            try_on(teacher, probe)
            teachers.append(teacher)
        except InputError as exc:
            problems.extend(exc.problems)
    if spec.strategy.previous_student is not None and not problems:
        teachers.append(previous_student(spec, sample_shape))
    if problems:
        raise InputError(problems, kind="invalid_teacher")
    return teachers


def teacher_file_problems(spec: PipelineSpec) -> list[Problem]:
    """What can be found wrong in the teachers' files without data to try them on (the data
    could not be read): each file is read as `distill-engine inspect` reads it, so a check
    lists a missing or damaged teacher beside the data's problem. TorchScript is not opened:
    loading it runs its code, which only a run of a trusted file does."""
    from engine.inspect_model import inspect_model

    problems = []
    for i, t in enumerate(spec.teachers):
        where = f"teachers[{i}].path"
        try:
            if t.resolved_format == "torchscript":
                check_readable(Path(t.path), where, t.format)
            else:
                inspect_model(Path(t.path), t.input.tokenizer, t.input.roles or None)
        except InputError as exc:
            problems.extend(Problem(where, p.message, p.hint) for p in exc.problems)
    return problems


def try_on(teacher: Teacher, probe: np.ndarray) -> None:
    """Run a loaded teacher on a few samples: one row per sample at two batch sizes, the output
    width, finite values; and read whether its outputs are probabilities."""
    raw = teacher.raw(probe)
    if len(probe) > 1:  # one row per sample at another batch size too: not [classes, batch]
        fewer = teacher.raw(probe[:-1])
        if fewer.shape[1:] != raw.shape[1:]:
            raise teacher._rows_error(len(fewer), list(fewer.shape), list(raw.shape))
    read_outputs(teacher, raw)
    teacher.predict(probe)  # output width and finiteness, before any training


def teacher_device(spec: PipelineSpec) -> torch.device:
    """Where torch teachers run: on the student's GPU when it trains on one (under torchrun,
    this rank's), else on the CPU. ONNX teachers run in onnxruntime on the CPU."""
    from engine.device import choose_device

    try:
        device = choose_device(spec.training.device)
    except InputError:  # said where the run picks its device
        return torch.device("cpu")
    return torch.device("cuda", torch.cuda.current_device()) if device.type == "cuda" else torch.device("cpu")


def read_outputs(teacher: Teacher, raw: np.ndarray) -> None:
    """Decide (`auto`) or check (declared) whether the outputs are probabilities: rows that are
    non-negative and sum to 1 are, whatever the output is called."""
    looks = looks_like_probabilities(raw)
    where, name = f"{teacher.where}.outputs", teacher.name
    if teacher.adapter.notes:
        teacher.findings += [Finding(name, teacher.where, "info", note) for note in teacher.adapter.notes]
    seen_as = teacher.adapter.describe()
    if seen_as != "as the data holds it":
        teacher.findings.append(Finding(name, f"{teacher.where}.input", "info",
                                        f"teacher '{name}' sees the samples as: {seen_as}"))
    if teacher.outputs == "auto":
        teacher.outputs = "probabilities" if looks else "logits"
        if looks:
            teacher.findings.append(Finding(
                name, where, "info", f"teacher '{name}' outputs probabilities (every row of a sample "
                "batch is non-negative and sums to 1): they are read as probabilities",
                "set outputs to logits if that is wrong"))
    elif teacher.outputs == "logits" and looks:
        teacher.findings.append(Finding(
            name, where, "warning", f"teacher '{name}' is declared to output logits, but every row "
            "of a sample batch is non-negative and sums to 1: these look like probabilities, and "
            "read as logits they teach a much flatter distribution", "set outputs to probabilities "
            "(or auto)"))
    elif teacher.outputs == "probabilities" and not looks:
        teacher.findings.append(Finding(
            name, where, "warning", f"teacher '{name}' is declared to output probabilities, but its "
            "rows do not sum to 1 (or hold negative values): these look like logits",
            "set outputs to logits (or auto)"))


PREVIOUS_STUDENT = "previous student"


def previous_student(spec: PipelineSpec, sample_shape: tuple[int, ...]) -> Teacher:
    """Continual distillation: the earlier student stays on as a teacher of what it knew, so a
    new teacher's classes are added without forgetting the old ones (Li & Hoiem, "Learning
    without Forgetting", ECCV 2016)."""
    where = "strategy.previous_student"
    path = spec.strategy.previous_student
    check_readable(path, where, "safetensors")
    classes, arch = student_metadata(path, where)
    unknown = [c for c in classes if c not in spec.classes]
    if unknown:
        raise InputError.one(where, f"the previous student knows classes the new one lacks: "
                             f"{', '.join(unknown[:5])}", "keep every old class in the student's classes")
    t = TeacherSpec(name=PREVIOUS_STUDENT, path=path, format="safetensors", classes=classes,
                    architecture=arch, outputs="logits")
    return ZooTeacher(t, spec.classes, where, sample_shape, device=teacher_device(spec))

