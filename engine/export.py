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

Accuracy needs labels: without any (no labels in the data, no test file) the report says it
was not measured, and that the int8 model was kept unchecked, in `notes` (a note does not fail
the export; `problems` do). Latency: each path gets warm-up batches (more while its times still
settle: a cold first call, a thread pool waking up), then the median of
several timed ones, with their spread and the machine's load; on a busy machine, or with a
wide spread, the figures are marked indicative. Speed-ups come from the medians only.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from engine import export_folder
from engine.atomic_io import atomic_write, atomic_write_text
from engine.errors import InputError, RunFailed
from engine.report_words import speedup_text
from engine.run_folder import cache_of, probe_writable
from engine.spec import QuantizeStep

PARITY_TOLERANCE = 1e-4  # max |ONNX − PyTorch| on logits
LATENCY_BATCH = 64
LATENCY_WARMUP = 5  # untimed batches first on every path: allocations, lazy init, caches
SETTLE_RATIO = 2.0  # warm-up goes on while the last batches are this much slower than the fastest
SETTLE_S = 2.0  # …for at most about this long per path
LATENCY_TIMED = (10, 200)  # timed batches per path: at least, at most (within the budget)
LATENCY_BUDGET_S = 1.0  # about this long timing each path, once warm
WIDE_SPREAD = 1.0  # p90 − p10 above this times the median on a path: the timings are indicative
OPSET = 17
CORE_FILE = ".student.core.onnx"  # a table's student graph before its encoding goes in front

Progress = Callable[[str, float], None]


def export_run(run_dir: Path, out_dir: Path, quantize: QuantizeStep | None = None,
               safetensors: bool = True, progress: Progress | None = None, run_locked: bool = False) -> dict:
    """Export a finished run; returns the report (also written as report.json).

    Raises InputError (not a finished run, an unwritable folder) or RunFailed (an operator
    that does not export, a parity failure, a full disk). An int8 model over the accuracy
    limit is not an exception: the report's `problems` says so and the fp32 files stay."""
    progress = progress or (lambda stage, fraction: None)
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    claimed: list[bool] = []  # the folder is the export's to write in (engine/export_folder.py)
    try:
        return _export(run_dir, out_dir, quantize, safetensors, progress, claimed, run_locked)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise RunFailed("disk_full", f"the disk is full while writing to {out_dir}",
                            "free disk space or export to another folder; files finished "
                            "before this one are kept") from None
        raise RunFailed("io", f"writing the export failed: {exc}",
                        "check the folder's permissions and free space") from None
    finally:
        if claimed:
            with contextlib.suppress(OSError):
                (out_dir / CORE_FILE).unlink(missing_ok=True)


