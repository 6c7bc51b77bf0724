"""An image folder far larger than memory, distilled end to end: one JSON object on the last line.

    .venv/bin/python bench/data_scale.py [--images 100000] [--size 128] [--student-size 64]
                                         [--epochs 1] [--work /tmp/distill-data-scale] [--warm]

1. Generates (or reuses, when its manifest says the same parameters) a folder of `--images`
   synthetic JPEGs (`--size` pixels a side, quality 85, one subfolder per class: each class a
   shape and a hue over a random gradient with noise, so the classes can be learnt) whose
   decoded float32 size is many GB, plus a small labelled test folder; on every core.
2. Trains two small CNN teachers (experts on classes 0-5 and 4-9) on a few thousand images at
   the student size, exported to ONNX taking [N, 3, H, W] pixels in 0-1 (`input.scale` 1/255),
   and writes a spec: the folder (`format: folder`), a CNN student, the teachers' outputs cached.
3. Times `engine.data.images.decode` at the student size in one process and in one per core.
4. Runs the spec with the engine's CLI (`distill-engine run`), a fresh store in the work folder
   (so the image check and the teacher cache start cold; `--warm` keeps them), sampling every
   0.2 s the memory of the engine's process tree (the engine, its DataLoader and ProcessPool
   workers): PSS from /proc/PID/smaps_rollup summed over the tree (shared pages counted once),
   the sum of RSS, and the largest single RSS. The goal: a peak ≤ 2048 MB whatever the data size.

Stage times come from the events: `until_started_s` (imports, listing, the image check, the
teachers' checks), `image_check_s` (from the first decoding child to the check's cache file; none when the check
ran in the engine process, a small folder),
`teacher_pass_s` (the engine's own figure, from its log), `training_s` (teachers ready → student
saved, validation included), `test_eval_s`, `export_s`. `data_wait_mean` is the share of the
training time the loop waited for its next batch, weighted by time (`progress` events).

The engine inherits this process's environment; glibc's MALLOC_* settings, which change how much
freed memory a process keeps (MALLOC_MMAP_THRESHOLD_), are recorded in `malloc_env`. The events
are kept beside the run folder (`RUN.events.jsonl`, `RUN.stderr.log`).
"""

from __future__ import annotations

import argparse
import colorsys
import json
import math
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ENGINE_MAIN = str(ROOT / "engine" / "__main__.py")  # by absolute path with -P: nothing from the working directory
sys.path.insert(0, str(ROOT))

from engine.data import images  # noqa: E402 (torch-free)

CLASSES = [f"c{i}" for i in range(10)]
EXPERTS = [list(range(0, 6)), list(range(4, 10))]  # the two teachers' classes: they share two
GENERATOR = 1  # bump when the images drawn change: the manifest then no longer matches
GOAL_MB = 2048


# ── 1. the image folder ─────────────────────────────────────────────────────────────────────


