"""The engine's training step on large students against a hand-written loop on the same model;
one JSON object on the last line.

    .venv/bin/python bench/gpu_step.py [--kinds resnet,vit,transformer] [--threads 2]

For each large student (ResNet-18, a ViT, a transformer encoder) and batch size: (a) the
engine's own step rate, `engine.train.train` in this process on synthetic data with three ONNX
teachers (their outputs computed once, as the engine caches them), read from its progress
events after warm-up (the median of the reads, so the epoch-end validation does not count);
(b) a hand-written loop on the same model (`engine.models.build_model`), data, loss (KD
against the teachers' fixed probabilities + CE, the engine's own functions) and optimiser
(AdamW, cosine), with autocast bf16 and torch.compile on CUDA as the engine does there. The
two run `--rounds` times, alternated, and the medians count.

On CUDA the students are full size (ResNet-18 at 32×32, batch 256 and 1024; ViT-S-like dim
384, depth 12, heads 6, patch 4, batch 256 and 512; BERT-base-size dim 768, depth 12, heads 12,
vocab 30522, 256 tokens, batch 32 and 64) and `mfu` is model FLOPs per sample (forward and
backward, torch.utils.flop_counter) × samples/s ÷ the bf16 matmul peak measured here. On the
CPU they are tiny, to check the bench itself in a few minutes. A kind this build does not
register is skipped, with a note. Key `ratio` = engine / hand (goal ≥ 0.97).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.data import load_dataset  # noqa: E402
from engine.device import choose_precision  # noqa: E402
from engine.events import Control, Emitter  # noqa: E402
from engine.losses import multi_teacher_kd, teacher_targets  # noqa: E402
from engine.meter import EMIT_EVERY_S  # noqa: E402
from engine.models import ARCHITECTURES, build_model  # noqa: E402
from engine.spec import parse_spec  # noqa: E402
from engine.teachers import load_teachers  # noqa: E402
from engine.train import Job, train  # noqa: E402

CLASSES = 10
TEACHER_CLASSES = [list(range(0, 5)), list(range(3, 8)), [7, 8, 9, 0]]  # overlapping experts


def cases(cuda: bool) -> list[dict]:
    """(kind, architecture, sample shape, batch sizes, steps timed)."""
    if cuda:
        return [
            {"kind": "resnet", "arch": {"kind": "resnet", "depth": 18}, "shape": (3, 32, 32), "batches": [256, 1024]},
            {"kind": "vit", "arch": {"kind": "vit", "dim": 384, "depth": 12, "heads": 6, "patch": 4},
             "shape": (3, 32, 32), "batches": [256, 512]},
            {"kind": "transformer", "arch": {"kind": "transformer", "dim": 768, "depth": 12, "heads": 12,
                                             "vocab_size": 30522, "max_length": 256},
             "shape": (256,), "batches": [32, 64]},
        ]
    return [
        {"kind": "resnet", "arch": {"kind": "resnet", "depth": 18, "width": 0.125}, "shape": (3, 16, 16),
         "batches": [32]},
        {"kind": "vit", "arch": {"kind": "vit", "dim": 64, "depth": 2, "heads": 2, "patch": 4},
         "shape": (3, 16, 16), "batches": [32]},
        {"kind": "transformer", "arch": {"kind": "transformer", "dim": 64, "depth": 2, "heads": 2,
                                         "vocab_size": 1000, "max_length": 32}, "shape": (32,), "batches": [32]},
    ]


def synthetic(case: dict, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, n).astype(np.int64)
    if case["kind"] == "transformer":  # token ids; the class shifts which ids are common
        vocab = case["arch"]["vocab_size"]
        x = (rng.integers(1, vocab // 2, (n, *case["shape"])) + y[:, None] * (vocab // 2 // CLASSES)) % vocab
        return x.astype(np.int64), y
    x = rng.normal(0, 1, (n, *case["shape"])).astype(np.float32)
    x[np.arange(n), 0, 0, :] += y[:, None] * 0.5  # a class signal in the first row
    return x, y


def onnx_teacher(path: Path, case: dict, classes: int, seed: int) -> Path:
    """A small ONNX model (flatten, one random linear layer) for the case's samples."""
    import onnx
    from onnx import TensorProto, helper

    width = int(np.prod(case["shape"]))  # token ids reach a teacher as the engine holds them: float32
    w = np.random.default_rng(seed).normal(0, 0.02, (width, classes)).astype(np.float32)
    nodes = [helper.make_node("Flatten", ["x"], ["flat"]), helper.make_node("Gemm", ["flat", "w", "b"], ["y"])]
    graph = helper.make_graph(
        nodes, "teacher", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", *case["shape"]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", classes])],
        [helper.make_tensor("w", TensorProto.FLOAT, [width, classes], w.ravel()),
         helper.make_tensor("b", TensorProto.FLOAT, [classes], np.zeros(classes, np.float32))])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def make_spec(case: dict, batch: int, folder: Path, steps: int, device: str, threads: int):
    n = batch * steps
    x, y = synthetic(case, n + 2 * batch)
    np.savez(folder / "data.npz", x=x, y=y)
    frac = batch / len(x)
    teachers = [{"name": f"t{i}", "path": str(onnx_teacher(folder / f"t{i}.onnx", case, len(c), i)),
                 "classes": [str(k) for k in c]} for i, c in enumerate(TEACHER_CLASSES)]
    return parse_spec({
        "schema_version": 1, "name": f"bench {case['kind']}",
        "data": {"format": "npz", "path": str(folder / "data.npz"), "split": {"val": frac, "test": frac}},
        "classes": [str(k) for k in range(CLASSES)], "teachers": teachers,
        "student": {"architecture": case["arch"]},
        "strategy": {"kind": "hinton_kd", "temperature": 4.0, "hard_label_weight": 0.5},
        "training": {"epochs": 1, "batch_size": batch, "optimizer": "adamw", "lr": 1e-3, "schedule": "cosine",
                     "device": device, "cpu_threads": threads, "checkpoint_every_epochs": 10_000}})