def _export(run_dir: Path, out_dir: Path, quantize: QuantizeStep | None, safetensors: bool,
            progress: Progress, claimed: list[bool], run_locked: bool) -> dict:
    import onnxruntime as ort

    from engine import compress, table_export, text_export
    from engine.data import load_dataset
    from engine.insight import card
    from engine.model_files import load_safetensors, pruned_widths, sha256_of
    from engine.models import count_parameters, fit_weights
    from engine.spec import load_spec

    progress("load", 0.0)
    weights = run_dir / "student.safetensors"
    if not (run_dir / "spec.distill.json").is_file() or not weights.is_file():
        raise InputError.one("RUN_DIR", f"{run_dir} holds no trained student",
                             "export a run that completed (its folder has student.safetensors)")
    try:
        probe_writable(out_dir)
    except OSError as exc:
        raise InputError.one("--out", f"cannot write to {out_dir}: {exc.strerror or exc}",
                             "choose a folder you can write to") from None
    # never overwrite or delete what an export did not write, nor a run folder's own files
    spec = load_spec(run_dir / "spec.distill.json")
    text = spec.data.format == "text"  # its tokenizer goes beside the model
    pictures = list(card.PICTURES.values())  # the model card's (engine/insight/card.py)
    theirs = export_folder.foreign(out_dir, pictures)  # a user's own confusion.png: kept, no pictures
    writing = ["student.onnx", "report.json", "MODEL_CARD.md"] + (["student.int8.onnx"] if quantize else []) \
        + (["student.safetensors"] if safetensors else []) + ([text_export.TOKENIZER_FILE] if text else []) \
        + ([] if theirs else pictures)
    stale = export_folder.claim(out_dir, run_dir, writing, optional=tuple(theirs))
    claimed.append(True)
    for name in stale:  # an earlier export's, still as it wrote them: not part of this one
        (out_dir / name).unlink(missing_ok=True)
    # the pictures: the run's analysis of this student; without one, an earlier export's go too
    insights, no_insights = card.insights_for(run_dir, sha256_of(weights), progress, run_locked) if not theirs \
        else (None, {"kind": "no_insights", "message": f"the model card has no insight pictures: {out_dir} holds "
                     f"{', '.join(theirs)}, which no export wrote (it is kept)", "hint": "export to a folder "
                     "of its own to have the pictures in the model card"})
    if insights is None:
        for name in set(pictures) - set(theirs):  # claimed: absent, or an earlier export's as it wrote them
            (out_dir / name).unlink(missing_ok=True)
        pictures = []
    data = load_dataset(text_export.run_tokenizer(spec, run_dir), cache_of(run_dir))

    def feed(x: np.ndarray) -> np.ndarray:  # what the exported model takes (token ids: int64)
        return text_export.as_input(data, x)
    x_name = "input_ids" if text else "x"
    state = load_safetensors(weights, "RUN_DIR")  # checks the header before anything reads it
    widths = pruned_widths(weights, "RUN_DIR")
    model = fit_weights(spec.student.architecture, data.sample_shape, len(spec.classes),
                        "RUN_DIR", state, weights.name, widths=widths)
    evaluated_on, test = next(((name, part) for name, part in (("test", data.test), ("val", data.val),
                                                               ("train", data.train)) if len(part)))
    y = data.known_train_labels if evaluated_on == "train" else test.y  # None: accuracy not measured
    if evaluated_on == "test" and data.test_from:
        evaluated_on = f"test file {data.test_from}"
    test, y, evaluated_on = _bounded(test, y, evaluated_on)
    where = {"test": "the test split", "val": "the validation split",
             "train": "the training samples"}.get(evaluated_on, f"the {evaluated_on}")
    threads = timing_threads()

    progress("onnx", 0.15)
    fp32 = out_dir / "student.onnx"
    # a table whose encoding is not identity (categories, missing cells): the student's graph
    # (`core`, input x) gets the encoding in front, so the delivered files take raw rows; the
    # checks feed them the raw cells of the rows PyTorch reads encoded (engine/table_export.py)
    raw_rows = table_export.wraps(data.table)
    core = out_dir / CORE_FILE if raw_rows else fp32
    to_onnx(model, feed(test.x[:1]), core, metadata={
        "classes": json.dumps(spec.classes),
        "input": json.dumps(text_export.describe(data, data.sample_shape[0]) if text else
                            {"shape": list(data.sample_shape), "dtype": "float32", "preprocessing": "inside"})},
        input_name=x_name, dynamic_length=text)
    if raw_rows:
        table_export.wrap(core, fp32, data.table)

    def session_of(path: Path):
        session = _session(ort, path, threads)
        return table_export.RawRowsSession(session, test) if raw_rows else session

    progress("verify", 0.3)
    with torch.inference_mode():
        torch_logits = model(torch.from_numpy(test.x)).numpy()
    session = session_of(fp32)
    onnx_logits = session.run(None, {x_name: feed(test.x)})[0]
    max_diff = float(np.abs(onnx_logits - torch_logits).max())
    tolerance = PARITY_TOLERANCE * max(1.0, float(np.abs(torch_logits).max()))  # relative to the logits
    if not np.isfinite(max_diff) or max_diff > tolerance:
        raise RunFailed("export_parity", f"the ONNX model differs from PyTorch by {max_diff:.2e} "
                        f"(tolerance {tolerance:.1e})", "report this with the spec; the fp32 "
                        f"file is kept at {fp32} for inspection")

    files = {"onnx_fp32": fp32}
    accuracy = {"pytorch_fp32": _accuracy(torch_logits, y), "onnx_fp32": _accuracy(onnx_logits, y)}
    problems: list[dict] = []
    notes: list[dict] = [no_insights] if no_insights else []  # what the user must know; not a failure
    why_not = None if y is not None else why_not_measured(spec)
    if why_not:
        notes.append({"kind": "not_measured", "message": f"test accuracy was not measured: {why_not[0]}",
                      "hint": why_not[1]})
    quant_report = None
    q_session = None
    if quantize is not None:
        progress("quantize", 0.5)
        int8 = out_dir / "student.int8.onnx"
        quant_report = {"mode": quantize.mode, "max_accuracy_drop": quantize.max_accuracy_drop,
                        "calibration_samples": quantize.calibration_samples if quantize.mode == "static" else None}
        try:
            _quantize(core, int8, quantize, data.train.x, out_dir, x_name, feed)
            if raw_rows:
                table_export.wrap(int8, int8, data.table)
            progress("evaluate", 0.75)
            q_session = session_of(int8)
            q_logits = q_session.run(None, {x_name: feed(test.x)})[0]
        except OSError:
            raise
        except Exception as exc:  # noqa: BLE001 — onnxruntime's quantizer raises its own types
            int8.unlink(missing_ok=True)
            q_session = None
            quant_report.update(kept=False, accuracy_drop_points=None, checked=False,
                                skipped_because="the quantization failed", agreement_with_fp32=None)
            problems.append({"kind": "quantize_failed", "message": (
                f"int8 quantization failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
                "student.onnx (fp32) was kept"), "hint": "try the other quantization mode"})
        if q_session is not None:
            # label-free: the share of samples where int8 picks the class fp32 picks (an
            # accuracy can change by at most the rest)
            agreement = round(float((q_logits.argmax(1) == onnx_logits.argmax(1)).mean()), 6)
            q_acc = _accuracy(q_logits, y)
            drop = None if q_acc is None else round((accuracy["onnx_fp32"] - q_acc) * 100, 3)
            quant_report.update(checked=y is not None, skipped_because=None, agreement_with_fp32=agreement)
            if drop is not None and drop > quantize.max_accuracy_drop:
                int8.unlink()
                q_session = None
                quant_report.update(kept=False, accuracy_drop_points=drop)
                problems.append({"kind": "accuracy_drop", "message": (
                    f"the int8 model lost {drop:.2f} accuracy points on {where} (limit "
                    f"{quantize.max_accuracy_drop:g}); it was not kept, student.onnx (fp32) was"),
                    "hint": "try static quantization with more calibration samples, or raise the limit"})
                accuracy["onnx_int8_rejected"] = q_acc
            else:
                quant_report.update(kept=True, accuracy_drop_points=drop)
                accuracy["onnx_int8"] = q_acc
                files["onnx_int8"] = int8
                if why_not:
                    quant_report["skipped_because"] = f"no labelled samples: {why_not[0]}"
                    notes.append({"kind": "int8_not_checked", "message": (
                        f"the int8 model was kept without its accuracy check (limit "
                        f"{quantize.max_accuracy_drop:g} points), as there are no labelled samples; "
                        f"it picks the same class as fp32 on {agreement:.1%} of the {len(test)} samples"),
                        "hint": why_not[1]})
    runners = {"pytorch_fp32": _torch_runner(model, test.x), "onnx_fp32": _onnx_runner(session, feed(test.x))}
    if q_session is not None:
        runners["onnx_int8"] = _onnx_runner(q_session, feed(test.x))
    timing = measure_latency(runners, threads)
    if safetensors:
        dest = out_dir / "student.safetensors"
        atomic_write(dest, lambda tmp: shutil.copyfile(weights, tmp))
        files["safetensors"] = dest
    if text:
        files["tokenizer"] = text_export.write_tokenizer(out_dir, data)

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
        "accuracy_note": None if why_not is None else f"not measured: {why_not[0]} ({why_not[1]})",
        "latency_ms_per_batch": {k: v["median"] for k, v in timing["ms_per_batch"].items()},
        "latency_batch": LATENCY_BATCH, "threads": threads, "latency": timing,
        "files": {k: {"path": p.name, "bytes": p.stat().st_size, "sha256": sha256_of(p)} for k, p in files.items()},
        "teachers": [t.name for t in spec.teachers], "strategy": spec.strategy.model_dump(mode="json"),
        "run_dir": str(run_dir.resolve()), "onnxruntime": ort.__version__, "torch": torch.__version__,
        "problems": problems, "notes": notes,
    }
    if raw_rows:
        report["input"] = table_export.describe(data.table, test.raw, spec.classes)
    if text:
        report["input"] = text_export.describe(data, data.sample_shape[0])
    atomic_write_text(out_dir / "report.json", json.dumps(report, indent=2))
    atomic_write_text(out_dir / "MODEL_CARD.md", model_card(report)
                      + (table_export.card_section(report["input"]) if raw_rows else "")
                      + (text_export.card_section(report["input"], spec.classes) if text else "")
                      + (card.card_section(insights) if insights else ""))
    for name in pictures:
        shutil.copyfile(run_dir / "insights" / name, out_dir / name)
    export_folder.record(out_dir, {**{p.name: report["files"][k]["sha256"] for k, p in files.items()},
                                   **{n: sha256_of(out_dir / n) for n in ("report.json", "MODEL_CARD.md", *pictures)}})
    progress("done", 1.0)
    return report


