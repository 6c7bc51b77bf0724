"""`distill-engine`: the headless command line (also what the app starts as its engine process)."""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import sys
import time
from pathlib import Path

from engine import __version__
from engine.errors import InputError
from engine.text_safety import escape, say

EXIT_INVALID = 2


def main(argv: list[str] | None = None) -> int:
    faulthandler.enable()  # a crash in native code prints where it happened on stderr (the app shows it)
    parser = argparse.ArgumentParser(
        prog="distill-engine",
        description="Distil many small expert models into one larger model, headless.")
    parser.add_argument("--version", action="version", version=f"distill-engine {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="train a spec; events as JSON lines on stdout")
    p.add_argument("spec", type=Path, help="a .distill.json spec or project file")
    p.add_argument("--run-dir", type=Path, help="where the run keeps its spec copy, checkpoints "
                   "and weights (default: a new folder in the user data dir)")
    p.add_argument("--db", type=Path, help="the run store (default: runs.sqlite in the user data dir)")

    p = sub.add_parser("resume", help="continue a stopped, failed or killed run from its last "
                       "checkpoint; events as with run")
    p.add_argument("run_dir", type=Path, help="the run's folder")
    p.add_argument("--db", type=Path, help="the run store (default: the one the run started with)")

    p = sub.add_parser("export", help="the run's student as verified ONNX (and int8), "
                       "safetensors and a report")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--out", type=Path, required=True, help="folder for the exported files")
    p.add_argument("--quantize", choices=["int8"], help="also write an int8 model (onnxruntime; "
                   "dynamic unless --calibration is given)")
    p.add_argument("--calibration", type=int, metavar="N", help="static int8: calibrate "
                   "activation ranges on N training samples")
    p.add_argument("--max-drop", type=float, default=1.0, metavar="POINTS", help="test accuracy "
                   "points int8 may lose; above it the int8 file is not kept (default 1.0)")
    p.add_argument("--no-safetensors", action="store_true", help="do not copy the weights")
    p.add_argument("--events", action="store_true", help="progress and the report as JSON lines")

    p = sub.add_parser("analyze", help="what the student learned, and from whom: per-class accuracy "
                       "beside each teacher's, confusion, agreement, calibration, mistakes, "
                       "attribution; files in RUN_DIR/insights (docs/INSIGHTS.md)")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--split", choices=["test", "val", "train"], default="test",
                   help="the samples analysed (default test)")
    p.add_argument("--mistakes", type=int, default=24, metavar="N", help="wrong answers listed (default 24)")
    p.add_argument("--attributions", type=int, default=6, metavar="N",
                   help="samples explained by attribution (default 6)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="analyse at most the first N samples")
    p.add_argument("--events", action="store_true", help="progress and the result as JSON lines; "
                   "`stop` on stdin cancels")

    p = sub.add_parser("validate", help="check a spec and the files it names; exit 2 on problems")
    p.add_argument("spec", type=Path)
    p.add_argument("--json", action="store_true", help="print the problems as JSON")

    p = sub.add_parser("inspect", help="what a model file holds (format, inputs, outputs, "
                       "classes, parameters, sha256), without running it")
    p.add_argument("model", type=Path)
    p.add_argument("--tokenizer", type=Path, help="a text model's tokenizer.json (default: the one "
                   "beside the model file)")
    p.add_argument("--roles", type=json.loads, default=None, metavar="JSON",
                   help='a text model\'s input roles, e.g. \'{"input_ids": "ids"}\'')
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("preview-text", help="the first texts of a text data file, a few per class, "
                       "and how many texts and classes it holds")
    p.add_argument("file", type=Path)
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default=None)
    p.add_argument("--per-class", type=int, default=4, metavar="N", help="texts shown per class (default 4)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("scan", help="what an image folder holds: labelled or flat, images per "
                       "class, other files, a few thumbnails per class")
    p.add_argument("folder", type=Path)
    p.add_argument("--thumbs", type=int, default=4, metavar="N", help="thumbnails per class, 0–8 "
                   "(of the first 12 classes; default 4)")
    p.add_argument("--json", action="store_true", help="progress and the result as JSON-line events")

    p = sub.add_parser("devices", help="the devices training can use here (CUDA GPUs, MPS, CPU)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("tensorboard", help="a run's metrics as TensorBoard event files in RUN_DIR/tensorboard "
                       "(written from the store for a run that has none), and the command that shows them")
    p.add_argument("run_dir", type=Path, help="the run's folder")
    p.add_argument("--db", type=Path, help="the run store (default: the one the run was recorded in)")

    p = sub.add_parser("runs", help="the runs in the store, newest first")
    p.add_argument("--db", type=Path)
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true", help="print JSON")

    args = parser.parse_args(argv)
    from engine.insight.command import cmd_analyze

    return {"run": cmd_run, "resume": cmd_resume, "export": cmd_export, "analyze": cmd_analyze,
            "validate": cmd_validate,
            "inspect": cmd_inspect, "scan": cmd_scan, "preview-text": cmd_preview_text,
            "runs": cmd_runs, "devices": cmd_devices, "tensorboard": cmd_tensorboard}[args.command](args)


