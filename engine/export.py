"""`distill-engine export RUN_DIR --out DIR [--quantize int8]`: the trained student as files
that run elsewhere, checked against PyTorch, with a report.

- `student.onnx`: fp32, dynamic batch axis, input normalisation inside the graph (it takes the
  raw inputs the dataset provides); verified in onnxruntime against the PyTorch student.
- `student.int8.onnx` (with `--quantize int8`): onnxruntime dynamic quantization.
- `student.safetensors`, `report.json` and `MODEL_CARD.md`: classes, input, parameters, sizes,
  test accuracy (PyTorch fp32 / ONNX fp32 / ONNX int8) and onnxruntime latency per batch.
"""

from __future__ import annotations

import json
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from engine.atomic_io import atomic_write_text
from engine.errors import InputError, RunFailed

PARITY_TOLERANCE = 1e-4  # max |ONNX − PyTorch| on logits
LATENCY_BATCH = 64


def export_run(run_dir: Path, out_dir: Path, quantize: str | None = None) -> dict:
    import onnx
    import onnxruntime as ort

    from engine.data import load_dataset
    from engine.model_files import load_safetensors, sha256_of
    from engine.models import build_model, count_parameters
    from engine.spec import load_spec

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    weights = run_dir / "student.safetensors"
    if not (run_dir / "spec.distill.json").is_file() or not weights.is_file():
        raise InputError.one("RUN_DIR", f"{run_dir} holds no trained student",
                             "export a run that completed (its folder has student.safetensors)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError.one("--out", f"cannot create {out_dir}: {exc.strerror}",
                             "choose a folder you can write to") from None
    spec = load_spec(run_dir / "spec.distill.json")
    data = load_dataset(spec)
    model = build_model(spec.student.architecture, data.sample_shape, len(spec.classes))
    model.load_state_dict(load_safetensors(weights, "RUN_DIR"))
    model.eval()
    test = data.test if len(data.test) else data.val

    fp32 = out_dir / "student.onnx"
    try:
        torch.onnx.export(model, (torch.from_numpy(test.x[:1]),), str(fp32), dynamo=False,
                          input_names=["x"], output_names=["logits"], opset_version=17,
                          dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})
    except Exception as exc:  # the exporter raises many types for unsupported operators
        raise RunFailed("export", f"the student does not export to ONNX: {exc}",
                        "use a zoo architecture (mlp, cnn); the report names the operator") from None
    proto = onnx.load(str(fp32))
    proto.producer_name, proto.producer_version = "distill-studio", "1"
    proto.metadata_props.add(key="classes", value=json.dumps(spec.classes))
    proto.metadata_props.add(key="input", value=json.dumps({"shape": list(data.sample_shape),
                                                            "dtype": "float32", "preprocessing": "inside"}))
    onnx.save(proto, str(fp32))

    with torch.inference_mode():
        torch_logits = model(torch.from_numpy(test.x)).numpy()
    session = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    onnx_logits = session.run(None, {"x": test.x})[0]
    max_diff = float(np.abs(onnx_logits - torch_logits).max())
    if max_diff > PARITY_TOLERANCE:
        raise RunFailed("export_parity", f"the ONNX model differs from PyTorch by {max_diff:.2e} "
                        f"(tolerance {PARITY_TOLERANCE:g})", "report this with the spec; the fp32 "
                        f"file is kept at {fp32} for inspection")

    files = {"onnx_fp32": fp32}
    accuracy = {"pytorch_fp32": _accuracy(torch_logits, test.y), "onnx_fp32": _accuracy(onnx_logits, test.y)}
    latency = {"onnx_fp32": _latency(session, test.x)}
    if quantize == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        int8 = out_dir / "student.int8.onnx"
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
        q_session = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
        accuracy["onnx_int8"] = _accuracy(q_session.run(None, {"x": test.x})[0], test.y)
        latency["onnx_int8"] = _latency(q_session, test.x)
        files["onnx_int8"] = int8
    shutil.copyfile(weights, out_dir / "student.safetensors")
    files["safetensors"] = out_dir / "student.safetensors"

    report = {
        "name": spec.name, "classes": spec.classes,
        "input": {"shape": ["batch", *data.sample_shape], "dtype": "float32",
                  "preprocessing": "normalisation inside the graph: give raw inputs"},
        "parameters": count_parameters(model), "parity_max_abs_diff": max_diff,
        "test_samples": len(test), "accuracy": accuracy,
        "latency_ms_per_batch": {k: round(v, 3) for k, v in latency.items()},
        "latency_batch": LATENCY_BATCH,
        "files": {k: {"path": p.name, "bytes": p.stat().st_size, "sha256": sha256_of(p)} for k, p in files.items()},
        "teachers": [t.name for t in spec.teachers], "strategy": spec.strategy.model_dump(mode="json"),
    }
    atomic_write_text(out_dir / "report.json", json.dumps(report, indent=2))
    atomic_write_text(out_dir / "MODEL_CARD.md", _model_card(report))
    return report


def _accuracy(logits: np.ndarray, y: np.ndarray | None) -> float | None:
    return None if y is None else float((logits.argmax(1) == y).mean())


def _latency(session, x: np.ndarray, repeats: int = 30) -> float:
    batch = np.resize(x, (LATENCY_BATCH, *x.shape[1:])).astype(np.float32)
    session.run(None, {"x": batch})  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, {"x": batch})
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _model_card(r: dict) -> str:
    acc = lambda v: "–" if v is None else f"{v:.4f}"  # noqa: E731
    rows = "\n".join(f"| {k} | {r['files'][k]['bytes']:,} | {acc(r['accuracy'].get(k.replace('safetensors', 'pytorch_fp32')))} "
                     f"| {r['latency_ms_per_batch'].get(k, '–')} |" for k in r["files"])
    return (f"# {r['name']}\n\nA student distilled by Distill Studio from {len(r['teachers'])} teachers "
            f"({', '.join(r['teachers'])}) with {r['strategy']['kind']} "
            f"(T = {r['strategy']['temperature']}).\n\n"
            f"- classes: {', '.join(r['classes'])}\n- input: {r['input']['shape']} float32, raw values "
            f"(normalisation is inside the model)\n- parameters: {r['parameters']:,}\n"
            f"- ONNX vs PyTorch: max |difference| {r['parity_max_abs_diff']:.2e}\n\n"
            f"| file | bytes | test accuracy ({r['test_samples']} samples) | ms per batch of "
            f"{r['latency_batch']} (onnxruntime, this machine) |\n|---|---|---|---|\n{rows}\n")