def to_onnx(model: torch.nn.Module, example: np.ndarray, path: Path, metadata: dict[str, str],
            input_name: str = "x", dynamic_length: bool = False) -> None:
    """fp32 ONNX with a dynamic batch axis (and length axis: token ids), written atomically;
    RunFailed naming the operator when the model does not export."""
    import onnx

    def write(tmp: Path) -> None:
        try:
            with warnings.catch_warnings():  # the TorchScript exporter: chosen, it handles the zoo
                warnings.simplefilter("ignore", DeprecationWarning)
                torch.onnx.export(model, (torch.from_numpy(example),), str(tmp), dynamo=False,
                                  input_names=[input_name], output_names=["logits"], opset_version=OPSET,
                                  dynamic_axes={input_name: {0: "batch", **({1: "length"} if dynamic_length else {})},
                                                "logits": {0: "batch"}})
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


def _quantize(fp32: Path, int8: Path, step: QuantizeStep, train_x: np.ndarray, out_dir: Path,
              x_name: str = "x", feed: Callable[[np.ndarray], np.ndarray] = lambda x: x) -> None:
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
            self._batches = iter([{x_name: feed(chosen[i:i + 64])} for i in range(0, len(chosen), 64)])

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
        # fully connected layers keeps the file small (a scale per unit costs 4 bytes + bias).
        # Per-channel weights take 7 bits (reduce_range), as onnxruntime advises for CPUs
        # without VNNI, where u8×s8 products of full-range weights saturate: a ResNet on
        # digits lost 3 points with 8 bits, none with 7
        ops = {n.op_type for n in onnx.load(str(prepared)).graph.node}
        convs = "Conv" in ops
        # attention (ViT, transformer): only the layers with weights (Conv, MatMul, Gemm) get
        # int8; LayerNorm, Softmax, the padding mask (Where, −inf) and the embeddings' Gather
        # stay fp32 — QDQ around them costs more accuracy (a masked transformer falls to
        # chance) than it saves time
        attention = {"Softmax", "LayerNormalization"} & ops
        only = {"op_types_to_quantize": ["Conv", "MatMul", "Gemm"],  # and of MatMuls only those with
                "extra_options": {"MatMulConstBOnly": True}} if attention else {}  # weights: not Q·Kᵀ, P·V
        atomic_write(int8, lambda tmp: quantize_static(
            str(prepared), str(tmp), Samples(), quant_format=QuantFormat.QDQ, per_channel=convs, reduce_range=convs,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, **only))
    finally:
        prepared.unlink(missing_ok=True)


