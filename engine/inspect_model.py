"""`distill-engine inspect MODEL_FILE`: what a model file holds, found without running it."""

from __future__ import annotations

import math
from pathlib import Path

from engine import model_metadata as md
from engine.contract_proposal import propose
from engine.model_files import check_readable, load_state_dict_pt, read_onnx, read_safetensors_header, sha256_of
from engine.text_roles import text_inputs, tokenizer_words


def inspect_model(path: Path, tokenizer: Path | None = None, roles: dict | None = None) -> dict:
    """`tokenizer`, `roles`: a text teacher's input.tokenizer and input.roles, where the spec
    sets them (else the tokenizer.json beside the model, the roles its inputs' names suggest)."""
    where = str(path)
    fmt = check_readable(path, where)
    info = {"file": str(path), "format": fmt, "bytes": path.stat().st_size, "sha256": sha256_of(path)}
    if fmt == "onnx":
        info.update(_inspect_onnx(path, where))
        text = text_inputs(info["inputs"], path, tokenizer, roles)
        if text is not None:  # a text model: its inputs' roles and its tokenizer
            info["text"] = text
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

    from engine import onnx_graph_facts as facts

    initializers = {i.name for i in model.graph.initializer}
    meta = {p.key: p.value for p in model.metadata_props}
    inputs = [{"name": i.name, "shape": shape(i), "dtype": dtype(i)}
              for i in model.graph.input if i.name not in initializers]
    outputs = [{"name": o.name, "shape": shape(o), "dtype": dtype(o)} for o in model.graph.output]
    scores = facts.scores_output(model)
    zipmaps = facts.zipmap_outputs(model) if scores is None else []
    warnings = [f"output '{name}' is a ZipMap (a list of dicts per sample), which a teacher cannot "
                "be read from: export with skl2onnx options {'zipmap': False}" for name in zipmaps]
    scores_name = scores.name if scores is not None else (zipmaps[0] if zipmaps else None)
    kind = facts.output_kind(model, scores_name) if scores_name else None
    return {
        "inputs": inputs,
        "outputs": outputs,
        **_classes(meta, facts.graph_classes(model), warnings),
        "parameters": facts.parameter_count(model),
        "opset": max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=None),
        "producer": " ".join(x for x in (model.producer_name, model.producer_version) if x),
        "metadata": meta,
        **_accuracy(meta),
        "proposed": propose(inputs, meta, (scores_name, *kind) if kind else None),
        "warnings": warnings,
    }


def _classes(meta: dict, from_graph: list[str] | None, warnings: list[str]) -> dict:
    """The class names and where they were read: the metadata's names (an export script's words)
    where they fit the graph's labels, else the graph's (a scikit-learn classifier's labels)."""
    found = md.lookup(meta, "classes")
    from_meta = md.strings(found[1]) if found else None
    if from_meta and from_graph and len(from_meta) != len(from_graph):
        warnings.append(f"metadata {found[0]} names {len(from_meta)} classes but the graph holds "
                        f"{len(from_graph)} labels: the graph's are used")
        from_meta = None
    if from_meta:
        return {"classes": from_meta, "classes_from": "metadata"}
    if from_graph:
        return {"classes": from_graph, "classes_from": "graph"}
    return {"classes": None}


def _accuracy(meta: dict) -> dict:
    """The accuracy the export script says the model reached, shown (not checked) to the user."""
    found = md.lookup(meta, "accuracy")
    values = md.numbers(found[1]) if found else None
    return {"accuracy": values[0]} if values and len(values) == 1 else {}


def _inspect_safetensors(path: Path, where: str) -> dict:
    header = read_safetensors_header(path, where)
    meta = header.pop("__metadata__", None) or {}
    meta = meta if isinstance(meta, dict) else {}
    tensors = [{"name": k, "shape": v.get("shape", []), "dtype": v.get("dtype", "?")}
               for k, v in header.items()]
    return {"tensors": tensors, "parameters": sum(math.prod(t["shape"]) for t in tensors),
            **_classes(meta, None, []), "metadata": meta, **_accuracy(meta), **_io_guess(tensors),
            "proposed": propose([], meta)}


def _inspect_pytorch(path: Path, where: str) -> dict:
    state = load_state_dict_pt(path, where)
    tensors = [{"name": k, "shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")}
               for k, v in state.items()]
    return {"tensors": tensors, "parameters": sum(math.prod(t["shape"]) for t in tensors),
            "classes": None, **_io_guess(tensors), "proposed": propose([], {})}


def _io_guess(tensors: list[dict]) -> dict:
    """For zoo weights: the class count is the size of the last layer's bias."""
    head = next((t for t in reversed(tensors) if t["name"].endswith("bias")), None)
    return {"outputs": [{"name": "logits", "shape": ["batch", head["shape"][0]]}]} if head else {}


def format_report(info: dict) -> str:
    """What `distill-engine inspect` prints: the file's facts, its classes and where they were
    read, and the proposed input contract, one setting a line with its reason."""
    lines = [f"file:       {info['file']}", f"format:     {info['format']}",
             f"size:       {info['bytes']:,} bytes", f"sha256:     {info['sha256']}",
             f"parameters: {info.get('parameters', 0):,}"]
    for key in ("inputs", "outputs"):
        for io in info.get(key, []):
            lines.append(f"{key[:-1] + ':':11} {io['name']} {io['shape']} {io.get('dtype', '')}".rstrip())
    classes = info.get("classes")
    where = f" (from the {info['classes_from']})" if classes and info.get("classes_from") else ""
    lines.append(f"classes:    {', '.join(classes) + where if classes else '(not recorded in the file)'}")
    if info.get("accuracy") is not None:
        lines.append(f"accuracy:   {info['accuracy']:g} (as the file says)")
    if info.get("opset"):
        lines.append(f"opset:      {info['opset']}")
    if info.get("tensors") is not None:
        lines.append(f"tensors:    {len(info['tensors'])}")
    text = info.get("text")
    if text:
        roles = ", ".join(f"{i['name']} ← {i['role'] or '?'}" for i in text["inputs"])
        lines.append(f"text:       {roles}")
        tok = text.get("tokenizer")
        where = f" ({tok['from']}: {tok['path']})" if tok else ""
        lines.append(f"{'':12}{tokenizer_words(text)}{where}")
        if text.get("needs_tokenizer"):
            lines.append("warning:    it takes token ids and no tokenizer was found: set input.tokenizer to "
                         "the tokenizer.json it was trained with, or put tokenizer.json beside the model")
    for warning in info.get("warnings") or []:
        lines.append(f"warning:    {warning}")
    proposed = info.get("proposed") or {}
    if proposed.get("reasons"):
        settings = len(proposed.get("input") or {}) + (1 if proposed.get("outputs") else 0)
        lines.append(f"proposed:   {settings} setting{'s' if settings != 1 else ''} for the teacher"
                     + ("" if settings else " (nothing the file makes certain)"))
        lines += [f"  - {reason}" for reason in proposed["reasons"]]
    return "\n".join(lines)
