"""`distill-engine export RUN_DIR --out DIR [--quantize int8] [--calibration N]`: the trained
(and pruned) student as files that run elsewhere, checked against PyTorch, with a report.

- `student.onnx`: fp32, dynamic batch axis, input normalisation inside the graph (it takes the
  raw inputs the dataset provides); verified in onnxruntime against the PyTorch student.
- `student.int8.onnx`: onnxruntime quantization, dynamic (weights int8, activations on the
  fly) or static (QDQ, activation ranges calibrated on N training samples). Checked on the
  test split: when it loses more accuracy than the limit, it is not kept (fp32 always is).
- `student.safetensors`, `report.json` and `MODEL_CARD.md`: classes, input, parameters,
  sparsity, sizes, test accuracy (PyTorch fp32 / ONNX fp32 / ONNX int8) and latency per batch
  on this machine (PyTorch eager and onnxruntime, same thread count).
"""

from __future__ import annotations

import contextlib
import errno
import json
import re
import shutil
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from engine.atomic_io import atomic_write, atomic_write_text
from engine.errors import InputError, RunFailed
from engine.spec import QuantizeStep

PARITY_TOLERANCE = 1e-4  # max |ONNX − PyTorch| on logits
LATENCY_BATCH = 64
OPSET = 17
CORE_FILE = ".student.core.onnx"  # a table's student graph before its encoding goes in front

Progress = Callable[[str, float], None]


def export_run(run_dir: Path, out_dir: Path, quantize: QuantizeStep | None = None,
               safetensors: bool = True, progress: Progress | None = None) -> dict:
    """Export a finished run; returns the report (also written as report.json).

    Raises InputError (not a finished run, an unwritable folder) or RunFailed (an operator
    that does not export, a parity failure, a full disk). An int8 model over the accuracy
    limit is not an exception: the report's `problems` says so and the fp32 files stay."""
    progress = progress or (lambda stage, fraction: None)
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    try:
        return _export(run_dir, out_dir, quantize, safetensors, progress)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise RunFailed("disk_full", f"the disk is full while writing to {out_dir}",
                            "free disk space or export to another folder; files finished "
                            "before this one are kept") from None
        raise RunFailed("io", f"writing the export failed: {exc}",
                        "check the folder's permissions and free space") from None
    finally:
        with contextlib.suppress(OSError):
            (out_dir / CORE_FILE).unlink(missing_ok=True)