def _session(ort, path: Path, threads: int):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


STREAMED_BYTES = 256 * 2**20  # the most of a streamed test part the export reads into memory


def _bounded(part, y: np.ndarray | None, evaluated_on: str):
    """(samples, labels, what they are) the export checks on: the part as it is in memory; of a
    streamed part (an image folder), as many samples as fit in STREAMED_BYTES, spread over it.
    Samples without a label (-1) are left out of an accuracy."""
    from engine.data import Part

    if not part.streamed and (y is None or (y >= 0).all()):
        return part, y, evaluated_on
    n = len(part)
    rows = np.arange(n) if y is None else np.flatnonzero(y >= 0)
    if not len(rows):
        rows, y = np.arange(n), None
    per_sample = 4 * int(np.prod(part.x.shape[1:]))
    keep = max(1, min(len(rows), STREAMED_BYTES // per_sample))
    if keep < len(rows):
        rows = rows[np.unique(np.linspace(0, len(rows) - 1, num=keep).astype(np.int64))]
        evaluated_on = f"{evaluated_on} ({len(rows)} of its {n} samples, spread over it)"
    return Part(np.ascontiguousarray(part.x[rows]), None if part.y is None else part.y[rows]), \
        None if y is None else y[rows], evaluated_on


def _accuracy(logits: np.ndarray, y: np.ndarray | None) -> float | None:
    return None if y is None else float((logits.argmax(1) == y).mean())


def why_not_measured(spec) -> tuple[str, str]:
    """(why, what to do) when no sample has a label: the data has none and no test file is set."""
    fields = list(type(spec.data).test_fields.values())
    hint = (f"set {' and '.join(f'data.{f}' for f in fields)} to a labelled file" if fields
            else "give data with labels")
    return "the data has no labels and no test file", hint


def timing_threads() -> int:
    """The thread count both PyTorch and onnxruntime are timed with: torch's (OMP_NUM_THREADS
    sets it), at most the cores this process may use."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:
        available = os.cpu_count() or 1
    return max(1, min(torch.get_num_threads(), available))


def _batch(x: np.ndarray) -> np.ndarray:
    """LATENCY_BATCH samples of x, in its type (float32; token ids int64)."""
    return np.ascontiguousarray(np.resize(x, (LATENCY_BATCH, *x.shape[1:])).astype(
        np.int64 if x.dtype == np.int64 else np.float32))


def _onnx_runner(session, x: np.ndarray) -> Callable[[], object]:
    feed = {session.get_inputs()[0].name: _batch(x)}
    return lambda: session.run(None, feed)


def _torch_runner(model: torch.nn.Module, x: np.ndarray) -> Callable[[], object]:
    batch = torch.from_numpy(_batch(x))

    def run() -> None:
        with torch.inference_mode():
            model(batch)
    return run


def _load() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # not on Windows
        return None


def _timed_ms(fn: Callable[[], object], warmup: int = LATENCY_WARMUP,
              budget_s: float = LATENCY_BUDGET_S, timed: tuple[int, int] = LATENCY_TIMED) -> list[float]:
    """Warm-up calls (untimed), then as many timed calls as fit the budget (within `timed`).

    The warm-up is at least `warmup` calls, and goes on (up to SETTLE_S) while the median of
    the last ones is over SETTLE_RATIO times the fastest yet: a cold path (a first call, a
    thread pool waking up) settles before anything is timed."""
    took = []
    began = time.perf_counter()
    while True:
        start = time.perf_counter()
        fn()
        took.append(time.perf_counter() - start)
        if len(took) >= max(1, warmup) and (
                float(np.median(took[-max(1, warmup):])) <= SETTLE_RATIO * min(took) + 20e-6
                or time.perf_counter() - began > SETTLE_S):
            break
    count = int(min(timed[1], max(timed[0], budget_s / max(float(np.median(took[-max(1, warmup):])), 1e-6))))
    times = []
    for _ in range(count):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def measure_latency(paths: dict[str, Callable[[], object]], threads: int) -> dict:
    """ms per batch of LATENCY_BATCH for each path, one path after the other, each warmed up
    first; PyTorch at `threads` threads for the timing (the onnxruntime sessions were made
    with as many), restored after. The speed-ups are ratios of medians."""
    cpus = os.cpu_count()
    load_before, before = _load(), torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        times = {name: _timed_ms(fn) for name, fn in paths.items()}
    finally:
        torch.set_num_threads(before)
    loads = [v for v in (load_before, _load()) if v is not None]
    stats = {name: _stats(t) for name, t in times.items()}
    return judge_latency(stats, threads, max(loads) if loads else None, cpus)


def _stats(times: list[float]) -> dict:
    p10, median, p90 = np.percentile(times, [10, 50, 90])
    return {"median": round(float(median), 4), "p10": round(float(p10), 4), "p90": round(float(p90), 4),
            "min": round(min(times), 4), "max": round(max(times), 4), "timed_batches": len(times)}


def judge_latency(stats: dict[str, dict], threads: int, load: float | None, cpus: int | None) -> dict:
    """The latency section of the report: the figures, the speed-ups over PyTorch (medians), and
    whether they are indicative only: a machine busier than its cores, or a wide spread."""
    why = []
    if load is not None and cpus and load > cpus:
        why.append(f"the machine was busy (load {load:.1f} on {cpus} cores)")
    wide = [f"{k} {v['p10']:.3g}–{v['p90']:.3g} ms" for k, v in stats.items()
            if v["p90"] - v["p10"] > WIDE_SPREAD * v["median"]]
    if wide:
        why.append(f"the timings spread widely (p10–p90: {', '.join(wide)})")
    base = stats.get("pytorch_fp32", {}).get("median")
    speedup = {k: round(base / v["median"], 2) for k, v in stats.items()
               if k != "pytorch_fp32" and base and v["median"] > 0}
    return {"batch": LATENCY_BATCH, "threads": threads, "warmup_batches": LATENCY_WARMUP,
            "ms_per_batch": stats, "speedup_vs_pytorch": speedup,
            "load": {"loadavg_1min": None if load is None else round(load, 2), "cpu_count": cpus},
            "indicative": bool(why), "indicative_because": "; ".join(why) or None}


def _input_words(i: dict) -> str:
    if i.get("tokenizer"):  # text (engine/text_export.py)
        return f"input `input_ids`: [batch, length] int64, token ids of `{i['tokenizer']}` (see below)"
    if "inputs" in i:  # a table's raw rows (engine/table_export.py)
        return "inputs " + ", ".join(f"`{x['name']}` {x['shape']} {x['dtype']}" for x in i["inputs"]) + \
            ": raw table rows (the encoding is inside the model, see below)"
    return f"input `x`: {i['shape']} float32, raw values (normalisation is inside the model)"


def model_card(r: dict) -> str:
    unmeasured = r.get("accuracy_note")

    def acc(key):
        v = r["accuracy"].get(key)
        return ("not measured" if unmeasured else "–") if v is None else f"{v:.4f}"

    lat = r.get("latency") or {}
    stats, speedup = lat.get("ms_per_batch", {}), lat.get("speedup_vs_pytorch", {})

    def ms(key):
        s = stats.get(key)
        if s is None:
            return r["latency_ms_per_batch"].get(key, "–")
        return f"{s['median']:.3f} ({s['p10']:.3f}–{s['p90']:.3f})"

    size = {k: f"{v['bytes']:,}" for k, v in r["files"].items()}
    rows = [("PyTorch fp32 (safetensors)", size.get("safetensors", "–"), acc("pytorch_fp32"), ms("pytorch_fp32"),
             "–"),
            ("ONNX fp32 (student.onnx)", size["onnx_fp32"], acc("onnx_fp32"), ms("onnx_fp32"),
             speedup_text(speedup.get("onnx_fp32")))]
    if "onnx_int8" in r["files"]:
        rows.append(("ONNX int8 (student.int8.onnx)", size["onnx_int8"], acc("onnx_int8"), ms("onnx_int8"),
                     speedup_text(speedup.get("onnx_int8"))))
    table = "\n".join(f"| {' | '.join(str(c) for c in row)} |" for row in rows)
    steps = "; ".join(f"{c['kind']} {c.get('method', c.get('mode'))}"
                      + (f" {c['sparsity']:.0%}" if c["kind"] == "prune" else "") for c in r["compression"])
    notes = "".join(f"\n> **{p['kind']}**: {p['message']}. {p['hint']}.\n"
                    for p in r["problems"] + r.get("notes", []))
    timed = sorted({s["timed_batches"] for s in stats.values()})
    load = lat.get("load") or {}
    how = (f"\nEach time is the median of {'–'.join(map(str, (timed[0], timed[-1]) if len(timed) > 1 else timed))} "
           f"timed batches after {lat.get('warmup_batches')} warm-up batches, p10–p90 in brackets; PyTorch and "
           f"onnxruntime at {r['threads']} threads"
           + (f"; machine load {load['loadavg_1min']:.1f} on {load['cpu_count']} cores"
              if load.get("loadavg_1min") is not None else "")
           + ". Speed-ups are ratios of the medians.\n" if stats else "")
    if lat.get("indicative"):
        how += f"\n> **indicative timings**: {lat['indicative_because']}; measure again on a quiet machine.\n"
    return (f"# {r['name']}\n\nA student distilled by Distill Studio from {len(r['teachers'])} teachers "
            f"({', '.join(r['teachers'])}) with {r['strategy']['kind']} "
            f"(T = {r['strategy']['temperature']}).\n\n"
            f"- classes: {', '.join(r['classes'])}\n- {_input_words(r['input'])}; "
            f"output `logits`: {r['output']['shape']}\n"
            f"- parameters: {r['parameters']:,}; sparsity {r['sparsity']:.1%}\n"
            f"- compression: {steps or 'none'}\n"
            f"- ONNX vs PyTorch: max |difference| {r['parity_max_abs_diff']:.2e}\n{notes}\n"
            f"| model | bytes | {r['evaluated_on']} accuracy ({r['test_samples']} samples) | ms per batch of "
            f"{r['latency_batch']}, median (p10–p90) | vs PyTorch |\n|---|---|---|---|---|\n{table}\n{how}")
