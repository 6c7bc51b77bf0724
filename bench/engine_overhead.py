"""The engine's training step rate against a minimal hand-written KD loop doing the same work,
alternated in one process; one JSON object on the last line.

    .venv/bin/python bench/engine_overhead.py [--rounds 5] [--epochs 30] [--threads 2]

Same model (the demo's MLP 256×2), data (digits), teachers (the three demo experts, outputs
computed once), batch, optimiser (AdamW, cosine), loss (the engine's own stacked KD + CE),
validation each epoch, test evaluation and weights saved at the end. The engine runs through
`engine.train.train` with its events going nowhere. Key `ratio` = engine rate / hand rate
(goal ≥ 0.98).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.data import load_dataset  # noqa: E402
from engine.events import Control, Emitter  # noqa: E402
from engine.losses import multi_teacher_kd, teacher_targets  # noqa: E402
from engine.models import build_model  # noqa: E402
from engine.spec import load_spec  # noqa: E402
from engine.teachers import load_teachers  # noqa: E402
from engine.train import Job, train  # noqa: E402

DEMO = ROOT / "assets" / "examples" / "digits-experts.distill.json"


def engine_run(spec, data, teachers, folder: Path) -> float:
    emitter = Emitter(open(os.devnull, "w"))
    start = time.perf_counter()
    train(Job(spec, data, teachers, torch.device("cpu"), None, folder, emitter, Control(emitter)))
    return time.perf_counter() - start


def hand_run(spec, data, teachers, folder: Path) -> float:
    from safetensors.torch import save_file

    cfg, T, alpha = spec.training, spec.strategy.temperature, spec.strategy.hard_label_weight
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    model = build_model(spec.student.architecture, data.sample_shape, len(spec.classes))
    model.normalize.fit(data.train.x)
    x, y = torch.from_numpy(data.train.x), torch.from_numpy(data.train.y)
    idx_t = [torch.from_numpy(t.student_index) for t in teachers]
    p, lp, mask = teacher_targets([torch.from_numpy(t.predict(data.train.x)) for t in teachers],
                                  idx_t, len(spec.classes), T)
    weights = torch.ones(len(teachers))
    steps = math.ceil(len(x) / cfg.batch_size) * cfg.epochs
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    order = torch.Generator().manual_seed(cfg.seed)
    x_val, y_val = torch.from_numpy(data.val.x), torch.from_numpy(data.val.y)
    for _ in range(cfg.epochs):
        model.train()
        perm = torch.randperm(len(x), generator=order)
        for b in range(0, len(x), cfg.batch_size):
            i = perm[b:b + cfg.batch_size]
            logits = model(x[i])
            kd, _ = multi_teacher_kd(logits, p[i], lp[i], mask, weights, T)
            loss = alpha * F.cross_entropy(logits, y[i]) + (1 - alpha) * kd
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        with torch.inference_mode():
            (model(x_val).argmax(1) == y_val).float().mean().item()
    with torch.inference_mode():
        (model(torch.from_numpy(data.test.x)).argmax(1) == torch.from_numpy(data.test.y)).float().mean().item()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "hand.safetensors"))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    spec = load_spec(DEMO)
    spec = spec.model_copy(update={"training": spec.training.model_copy(
        update={"epochs": args.epochs, "checkpoint_every_epochs": 10_000})})  # one save, at the end
    data = load_dataset(spec)
    teachers = load_teachers(spec, data.train.x[:8], args.threads)
    steps = math.ceil(len(data.train) / spec.training.batch_size) * args.epochs
    engine_s, hand_s = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds + 1):  # round 0 warms up both
            e = engine_run(spec, data, teachers, Path(tmp) / f"e{r}")
            h = hand_run(spec, data, teachers, Path(tmp))
            if r:
                engine_s.append(e)
                hand_s.append(h)
    engine_rate, hand_rate = steps / statistics.median(engine_s), steps / statistics.median(hand_s)
    result = {"engine_steps_per_s": round(engine_rate, 1), "hand_steps_per_s": round(hand_rate, 1),
              "ratio": round(engine_rate / hand_rate, 3), "rounds": args.rounds, "epochs": args.epochs,
              "steps_per_run": steps, "threads": args.threads}
    result["goal_ratio>=0.98"] = result["ratio"] >= 0.98
    print(json.dumps(result))


if __name__ == "__main__":
    main()