def _engine_process(spec: Path | None, run_dir: Path | None, db: Path | None, resume: bool) -> int:
    """stdout becomes the event stream, stdin the command channel; then run."""
    from engine.events import Control, Emitter
    from engine.run import execute

    emitter = Emitter.take_stdout()
    control = Control(emitter)
    control.listen()
    return execute(spec, run_dir, db, emitter, control, resume=resume)


def cmd_run(args) -> int:
    return _engine_process(args.spec, args.run_dir, args.db, resume=False)


def cmd_resume(args) -> int:
    return _engine_process(None, args.run_dir, args.db, resume=True)


def cmd_export(args) -> int:
    # PyTorch's OpenMP workers, left to spin between batches (libgomp's default), take the cores
    # the calling thread needs when the machine is busy: a fresh export process then timed a
    # 0.3 ms student at 24–48 ms per batch (a run's export, its pool long warm, did not see it).
    # Set before torch is imported (libgomp reads it once); a user's own setting is kept
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from pydantic import ValidationError

    from engine.errors import RunFailed
    from engine.events import Emitter
    from engine.export import export_run
    from engine.spec import QuantizeStep

    emitter = Emitter.take_stdout() if args.events else None

    def fail(kind: str, message: str, hint: str, code: int) -> int:
        if emitter:
            emitter.error(kind, message, hint)
            emitter.emit("finished", status="failed", exit_code=code)
        else:
            say(f"{'cannot export' if code == EXIT_INVALID else 'export failed'}: {message}\n"
                f"  hint: {hint}", file=sys.stderr)
        return code

    if args.calibration is not None and args.quantize is None:
        args.quantize = "int8"
    try:
        static = args.calibration is not None
        quantize = QuantizeStep(mode="static" if static else "dynamic",
                                calibration_samples=args.calibration if static else 256,
                                max_accuracy_drop=args.max_drop) if args.quantize else None
    except ValidationError as exc:
        first = exc.errors()[0]
        return fail("invalid_input", f"--{'calibration' if 'calibration' in str(first['loc']) else 'max-drop'}: "
                    f"{first['msg']}", "give --calibration a count ≥ 1 and --max-drop 0…100", EXIT_INVALID)
    progress = (lambda stage, fraction: emitter.emit("progress", phase="export", stage=stage,
                                                     fraction=fraction)) if emitter else None
    try:
        report = export_run(args.run_dir, args.out, quantize, not args.no_safetensors, progress)
    except InputError as exc:
        p = exc.problems[0]
        return fail(exc.kind, p.message, p.hint, EXIT_INVALID)
    except RunFailed as exc:
        return fail(exc.kind, exc.message, exc.hint, 1)
    except Exception as exc:  # noqa: BLE001 — a bug or a library failure: say it, never hide it
        import traceback

        traceback.print_exc()
        return fail("crash", f"the export failed unexpectedly: {type(exc).__name__}: {exc}",
                    "the details are on stderr; please report them with the run's spec", 1)
    code = 1 if report["problems"] else 0  # notes (e.g. accuracy not measured) do not fail it
    if emitter:
        for n in report.get("notes", []):
            emitter.log(f"{n['message']}; {n['hint']}", "warning")
        for p in report["problems"]:
            emitter.error(p["kind"], p["message"], p["hint"])
        emitter.emit("finished", status="completed" if code == 0 else "failed", exit_code=code,
                     out=str(Path(args.out).resolve()), report=report)
        return code
    say(f"exported to {args.out}: " + ", ".join(
        f"{k} {v['bytes']:,} bytes" for k, v in report["files"].items()))
    for line in export_summary(report):
        say(line)
    for n in report.get("notes", []):
        say(f"note: {n['message']}\n  hint: {n['hint']}")
    for p in report["problems"]:
        say(f"export problem: {p['message']}\n  hint: {p['hint']}", file=sys.stderr)
    return code


