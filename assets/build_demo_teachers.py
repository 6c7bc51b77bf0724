"""Rebuild the demo's teacher models: small MLPs, each trained only on its own digits.

    python assets/build_demo_teachers.py

Deterministic (fixed seeds, one CPU thread): the same torch version writes the same files.
Each teacher sees only the training split of the demo spec, restricted to its classes, and
records its class names in the ONNX metadata (key "classes", a JSON list).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F

from engine.data import load_dataset
from engine.models import build_model
from engine.spec import MlpArch, load_spec

HERE = Path(__file__).resolve().parent
SPEC = HERE / "examples" / "digits-experts.distill.json"
# file name -> (digits it knows, the class names it reports, in output order)
TEACHERS = {
    "digits-0-4.onnx": ([0, 1, 2, 3, 4], ["0", "1", "2", "3", "4"]),
    "digits-4-7.onnx": ([4, 5, 6, 7], ["4", "5", "6", "7"]),
    "digits-7-0.onnx": ([7, 8, 9, 0], ["seven", "eight", "nine", "zero"]),
}


def train_teacher(x: np.ndarray, y: np.ndarray, digits: list[int], seed: int) -> torch.nn.Module:
    keep = np.isin(y, digits)
    x_t = torch.from_numpy(x[keep])
    y_t = torch.from_numpy(np.array([digits.index(int(v)) for v in y[keep]]))
    torch.manual_seed(seed)
    model = build_model(MlpArch(width=32, depth=1), x.shape[1:], len(digits))
    model.normalize.fit(x[keep])
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(300):  # full batch: a few hundred samples
        opt.zero_grad()
        F.cross_entropy(model(x_t), y_t).backward()
        opt.step()
    model.eval()
    acc = (model(x_t).argmax(1) == y_t).float().mean().item()
    print(f"  trained on {int(keep.sum())} samples of digits {digits}: train acc {acc:.3f}")
    return model


def export(model: torch.nn.Module, sample_shape: tuple[int, ...], classes: list[str], path: Path) -> None:
    torch.onnx.export(model, (torch.zeros((1, *sample_shape)),), str(path), dynamo=False,
                      input_names=["x"], output_names=["logits"], opset_version=17,
                      dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})
    proto = onnx.load(str(path))
    proto.producer_name, proto.producer_version = "distill-studio demo", "1"
    proto.metadata_props.add(key="classes", value=json.dumps(classes))
    onnx.save(proto, str(path))


def main() -> None:
    torch.set_num_threads(1)
    data = load_dataset(load_spec(SPEC))
    out = HERE / "teachers"
    out.mkdir(exist_ok=True)
    for seed, (name, (digits, classes)) in enumerate(TEACHERS.items()):
        print(name)
        model = train_teacher(data.train.x, data.train.y, digits, seed)
        export(model, data.sample_shape, classes, out / name)
        print(f"  wrote {out / name} ({(out / name).stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