def _export(run_dir: Path, out_dir: Path, quantize: QuantizeStep | None, safetensors: bool,
            progress: Progress) -> dict:
    import onnxruntime as ort

    from engine import compress, table_export
    from engine.data import load_dataset
    from engine.model_files import load_safetensors, pruned_widths, sha256_of
    from engine.models import build_model, count_parameters
    from engine.spec import load_spec

    progress("load", 0.0)
    weights = run_dir / "student.safetensors"
    if not (run_dir / "spec.distill.json").is_file() or not weights.is_file():
        raise InputError.one("RUN_DIR", f"{run_dir} holds no trained student",
                             "export a run that completed (its folder has student.safetensors)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".write-test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise InputError.one("--out", f"cannot write to {out_dir}: {exc.strerror or exc}",
                             "choose a folder you can write to") from None
    spec = load_spec(run_dir / "spec.distill.json")
    data = load_dataset(spec)
    state = load_safetensors(weights, "RUN_DIR")  # checks the header before anything reads it
    widths = pruned_widths(weights)
    model = build_model(spec.student.architecture, data.sample_shape, len(spec.classes), widths=widths)
    model.load_state_dict(state)
    model.eval()
    evaluated_on, test = next(((name, part) for name, part in (("test", data.test), ("val", data.val),
                                                               ("train", data.train)) if len(part)))
    threads = torch.get_num_threads()
    stale = ([] if quantize else ["student.int8.onnx"]) + ([] if safetensors else ["student.safetensors"])
    for name in stale:  # left by an earlier export into this folder: not part of this one
        (out_dir / name).unlink(missing_ok=True)

    progress("onnx", 0.15)
    fp32 = out_dir / "student.onnx"
    # a table whose encoding is not identity (categories, missing cells): the student's graph
    # (`core`, input x) gets the encoding in front, so the delivered files take raw rows; the
    # checks feed them the raw cells of the rows PyTorch reads encoded (engine/table_export.py)
    raw_rows = table_export.wraps(data.table)
    core = out_dir / CORE_FILE if raw_rows else fp32
    to_onnx(model, test.x[:1], core, metadata={
        "classes": json.dumps(spec.classes),
        "input": json.dumps({"shape": list(data.sample_shape), "dtype": "float32",
                             "preprocessing": "inside"})})
    if raw_rows:
        table_export.wrap(core, fp32, data.table)

    def session_of(path: Path):
        session = _session(ort, path, threads)
        return table_export.RawRowsSession(session, test) if raw_rows else session

    progress("verify", 0.3)
    with torch.inference_mode():
        torch_logits = model(torch.from_numpy(test.x)).numpy()
    session = session_of(fp32)
    onnx_logits = session.run(None, {"x": test.x})[0]
    max_diff = float(np.abs(onnx_logits - torch_logits).max())
    tolerance = PARITY_TOLERANCE * max(1.0, float(np.abs(torch_logits).max()))  # relative to the logits
    if not np.isfinite(max_diff) or max_diff > tolerance:
        raise RunFailed("export_parity", f"the ONNX model differs from PyTorch by {max_diff:.2e} "
                        f"(tolerance {tolerance:.1e})", "report this with the spec; the fp32 "
                        f"file is kept at {fp32} for inspection")

    files = {"onnx_fp32": fp32}
    accuracy = {"pytorch_fp32": _accuracy(torch_logits, test.y), "onnx_fp32": _accuracy(onnx_logits, test.y)}
    latency = {"pytorch_fp32": _torch_latency(model, test.x), "onnx_fp32": _latency(session, test.x)}
    problems: list[dict] = []
    quant_report = None
    if quantize is not None:
        progress("quantize", 0.5)
        int8 = out_dir / "student.int8.onnx"
        quant_report = {"mode": quantize.mode, "max_accuracy_drop": quantize.max_accuracy_drop,
                        "calibration_samples": quantize.calibration_samples if quantize.mode == "static" else None}
        try:
            _quantize(core, int8, quantize, data.train.x, out_dir)
            if raw_rows:
                table_export.wrap(int8, int8, data.table)
            progress("evaluate", 0.75)
            q_session = session_of(int8)
            q_acc = _accuracy(q_session.run(None, {"x": test.x})[0], test.y)
        except OSError:
            raise
        except Exception as exc:  # noqa: BLE001 — onnxruntime's quantizer raises its own types
            int8.unlink(missing_ok=True)
            q_session = q_acc = None
            quant_report.update(kept=False, accuracy_drop_points=None)
            problems.append({"kind": "quantize_failed", "message": (
                f"int8 quantization failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
                "student.onnx (fp32) was kept"), "hint": "try the other quantization mode"})
        drop = None if q_acc is None or accuracy["onnx_fp32"] is None else \
            round((accuracy["onnx_fp32"] - q_acc) * 100, 3)
        if q_session is None:
            pass
        elif drop is not None and drop > quantize.max_accuracy_drop:
            int8.unlink()
            quant_report.update(kept=False, accuracy_drop_points=drop)
            problems.append({"kind": "accuracy_drop", "message": (
                f"the int8 model lost {drop:.2f} accuracy points on the test split (limit "
                f"{quantize.max_accuracy_drop:g}); it was not kept, student.onnx (fp32) was"),
                "hint": "try static quantization with more calibration samples, or raise the limit"})
            accuracy["onnx_int8_rejected"] = q_acc
        else:
            quant_report.update(kept=True, accuracy_drop_points=drop)
            accuracy["onnx_int8"] = q_acc
            latency["onnx_int8"] = _latency(q_session, test.x)
            files["onnx_int8"] = int8
    if safetensors:
        dest = out_dir / "student.safetensors"
        atomic_write(dest, lambda tmp: shutil.copyfile(weights, tmp))
        files["safetensors"] = dest

    progress("report", 0.95)
    report = {
        "name": spec.name, "classes": spec.classes,
        "input": {"name": "x", "shape": ["batch", *data.sample_shape], "dtype": "float32",
                  "preprocessing": "normalisation inside the graph: give raw inputs"},
        "output": {"name": "logits", "shape": ["batch", len(spec.classes)]},
        "parameters": count_parameters(model), "sparsity": round(compress.sparsity(model), 4),
        "hidden_widths": widths,
        "compression": [c.model_dump(mode="json") for c in spec.compression],
        "quantization": quant_report,
        "parity_max_abs_diff": max_diff, "parity_tolerance": tolerance, "evaluated_on": evaluated_on,
        "test_samples": len(test), "accuracy": accuracy,
        "latency_ms_per_batch": {k: round(v, 4) for k, v in latency.items()},
        "latency_batch": LATENCY_BATCH, "threads": threads,
        "files": {k: {"path": p.name, "bytes": p.stat().st_size, "sha256": sha256_of(p)} for k, p in files.items()},
        "teachers": [t.name for t in spec.teachers], "strategy": spec.strategy.model_dump(mode="json"),
        "run_dir": str(run_dir.resolve()), "onnxruntime": ort.__version__, "torch": torch.__version__,
        "problems": problems,
    }
    if raw_rows:
        report["input"] = table_export.describe(data.table, test.raw, spec.classes)
    atomic_write_text(out_dir / "report.json", json.dumps(report, indent=2))
    atomic_write_text(out_dir / "MODEL_CARD.md", model_card(report)
                      + (table_export.card_section(report["input"]) if raw_rows else ""))
    progress("done", 1.0)
    return report


def to_onnx(model: torch.nn.Module, example: np.ndarray, path: Path, metadata: dict[str, str]) -> None:
    """fp32 ONNX with a dynamic batch axis, written atomically; RunFailed naming the operator
    when the model does not export."""
    import onnx

    def write(tmp: Path) -> None:
        try:
            with warnings.catch_warnings():  # the TorchScript exporter: chosen, it handles the zoo
                warnings.simplefilter("ignore", DeprecationWarning)
                torch.onnx.export(model, (torch.from_numpy(example),), str(tmp), dynamo=False,
                                  input_names=["x"], output_names=["logits"], opset_version=OPSET,
                                  dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})
        except OSError:
            raise
        except Exception as exc:  # noqa: BLE001 — the exporter raises many types per operator
            op = re.search(r"operator '([^']+)'", str(exc))
            raise RunFailed("export_operator", (
                f"the student uses the operator {op.group(1)}, which does not export to ONNX "
                f"opset {OPSET}" if op else f"the student does not export to ONNX: "
                f"{str(exc).splitlines()[0][:300]}"),
                "use a zoo architecture (mlp, cnn), or replace that operation in the model") from None
        proto = onnx.load(str(tmp))
        proto.producer_name, proto.producer_version = "distill-studio", "1"
        for key, value in metadata.items():
            proto.metadata_props.add(key=key, value=value)
        onnx.save(proto, str(tmp))

    atomic_write(path, write)


