"""Reading model files from elsewhere without running anything they contain.

ONNX is parsed as protobuf and checked (external data must stay inside the model's folder);
safetensors is a JSON header plus raw tensors; `.pt`/`.pth` go only through
`torch.load(weights_only=True)`, with no fallback. Anything else is refused with a message.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

from engine.errors import InputError

FORMATS = {".onnx": "onnx", ".safetensors": "safetensors", ".pt": "pytorch", ".pth": "pytorch"}
_SAFETENSORS_MAX_HEADER = 100 * 1024 * 1024
_DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2,
                "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_readable(path: Path, where: str, declared: str | None = None) -> str:
    """The file's format (TorchScript only when declared), after checking it exists and is not
    empty."""
    if not path.exists():
        raise InputError.one(where, f"no model file at {path}", "check the path", "missing_file")
    if not path.is_file():
        raise InputError.one(where, f"{path} is not a file", "point to the model file itself")
    if path.stat().st_size == 0:
        raise InputError.one(where, f"{path.name} is empty (0 bytes)",
                             "the file was not saved completely; export or copy it again",
                             "corrupt_model")
    fmt = "torchscript" if declared == "torchscript" else FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError.one(where, f"'{path.suffix or path.name}' is not a model format "
                             "Distill Studio reads", "use .onnx, .safetensors, .pt or .pth",
                             "unsupported_format")
    return fmt


def read_onnx(path: Path, where: str):
    """Parse and check an ONNX model; refuse external data that points outside its folder."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(path), load_external_data=False)
        _check_external_data(model, path, where)  # first: the checker would follow the paths
        onnx.checker.check_model(model)
        _check_static_sizes(model, path, where)
    except InputError:
        raise
    except (DecodeError, onnx.checker.ValidationError, ValueError, RuntimeError, RecursionError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise InputError.one(where, f"{path.name} is not a valid ONNX model ({first})",
                             "re-export the model to ONNX; the file may be damaged or of "
                             "another format", "corrupt_model") from None
    return model


def _check_external_data(model, path: Path, where: str) -> None:
    import onnx

    folder = path.resolve().parent
    for tensor in _onnx_tensors(model):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = {e.key: e.value for e in tensor.external_data}.get("location", "")
        target = (folder / location).resolve()
        if os.path.isabs(location) or ".." in Path(location).parts or not target.is_relative_to(folder):
            raise InputError.one(where, f"{path.name} asks to read '{location}', outside its folder",
                                 "keep a model's external data files beside it; this file is "
                                 "refused because it could read any file", "unsafe_model")
        if not target.is_file():
            raise InputError.one(where, f"{path.name} needs its external data file '{location}'",
                                 "copy that file into the model's folder", "missing_file")


ONNX_MAX_TENSOR_BYTES = 2**30  # the most one constant, or a node's statically known output, may take
_GROWING = {"ConstantOfShape", "Expand", "Tile"}  # ops whose output size comes from an input's values


def _check_static_sizes(model, path: Path, where: str) -> None:
    """Refuse a graph whose constants, or the outputs of ConstantOfShape / Expand / Tile with
    constant shapes, would take more than ONNX_MAX_TENSOR_BYTES: a small file must not make
    onnxruntime allocate gigabytes when it folds them at load."""
    from onnx import helper, numpy_helper

    def too_big(what: str, shape, nbytes: int) -> InputError:
        return InputError.one(where, f"{path.name}: {what} has shape {list(shape)[:8]}, which would take "
                              f"{nbytes / 2**30:.1f} GiB (more than the {ONNX_MAX_TENSOR_BYTES >> 30} GiB "
                              "a model's constant may take; a damaged or forged model)",
                              "re-export the model; its constants should be the size of its weights",
                              "corrupt_model")

    def itemsize(data_type: int) -> int:
        try:
            return max(helper.tensor_dtype_to_np_dtype(data_type).itemsize, 1)
        except (KeyError, ValueError, TypeError):
            return 1

    constants = {}
    for tensor in _onnx_tensors(model):
        nbytes = math.prod(tensor.dims) * itemsize(tensor.data_type)
        if nbytes > ONNX_MAX_TENSOR_BYTES:
            raise too_big(f"tensor '{tensor.name}'", tensor.dims, nbytes)
        if tensor.name:
            constants[tensor.name] = tensor
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.name == "value" and attr.HasField("t"):
                    constants[node.output[0]] = attr.t
    for node in model.graph.node:
        if node.op_type not in _GROWING or len(node.input) < (1 if node.op_type == "ConstantOfShape" else 2):
            continue
        sizes = constants.get(node.input[0 if node.op_type == "ConstantOfShape" else 1])
        if sizes is None or sizes.data_location == 1:
            continue  # not known before the model runs (the batch then bounds it)
        try:
            values = [int(v) for v in numpy_helper.to_array(sizes).reshape(-1)]
        except (ValueError, TypeError, OverflowError):
            continue
        count = math.prod(max(v, 1) for v in values)
        source = constants.get(node.input[0]) if node.op_type != "ConstantOfShape" else None
        if node.op_type == "Tile" and source is not None:
            count *= math.prod(source.dims)
        value = next((a.t for a in node.attribute if a.name == "value" and a.HasField("t")), None)
        width = itemsize(value.data_type) if value is not None else 4
        if count * width > ONNX_MAX_TENSOR_BYTES:
            raise too_big(f"the output of {node.op_type} node '{node.name or node.output[0]}'", values,
                          count * width)


def _onnx_tensors(model):
    """Every tensor a model holds: initializers (dense and sparse) and node attributes, in the
    main graph, in every subgraph (If, Loop, Scan bodies, however deep) and in local functions.
    Walked with a stack: a deep nesting cannot exhaust Python's recursion limit."""
    graphs = [model.graph]
    nodes = [node for function in model.functions for node in function.node]
    while graphs or nodes:
        if graphs:
            graph = graphs.pop()
            yield from graph.initializer
            for sparse in graph.sparse_initializer:
                yield sparse.values
                yield sparse.indices
            nodes.extend(graph.node)
            continue
        for attr in nodes.pop().attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("sparse_tensor"):
                yield attr.sparse_tensor.values
                yield attr.sparse_tensor.indices
            for sparse in attr.sparse_tensors:
                yield sparse.values
                yield sparse.indices
            if attr.HasField("g"):
                graphs.append(attr.g)
            graphs.extend(attr.graphs)


def read_safetensors_header(path: Path, where: str) -> dict:
    """The JSON header of a safetensors file, with its size checked before reading it."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if n <= 0 or n > min(size - 8, _SAFETENSORS_MAX_HEADER):
            raise InputError.one(where, f"{path.name} is not a valid safetensors file "
                                 "(bad header size)", "save the weights again with safetensors",
                                 "corrupt_model")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise InputError.one(where, f"{path.name} has a damaged safetensors header",
                                 "save the weights again with safetensors", "corrupt_model") from None
    if not isinstance(header, dict):
        raise InputError.one(where, f"{path.name} has a damaged safetensors header",
                             "save the weights again with safetensors", "corrupt_model")
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        shown = type(meta).__name__ if not isinstance(meta, dict) else "a map with values that are not text"
        raise InputError.one(where, f"{path.name} has a damaged safetensors header: its __metadata__ "
                             f"is {shown}, not a map of text to text",
                             "save the weights again with safetensors", "corrupt_model")
    data_len = size - 8 - n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = (info.get("data_offsets") or [0, -1]) if isinstance(info, dict) else (0, -1)
        shape = info.get("shape") if isinstance(info, dict) else None
        width = _DTYPE_BYTES.get(info.get("dtype")) if isinstance(info, dict) else None
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)) or \
                width is None or not isinstance(begin, int) or not isinstance(end, int) or \
                end - begin != math.prod(shape) * width:
            raise InputError.one(where, f"{path.name}: tensor '{name}' has a size that does not "
                                 "match its shape and type (damaged or forged header)",
                                 "save the weights again with safetensors", "corrupt_model")
        if not (0 <= begin <= end <= data_len):
            raise InputError.one(where, f"{path.name}: tensor '{name}' lies outside the file "
                                 "(truncated or damaged)", "copy or save the file again",
                                 "corrupt_model")
    return header


def load_safetensors(path: Path, where: str) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    read_safetensors_header(path, where)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError.one(where, f"{path.name} cannot be read as safetensors ({exc})",
                             "save the weights again with safetensors", "corrupt_model") from None
    return check_float_weights(state, path, where)


def check_float_weights(state: dict, path: Path, where: str) -> dict:
    """`state` if every tensor holds floating-point numbers, as a model's weights do (a batch
    norm's step count aside); an integer type (F32 bytes relabelled I32, say) would be cast to
    absurd weights without a word, so it is refused with the tensor's name."""
    from engine.text_safety import quoted

    for name, tensor in state.items():
        if not tensor.is_floating_point() and not name.endswith("num_batches_tracked"):
            raise InputError.one(where, f"{path.name}: tensor {quoted(name)} holds "
                                 f"{str(tensor.dtype).removeprefix('torch.')} values, where weights are "
                                 "floating-point numbers", "the file's types were changed, or it holds "
                                 "something else: save the model's weights again (float32, float16 or "
                                 "bfloat16)", "corrupt_model")
    return state


def load_state_dict_pt(path: Path, where: str) -> dict:
    """A PyTorch checkpoint, through the weights-only unpickler only: no code runs."""
    import pickle
    import zipfile

    import torch

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        with path.open("rb") as f:
            looks_pickled = f.read(1) == b"\x80" or zipfile.is_zipfile(path)  # protocol 2+, or torch's zip
        if not looks_pickled:
            raise InputError.one(where, f"{path.name} is not a readable PyTorch file (neither a "
                                 "zip archive nor a pickle)", "save the weights again, or use "
                                 "safetensors", "corrupt_model") from None
        if _is_torchscript(path):
            raise _torchscript_refused(path, where) from None
        raise InputError.one(
            where, f"{path.name} holds Python objects beyond plain weights, which could run "
            f"code ({str(exc).splitlines()[0][:160]})",
            "save only the state dict (torch.save(model.state_dict(), ...)) or use safetensors",
            "unsafe_model") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        if _is_torchscript(path):
            raise _torchscript_refused(path, where) from None
        raise InputError.one(where, f"{path.name} is not a readable PyTorch file ({str(exc)[:200]})",
                             "save the weights again, or use safetensors", "corrupt_model") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputError.one(where, f"{path.name} does not hold a state dict of tensors",
                             "save model.state_dict()", "corrupt_model")
    return obj


def _torchscript_refused(path: Path, where: str) -> InputError:
    return InputError.one(where, f"{path.name} is a TorchScript model: it holds code that runs when "
                          "it is loaded", "if you trust its source, set the teacher's format to "
                          "torchscript and mark it trusted; otherwise export it to ONNX or save "
                          "its state dict", "untrusted_code")


def _is_torchscript(path: Path) -> bool:
    """A TorchScript archive is a zip with a code/ folder (looked at, never run)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return any("/code/" in f"/{name}" for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def load_torchscript(path: Path, where: str, trusted: bool):
    """TorchScript runs code when loaded: only for a file the user marked trusted."""
    import torch

    if not trusted:
        raise InputError.one(where, f"{path.name} is TorchScript, which holds code that runs "
                             "when it is loaded", "mark the teacher trusted only if you trust its "
                             "source; otherwise use ONNX or a state dict", "untrusted_code")
    try:
        model = torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError, OSError) as exc:
        raise InputError.one(where, f"{path.name} is not a readable TorchScript file "
                             f"({str(exc).splitlines()[0][:200]})", "save it again with "
                             "torch.jit.save", "corrupt_model") from None
    return model.eval()


MAX_WIDTHS = 128  # hidden widths a student records: one per layer, two per ViT/transformer block (depth ≤ 64)
MAX_WIDTH = 65536  # units or channels of one layer (the spec's widest)


def pruned_widths(path: Path, where: str = "RUN_DIR") -> list[int] | None:
    """A student saved after structured pruning records its hidden widths in the metadata: at
    most MAX_WIDTHS of them, each at most MAX_WIDTH, and each the size of a tensor dimension in
    the file or a divisor of one (a head count) (the model built from them must hold what the
    file holds; `fit_weights` checks that on the meta device before anything is allocated)."""
    header = read_safetensors_header(path, where)
    raw = header.get("__metadata__", {}).get("widths")
    try:
        widths = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        return None
    if widths is None:
        return None
    if not isinstance(widths, list) or not widths or len(widths) > MAX_WIDTHS or not all(
            isinstance(w, int) and not isinstance(w, bool) and 0 < w <= MAX_WIDTH for w in widths):
        shown = f"{len(widths)} widths" if isinstance(widths, list) and len(widths) > 8 else str(raw)[:80]
        raise InputError.one(where, f"{path.name} records hidden widths {shown} in its metadata: a "
                             f"pruned model has 1 to {MAX_WIDTHS} of them, each 1 to {MAX_WIDTH}",
                             "give the student.safetensors a run saved, or remove 'widths' from its "
                             "metadata", "corrupt_model")
    dims = {d for info in header.values() if isinstance(info, dict) for d in info.get("shape", ())}
    # a width is a tensor's dimension, or divides one: an attention block's head count (its
    # q/k/v rows are 3 · heads · head_dim)
    sizes = {d for d in dims if isinstance(d, int) and d > 0}
    absent = [w for w in widths if not any(d % w == 0 for d in sizes if d >= w)]
    if absent:
        raise InputError.one(where, f"{path.name} records hidden width {absent[0]} in its metadata, "
                             "but none of its tensors has that size (damaged or forged metadata)",
                             "give the student.safetensors a run saved, or remove 'widths' from its "
                             "metadata", "corrupt_model")
    return widths


def recorded_classes(text: str) -> list[str]:
    """A student's classes as its metadata records them: a JSON list of names (a name may hold a
    comma), or, in files of earlier versions, the names joined by commas."""

    if text.startswith("["):
        try:
            names = json.loads(text)
        except (ValueError, RecursionError):
            names = None
        if isinstance(names, list) and all(isinstance(n, str) for n in names):
            return names
    return [c for c in text.split(",") if c]


def student_metadata(path: Path, where: str) -> tuple[list[str], object]:
    """The classes and architecture a Distill Studio student records in its safetensors file."""
    from pydantic import TypeAdapter, ValidationError

    from engine.spec import Architecture

    meta = read_safetensors_header(path, where).get("__metadata__", {})  # sizes and types checked
    classes = recorded_classes(meta.get("classes", ""))
    try:
        arch = TypeAdapter(Architecture).validate_python(json.loads(meta.get("architecture", "")))
    except (json.JSONDecodeError, ValidationError, RecursionError):
        arch = None
    if not classes or arch is None:
        raise InputError.one(where, f"{path.name} does not record its classes and architecture, "
                             "so it is not a student saved by Distill Studio",
                             "give the student.safetensors of an earlier run")
    return classes, arch
