"""The training loop: many frozen teachers distilled into one student. Read it top to bottom.

A run is a list of phases: the distillation itself, then one per prune step (prune, then a
short distillation fine-tune from the same teachers). Each phase has its own optimiser and
schedule; the step counter, the metrics and the checkpoints run on across phases.

No per-step host sync: loss terms are summed on the device and read a few times per second,
when metrics are emitted. A non-finite loss is caught at that read and stops the run.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from engine import compress, dist
from engine.atomic_io import atomic_write
from engine.checkpoint import save_checkpoint
from engine.data import Dataset
from engine.errors import InputError, RunFailed
from engine.events import Control, Emitter
from engine.losses import distillation_loss
from engine.models import build_model, count_parameters, hidden_widths
from engine.spec import PipelineSpec, PruneStep, TrainingSpec
from engine.strategy import (Auxiliary, Calibrator, Targets, auxiliary_weight, build_targets, calibration_samples,
                             init_student, target_names, unlabeled_groups_warning, with_confidence)
from engine.teacher_cache import fingerprint, teacher_outputs
from engine.teachers import Teacher

EMIT_EVERY_S = 0.25
CALIBRATION_BATCH = 32  # labelled calibration samples seen beside each batch


class StopRequested(Exception):
    """The user asked to stop; a checkpoint has been written."""


@dataclass
class Result:
    best: dict[str, float] = field(default_factory=dict)
    final: dict[str, float] = field(default_factory=dict)
    student_path: Path | None = None
    parameters: int = 0
    sparsity: float = 0.0


@dataclass(frozen=True)
class Phase:
    name: str
    epochs: int
    lr: float
    prune: PruneStep | None = None


def plan(spec: PipelineSpec) -> list[Phase]:
    """The distillation, then a prune + fine-tune phase per prune step."""
    return [Phase("distill", spec.training.epochs, spec.training.lr)] + [
        Phase(f"prune {i + 1}", step.finetune_epochs, step.finetune_lr, step)
        for i, step in enumerate(spec.prune_steps)]


def make_optimizer(params: list[torch.nn.Parameter], cfg: TrainingSpec, lr: float, steps: int):
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    else:
        cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
        opt = cls(params, lr=lr, weight_decay=cfg.weight_decay)
    if cfg.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    return opt, sched


def train(spec: PipelineSpec, data: Dataset, teachers: list[Teacher], device: torch.device,
          amp_dtype: torch.dtype | None, run_dir: Path, emitter: Emitter, control: Control,
          on_metrics: Callable[[int, float, dict[str, float]], None],
          on_checkpoint: Callable[[str, Path], None], resume: dict | None = None,
          best_so_far: dict[str, float] | None = None, cache_dir: Path | None = None) -> Result:
    """Train the student; with `resume` (a checkpoint), continue exactly where it was saved."""
    cfg, strategy = spec.training, spec.strategy
    torch.manual_seed(cfg.seed)

    # 1. The student, with input statistics from the training split. A run resumed after
    #    structured pruning has narrower layers; one resumed inside magnitude pruning, masks.
    phases = plan(spec)
    start_phase = resume.get("phase", 0) if resume else 0
    model = build_model(spec.student.architecture, data.sample_shape, len(spec.classes),
                        widths=resume.get("widths") if resume else None)
    started_from = None if resume else init_student(model, spec, teachers)
    if started_from:
        emitter.log(f"student {started_from}")
    else:  # weights it starts from bring their own normalisation
        model.normalize.fit(data.train.x)
    if resume and resume.get("masked"):
        compress.restore_masks(model)
    model.to(device)
    channels_last = device.type == "cuda" and len(data.sample_shape) == 3  # faster convolutions
    if channels_last:
        model.to(memory_format=torch.channels_last)
    result = Result(parameters=count_parameters(model),  # after pruning, the store's best is older
                    best=dict(best_so_far or {}) if start_phase == 0 else {})
    emitter.log(f"student: {spec.student.architecture.kind}, {result.parameters:,} parameters")

    # 2. Teachers are frozen: their outputs are computed once (or read from the disk cache of
    #    an earlier run), as soft targets stacked [N, K, C] in the student's class space.
    x_train = torch.from_numpy(data.train.x).to(device)  # on the device once: no per-step copies
    if channels_last:
        x_train = x_train.contiguous(memory_format=torch.channels_last)
    y_train = torch.from_numpy(data.train.y).to(device) if data.labeled else None
    x_val = torch.from_numpy(data.val.x).to(device)
    y_val = torch.from_numpy(data.val.y).to(device) if data.val.y is not None else None
    indices = [torch.from_numpy(t.student_index).to(device) for t in teachers]
    live = cfg.teacher_outputs == "live"
    warning = unlabeled_groups_warning(spec, data.labeled)
    if warning:
        emitter.log(warning, "warning")

    def outputs_of(x: np.ndarray, fp: str | None) -> list[torch.Tensor]:
        outputs = []
        for t in teachers:
            out, hit = teacher_outputs(t, x, fp, cache_dir) if fp else (t.predict(x), False)
            outputs.append(torch.from_numpy(np.array(out)).to(device))  # a copy: the cache is read-only
            if fp:
                emitter.emit("teacher_outputs", teacher=t.name, cache="hit" if hit else "miss",
                             message=f"teacher '{t.name}': outputs " + (
                                 "read from the cache" if hit else "computed and cached"))
        return outputs

    # A few labels per class calibrate teachers whose class subsets do not overlap; the
    # student also learns from those labels (a small batch of them beside every batch).
    calibrator = cal_x = cal_y = None
    if strategy.calibration is not None and teachers:
        cal_idx, cal_labels = calibration_samples(data, strategy.calibration.labels_per_class, cfg.seed)
        cal_x, cal_y = x_train[torch.from_numpy(cal_idx).to(device)], torch.from_numpy(cal_labels).to(device)
        calibrator = Calibrator(indices, len(spec.classes)).to(device)
        right = calibrator.fit(outputs_of(data.train.x[cal_idx], None), cal_y)
        emitter.log(f"calibration: {len(cal_idx)} labelled samples; the merged teachers get "
                    f"{right:.1%} of them right")

    def targets_of(x: np.ndarray, fp: str | None, labels: torch.Tensor | None) -> Targets | None:
        if not teachers:  # labels alone
            return None
        return build_targets(strategy, teachers, outputs_of(x, fp), indices, len(spec.classes),
                             labels, calibrator)

    started = time.monotonic()
    targets = val_targets = None
    def cache_key(x: np.ndarray) -> str | None:  # no cache folder: computed here, nothing stored
        return fingerprint(x) if cache_dir is not None else None

    if not live:
        targets = targets_of(data.train.x, cache_key(data.train.x), y_train)
    if y_val is None and len(data.val):
        val_targets = targets_of(data.val.x, cache_key(data.val.x), None)
    emitter.log(f"teacher outputs {'run live on each batch' if live else 'ready'} for "
                f"{len(teachers)} teachers on {len(data.train)} samples in {time.monotonic() - started:.2f}s")
    alpha = strategy.hard_label_weight if data.labeled else 0.0
    if not teachers:
        if not data.labeled:
            raise InputError.one("teachers", "the spec has no teachers and the data has no labels, "
                                 "so there is nothing to learn from", "add a teacher, or give data with labels")
        alpha = 1.0

    # Feature hints: the teachers' intermediate features, computed once; hint adapters and task
    # heads learn beside the student during the distillation (not in the prune fine-tunes).
    by_name = {t.name: t for t in teachers}
    aux, hint_x = None, []
    if (strategy.hints or strategy.task_heads) and start_phase == 0:
        hint_x = [torch.from_numpy(by_name[h.teacher].features(data.train.x, h.teacher_layer,
                                                                f"strategy.hints[{i}].teacher_layer")).to(device)
                  for i, h in enumerate(strategy.hints)]
        aux = Auxiliary(strategy, model, len(teachers), len(spec.classes),
                        [h[:2] for h in hint_x], x_train[:2]).to(device)
        if resume and resume.get("aux"):
            aux.load_state_dict(resume["aux"])

    # 3. Steps: every phase walks the training split once per epoch (under torchrun, each
    #    rank takes its share of every global batch).
    rank, world = dist.rank(), dist.size()
    n = len(data.train)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total_steps = steps_per_epoch * sum(p.epochs for p in phases)
    total_epochs = sum(p.epochs for p in phases)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    order = torch.Generator().manual_seed(cfg.seed)
    step = resume["step"] if resume else 0
    autocast = (lambda: torch.autocast(device.type, dtype=amp_dtype)) if amp_dtype else contextlib.nullcontext

    conf = strategy.confidence_weight > 0
    head_names = ["loss/total"] + (["loss/kd"] if teachers else []) + (["loss/ce"] if alpha > 0 else []) + \
        (["loss/calibration"] if cal_x is not None else []) + (aux.names if aux else []) + \
        (["loss/confidence"] if conf else [])
    names = head_names + [f"loss/kd/{name}" for name in target_names(strategy, teachers, calibrator is not None)]
    active = set(names)  # the auxiliary terms only in the distillation phase
    sums = torch.zeros(len(names), device=device)
    counted = 0
    last_emit = window_start = time.monotonic()
    window_samples = 0

    def checkpoint(epoch: int, batch: int, order_state: torch.Tensor) -> None:
        if rank != 0:  # rank 0 alone writes; everyone waits until it is on disk
            dist.barrier()
            return
        folder = save_checkpoint(run_dir / "checkpoints", {
            "model": model.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "scaler": scaler.state_dict(),
            "rng": torch.get_rng_state(), "order_rng": order_state,
            "cuda_rng": torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
            "phase": k, "widths": hidden_widths(model), "masked": compress.is_masked(model),
            "aux": aux.state_dict() if aux is not None and k == 0 else None,
            "epoch": epoch, "batch": batch, "step": step,
        }, step, {"phase": k, "epoch": epoch, "batch": batch})
        size = (folder / "state.pt").stat().st_size
        emitter.emit("checkpoint", path=str(folder), step=step, epoch=epoch, bytes=size)
        on_checkpoint("checkpoint", folder / "state.pt")
        dist.barrier()

    def flush_metrics(epoch_progress: float) -> None:
        nonlocal sums, counted, last_emit, window_start, window_samples
        if counted == 0:
            return
        values = {name: v for name, v in zip(names, (sums / counted).tolist()) if name in active}  # the one host sync
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
        extra: dict[str, float] = {}
        if device.type == "cuda":  # read without a sync: the allocator's own counter
            extra["gpu_mem_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        emitter.emit("progress", **extra, step=step, total_steps=total_steps, epoch=round(epoch_progress, 4),
                     epochs=total_epochs, phase="distill" if phase.prune is None else "prune",
                     prune_step=None if phase.prune is None else k - 1, fraction=round(step / max(total_steps, 1), 4),
                     samples_per_s=round(rate, 1), eta_s=round(remaining, 1))
        sums = torch.zeros_like(sums)
        counted, window_samples = 0, 0
        last_emit = window_start = now

    def validate(epoch_done: float) -> None:
        val = evaluate(model, x_val, y_val, val_targets, strategy, amp_dtype, device)
        if val:
            emitter.emit("metric", step=step, epoch=epoch_done, values=val)
            on_metrics(step, epoch_done, val)
            for key, v in val.items():
                better = max if key.endswith("acc") else min
                result.best[key] = better(result.best.get(key, v), v)
            result.final.update(val)

    # 4. The phases, each a loop over epochs and batches.
    epochs_before = sum(p.epochs for p in phases[:start_phase])
    for k in range(start_phase, len(phases)):
        phase = phases[k]
        resuming = resume is not None and k == start_phase
        if phase.prune is not None and not resuming:
            result.best = {}  # the run's best is that of the model it delivers: the pruned one
            model = prune(model, phase.prune, spec, data, emitter)
            validate(float(epochs_before))  # the drop pruning caused, before fine-tuning
        net = dist.wrap(model, device)  # DDP under torchrun: gradients averaged across ranks
        if cfg.compile:  # the training step only; evaluation runs the plain model
            net = torch.compile(net)
            emitter.log(f"{phase.name}: compiling the student (torch.compile); the first steps are slow")
        use_aux = aux is not None and k == 0
        if not use_aux:
            active.difference_update(aux.names if aux else [])
        params = list(model.parameters()) + (list(aux.parameters()) if use_aux else [])
        opt, sched = make_optimizer(params, cfg, phase.lr, steps_per_epoch * phase.epochs)
        start_epoch, start_batch = 0, 0
        if resuming:  # everything that decides the next step: weights, moments, RNGs, position
            model.load_state_dict(resume["model"])
            opt.load_state_dict(resume["optimizer"])
            sched.load_state_dict(resume["scheduler"])
            scaler.load_state_dict(resume["scaler"])
            torch.set_rng_state(resume["rng"])
            if device.type == "cuda" and resume.get("cuda_rng"):
                torch.cuda.set_rng_state_all(resume["cuda_rng"])
            order.set_state(resume["order_rng"])
            start_epoch, start_batch = resume["epoch"], resume["batch"]
            emitter.log(f"resumed at {phase.name} epoch {start_epoch + 1}, step {step}")
        elif k > 0:
            emitter.log(f"{phase.name}: {compress.describe(phase.prune)}")

        for epoch in range(start_epoch, phase.epochs):
            model.train()
            order_state = order.get_state()
            perm = torch.randperm(n, generator=order).to(device)
            first = start_batch if epoch == start_epoch else 0  # a run stopped mid-epoch goes on there
            for batch in range(first, steps_per_epoch):
                if control.paused:
                    control.wait_while_paused()
                stop, save = dist.any_rank(control.stop_requested, control.checkpoint_requested)
                if stop:
                    checkpoint(epoch, batch, order_state)
                    raise StopRequested()
                if save:
                    control.checkpoint_requested = False
                    checkpoint(epoch, batch, order_state)

                idx = perm[batch * cfg.batch_size:(batch + 1) * cfg.batch_size]
                if world > 1:  # this rank's share of the global batch
                    idx = idx[rank::world]
                x = x_train.index_select(0, idx)
                labels = y_train.index_select(0, idx) if y_train is not None else None
                with autocast():
                    parts: dict[str, torch.Tensor] = {}
                    if cal_x is not None:  # first: the hooks then keep the batch's own features
                        pick = torch.randint(len(cal_x), (min(len(cal_x), CALIBRATION_BATCH),),
                                             generator=torch.Generator().manual_seed(cfg.seed + step)).to(device)
                        parts["loss/calibration"] = F.cross_entropy(
                            forward(net, cal_x.index_select(0, pick), cfg.compile).float(), cal_y.index_select(0, pick))
                    logits = forward(net, x, cfg.compile)
                    batch_targets = None if not teachers else targets_of(
                        data.train.x[idx.cpu().numpy()], None, labels) if live else targets.rows(idx)
                    kd = None
                    if batch_targets is not None:
                        kd, terms = batch_targets.kd(logits, strategy)
                        parts["loss/kd"] = kd
                    loss, ce = distillation_loss(kd, logits, labels if alpha > 0 else None, alpha)
                    if ce is not None:
                        parts["loss/ce"] = ce
                    if use_aux:
                        parts.update(aux.losses([h.index_select(0, idx) for h in hint_x], batch_targets))
                    for name, value in parts.items():  # calibration, hints, heads: weighted in
                        if name not in ("loss/kd", "loss/ce"):
                            loss = loss + auxiliary_weight(strategy, name) * value
                    loss, confidence = with_confidence(loss, logits, strategy, step / total_steps)
                    if confidence is not None:
                        parts["loss/confidence"] = confidence
                    parts["loss/total"] = loss

                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
                sched.step()
                step += 1

                head = torch.stack([parts[name] if name in parts else loss.new_zeros(()) for name in head_names]).detach()
                sums[:len(head)].add_(head, alpha=len(idx))  # summed on the device, read a few times a second
                if batch_targets is not None:
                    sums[len(head):].add_(terms.detach(), alpha=len(idx))
                counted += len(idx)
                window_samples += len(idx)
                if time.monotonic() - last_emit >= EMIT_EVERY_S:
                    flush_metrics(epochs_before + epoch + (batch + 1) / steps_per_epoch)

            flush_metrics(epochs_before + epoch + 1)
            validate(float(epochs_before + epoch + 1))
            if (epoch + 1) % cfg.checkpoint_every_epochs == 0 or epoch + 1 == phase.epochs:
                checkpoint(epoch + 1, 0, order.get_state())
        if use_aux:
            aux.remove_hooks()
        compress.make_permanent(model)
        epochs_before += phase.epochs
    result.sparsity = compress.sparsity(model)
    result.parameters = count_parameters(model)

    # 5. The trained student, as safetensors (weights only, safe to share).
    from safetensors.torch import save_file

    if rank != 0:
        return result
    student_path = run_dir / "student.safetensors"
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(student_path, lambda tmp: save_file(state, str(tmp), metadata={
        "classes": ",".join(spec.classes), "architecture": spec.student.architecture.model_dump_json(),
        "widths": json.dumps(hidden_widths(model))}))
    on_checkpoint("student", student_path)
    result.student_path = student_path

    x_test = torch.from_numpy(data.test.x).to(device)
    y_test = torch.from_numpy(data.test.y).to(device) if data.test.y is not None else None
    if y_test is not None and len(x_test):
        test = evaluate(model, x_test, y_test, None, strategy, amp_dtype, device, prefix="test")
        test.update(teacher_accuracies(teachers, data.test.x, data.test.y))
        emitter.emit("metric", step=step, epoch=total_epochs, values=test)
        on_metrics(step, float(total_epochs), test)
        result.final.update(test)
    return result


def forward(net: torch.nn.Module, x: torch.Tensor, compiled: bool) -> torch.Tensor:
    """The student's forward pass; a compiled one that cannot compile says so plainly."""
    if not compiled:
        return net(x)
    try:
        return net(x)
    except Exception as exc:  # noqa: BLE001 — dynamo and inductor raise many types
        raise RunFailed("compile", f"torch.compile failed: {str(exc).splitlines()[0][:300]}",
                        "set training.compile to false (on the CPU it also needs a C++ compiler, "
                        "e.g. apt-get install g++)") from None