def _quantize(fp32: Path, int8: Path, step: QuantizeStep, train_x: np.ndarray, out_dir: Path) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process


    class Samples(CalibrationDataReader):
        """N training samples (seeded pick), one batch of up to 64 at a time."""

        def __init__(self) -> None:
            pick = np.random.default_rng(0).permutation(len(train_x))[:step.calibration_samples]
            chosen = train_x[np.sort(pick)]
            self._batches = iter([{"x": chosen[i:i + 64]} for i in range(0, len(chosen), 64)])

        def get_next(self):
            return next(self._batches, None)

    prepared = out_dir / ".student.prep.onnx"  # shapes inferred, graph optimised: what ORT advises
    try:
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        if step.mode == "dynamic":
            atomic_write(int8, lambda tmp: quantize_dynamic(str(prepared), str(tmp), weight_type=QuantType.QInt8))
            return
        import onnx

        # per-channel weight scales where they pay (conv filters differ a lot); per tensor for
        # fully connected layers keeps the file small (a scale per unit costs 4 bytes + bias)
        convs = any(n.op_type == "Conv" for n in onnx.load(str(prepared)).graph.node)
        atomic_write(int8, lambda tmp: quantize_static(
            str(prepared), str(tmp), Samples(), quant_format=QuantFormat.QDQ, per_channel=convs,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8))
    finally:
        prepared.unlink(missing_ok=True)


