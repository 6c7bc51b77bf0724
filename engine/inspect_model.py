"""`distill-engine inspect MODEL_FILE`: what a model file holds, found without running it."""

from __future__ import annotations

import json
import math
from pathlib import Path

from engine.model_files import check_readable, load_state_dict_pt, read_onnx, read_safetensors_header, sha256_of


def inspect_model(path: Path) -> dict:
    where = str(path)
    fmt = check_readable(path, where)
    info = {"file": str(path), "format": fmt, "bytes": path.stat().st_size, "sha256": sha256_of(path)}
    if fmt == "onnx":
        info.update(_inspect_onnx(path, where))
    elif fmt == "safetensors":
        info.update(_inspect_safetensors(path, where))
    else:
        info.update(_inspect_pytorch(path, where))
    return info


def _inspect_onnx(path: Path, where: str) -> dict:
    import onnx

    model = read_onnx(path, where)

    def shape(value_info) -> list:
        dims = value_info.type.tensor_type.shape.dim
        return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]

    def dtype(value_info) -> str:
        return onnx.TensorProto.DataType.Name(value_info.type.tensor_type.elem_type).lower()

    initializers = {i.name for i in model.graph.initializer}
    meta = {p.key: p.value for p in model.metadata_props}
    classes = _classes_from_metadata(meta.get("classes"))
    outputs = [{"name": o.name, "shape": shape(o), "dtype": dtype(o)} for o in model.graph.output]
    return {
        "inputs": [{"name": i.name, "shape": shape(i), "dtype": dtype(i)}
                   for i in model.graph.input if i.name not in initializers],
        "outputs": outputs,
        "classes": classes,
        "parameters": sum(math.prod(t.dims) for t in model.graph.initializer),
        "opset": max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=None),
        "producer": " ".join(x for x in (model.producer_name, model.producer_version) if x),
        "metadata": meta,
    }


def _inspect_safetensors(path: Path, where: str) -> dict:
    header = read_safetensors_header(path, where)
    meta = header.pop("__metadata__", None) or {}
    tensors = [{"name": k, "shape": v.get("shape", []), "dtype": v.get("dtype", "?")}
               for k, v in header.items()]
    classes = _classes_from_metadata(meta.get("classes"))
    return {"tensors": tensors, "parameters": sum(math.prod(t["shape"]) for t in tensors),
            "classes": classes, "metadata": meta, **_io_guess(tensors)}


def _inspect_pytorch(path: Path, where: str) -> dict:
    state = load_state_dict_pt(path, where)
    tensors = [{"name": k, "shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")}
               for k, v in state.items()]
    return {"tensors": tensors, "parameters": sum(math.prod(t["shape"]) for t in tensors),
            "classes": None, **_io_guess(tensors)}


def _io_guess(tensors: list[dict]) -> dict:
    """For zoo weights: the class count is the size of the last layer's bias."""
    head = next((t for t in reversed(tensors) if t["name"].endswith("bias")), None)
    return {"outputs": [{"name": "logits", "shape": ["batch", head["shape"][0]]}]} if head else {}


def _classes_from_metadata(value: str | None) -> list[str] | None:
    if not value:
        return None
    try:
        parsed = json.loads(value)
        if isinstance(parsed, list):
            return [str(c) for c in parsed]
    except json.JSONDecodeError:
        pass
    return [c.strip() for c in value.split(",")]


def format_report(info: dict) -> str:
    lines = [f"file:       {info['file']}", f"format:     {info['format']}",
             f"size:       {info['bytes']:,} bytes", f"sha256:     {info['sha256']}",
             f"parameters: {info.get('parameters', 0):,}"]
    for key in ("inputs", "outputs"):
        for io in info.get(key, []):
            lines.append(f"{key[:-1] + ':':11} {io['name']} {io['shape']} {io.get('dtype', '')}".rstrip())
    classes = info.get("classes")
    lines.append(f"classes:    {', '.join(classes) if classes else '(not recorded in the file)'}")
    if info.get("opset"):
        lines.append(f"opset:      {info['opset']}")
    if info.get("tensors") is not None:
        lines.append(f"tensors:    {len(info['tensors'])}")
    return "\n".join(lines)
