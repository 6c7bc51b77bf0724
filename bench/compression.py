"""Compression targets, measured through the real engine: one JSON object on the last line.

    .venv/bin/python bench/compression.py [--case demo|fashion|all] [--threads 2]

For each case a student is trained from a spec (`distill-engine run`), then exported
(`distill-engine export`: fp32 ONNX, int8 dynamic, int8 static) and, separately, trained again
with 50% magnitude pruning plus a distillation fine-tune. Figures per case:

- `size_ratio`: fp32 ONNX bytes / int8 ONNX bytes (goal ≥ 3.5)
- `speedup_vs_torch`: PyTorch eager fp32 ms / int8 onnxruntime ms at batch 64 (goal ≥ 2)
- `int8_drop_points`: test accuracy lost by int8 vs PyTorch fp32 (goal ≤ 0.5)
- `prune50_drop_points`: test accuracy lost by 50% pruning + fine-tune (goal ≤ 0.5)

Cases: `demo` (the bundled digits pipeline: MLP 256×2 from three ONNX experts) and `fashion`
(Fashion-MNIST from Debian's dataset-fashion-mnist: a CNN student from two small MLP experts,
each trained here on half of the classes). Latency uses the same thread count for PyTorch and
onnxruntime (--threads).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINE_MAIN = str(ROOT / "engine" / "__main__.py")  # by absolute path with -P: nothing from the working directory
DEMO = ROOT / "assets" / "examples" / "digits-experts.distill.json"
FASHION = Path("/usr/share/datasets/fashion-mnist")


def engine(*args, threads: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run([sys.executable, "-P", ENGINE_MAIN, *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"engine {args[0]} failed:\n{proc.stderr[-3000:]}")
    return proc


def run_spec(spec: dict, folder: Path, threads: int) -> tuple[Path, dict, float]:
    folder.mkdir(parents=True)
    path = folder / "spec.distill.json"
    path.write_text(json.dumps(spec))
    start = time.perf_counter()
    proc = engine("run", path, "--run-dir", folder / "run", "--db", folder / "db.sqlite", threads=threads)
    finished = json.loads(proc.stdout.splitlines()[-1])
    return folder / "run", finished, time.perf_counter() - start


def export(run_dir: Path, out: Path, threads: int, *extra: str) -> dict:
    engine("export", run_dir, "--out", out, "--quantize", "int8", "--max-drop", "100", *extra,
           threads=threads)
    return json.loads((out / "report.json").read_text())


def measure(name: str, spec: dict, work: Path, threads: int) -> dict:
    spec = {**spec, "training": {**spec["training"], "cpu_threads": threads}}
    spec.pop("layout", None)
    run_dir, finished, train_s = run_spec(spec, work / "plain", threads)
    dynamic = export(run_dir, work / "dynamic", threads)
    static = export(run_dir, work / "static", threads, "--calibration", "512")

    prune = {"kind": "prune", "method": "magnitude", "sparsity": 0.5, "scope": "global",
             "finetune_epochs": max(2, spec["training"]["epochs"] // 4)}
    pruned_spec = {**spec, "compression": [prune]}
    pruned_dir, pruned, prune_s = run_spec(pruned_spec, work / "pruned", threads)
    pruned_report = export(pruned_dir, work / "pruned-export", threads, "--calibration", "512")

    def figures(r: dict) -> dict:
        acc, ms, files = r["accuracy"], r["latency_ms_per_batch"], r["files"]
        return {"fp32_bytes": files["onnx_fp32"]["bytes"], "int8_bytes": files["onnx_int8"]["bytes"],
                "size_ratio": round(files["onnx_fp32"]["bytes"] / files["onnx_int8"]["bytes"], 2),
                "torch_ms": ms["pytorch_fp32"], "onnx_fp32_ms": ms["onnx_fp32"], "int8_ms": ms["onnx_int8"],
                "speedup_vs_torch": round(ms["pytorch_fp32"] / ms["onnx_int8"], 2),
                "timings_indicative": r.get("latency", {}).get("indicative_because"),
                "acc_torch_fp32": acc["pytorch_fp32"], "acc_int8": acc["onnx_int8"],
                "int8_drop_points": round((acc["pytorch_fp32"] - acc["onnx_int8"]) * 100, 2)}

    base = static["accuracy"]["pytorch_fp32"]
    result = {
        "case": name, "test_samples": static["test_samples"], "parameters": static["parameters"],
        "train_s": round(train_s, 1), "prune_run_s": round(prune_s, 1),
        "dynamic": figures(dynamic), "static": figures(static),
        "prune50": {"sparsity": pruned_report["sparsity"],
                    "acc_torch_fp32": pruned_report["accuracy"]["pytorch_fp32"],
                    "acc_int8": pruned_report["accuracy"]["onnx_int8"],
                    "prune50_drop_points": round((base - pruned_report["accuracy"]["pytorch_fp32"]) * 100, 2)},
    }
    best = max(("dynamic", "static"), key=lambda k: result[k]["speedup_vs_torch"])
    result["goals"] = {
        "size_ratio>=3.5": result[best]["size_ratio"] >= 3.5,
        "speedup_vs_torch>=2": result[best]["speedup_vs_torch"] >= 2,
        "int8_drop_points<=0.5": result[best]["int8_drop_points"] <= 0.5,
        "prune50_drop_points<=0.5": result["prune50"]["prune50_drop_points"] <= 0.5,
        "int8_mode": best,
    }
    print(json.dumps(result), file=sys.stderr)
    return result


def demo_spec() -> dict:
    spec = json.loads(DEMO.read_text())
    for t in spec["teachers"]:
        t["path"] = str((DEMO.parent / t["path"]).resolve())
    return spec


def fashion_spec(work: Path) -> dict:
    """Two small MLP experts (classes 0–5 and 4–9, 2 epochs each on their own half) and a CNN student."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    sys.path.insert(0, str(ROOT))
    from assets.build_demo_teachers import export as export_teacher
    from engine.data import load_dataset
    from engine.models import build_model
    from engine.spec import MlpArch, parse_spec

    if not (FASHION / "train-images-idx3-ubyte.gz").is_file():
        raise SystemExit("Fashion-MNIST is missing: apt-get install -y dataset-fashion-mnist")
    classes = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]
    spec = {"schema_version": 1, "name": "fashion cnn", "classes": classes,
            "data": {"format": "idx", "images": str(FASHION / "train-images-idx3-ubyte.gz"),
                     "labels": str(FASHION / "train-labels-idx1-ubyte.gz"),
                     "split": {"val": 0.1, "test": 0.1, "seed": 0}},
            "teachers": [], "student": {"architecture": {"kind": "cnn", "channels": 32, "depth": 3}},
            "strategy": {"kind": "hinton_kd", "temperature": 4.0, "hard_label_weight": 0.5},
            "training": {"epochs": 4, "batch_size": 128, "lr": 0.003}}
    data = load_dataset(parse_spec({**spec, "teachers": [{"name": "x", "path": "x.onnx", "classes": ["bag"]}]}))
    torch.manual_seed(0)
    for name, subset in (("tops-0-5", list(range(0, 6))), ("rest-4-9", list(range(4, 10)))):
        keep = np.isin(data.train.y, subset)
        x = torch.from_numpy(data.train.x[keep])
        y = torch.from_numpy(np.array([subset.index(int(v)) for v in data.train.y[keep]]))
        model = build_model(MlpArch(width=64, depth=1), data.sample_shape, len(subset))
        model.normalize.fit(data.train.x[keep])
        opt = torch.optim.Adam(model.parameters(), lr=2e-3)
        for _ in range(2):
            for idx in torch.randperm(len(x)).split(128):
                opt.zero_grad()
                F.cross_entropy(model(x[idx]), y[idx]).backward()
                opt.step()
        model.eval()
        path = work / f"{name}.onnx"
        export_teacher(model, data.sample_shape, [classes[i] for i in subset], path)
        spec["teachers"].append({"name": name, "path": str(path), "classes": [classes[i] for i in subset]})
    return spec


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--case", choices=["demo", "fashion", "all"], default="all")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.case in ("demo", "all"):
            results["demo"] = measure("demo", demo_spec(), work / "demo", args.threads)
        if args.case in ("fashion", "all"):
            (work / "fashion").mkdir()
            results["fashion"] = measure("fashion", fashion_spec(work / "fashion"), work / "fashion", args.threads)
    print(json.dumps({"threads": args.threads, **results}))


if __name__ == "__main__":
    main()