def export_summary(report: dict) -> list[str]:
    """The export report in a few lines: accuracy (or why it was not measured), the int8 check,
    and the latency medians with their spread and the speed-ups computed from them."""
    from engine.report_words import speedup_text

    acc, where = report["accuracy"], report["evaluated_on"]
    diff = f"ONNX vs PyTorch max |diff| {report['parity_max_abs_diff']:.1e}"
    unmeasured = next((n for n in report.get("notes", []) if n["kind"] == "not_measured"), None)
    if unmeasured:
        why = unmeasured["message"].split(": ", 1)[-1]
        lines = [f"test accuracy: not measured ({why}; {unmeasured['hint']}); {diff}"]
    else:
        lines = ["test accuracy: " + ", ".join(f"{k} {v:.4f}" for k, v in acc.items() if v is not None)
                 + f" (on {where}, {report['test_samples']} samples); {diff}"]
    q = report.get("quantization")
    if q and q.get("kept") and not q.get("checked", True):
        lines.append(f"int8: kept unchecked, its accuracy check was skipped ({q['skipped_because']}); "
                     f"it picks fp32's class on {q['agreement_with_fp32']:.1%} of the samples")
    elif q and q.get("kept"):
        lines.append(f"int8: accuracy drop {q['accuracy_drop_points']:g} points (limit {q['max_accuracy_drop']:g})")
    lat = report.get("latency")
    if lat:
        stats, speedup = lat["ms_per_batch"], lat["speedup_vs_pytorch"]
        timed = sorted({s["timed_batches"] for s in stats.values()})
        lines.append(f"ms per batch of {lat['batch']}, median of {'–'.join(map(str, sorted({timed[0], timed[-1]})))} "
                     f"timed after {lat['warmup_batches']} warm-up, {lat['threads']} threads (p10–p90): " + ", ".join(
                         f"{k} {s['median']:.3f} ({s['p10']:.3f}–{s['p90']:.3f})"
                         + (f" {speedup_text(speedup[k])}" if k in speedup else "") for k, s in stats.items()))
        if lat["indicative"]:
            lines.append(f"these timings are indicative only: {lat['indicative_because']}")
    else:  # a report from before the latency section
        lines.append(f"ms per batch of {report['latency_batch']}: " + ", ".join(
            f"{k} {v:.3f}" for k, v in report["latency_ms_per_batch"].items()))
    return lines


