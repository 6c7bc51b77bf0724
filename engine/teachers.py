"""Teachers: frozen expert models, run in inference mode, mapped into the student's classes.

ONNX teachers run in onnxruntime (so they can come from any framework); safetensors and
PyTorch state-dict teachers are zoo architectures. Each sees the raw samples through its own
input contract (engine/teacher_input.py). Every teacher is checked against the data (input
shape) and its declared classes (output size) before training starts, and whether its outputs
are probabilities is read off a sample batch when the spec leaves it at `auto`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import torch

from engine.errors import InputError
from engine.model_files import (
    check_float_weights,
    check_readable,
    load_safetensors,
    load_state_dict_pt,
    load_torchscript,
    pruned_widths,
    read_onnx,
    sha256_of,
    student_metadata,
)
from engine.models import fit_weights
from engine.spec import PipelineSpec, TeacherSpec
from engine.teacher_checks import Finding, looks_like_probabilities
from engine.teacher_input import InputAdapter

INPUT_BYTES = 256 * 2**20  # the most one batch of a teacher's inputs may take


class Teacher(ABC):
    """A loaded teacher: `predict` gives logits over its own classes, in its output order."""

    adapter: InputAdapter  # the raw samples as this teacher takes them

    def __init__(self, spec: TeacherSpec, student_classes: list[str], where: str):
        self.spec = spec
        self.name = spec.name
        self.where = where
        index = {c: i for i, c in enumerate(student_classes)}
        self.student_index = np.array([index[c] for c in spec.student_classes_of()], dtype=np.int64)
        self.sha256 = sha256_of(spec.path)
        self.outputs = spec.outputs  # "auto" until a sample batch has been seen (load_teachers)
        self.findings: list[Finding] = []  # what loading decided or noticed, for the log and the node

    @property
    def cache_key(self) -> str:
        """Everything besides the data that decides this teacher's outputs."""
        return f"{self.sha256}|{self.outputs}|{self.adapter.key}"

    fixed_batch: int | None = None  # a model exported for exactly this many samples per call

    def batches(self, x: np.ndarray, batch_size: int = 1024):
        """(inputs as the model takes them, how many of their rows are real samples), in batches
        whose inputs stay within INPUT_BYTES however large the contract resizes them; a model of
        a fixed batch size gets exactly that many (the last batch padded)."""
        n = self.fixed_batch or max(1, min(batch_size, INPUT_BYTES // self.adapter.bytes_per_sample))
        for i in range(0, len(x), n):
            chunk = x[i:i + n]
            real = len(chunk)
            if self.fixed_batch and real < n:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], n - real, axis=0)])
            yield self.adapter(chunk), real

    def raw(self, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """The model's own outputs on raw samples (seen through its input contract)."""
        outs: list[np.ndarray] = []
        for inputs, real in self.batches(x, batch_size):
            out = np.asarray(self.guarded(self._run, inputs))
            rows = rows_of(inputs)
            if out.ndim == 0 or out.shape[0] != rows or (outs and out.shape[1:] != outs[0].shape[1:]):
                raise self._rows_error(rows, list(out.shape), list(outs[0].shape) if outs else None)
            outs.append(out[:real])
        return np.concatenate(outs)

    def _rows_error(self, rows: int, shape: list[int], before: list[int] | None) -> InputError:
        said = (f"gives outputs shaped {shape} for {rows} samples" if before is None or shape[:1] != [rows]
                else f"gives outputs shaped {shape} for {rows} samples, and {before} for {before[0]}")
        return InputError.one(f"{self.where}.path", f"teacher '{self.name}' {said}: a teacher's output "
                              "must be [batch, classes], one row per sample, whatever the batch size "
                              "(this one may be transposed, or depend on the batch)",
                              "export the model with the batch as the first dimension of its output",
                              "shape_mismatch")

    def guarded(self, run, inputs: np.ndarray):
        """`run(inputs)`, with a failure of the model on them (onnxruntime and torch raise their
        own types) told as a problem of this teacher's input."""
        try:
            return run(inputs)
        except (InputError, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 — the model's own runtime failed on these inputs
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:300]
            raise InputError.one(f"{self.where}.input", f"teacher '{self.name}' fails on its input "
                                 f"{shape_words(inputs)} ({self.adapter.describe()}): {first}",
                                 "set its input contract to what the model takes (layout, size, "
                                 "columns), or check that the file is the model you meant", "shape_mismatch") from None

    def predict(self, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Logits over the teacher's classes, in its output order, float32 [N, classes]."""
        out = self.raw(x, batch_size)
        if out.ndim != 2 or out.shape[1] != len(self.spec.classes):
            raise InputError.one(
                f"{self.where}.classes", f"teacher '{self.name}' gives {out.shape[-1]} outputs per "
                f"sample but declares {len(self.spec.classes)} classes",
                "list exactly the classes the model outputs, in its output order", "shape_mismatch")
        if self.outputs == "probabilities":
            out = np.log(np.clip(out, 1e-8, None))  # log-probabilities are valid logits
        if not np.isfinite(out).all():
            raise InputError.one(self.where, f"teacher '{self.name}' outputs NaN or infinite values",
                                 "check the model file; it may be damaged", "corrupt_model")
        return out.astype(np.float32)

    @abstractmethod
    def _run(self, x: np.ndarray) -> np.ndarray:
        """Raw model outputs for one batch."""

    def features(self, x: np.ndarray, layer: str, where: str, batch_size: int = 1024) -> np.ndarray:
        """The output of an intermediate layer (for feature hints), float32 [N, ...]."""
        raise InputError.one(where, f"teacher '{self.name}' is TorchScript, whose layers cannot "
                             "be read for hints", "export it to ONNX, or drop the hint")

    def _layer_error(self, layer: str, where: str, names: list[str]) -> InputError:
        shown = ", ".join(names[:30]) + (", …" if len(names) > 30 else "")
        return InputError.one(where, f"teacher '{self.name}' has no layer '{layer}'",
                              f"use one of: {shown}")


def onnx_session(spec: TeacherSpec, where: str, threads: int):
    """(the onnxruntime session of an ONNX teacher, its metadata, the name of its per-class
    scores output)."""
    import onnxruntime as ort

    proto = read_onnx(spec.path, f"{where}.path")
    metadata = {p.key: p.value for p in proto.metadata_props}
    missing = missing_locales(proto)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # no busy-waiting between calls: with several teachers (and torch) sharing the cores,
    # spinning threads would take the CPU from the others
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        if missing:
            session = ort.InferenceSession(with_c_locale(proto), options, providers=["CPUExecutionProvider"])
            metadata["distill-studio:note"] = (
                f"teacher '{spec.name}' lower-cases text in a locale this machine lacks ({', '.join(missing)}; "
                "en_US.UTF-8 is onnxruntime's default, e.g. for skl2onnx text pipelines): it runs with "
                "C.UTF-8 instead, the same for ASCII text")
        else:
            session = ort.InferenceSession(str(spec.path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types per failure
        raise InputError.one(f"{where}.path", f"onnxruntime cannot load {spec.path.name}: "
                             f"{str(exc).splitlines()[0][:200]}",
                             "re-export the model with a standard opset", "corrupt_model") from None
    # the scores: the first float output with one row per sample (skl2onnx classifiers give a
    # label tensor first and the probabilities second)
    scores = [o for o in session.get_outputs()
              if o.type in ("tensor(float)", "tensor(double)", "tensor(float16)") and len(o.shape) == 2]
    if not scores:
        kinds = ", ".join(f"{o.name}: {o.type}" for o in session.get_outputs())
        raise InputError.one(f"{where}.path", f"{spec.path.name} has no output of per-class "
                             f"scores ({kinds})",
                             "export it with a [batch, classes] float output; for scikit-learn "
                             "use skl2onnx with options {'zipmap': False}", "shape_mismatch")
    return session, metadata, scores[0].name


def missing_locales(proto) -> list[str]:
    """The locales the model's StringNormalizers lower-case in that this machine lacks."""
    import locale

    wanted = {next((a.s.decode() for a in n.attribute if a.name == "locale"), "en_US.UTF-8")
              for n in proto.graph.node if n.op_type == "StringNormalizer"}
    missing = []
    for name in sorted(wanted):
        old = locale.setlocale(locale.LC_CTYPE)
        try:
            locale.setlocale(locale.LC_CTYPE, name)
        except locale.Error:
            missing.append(name)
        finally:
            locale.setlocale(locale.LC_CTYPE, old)
    return missing


def with_c_locale(model) -> bytes:
    """The model (its bytes; the file is untouched) with every StringNormalizer set to the C.UTF-8
    locale, which every Linux has: onnxruntime fails to load one whose locale (by default
    en_US.UTF-8) is not installed."""
    import onnx

    for node in model.graph.node:
        if node.op_type == "StringNormalizer":
            kept = [a for a in node.attribute if a.name != "locale"]
            del node.attribute[:]
            node.attribute.extend(kept + [onnx.helper.make_attribute("locale", "C.UTF-8")])
    return model.SerializeToString()


class OnnxTeacher(Teacher):
    def __init__(self, spec: TeacherSpec, student_classes: list[str], where: str,
                 sample_shape: tuple[int, ...], threads: int, table=None):
        super().__init__(spec, student_classes, where)
        self.session, self.metadata, self.output_name = onnx_session(spec, where, threads)
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise InputError.one(f"{where}.path", f"{spec.path.name} has {len(inputs)} inputs "
                                 f"({', '.join(i.name for i in inputs)})", "a teacher of images or "
                                 "tables takes exactly one input: the samples (several inputs are "
                                 "read for text teachers: token ids, mask, type ids)", "shape_mismatch")
        self.input_name = inputs[0].name
        dtype = INPUT_TYPES.get(inputs[0].type)
        if dtype is None:
            raise InputError.one(f"{where}.path", f"{spec.path.name} takes {inputs[0].type} input",
                                 "a teacher takes numbers: float, double or uint8", "shape_mismatch")
        dims = tuple(d if isinstance(d, int) and d > 0 else None for d in inputs[0].shape[1:])
        batch = inputs[0].shape[0] if inputs[0].shape else None
        self.fixed_batch = batch if isinstance(batch, int) and batch > 0 else None
        self.adapter = InputAdapter(spec.input, sample_shape, dims, dtype, table, f"{where}.input", self.name)

    def features(self, x: np.ndarray, layer: str, where: str, batch_size: int = 1024) -> np.ndarray:
        import onnx
        import onnxruntime as ort

        model = read_onnx(self.spec.path, where)
        names = [o for node in model.graph.node for o in node.output if o]
        if layer not in names:
            raise self._layer_error(layer, where, names)
        model.graph.output.append(onnx.helper.make_empty_tensor_value_info(layer))
        try:
            # the C.UTF-8 locale where the model's is missing, as its session has (onnx_session)
            session = ort.InferenceSession(with_c_locale(model) if missing_locales(model) else
                                           model.SerializeToString(), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types per failure
            raise InputError.one(where, f"onnxruntime cannot read layer '{layer}' of {self.spec.path.name}: "
                                 f"{(str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]}",
                                 "hint another layer, or drop the hint", "corrupt_model") from None
        return np.concatenate([self.guarded(lambda b: session.run([layer], self.feeds(b))[0], inputs)[:real]
                               for inputs, real in self.batches(x, batch_size)]).astype(np.float32)

    def feeds(self, inputs) -> dict[str, np.ndarray]:
        """The session's inputs for one batch the adapter made."""
        return {self.input_name: inputs}

    def _run(self, x) -> np.ndarray:
        return self.session.run([self.output_name], self.feeds(x))[0]


INPUT_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(uint8)": np.uint8}


def rows_of(inputs) -> int:
    """Samples in one batch of a teacher's inputs: an array, or named arrays (a text teacher's)."""
    return len(next(iter(inputs.values()))) if isinstance(inputs, dict) else len(inputs)


def shape_words(inputs) -> str:
    """One batch's input shape per sample, for a message."""
    if isinstance(inputs, dict):
        return ", ".join(f"{k} {list(v.shape[1:])}" for k, v in inputs.items())
    return str(list(inputs.shape[1:]))


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