def _session(ort, path: Path, threads: int):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _accuracy(logits: np.ndarray, y: np.ndarray | None) -> float | None:
    return None if y is None else float((logits.argmax(1) == y).mean())


def _batch(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.resize(x, (LATENCY_BATCH, *x.shape[1:])).astype(np.float32))


def _median_ms(fn: Callable[[], object], repeats: int = 50) -> float:
    for _ in range(5):  # warm up
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _latency(session, x: np.ndarray) -> float:
    batch = _batch(x)
    return _median_ms(lambda: session.run(None, {"x": batch}))


def _torch_latency(model: torch.nn.Module, x: np.ndarray) -> float:
    batch = torch.from_numpy(_batch(x))

    def run() -> None:
        with torch.inference_mode():
            model(batch)
    return _median_ms(run)


def _input_words(i: dict) -> str:
    if "inputs" in i:  # a table's raw rows (engine/table_export.py)
        return "inputs " + ", ".join(f"`{x['name']}` {x['shape']} {x['dtype']}" for x in i["inputs"]) + \
            ": raw table rows (the encoding is inside the model, see below)"
    return f"input `x`: {i['shape']} float32, raw values (normalisation is inside the model)"


def model_card(r: dict) -> str:
    def acc(v):
        return "–" if v is None else f"{v:.4f}"
    size = {k: f"{v['bytes']:,}" for k, v in r["files"].items()}
    rows = [("PyTorch fp32 (safetensors)", size.get("safetensors", "–"), acc(r["accuracy"].get("pytorch_fp32")),
             r["latency_ms_per_batch"].get("pytorch_fp32", "–")),
            ("ONNX fp32 (student.onnx)", size["onnx_fp32"], acc(r["accuracy"].get("onnx_fp32")),
             r["latency_ms_per_batch"].get("onnx_fp32", "–"))]
    if "onnx_int8" in r["files"]:
        rows.append(("ONNX int8 (student.int8.onnx)", size["onnx_int8"], acc(r["accuracy"].get("onnx_int8")),
                     r["latency_ms_per_batch"].get("onnx_int8", "–")))
    table = "\n".join(f"| {' | '.join(str(c) for c in row)} |" for row in rows)
    steps = "; ".join(f"{c['kind']} {c.get('method', c.get('mode'))}"
                      + (f" {c['sparsity']:.0%}" if c["kind"] == "prune" else "") for c in r["compression"])
    notes = "".join(f"\n> **{p['kind']}**: {p['message']}. {p['hint']}.\n" for p in r["problems"])
    return (f"# {r['name']}\n\nA student distilled by Distill Studio from {len(r['teachers'])} teachers "
            f"({', '.join(r['teachers'])}) with {r['strategy']['kind']} "
            f"(T = {r['strategy']['temperature']}).\n\n"
            f"- classes: {', '.join(r['classes'])}\n- {_input_words(r['input'])}; "
            f"output `logits`: {r['output']['shape']}\n"
            f"- parameters: {r['parameters']:,}; sparsity {r['sparsity']:.1%}\n"
            f"- compression: {steps or 'none'}\n"
            f"- ONNX vs PyTorch: max |difference| {r['parity_max_abs_diff']:.2e}\n{notes}\n"
            f"| model | bytes | {r['evaluated_on']} accuracy ({r['test_samples']} samples) | ms per batch of "
            f"{r['latency_batch']} ({r['threads']} threads, this machine) |\n|---|---|---|---|\n{table}\n")