def cmd_validate(args) -> int:
    from engine.spec import load_spec

    try:
        spec = load_spec(args.spec)
        from engine.device import choose_device, choose_precision, set_threads
        from engine.models import build_model, count_parameters
        from engine.preflight import prepare

        device = choose_device(spec.training.device)
        choose_precision(spec.training.precision, device)
        from engine.store import cache_root

        prepared = prepare(spec, set_threads(spec.training.cpu_threads), cache_root(None))  # what `run` checks
        data, teachers = prepared.data, prepared.teachers
        import torch

        with torch.device("meta"):  # counted, not allocated: a student too large for this machine is told in its run
            student = build_model(spec.student.architecture, data.sample_shape, len(spec.classes))
        params = count_parameters(student)
        layers = student.hint_layer_shapes()  # a meta-device forward: shapes, no memory
    except InputError as exc:
        if args.json:
            say(json.dumps({"valid": False, "problems": [p.as_dict() for p in exc.problems]}))
        else:
            say(f"{args.spec}: {len(exc.problems)} problem(s)", file=sys.stderr)
            for p in exc.problems:
                say(f"  {p}", file=sys.stderr)
        return EXIT_INVALID
    summary = {"valid": True, "name": spec.name, "teachers": [t.name for t in teachers],
               "classes": len(spec.classes), "student_parameters": params, "student_layers": layers,
               "sample_shape": list(data.sample_shape),
               "samples": {"train": len(data.train), "val": len(data.val), "test": len(data.test)},
               "labeled": data.labeled, "device": str(device), "notes": data.notes,
               "checks": [{"teacher": f.teacher, "level": f.level, "message": f.message, "hint": f.hint,
                           "field": f.where, "accuracy": f.accuracy, "samples": f.samples, "fix": f.fix}
                          for f in prepared.findings]}
    if args.json:
        say(json.dumps(summary))
    else:
        for note in data.notes:
            say(f"note: {note}")
        for f in prepared.findings:
            say(f"{'warning' if f.level == 'warning' else 'check'}: {f.message}"
                + (f"\n  hint: {f.hint}" if f.level == "warning" and f.hint else ""))
        say(f"{args.spec}: valid. '{escape(spec.name)}': {len(teachers)} teachers "
            f"({', '.join(map(escape, summary['teachers']))}) -> {spec.student.architecture.kind} student "
            f"with {params:,} parameters over {len(spec.classes)} classes; "
            f"{len(data.train)}/{len(data.val)}/{len(data.test)} train/val/test samples"
            f"{'' if data.labeled else ', unlabeled'}; device {device}.")
    return 0


def cmd_inspect(args) -> int:
    from engine.inspect_model import format_report, inspect_model

    try:
        info = inspect_model(args.model, args.tokenizer, args.roles if isinstance(args.roles, dict) else None)
    except InputError as exc:
        for p in exc.problems:
            say(f"cannot inspect: {p.message}\n  hint: {p.hint}", file=sys.stderr)
        return EXIT_INVALID
    except Exception as exc:  # noqa: BLE001 — a file no check foresaw: a message, never a traceback
        detail = " ".join(str(exc).split())[:200]
        say(f"cannot inspect: {Path(args.model).name} cannot be read ({type(exc).__name__}: {detail})\n"
            "  hint: the file may be damaged or of another format; export or save the model again",
            file=sys.stderr)
        return EXIT_INVALID
    say(json.dumps(info, indent=2) if args.json else format_report(info))
    return 0


def cmd_preview_text(args) -> int:
    from engine.text_preview import format_preview, preview

    try:
        result = preview(args.file, args.text_column, args.label_column, max(1, min(args.per_class, 20)))
    except InputError as exc:
        p = exc.problems[0]
        say(f"cannot preview: {p.message}\n  hint: {p.hint}", file=sys.stderr)
        return EXIT_INVALID
    except Exception as exc:  # noqa: BLE001 — a file no check foresaw: a message, never a traceback
        detail = " ".join(str(exc).split())[:200]
        say(f"cannot preview: {args.file.name} cannot be read ({type(exc).__name__}: {detail})\n"
            "  hint: check that the file can be read", file=sys.stderr)
        return EXIT_INVALID
    say(json.dumps(result) if args.json else "\n".join(format_preview(result)))
    return 0