def prune(model: torch.nn.Module, step: PruneStep, spec: PipelineSpec, data: Dataset,
          emitter: Emitter) -> torch.nn.Module:
    """Apply one prune step; structured pruning returns a new, smaller model."""
    before = count_parameters(model)
    if step.method == "magnitude":
        compress.apply_magnitude(model, step.sparsity, step.scope)
        emitter.log(f"pruned {compress.sparsity(model):.1%} of the weights by magnitude ({step.scope})")
        return model
    model, widths = compress.apply_structured(model, step.sparsity, spec.student.architecture,
                                              data.sample_shape, len(spec.classes))
    emitter.log(f"structured pruning: hidden widths now {widths}; parameters {before:,} -> "
                f"{count_parameters(model):,}")
    return model


@torch.inference_mode()
def evaluate(model, x, y, targets: Targets | None, strategy, amp_dtype, device, prefix="val",
             batch_size: int = 1024) -> dict[str, float]:
    """Accuracy and cross-entropy against labels; without labels, the KD loss on this split."""
    if len(x) == 0 or (y is None and targets is None):
        return {}
    model.eval()
    with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        logits = torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]).float()
    if y is not None:
        acc = (logits.argmax(1) == y).float().mean()
        return {f"{prefix}/acc": acc.item(), f"{prefix}/loss": F.cross_entropy(logits, y).item()}
    kd, _ = targets.kd(logits, strategy)
    return {f"{prefix}/kd": kd.item()}


def teacher_accuracies(teachers: list[Teacher], x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Each teacher's accuracy on the test samples of the classes it knows: what the student is
    measured against (for weak-to-strong, the weak teacher's side of the PGR)."""
    out = {}
    for t in teachers:
        known = np.isin(y, t.student_index)
        if known.any():
            pred = t.student_index[t.predict(x[known]).argmax(axis=1)]
            out[f"test/teacher_acc/{t.name}"] = float((pred == y[known]).mean())
    return out


def describe_split(data: Dataset) -> dict[str, int]:
    return {"train": len(data.train), "val": len(data.val), "test": len(data.test)}