def _draw(cls: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """One image of class `cls`: a gradient, the class's shape (cls % 5) in the class's hue
    (cls / 10, jittered), Gaussian noise. uint8 [size, size, 3]."""
    from PIL import Image, ImageDraw

    ramp = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    t = np.clip(np.float32(np.cos(angle)) * ramp[None, :] + np.float32(np.sin(angle)) * ramp[:, None] + 0.5, 0, 1)
    c1, c2 = rng.uniform(0, 255, 3).astype(np.float32), rng.uniform(0, 255, 3).astype(np.float32)
    bg = c1 + (c2 - c1) * t[..., None]
    img = Image.fromarray(bg.astype(np.uint8))
    draw = ImageDraw.Draw(img)
    hue = (cls / 10 + rng.uniform(-0.025, 0.025)) % 1.0
    colour = tuple(int(255 * v) for v in colorsys.hsv_to_rgb(hue, rng.uniform(0.7, 1.0), rng.uniform(0.75, 1.0)))
    cx, cy = rng.uniform(0.35, 0.65, 2) * size
    r = rng.uniform(0.18, 0.32) * size
    box = (cx - r, cy - r, cx + r, cy + r)
    kind = cls % 5
    if kind == 0:
        draw.ellipse(box, fill=colour)
    elif kind == 1:
        draw.rectangle(box, fill=colour)
    elif kind == 2:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    elif kind == 3:
        w = r / 3
        draw.rectangle((cx - r, cy - w, cx + r, cy + w), fill=colour)
        draw.rectangle((cx - w, cy - r, cx + w, cy + r), fill=colour)
    else:
        draw.ellipse(box, outline=colour, width=max(2, int(r / 3)))
    dy, dx = rng.integers(0, size, 2)
    out = np.asarray(img, dtype=np.int16) + _noise(size)[dy:dy + size, dx:dx + size]
    return np.clip(out, 0, 255).astype(np.uint8)


_NOISE: dict[int, np.ndarray] = {}


def _noise(size: int) -> np.ndarray:
    """Gaussian noise (σ 12) twice the image's side, cut at a random offset for each image."""
    if size not in _NOISE:
        _NOISE[size] = np.round(np.random.default_rng(size).normal(0, 12, (2 * size, 2 * size, 3))).astype(np.int16)
    return _NOISE[size]


def _write_chunk(args) -> int:
    from PIL import Image

    root, size, start, stop, seed = args
    for i in range(start, stop):
        cls = i % len(CLASSES)
        rng = np.random.default_rng([seed, i])
        path = Path(root) / CLASSES[cls] / f"{i:07d}.jpg"
        Image.fromarray(_draw(cls, size, rng)).save(path, quality=85)
    return stop - start


def make_folder(root: Path, n: int, size: int, seed: int, procs: int) -> None:
    if root.exists():
        shutil.rmtree(root)
    for c in CLASSES:
        (root / c).mkdir(parents=True)
    step = 500
    chunks = [(str(root), size, i, min(i + step, n), seed) for i in range(0, n, step)]
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        for _ in pool.imap_unordered(_write_chunk, chunks):
            pass


def folder_bytes(root: Path) -> int:
    return sum(e.stat().st_size for c in os.scandir(root) if c.is_dir() for e in os.scandir(c.path))


def ensure_data(work: Path, args) -> tuple[dict, float | None]:
    """The train and test folders, made now or reused when the manifest matches."""
    wanted = {"generator": GENERATOR, "images": args.images, "test_images": args.test_images,
              "size": args.size, "classes": len(CLASSES), "quality": 85}
    manifest = work / "data" / "manifest.json"
    try:
        if json.loads(manifest.read_text()) == {**wanted, "complete": True}:
            return wanted, None
    except (OSError, ValueError):
        pass
    manifest.unlink(missing_ok=True)
    started = time.perf_counter()
    procs = os.cpu_count() or 1
    make_folder(work / "data" / "train", args.images, args.size, 1, procs)
    make_folder(work / "data" / "test", args.test_images, args.size, 2, procs)
    seconds = time.perf_counter() - started
    manifest.write_text(json.dumps({**wanted, "complete": True}))
    return wanted, seconds


# ── 2. teachers and the spec ────────────────────────────────────────────────────────────────


def _decode_one(args):
    path, size = args
    return images.decode(Path(path), (size, size))


def _decode_many(paths: list[str], size: int, procs: int) -> np.ndarray:
    jobs = [(p, size) for p in paths]
    if procs <= 1:
        return np.stack([_decode_one(j) for j in jobs])
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        return np.stack(pool.map(_decode_one, jobs, chunksize=64))


def sample_paths(root: Path, n: int) -> tuple[list[str], np.ndarray]:
    """`n` images spread evenly over the folder, with their class numbers."""
    files = sorted(str(p) for p in root.glob("*/*.jpg"))
    picks = np.linspace(0, len(files) - 1, min(n, len(files))).astype(int)
    paths = [files[i] for i in picks]
    return paths, np.array([CLASSES.index(Path(p).parent.name) for p in paths])


def make_teachers(work: Path, student_size: int, samples: int) -> list[dict]:
    import torch
    from torch import nn

    folder = work / "teachers"
    folder.mkdir(exist_ok=True)
    paths, y = sample_paths(work / "data" / "train", samples)
    x = _decode_many(paths, student_size, os.cpu_count() or 1).astype(np.float32) / 255
    out = []
    for k, classes in enumerate(EXPERTS):
        path = folder / f"expert{k}-{student_size}.onnx"
        keep = np.isin(y, classes)
        xs, ys = torch.from_numpy(x[keep]), torch.from_numpy(np.searchsorted(classes, y[keep]))
        torch.manual_seed(k)
        model = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU(),
                              nn.Conv2d(32, 32, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                              nn.Linear(32, len(classes)))
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in range(8):
            for idx in torch.randperm(len(xs)).split(64):
                opt.zero_grad()
                nn.functional.cross_entropy(model(xs[idx]), ys[idx]).backward()
                opt.step()
        model.eval()
        with torch.no_grad():
            acc = float((model(xs).argmax(1) == ys).float().mean())
        torch.onnx.export(model, (xs[:1],), str(path), input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17,
                          dynamo=False)
        out.append({"name": f"expert {classes[0]}-{classes[-1]}", "path": str(path),
                    "classes": [CLASSES[c] for c in classes], "input": {"scale": 1 / 255},
                    "train_acc": round(acc, 4)})
    return out


def write_spec(work: Path, teachers: list[dict], args) -> Path:
    spec = {"schema_version": 1, "name": "data-scale", "classes": CLASSES,
            "data": {"format": "folder", "path": str(work / "data" / "train"),
                     "test_folder": str(work / "data" / "test"),
                     "size": [args.student_size, args.student_size], "channels": 3, "workers": args.workers},
            "teachers": [{k: v for k, v in t.items() if k != "train_acc"} for t in teachers],
            "student": {"architecture": {"kind": "cnn", "channels": args.student_channels, "depth": 3}},
            "training": {"epochs": args.epochs, "batch_size": args.batch_size, "teacher_outputs": "cache"},
            "export": {}}
    path = work / "data-scale.distill.json"
    path.write_text(json.dumps(spec, indent=2))
    return path


# ── 3. the decode rate ──────────────────────────────────────────────────────────────────────


def decode_rates(work: Path, student_size: int, n: int) -> dict:
    paths, _ = sample_paths(work / "data" / "train", n)
    procs = os.cpu_count() or 1
    out = {}
    for p in (1, procs):
        started = time.perf_counter()
        _decode_many(paths, student_size, p)
        out[p] = round(len(paths) / (time.perf_counter() - started))
    return {"decode_images_per_s_1proc": out[1], "decode_images_per_s_nproc": out[procs], "decode_procs": procs,
            "decode_sample": len(paths)}


# ── 4. the run, its memory and its events ───────────────────────────────────────────────────


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants (/proc/PID/task/*/children)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return found


def memory(pid: int) -> tuple[float, float, float, int]:
    """(PSS sum, RSS sum, largest RSS) in MB over the tree of `pid`, and its process count."""
    pss = rss = biggest = 0
    count = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                text = f.read()
        except OSError:
            continue
        r = int(re.search(r"^Rss:\s+(\d+)", text, re.M).group(1))
        pss += int(re.search(r"^Pss:\s+(\d+)", text, re.M).group(1))
        rss += r
        biggest = max(biggest, r)
        count += 1
    return pss / 1024, rss / 1024, biggest / 1024, count


def run_engine(spec: Path, db: Path, run_dir: Path, interval: float) -> dict:
    started = time.time()
    stderr = open(run_dir.parent / f"{run_dir.name}.stderr.log", "w")
    proc = subprocess.Popen([sys.executable, "-P", ENGINE_MAIN, "run", str(spec), "--db", str(db),
                             "--run-dir", str(run_dir)], cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr,
                            text=True)
    events: list[dict] = []

    def read() -> None:
        with open(run_dir.parent / f"{run_dir.name}.events.jsonl", "w") as kept:  # for a post-mortem
            for line in proc.stdout:
                kept.write(line)
                try:
                    events.append(json.loads(line))
                except ValueError:
                    events.append({"event": "unparsed", "time": time.time(), "line": line[:300]})

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    samples = []  # (seconds since start, pss, rss sum, rss max, processes)
    while proc.poll() is None:
        samples.append((time.time() - started, *memory(proc.pid)))
        time.sleep(interval)
    reader.join(10)
    stderr.close()
    return {"started": started, "ended": time.time(), "exit_code": proc.returncode, "events": events,
            "samples": samples, "stderr": (run_dir.parent / f"{run_dir.name}.stderr.log").read_text()[-3000:]}


def first(events: list[dict], test) -> dict | None:
    return next((e for e in events if test(e)), None)


def figures(run: dict, db: Path) -> dict:
    events, samples, t0 = run["events"], run["samples"], run["started"]

    def at(e):
        return None if e is None else e["time"] - t0

    started = at(first(events, lambda e: e["event"] == "started"))
    ready_e = first(events, lambda e: e["event"] == "log" and e["message"].startswith("teacher outputs"))
    ready = at(ready_e)
    pass_s = float(re.search(r"in ([\d.]+)s", ready_e["message"]).group(1)) if ready_e else None
    student = at(first(events, lambda e: e["event"] == "artifact" and e["kind"] == "student"))
    export_first = at(first(events, lambda e: e["event"] == "progress" and e["phase"] == "export"))
    finished_e = first(events, lambda e: e["event"] == "finished")
    finished = at(finished_e)
    # the image check: from the first decoding child (before `started`) to its last cache file
    checks = sorted((db.parent / "cache" / "image-checks").glob("*.json"))
    check_end = max((p.stat().st_mtime - t0 for p in checks), default=None)
    check_start = next((s[0] for s in samples if s[4] > 1 and (started is None or s[0] < started)), None)
    epochs = [at(e) for e in events if e["event"] == "metric" and any(k.startswith("val/") for k in e["values"])]
    progress = [e for e in events if e["event"] == "progress" and e["phase"] != "export"]
    waits, weights, prev = [], [], None
    for e in progress:
        if prev is not None and e.get("data_wait") is not None:
            waits.append(e["data_wait"])
            weights.append(e["time"] - prev)
        prev = e["time"]
    split = (first(events, lambda e: e["event"] == "started") or {}).get("split", {})
    n_epochs = (first(events, lambda e: e["event"] == "started") or {}).get("epochs")
    training = student - ready if None not in (student, ready) else None

    def peak(column: int, since: float | None = 0, until: float | None = None) -> float | None:
        got = [s[column] for s in samples if since is not None and s[0] >= since and (until is None or s[0] <= until)]
        return round(max(got)) if got else None

    step = max(1, len(samples) // 40)
    curve = [[round(s[0], 1), round(s[1])] for s in samples[::step]]
    def rnd(v: float | None, d: int = 1) -> float | None:
        return None if v is None else round(v, d)

    return {
        "exit_code": run["exit_code"], "status": finished_e and finished_e["status"],
        "errors": [f"{e['kind']}: {e['message']}" for e in events if e["event"] == "error"],
        "warnings": [e["message"][:300] for e in events if e.get("level") == "warning"],
        "device": (first(events, lambda e: e["event"] == "started") or {}).get("device"),
        "torch_threads": (first(events, lambda e: e["event"] == "started") or {}).get("threads"),
        "split": split,
        "peak_pss_mb": peak(1), "peak_rss_sum_mb": peak(2), "peak_rss_max_process_mb": peak(3),
        "goal_peak_mb": GOAL_MB, "max_processes": max((s[4] for s in samples), default=0),
        "peak_pss_mb_by_stage": {"until_started": peak(1, 0, started), "teacher_pass": peak(1, started, ready),
                                 "training": peak(1, ready, student), "test_and_export": peak(1, student)},
        "pss_curve_mb": curve,
        "stages_s": {"until_started": rnd(started), "image_check": rnd(check_end - check_start)
                     if None not in (check_end, check_start) else None,
                     "teacher_pass": rnd(pass_s), "training": rnd(training),
                     "test_eval": rnd(export_first - student) if None not in (export_first, student) else None,
                     "export": rnd(finished - export_first) if None not in (finished, export_first) else None,
                     "total": rnd(run["ended"] - t0)},
        "epoch_ends_s": [rnd(e - ready) for e in epochs] if ready is not None else [],
        "train_samples": split.get("train"),
        "train_samples_per_s": round(split["train"] * n_epochs / training) if training and split.get("train") else None,
        "train_samples_per_s_median_progress": round(statistics.median(e["samples_per_s"] for e in progress))
        if progress else None,
        "data_wait_mean": round(float(np.average(waits, weights=weights)), 4) if waits and sum(weights) > 0 else None,
        "data_wait_max": max(waits) if waits else None,
        "test_acc": rnd(((finished_e or {}).get("final") or {}).get("test/acc"), 4),
        "teacher_outputs": [f"{e['teacher']}: {e['cache']}" for e in events if e["event"] == "teacher_outputs"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--test-images", type=int, default=1000)
    parser.add_argument("--size", type=int, default=128, help="the images' native side, pixels")
    parser.add_argument("--student-size", type=int, default=64, help="data.size: the side the student reads")
    parser.add_argument("--student-channels", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=None, help="data.workers (none: the engine's default)")
    parser.add_argument("--teacher-samples", type=int, default=3000)
    parser.add_argument("--decode-sample", type=int, default=4000)
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between memory samples")
    parser.add_argument("--work", type=Path, default=Path("/tmp/distill-data-scale"))
    parser.add_argument("--warm", action="store_true", help="keep the store (its image checks, teacher cache)")
    args = parser.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    _, generation_s = ensure_data(work, args)
    teachers = make_teachers(work, args.student_size, args.teacher_samples)
    spec = write_spec(work, teachers, args)
    rates = decode_rates(work, args.student_size, args.decode_sample)
    db_dir = work / "store"
    if not args.warm and db_dir.exists():
        shutil.rmtree(db_dir)
    db_dir.mkdir(exist_ok=True)
    runs = work / "runs"
    runs.mkdir(exist_ok=True)
    run_dir = runs / time.strftime("run-%Y%m%d-%H%M%S")
    run = run_engine(spec, db_dir / "runs.sqlite", run_dir, args.interval)
    found = figures(run, db_dir / "runs.sqlite")
    native = args.images * 3 * args.size ** 2 * 4
    result = {
        "bench": "data_scale", "images": args.images, "test_images": args.test_images, "native_size": args.size,
        "student_size": args.student_size, "decoded_float32_gb": round(native / 1e9, 2),
        "decoded_float32_gb_student_size": round(args.images * 3 * args.student_size ** 2 * 4 / 1e9, 2),
        "disk_mb": round(folder_bytes(work / "data" / "train") / 1e6),
        "generation_s": None if generation_s is None else round(generation_s, 1), "reused_folder": generation_s is None,
        "cores": os.cpu_count(), "decode_workers": images.default_workers(args.workers),
        **rates, "teacher_train_acc": [t["train_acc"] for t in teachers],
        "student": {"kind": "cnn", "channels": args.student_channels, "depth": 3}, "epochs": args.epochs,
        "batch_size": args.batch_size, "warm": args.warm,
        "malloc_env": {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}, **found,
        "within_goal": found["peak_pss_mb"] is not None and found["peak_pss_mb"] <= GOAL_MB,
        "run_dir": str(run_dir), "spec": str(spec), "store": str(db_dir / "runs.sqlite"),
    }
    if run["exit_code"] != 0:
        result["stderr_tail"] = run["stderr"]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