def cmd_scan(args) -> int:
    from engine.events import Emitter
    from engine.scan_folder import format_scan, scan

    emitter = Emitter.take_stdout() if args.json else None

    def progress(stage: str, count: int, fraction: float) -> None:
        if emitter:
            emitter.emit("progress", phase="scan", stage=stage, step=count, fraction=fraction)
        elif stage == "listing":
            say(f"listed {count:,} images…", file=sys.stderr)

    try:
        result = scan(args.folder, args.thumbs, progress)
    except InputError as exc:
        p = exc.problems[0]
        if emitter:
            emitter.error(exc.kind, p.message, p.hint, field=p.path)
            emitter.emit("finished", status="failed", exit_code=EXIT_INVALID)
        else:
            say(f"cannot scan: {p.message}\n  hint: {p.hint}", file=sys.stderr)
        return EXIT_INVALID
    except Exception as exc:  # noqa: BLE001 — a folder no check foresaw: a message, never a traceback
        detail = " ".join(str(exc).split())[:200]
        message, hint = (f"the folder {args.folder} cannot be scanned ({type(exc).__name__}: {detail})",
                         "check that the folder and its files can be read")
        if emitter:
            emitter.error("crash", message, hint)
            emitter.emit("finished", status="failed", exit_code=1)
        else:
            say(f"cannot scan: {message}\n  hint: {hint}", file=sys.stderr)
        return 1
    if emitter:
        emitter.emit("finished", status="completed", exit_code=0, report=result)
    else:
        for line in format_scan(result):
            say(line)
    return 0


def cmd_devices(args) -> int:
    import os

    import torch

    cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
    info = {"cuda": cuda, "cuda_names": [torch.cuda.get_device_name(i) for i in range(cuda)],
            "mps": torch.backends.mps.is_available(), "cpu_cores": os.cpu_count(),
            "torch": torch.__version__}
    if args.json:
        say(json.dumps(info))
    else:
        gpus = ", ".join(info["cuda_names"]) or "none"
        say(f"CUDA GPUs: {cuda} ({gpus}); Apple MPS: {'yes' if info['mps'] else 'no'}; "
            f"CPU cores: {info['cpu_cores']}; torch {info['torch']}")
        if cuda > 1:
            say(f"train on all of them: torchrun --nproc_per_node={cuda} --no-python distill-engine run SPEC")
    return 0


def cmd_tensorboard(args) -> int:
    from engine.tensorboard_export import ensure_for_run
    from engine.tensorboard_folder import folder, view_command

    try:
        written, count = ensure_for_run(args.run_dir, args.db)
    except InputError as exc:
        p = exc.problems[0]
        say(f"cannot write TensorBoard files: {p.message}\n  hint: {p.hint}", file=sys.stderr)
        return EXIT_INVALID
    where = folder(args.run_dir)
    say(f"wrote {count} scalars from the store into {where}" if written else f"{where} already has event files")
    say(f"view them with: {view_command(args.run_dir)}")
    return 0


def cmd_runs(args) -> int:
    from engine.store import StoreDamaged, open_checked

    try:
        store = open_checked(args.db)
    except StoreDamaged as exc:
        print(f"cannot list runs: {exc}", file=sys.stderr)
        return 2
    rows = store.runs(limit=args.limit)
    store.close()
    if args.json:
        say(json.dumps(rows, indent=2))
        return 0
    if not rows:
        say(f"no runs yet in {store.path}")
        return 0
    say(f"{'id':>4}  {'name':24} {'status':10} {'val/acc':>7}  {'started':16} {'time':>7}  device")
    for r in rows:
        best = json.loads(r["best_metrics"] or "{}")
        acc = f"{best['val/acc']:.3f}" if "val/acc" in best else "-"
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["started"]))
        took = f"{r['ended'] - r['started']:.1f}s" if r["ended"] else "-"
        say(f"{r['id']:>4}  {escape(r['name'])[:24]:24} {escape(r['status']):10} {acc:>7}  {started:16} "
            f"{took:>7}  {escape(r['device'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
