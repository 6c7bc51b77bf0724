"""The three silent cases of issue 15, measured end to end: one JSON object on the last line.

    .venv/bin/python bench/teacher_contract.py [--epochs N]

Each case trains a teacher the way someone elsewhere would have (tests/engine/contract_models.py),
then distils it with the engine's CLI (`distill-engine run`, an MLP student, the transfer set's
labels hidden) twice: as a user would have written the spec before (the wrong reading) and
with the contract declared or detected. Keys per case: teacher_acc and student_acc (test split)
for `before` and `after`, and the warnings the checks before training gave for `before`.

- imagenet: a ResNet-style ONNX teacher trained on ImageNet-normalised RGB images, given 0-255
  pixels (before) / with input scale 1/255 and ImageNet mean/std (after).
- probabilities: two scikit-learn LogisticRegression experts (digits 0-5 and 5-9, skl2onnx,
  outputs `probabilities`) declared as logits (before) / outputs left at auto (after). They
  were trained on every sample of their digits, so their own test accuracy is optimistic.
- nhwc: a CNN exported channels-last [N, H, W, C]; before this issue its input was reshaped from
  [C, H, W]; now the layout is read from the ONNX shape, so only `after` exists.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ENGINE_MAIN = str(ROOT / "engine" / "__main__.py")  # by absolute path with -P: nothing from the working directory
sys.path.insert(0, str(ROOT))

from tests.engine.contract_models import (  # noqa: E402
    TinyResNet,
    imagenet_normalised,
    rgb_digits,
    sklearn_teacher,
    train_and_export,
)

IMAGENET = {"scale": 0.00392157, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def run(folder: Path, name: str, data: str, teachers: list[dict], epochs: int) -> dict:
    spec = {"schema_version": 1, "name": name, "classes": [str(i) for i in range(10)],
            "data": {"format": "npz", "path": data, "use_labels": False},
            "teachers": teachers,
            "student": {"architecture": {"kind": "mlp", "width": 256, "depth": 2}},
            "training": {"epochs": epochs, "lr": 0.002, "cpu_threads": 2}}
    path = folder / f"{name}.distill.json"
    path.write_text(json.dumps(spec))
    out = subprocess.run([sys.executable, "-P", ENGINE_MAIN, "run", str(path), "--run-dir", str(folder / name),
                          "--db", str(folder / "runs.sqlite")], capture_output=True, text=True, cwd=ROOT)
    events = [json.loads(line) for line in out.stdout.splitlines()]
    final = next(e for e in events if e["event"] == "finished")
    if final["status"] != "completed":
        raise SystemExit(f"{name}: {out.stderr[-2000:]}")
    return {"teacher_acc": {k.rsplit("/", 1)[1]: round(v, 4) for k, v in final["final"].items()
                            if k.startswith("test/teacher_acc/")},
            "student_acc": round(final["final"]["test/acc"], 4),
            "warnings": [e["message"] for e in events if e["event"] == "teacher_check" and e["level"] == "warning"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="contract-bench-"))
    x, y = rgb_digits()
    np.savez(folder / "rgb.npz", x=x, y=y)
    from sklearn.datasets import load_digits

    d = load_digits()
    np.savez(folder / "grey.npz", x=d.data.astype(np.float32), y=d.target)
    resnet = train_and_export(TinyResNet(10), imagenet_normalised(x), y, folder / "resnet.onnx", epochs=15)
    nhwc = train_and_export(TinyResNet(10, channels_last=True), x.transpose(0, 2, 3, 1) / 255, y,
                            folder / "nhwc.onnx", epochs=15)
    low, high = [0, 1, 2, 3, 4, 5], [5, 6, 7, 8, 9]  # two experts, one shared class
    skl = [{"name": f"skl {c[0]}-{c[-1]}", "path": str(sklearn_teacher(folder / f"skl-{c[0]}.onnx", c)),
            "classes": [str(i) for i in c]} for c in (low, high)]
    digits = [str(i) for i in range(10)]

    def one(teacher: dict) -> list[dict]:
        return [{"name": "t", "classes": digits, **teacher}]

    result = {
        "imagenet": {"before": run(folder, "imagenet-before", "rgb.npz", one({"path": str(resnet)}), args.epochs),
                     "after": run(folder, "imagenet-after", "rgb.npz", one({"path": str(resnet), "input": IMAGENET}),
                                  args.epochs)},
        "probabilities": {
            "before": run(folder, "skl-before", "grey.npz", [{**t, "outputs": "logits"} for t in skl], args.epochs),
            "after": run(folder, "skl-after", "grey.npz", skl, args.epochs)},
        "nhwc": {"after": run(folder, "nhwc-after", "rgb.npz", one({"path": str(nhwc), "input": {"scale": 1 / 255}}),
                              args.epochs)},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
