"""Large students on Fashion-MNIST, through the real engine: one JSON object on the last line.

    .venv/bin/python bench/large_students.py [--student resnet|vit|both] [--train N] [--epochs E]
                                             [--threads 2] [--keep DIR]

Three small MLP experts (the demo's kind of teacher: ONNX files, each trained here on its own
classes of Fashion-MNIST, from Debian's dataset-fashion-mnist) teach a ResNet-18-style student
(width 0.25, the small stem for 28 px) or a ViT (patch 4, dim 96, 4 blocks, 3 heads) on N
training images; the run then prunes (structured, 30%, one fine-tune epoch), quantizes to int8
(static for the ResNet's convolutions, dynamic for the ViT's matmuls) and exports with the
engine's parity check. Figures per student: test accuracy after training and after pruning,
each teacher's accuracy on its own classes, the int8 model's accuracy, the ONNX parity, the
parameters before and after pruning, the wall time.
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

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ENGINE_MAIN = str(ROOT / "engine" / "__main__.py")
FASHION = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]
EXPERTS = {"tops": [0, 2, 3, 4, 6], "shoes": [5, 7, 9], "rest": [1, 3, 8, 9, 0]}  # overlapping subsets
STUDENTS = {
    "resnet": ({"kind": "resnet", "depth": 18, "width": 0.25}, "static"),
    "vit": ({"kind": "vit", "patch": 4, "dim": 96, "depth": 4, "heads": 3}, "dynamic"),
}


def read_idx(name: str) -> np.ndarray:
    import gzip

    raw = gzip.open(FASHION / name).read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def make_data(work: Path, n_train: int) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    x, y = read_idx("train-images-idx3-ubyte.gz"), read_idx("train-labels-idx1-ubyte.gz")
    xt, yt = read_idx("t10k-images-idx3-ubyte.gz"), read_idx("t10k-labels-idx1-ubyte.gz")
    order = np.random.default_rng(0).permutation(len(x))[:n_train]
    x, y = x[order, None].astype(np.float32) / 255, y[order].astype(np.int64)
    train, test = work / "fashion-train.npz", work / "fashion-test.npz"
    np.savez(train, x=x, y=y)
    np.savez(test, x=xt[:, None].astype(np.float32) / 255, y=yt.astype(np.int64))
    return train, test, x, y


def make_teachers(work: Path, x: np.ndarray, y: np.ndarray) -> list[dict]:
    import torch
    import torch.nn.functional as F

    sys.path.insert(0, str(ROOT))
    from assets.build_demo_teachers import export
    from engine.models import build_model
    from engine.spec import MlpArch

    teachers = []
    for seed, (name, subset) in enumerate(EXPERTS.items()):
        torch.manual_seed(seed)
        keep = np.isin(y, subset)
        xs, ys = torch.from_numpy(x[keep]), torch.from_numpy(np.array([subset.index(int(v)) for v in y[keep]]))
        model = build_model(MlpArch(width=64, depth=1), x.shape[1:], len(subset))
        model.normalize.fit(x[keep])
        opt = torch.optim.Adam(model.parameters(), lr=2e-3)
        for _ in range(3):
            for idx in torch.randperm(len(xs)).split(128):
                opt.zero_grad()
                F.cross_entropy(model(xs[idx]), ys[idx]).backward()
                opt.step()
        path = work / f"{name}.onnx"
        export(model.eval(), x.shape[1:], [CLASSES[i] for i in subset], path)
        teachers.append({"name": name, "path": str(path), "classes": [CLASSES[i] for i in subset]})
    return teachers


def run(work: Path, student: str, train: Path, test: Path, teachers: list[dict], epochs: int,
        threads: int) -> dict:
    arch, mode = STUDENTS[student]
    spec = {"schema_version": 1, "name": f"fashion {student}", "classes": CLASSES,
            "data": {"format": "npz", "path": str(train), "test_file": str(test),
                     "split": {"val": 0.1, "test": 0.0, "seed": 0}},
            "teachers": teachers, "student": {"architecture": arch},
            "strategy": {"kind": "hinton_kd", "temperature": 4.0, "hard_label_weight": 0.0},
            "training": {"epochs": epochs, "batch_size": 128, "lr": 2e-3, "weight_decay": 0.05,
                         "cpu_threads": threads},
            "compression": [{"kind": "prune", "method": "structured", "sparsity": 0.3, "finetune_epochs": 1},
                            {"kind": "quantize", "mode": mode, "calibration_samples": 256,
                             "max_accuracy_drop": 100}]}
    folder = work / student
    folder.mkdir()
    (folder / "spec.distill.json").write_text(json.dumps(spec, indent=1))
    start = time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run([sys.executable, "-P", ENGINE_MAIN, "run", str(folder / "spec.distill.json"),
                           "--run-dir", str(folder / "run"), "--db", str(folder / "db.sqlite")],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{student}: the engine failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    metrics: dict[str, float] = {}
    for e in events:
        if e.get("event") == "metric":
            metrics.update(e["values"])
    logs = [e["message"] for e in events if e.get("event") == "log"]
    report = json.loads((folder / "run" / "export" / "report.json").read_text())
    return {
        "student": student, "architecture": arch, "int8_mode": mode, "wall_s": round(wall, 1),
        "test_acc": metrics.get("test/acc"),
        "teacher_acc_on_own_classes": {k.split("/")[-1]: round(v, 4) for k, v in metrics.items()
                                       if k.startswith("test/teacher_acc/")},
        "parameters_log": [m for m in logs if m.startswith(("student:", "structured pruning"))],
        "export_parameters": report.get("parameters"),
        "accuracy": report.get("accuracy"), "parity_max_abs_diff": report.get("parity_max_abs_diff"),
        "parity_tolerance": report.get("parity_tolerance"),
        "latency_ms_per_batch": report.get("latency_ms_per_batch"),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--student", choices=["resnet", "vit", "both"], default="both")
    parser.add_argument("--train", type=int, default=12000, help="training images (of 60,000)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="keep the runs in this folder")
    args = parser.parse_args()
    if not (FASHION / "train-images-idx3-ubyte.gz").is_file():
        raise SystemExit("Fashion-MNIST is missing: apt-get install -y dataset-fashion-mnist")
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        train, test, x, y = make_data(work, args.train)
        teachers = make_teachers(work, x, y)
        kinds = ["resnet", "vit"] if args.student == "both" else [args.student]
        results = [run(work, k, train, test, teachers, args.epochs, args.threads) for k in kinds]
    print(json.dumps({"train_images": args.train, "epochs": args.epochs, "threads": args.threads,
                      "results": results}))


if __name__ == "__main__":
    main()