def engine_rate(spec, data, teachers, device: torch.device, folder: Path) -> float:
    """Samples/s from the engine's own progress events, after the first third of them (warm-up)."""
    stream = io.StringIO()
    emitter = Emitter(stream)
    train(Job(spec, data, teachers, device, choose_precision("auto", device), folder, emitter, Control(emitter)))
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    rates = [e["samples_per_s"] for e in events if e["event"] == "progress" and e.get("samples_per_s")]
    kept = rates[len(rates) // 3:-1] or rates  # the last one is the epoch's end, after a partial interval
    return statistics.median(kept)


def hand_rate(spec, data, teachers, device: torch.device, warmup: int) -> tuple[float, torch.nn.Module, torch.Tensor]:
    """The same training, written by hand: samples/s measured as the engine's meter does (a
    device sync and a rate every EMIT_EVERY_S), the median over the steps after `warmup`."""
    cfg, T, alpha = spec.training, spec.strategy.temperature, spec.strategy.hard_label_weight
    torch.manual_seed(cfg.seed)
    model = build_model(spec.student.architecture, data.sample_shape, len(spec.classes))
    model.normalize.fit(data.train.stats_sample())
    model.to(device)
    cuda = device.type == "cuda"
    if cuda and len(data.sample_shape) == 3:
        model.to(memory_format=torch.channels_last)
    x = torch.from_numpy(np.ascontiguousarray(data.train.x[:])).to(device)
    y = torch.from_numpy(np.asarray(data.train.y)).to(device)
    idx_t = [torch.from_numpy(t.student_index).to(device) for t in teachers]
    outs = [torch.from_numpy(np.asarray(t.predict(data.train.x[:]))).to(device) for t in teachers]
    p, lp, mask = teacher_targets(outs, idx_t, len(spec.classes), T)
    weights = torch.ones(len(teachers), device=device)
    steps = len(x) // cfg.batch_size  # whole batches only: a last, smaller one would recompile
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, fused=cuda)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    step_model = torch.compile(model) if cuda else model
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(cfg.seed)).to(device)
    model.train()
    rates, since, done = [], time.perf_counter(), 0
    for s in range(steps):
        i = perm[s * cfg.batch_size:(s + 1) * cfg.batch_size]
        with amp:
            logits = step_model(x[i])
            kd, _ = multi_teacher_kd(logits.float(), p[i], lp[i], mask, weights, T)
            loss = alpha * F.cross_entropy(logits.float(), y[i]) + (1 - alpha) * kd
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        done += len(i)
        if time.perf_counter() - since >= EMIT_EVERY_S or s == warmup:  # read as the engine's meter does
            sync(device)
            now = time.perf_counter()
            if s > warmup:
                rates.append(done / (now - since))
            since, done = now, 0
    return statistics.median(rates), model, x[:cfg.batch_size]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def flops_per_sample(model: torch.nn.Module, x: torch.Tensor) -> float:
    """Model FLOPs of one training sample: forward and backward, counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=x.device.type == "cuda"):
        model(x).float().sum().backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / len(x)


def matmul_peak(device: torch.device) -> float:
    """FLOP/s of a big bf16 matmul here: what the step's FLOPs are measured against."""
    n = 8192
    a, b = (torch.randn(n, n, device=device, dtype=torch.bfloat16) for _ in range(2))
    for _ in range(3):
        a @ b
    sync(device)
    start, reps = time.perf_counter(), 20
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kinds", default="resnet,vit,transformer")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=0, help="steps per run; 0: 150 on CUDA, 40 on the CPU")
    parser.add_argument("--rounds", type=int, default=0, help="runs of each, alternated, the medians "
                        "counted; 0: 1 on CUDA (each compiles), 3 on the CPU")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    steps = args.steps or (150 if cuda else 40)
    args.rounds = args.rounds or (1 if cuda else 3)
    warmup = steps // 3
    peak = matmul_peak(device) if cuda else None
    out: dict = {"device": torch.cuda.get_device_name(device) if cuda else "cpu", "torch": torch.__version__,
                 "steps": steps, "rounds": args.rounds, "cases": [], "skipped": []}
    if peak:
        out["bf16_matmul_tflops"] = round(peak / 1e12, 1)
    wanted = args.kinds.split(",")
    for case in cases(cuda):
        if case["kind"] not in wanted:
            continue
        if case["kind"] not in ARCHITECTURES:
            out["skipped"].append({"kind": case["kind"], "note": "this build has no such student architecture"})
            continue
        for batch in case["batches"]:
            row = {"kind": case["kind"], "batch": batch}
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    folder = Path(tmp)
                    spec = make_spec(case, batch, folder, steps, device.type, args.threads)
                    data = load_dataset(spec)
                    teachers = load_teachers(spec, data.train.x[:8], args.threads)
                    engine, hand = [], []
                    for r in range(args.rounds):  # alternated, so a busy machine slows both alike
                        engine.append(engine_rate(spec, data, teachers, device, folder / f"run{r}"))
                        rate, model, sample = hand_rate(spec, data, teachers, device, warmup)
                        hand.append(rate)
                    row["engine_samples_per_s"] = round(statistics.median(engine), 1)
                    hand = statistics.median(hand)
                    row["hand_samples_per_s"] = round(hand, 1)
                    row["ratio"] = round(row["engine_samples_per_s"] / hand, 3)
                    if peak:
                        flops = flops_per_sample(model, sample)
                        row["gflops_per_sample"] = round(flops / 1e9, 2)
                        row["mfu"] = round(flops * row["engine_samples_per_s"] / peak, 3)
                        row["hand_mfu"] = round(flops * hand / peak, 3)
            except Exception as exc:  # noqa: BLE001 — one case failing should not hide the others
                row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
            out["cases"].append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    ratios = [c["ratio"] for c in out["cases"] if "ratio" in c]
    out["goal_ratio>=0.97"] = bool(ratios) and min(ratios) >= 0.97
    print(json.dumps(out))


if __name__ == "__main__":
    main()
