"""The training loop: many frozen teachers distilled into one student. Read it top to bottom.

No per-step host sync: loss terms are summed on the device and read a few times per second,
when metrics are emitted. A non-finite loss is caught at that read and stops the run.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from engine.atomic_io import atomic_write
from engine.checkpoint import save_checkpoint
from engine.data import Dataset
from engine.errors import RunFailed
from engine.events import Control, Emitter
from engine.losses import distillation_loss, multi_teacher_kd, soft_targets
from engine.models import build_model, count_parameters
from engine.spec import PipelineSpec
from engine.teachers import Teacher

EMIT_EVERY_S = 0.25


class StopRequested(Exception):
    """The user asked to stop; a checkpoint has been written."""


@dataclass
class Result:
    best: dict[str, float] = field(default_factory=dict)
    final: dict[str, float] = field(default_factory=dict)
    student_path: Path | None = None
    parameters: int = 0


def train(spec: PipelineSpec, data: Dataset, teachers: list[Teacher], device: torch.device,
          amp_dtype: torch.dtype | None, run_dir: Path, emitter: Emitter, control: Control,
          on_metrics: Callable[[int, float, dict[str, float]], None],
          on_checkpoint: Callable[[str, Path], None], resume: dict | None = None,
          best_so_far: dict[str, float] | None = None) -> Result:
    """Train the student; with `resume` (a checkpoint), continue exactly where it was saved."""
    cfg, strategy = spec.training, spec.strategy
    torch.manual_seed(cfg.seed)
    T = strategy.temperature

    # 1. The student, with input statistics from the training split.
    model = build_model(spec.student.architecture, data.sample_shape, len(spec.classes))
    model.normalize.fit(data.train.x)
    model.to(device)
    result = Result(parameters=count_parameters(model), best=dict(best_so_far or {}))
    emitter.log(f"student: {spec.student.architecture.kind}, {result.parameters:,} parameters")

    # 2. Teachers are frozen: their soft targets are computed once, in inference mode.
    x_train = torch.from_numpy(data.train.x).to(device)
    y_train = torch.from_numpy(data.train.y).to(device) if data.labeled else None
    x_val = torch.from_numpy(data.val.x).to(device)
    y_val = torch.from_numpy(data.val.y).to(device) if data.labeled else None
    started = time.monotonic()
    targets, val_targets = [], []
    for t in teachers:
        targets.append(soft_targets(torch.from_numpy(t.predict(data.train.x)).to(device), T))
        if not data.labeled and len(data.val):
            val_targets.append(soft_targets(torch.from_numpy(t.predict(data.val.x)).to(device), T))
    emitter.log(f"teacher outputs computed for {len(teachers)} teachers on {len(data.train)} "
                f"samples in {time.monotonic() - started:.2f}s")
    indices = [torch.from_numpy(t.student_index).to(device) for t in teachers]
    weights = [t.spec.weight if strategy.teacher_weighting == "fixed" else 1.0 for t in teachers]
    alpha = strategy.hard_label_weight if data.labeled else 0.0

    # 3. Optimiser and schedule (per step).
    n = len(data.train)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                              weight_decay=cfg.weight_decay)
    else:
        cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
        opt = cls(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    order = torch.Generator().manual_seed(cfg.seed)

    start_epoch, start_batch, step = 0, 0, 0
    if resume is not None:  # everything that decides the next step: weights, moments, RNGs, position
        model.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        sched.load_state_dict(resume["scheduler"])
        scaler.load_state_dict(resume["scaler"])
        torch.set_rng_state(resume["rng"])
        order.set_state(resume["order_rng"])
        start_epoch, start_batch, step = resume["epoch"], resume["batch"], resume["step"]
        emitter.log(f"resumed at epoch {start_epoch + 1}, step {step}")

    names = ["loss/total", "loss/kd"] + (["loss/ce"] if alpha > 0 else []) + \
        [f"loss/kd/{t.name}" for t in teachers]
    sums = torch.zeros(len(names), device=device)
    counted = 0
    last_emit = window_start = time.monotonic()
    window_samples = 0

    def checkpoint(epoch: int, batch: int, order_state: torch.Tensor) -> None:
        path = run_dir / "checkpoints" / "last.pt"
        size = save_checkpoint(path, {
            "model": model.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "scaler": scaler.state_dict(),
            "rng": torch.get_rng_state(), "order_rng": order_state,
            "epoch": epoch, "batch": batch, "step": step,
        })
        emitter.emit("checkpoint", path=str(path), step=step, epoch=epoch, bytes=size)
        on_checkpoint("checkpoint", path)

    def flush_metrics(epoch_progress: float) -> None:
        nonlocal sums, counted, last_emit, window_start, window_samples
        if counted == 0:
            return
        values = dict(zip(names, (sums / counted).tolist()))  # the one host sync
        if not all(math.isfinite(v) for v in values.values()):
            raise RunFailed("non_finite_loss", f"the loss became {values['loss/total']} near "
                            f"step {step}", "lower training.lr, or check the data and teachers "
                            "for extreme values; checkpoints saved so far are kept")
        values["lr"] = sched.get_last_lr()[0]
        emitter.emit("metric", step=step, epoch=round(epoch_progress, 4), values=values)
        on_metrics(step, epoch_progress, values)
        now = time.monotonic()
        rate = window_samples / max(now - window_start, 1e-9)
        remaining = (total_steps - step) * cfg.batch_size / max(rate, 1e-9)
        emitter.emit("progress", step=step, total_steps=total_steps, epoch=round(epoch_progress, 4),
                     epochs=cfg.epochs, fraction=round(step / total_steps, 4),
                     samples_per_s=round(rate, 1), eta_s=round(remaining, 1))
        sums = torch.zeros_like(sums)
        counted, window_samples = 0, 0
        last_emit = window_start = now

    # 4. The loop.
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        order_state = order.get_state()
        perm = torch.randperm(n, generator=order).to(device)
        first = start_batch if epoch == start_epoch else 0  # a run stopped mid-epoch goes on there
        for batch in range(first, steps_per_epoch):
            if control.paused:
                control.wait_while_paused()
            if control.stop_requested:
                checkpoint(epoch, batch, order_state)
                raise StopRequested()
            if control.checkpoint_requested:
                control.checkpoint_requested = False
                checkpoint(epoch, batch, order_state)

            idx = perm[batch * cfg.batch_size:(batch + 1) * cfg.batch_size]
            x = x_train.index_select(0, idx)
            with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                logits = model(x)
                kd, terms = multi_teacher_kd(
                    logits, [(p.index_select(0, idx), lp.index_select(0, idx)) for p, lp in targets],
                    indices, weights, T)
                labels = y_train.index_select(0, idx) if y_train is not None else None
                loss, ce = distillation_loss(kd, logits, labels if alpha > 0 else None, alpha)

            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            step += 1

            parts = [loss, kd] + ([ce] if alpha > 0 else []) + terms
            sums += torch.stack([p.detach().float() for p in parts]) * len(idx)
            counted += len(idx)
            window_samples += len(idx)
            if time.monotonic() - last_emit >= EMIT_EVERY_S:
                flush_metrics(epoch + (batch + 1) / steps_per_epoch)

        flush_metrics(epoch + 1)
        val = evaluate(model, x_val, y_val, val_targets, indices, weights, T, amp_dtype, device)
        if val:
            emitter.emit("metric", step=step, epoch=epoch + 1, values=val)
            on_metrics(step, float(epoch + 1), val)
            for k, v in val.items():
                better = max if k.endswith("acc") else min
                result.best[k] = better(result.best.get(k, v), v)
            result.final.update(val)
        if (epoch + 1) % cfg.checkpoint_every_epochs == 0 or epoch + 1 == cfg.epochs:
            checkpoint(epoch + 1, 0, order.get_state())

    # 5. The trained student, as safetensors (weights only, safe to share).
    from safetensors.torch import save_file

    student_path = run_dir / "student.safetensors"
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(student_path, lambda tmp: save_file(state, str(tmp), metadata={
        "classes": ",".join(spec.classes), "architecture": spec.student.architecture.model_dump_json()}))
    on_checkpoint("student", student_path)
    result.student_path = student_path

    x_test = torch.from_numpy(data.test.x).to(device)
    y_test = torch.from_numpy(data.test.y).to(device) if data.labeled else None
    if y_test is not None and len(x_test):
        test = evaluate(model, x_test, y_test, [], indices, weights, T, amp_dtype, device, prefix="test")
        emitter.emit("metric", step=step, epoch=cfg.epochs, values=test)
        on_metrics(step, float(cfg.epochs), test)
        result.final.update(test)
    return result


@torch.inference_mode()
def evaluate(model, x, y, targets, indices, weights, T, amp_dtype, device, prefix="val",
             batch_size: int = 1024) -> dict[str, float]:
    """Accuracy and cross-entropy against labels; without labels, the KD loss on this split."""
    if len(x) == 0 or (y is None and not targets):
        return {}
    model.eval()
    with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        logits = torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]).float()
    if y is not None:
        acc = (logits.argmax(1) == y).float().mean()
        return {f"{prefix}/acc": acc.item(), f"{prefix}/loss": F.cross_entropy(logits, y).item()}
    kd, _ = multi_teacher_kd(logits, targets, indices, weights, T)
    return {f"{prefix}/kd": kd.item()}


def describe_split(data: Dataset) -> dict[str, int]:
    return {"train": len(data.train), "val": len(data.val), "test": len(data.test)}
