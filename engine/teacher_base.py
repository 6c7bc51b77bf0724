"""The teacher interface (`Teacher`: logits over its own classes, in its output order, from raw
samples seen through its input contract) and the ONNX teacher, run in onnxruntime so it can come
from any framework. engine/teachers.py loads teachers of every kind; engine/text_teachers.py
builds on the ONNX teacher for text.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from engine.errors import InputError
from engine.model_files import read_onnx, sha256_of
from engine.spec import TeacherSpec
from engine.teacher_checks import Finding
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
                                 f"set its input contract to what the model takes ({self.adapter.fields}), "
                                 "or check that the file is the model you meant", "shape_mismatch") from None

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
