"""The self-supervised pretraining phase (student.init kind 'self_supervised'), run by
engine/train.py before distillation, in the same run: the step counter, the metrics and the
checkpoints run on into the distillation.

Each step, SimCLR: two random views of a batch of training samples (engine/pretrain/views.py),
the student's trunk (normalize, body) and a projection head, the NT-Xent loss between them
(engine/pretrain/contrastive.py). Masked prediction: a share of each sample's tokens or
patches hidden, the trunk and a decoder predict them (engine/pretrain/masked.py). The labels,
where there are any, are not used. The student's head is left alone. Afterwards what the
method added is dropped and a linear probe of the trunk's features measures them on the
labels there are (pretrain/probe_acc).

A checkpoint taken in this phase carries `pretraining: True`, its method, what the method
added (`pretrain_head`) and the phase's optimiser, so a run stopped or killed during
pretraining resumes inside it; the last one, at the end of the phase, lets a run stopped
before distillation's first checkpoint start distillation from the pretrained trunk.
"""

from __future__ import annotations

import contextlib
import math
import time

import numpy as np
import torch

from engine import dist
from engine.checkpoint import save_checkpoint
from engine.data.feed import Feed
from engine.errors import InputError, RunFailed, StopRequested
from engine.models import hidden_widths
from engine.pretrain.contrastive import Projector, nt_xent
from engine.pretrain.masked import MaskedPrediction
from engine.pretrain.probe import linear_probe
from engine.pretrain.views import Views
from engine.spec import PipelineSpec

EMIT_EVERY_S = 0.5
METHOD_WORDS = {"simclr": "SimCLR, contrastive", "masked": "masked prediction"}
PROBE_SAMPLES = 20_000  # labelled samples the probe is fitted on, at most


class Contrastive(torch.nn.Module):
    """SimCLR: the student's features and the projection head, what the contrastive loss
    trains; forward(x, positions, epoch, batch) gives the batch's loss."""

    def __init__(self, student: torch.nn.Module, projector: Projector, views: Views, temperature: float):
        super().__init__()
        self.student, self.projector, self.views, self.temperature = student, projector, views, temperature

    def forward(self, x: torch.Tensor, positions: torch.Tensor, epoch: int, batch: int) -> torch.Tensor:
        both = torch.cat([self.views(x, positions, epoch, batch, 0), self.views(x, positions, epoch, batch, 1)])
        z = self.projector(features(self.student, both))
        with torch.autocast(z.device.type, enabled=False):  # the similarities in float32, as before
            return nt_xent(*z.float().chunk(2), self.temperature)


def objective(spec: PipelineSpec, data, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The module whose forward(x, positions, epoch, batch) is a batch's pretraining loss: the
    student with what its method adds (SimCLR's projection head; masked prediction's mask
    embedding and decoder)."""
    cfg = spec.student.init.pretraining
    if cfg.method_for(spec.student.architecture.kind) == "masked":
        return MaskedPrediction(model, cfg, spec.training.seed).to(device)
    uint8 = data.train.streamed and data.train.x.source.dtype == np.uint8
    views = Views(cfg, data.sample_shape, spec.training.seed, model.normalize, (0.0, 255.0) if uint8 else None)
    with torch.no_grad():
        probe_x = torch.from_numpy(np.ascontiguousarray(data.train.x[:2])).to(device)
        width = features(model.eval(), probe_x).shape[1]
    return Contrastive(model, Projector(width, cfg.projection_dim), views, cfg.temperature).to(device)


def features(student: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return student.body(student.normalize(x)).flatten(1)


def steps(spec: PipelineSpec, n: int) -> tuple[int, int]:
    """(epochs, optimiser steps) of the pretraining phase; (0, 0) when the spec has none."""
    cfg = spec.student.init.pretraining
    if spec.student.init.kind != "self_supervised" or cfg is None:
        return 0, 0
    return cfg.epochs, cfg.epochs * math.ceil(n / cfg.batch_size)


def pretrain(job, state, total_steps: int, total_epochs: int, resume: dict | None, train_feed: Feed,
             val_feed: Feed) -> None:
    """Run (or, with `resume`, a checkpoint of this phase, go on with) the pretraining of
    `state.model`'s trunk; the step counter is `state.step`. `train_feed`, `val_feed`:
    distillation's, whose samples on the device it shares."""
    spec, data, device, emit = job.spec, job.data, job.device, job.emitter
    cfg = spec.student.init.pretraining
    method = cfg.method_for(spec.student.architecture.kind)
    model = state.model
    feed = train_feed.rebatched(cfg.batch_size)
    trunk = objective(spec, data, model, device)
    params = [p for name, p in trunk.named_parameters() if not name.startswith("student.head.")]
    n = len(data.train)
    per_epoch = math.ceil(n / cfg.batch_size)
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=1e-6)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(per_epoch * cfg.epochs, 1))
    start_epoch, start_batch = 0, 0
    if resume is not None:
        saved = resume.get("method", "simclr")
        if saved != method:
            raise InputError.one("student.init.pretraining.method", f"the run stopped in {METHOD_WORDS[saved]} "
                                 f"pretraining, and the spec now asks for {METHOD_WORDS[method]}",
                                 f"set student.init.pretraining.method to {saved} to resume it")
        head = resume.get("pretrain_head") or {f"projector.{k}": v for k, v in resume.get("projector", {}).items()}
        trunk.load_state_dict({**{f"student.{k}": v for k, v in resume["model"].items()}, **head})
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        state.scaler.load_state_dict(resume["scaler"])
        torch.set_rng_state(resume["rng"])
        if device.type == "cuda" and resume.get("cuda_rng"):
            torch.cuda.set_rng_state(resume["cuda_rng"][0], device)
        state.order.set_state(resume["order_rng"])
        state.step = resume["step"]
        start_epoch, start_batch = resume["epoch"], resume["batch"]
        emit.log(f"resumed at pretraining epoch {min(start_epoch + 1, cfg.epochs)}, step {state.step}")
    else:
        emit.log(f"pretraining the student's trunk, self-supervised ({METHOD_WORDS[method]}): {cfg.epochs} epochs "
                 f"over {n:,} samples, labels unused")
    head = [p for p in model.head.parameters() if p.requires_grad]  # unused here: DDP would wait for
    for p in head:                                                   # their gradients for ever
        p.requires_grad_(False)
    try:
        _pretrain_epochs(job, state, trunk, model, feed, optimizer, scheduler, start_epoch, start_batch,
                         total_steps, total_epochs)
    finally:
        for p in head:
            p.requires_grad_(True)
    probe(job, model, float(cfg.epochs), state.step, feed, val_feed)


def _pretrain_epochs(job, state, trunk, model, feed, optimizer, scheduler, start_epoch: int,
                     start_batch: int, total_steps: int, total_epochs: int) -> None:
    """The epochs of pretraining, with their metrics, progress and checkpoints."""
    spec, data, device, emit = job.spec, job.data, job.device, job.emitter
    cfg = spec.student.init.pretraining
    method = cfg.method_for(spec.student.architecture.kind)
    rank, world = dist.rank(), dist.size()
    n = len(data.train)
    per_epoch = math.ceil(n / cfg.batch_size)
    net = dist.wrap(trunk, device)
    autocast = (lambda: torch.autocast(device.type, dtype=job.amp_dtype)) if job.amp_dtype else contextlib.nullcontext

    def checkpoint(epoch: int, batch: int, order_state: torch.Tensor) -> None:
        if rank == 0:
            snapshot = {
                "model": model.state_dict(), "pretrain_head": {
                    k: v for k, v in trunk.state_dict().items() if not k.startswith("student.")},
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "scaler": state.scaler.state_dict(), "rng": torch.get_rng_state(), "order_rng": order_state,
                "cuda_rng": [torch.cuda.get_rng_state(device)] if device.type == "cuda" else [],
                "phase": 0, "pretraining": True, "method": method, "widths": hidden_widths(model), "masked": False,
                "aux": None,
                "epoch": epoch, "batch": batch, "step": state.step}
            folder = save_checkpoint(job.run_dir / "checkpoints", snapshot, state.step,
                                     {"phase": 0, "pretraining": True, "epoch": epoch, "batch": batch})
            emit.emit("checkpoint", path=str(folder), step=state.step, epoch=epoch,
                      bytes=(folder / "state.pt").stat().st_size)
            job.on_artifact("checkpoint", folder / "state.pt")
        dist.barrier()

    total, count, since, samples = torch.zeros((), device=device), 0, time.monotonic(), 0
    pretraining_steps = per_epoch * cfg.epochs  # the phase is the run's first: it ends at this step

    def samples_left() -> int:
        """The samples still to go through: this phase's batches, then distillation's."""
        here = max(pretraining_steps - state.step, 0)
        return here * cfg.batch_size + (total_steps - max(pretraining_steps, state.step)) * spec.training.batch_size

    def report(epoch_progress: float) -> None:
        nonlocal total, count, since, samples
        if not count:
            return
        loss = total.item() / count  # the one host sync, a few times a second
        if not math.isfinite(loss):
            raise RunFailed("non_finite_loss", f"the pretraining loss became {loss} near step {state.step}",
                            "lower student.init.pretraining.lr; checkpoints saved so far are kept")
        now = time.monotonic()
        rate = samples / max(now - since, 1e-9)
        values = {"pretrain/loss": loss, "lr": scheduler.get_last_lr()[0]}
        emit.emit("metric", step=state.step, epoch=round(epoch_progress, 4), values=values)
        job.on_metrics(state.step, epoch_progress, values)
        emit.emit("progress", step=state.step, total_steps=total_steps, epoch=round(epoch_progress, 4),
                  epochs=total_epochs, phase="pretrain", fraction=round(state.step / max(total_steps, 1), 4),
                  samples_per_s=round(rate, 1),
                  eta_s=round(samples_left() / max(rate, 1e-9), 1))
        total, count, since, samples = torch.zeros((), device=device), 0, now, 0

    for epoch in range(start_epoch, cfg.epochs):
        trunk.train()
        order_state = state.order.get_state()
        perm = torch.randperm(n, generator=state.order)
        first = start_batch if epoch == start_epoch else 0
        for b, idx, x in feed.batches(perm, first):
            if job.control.paused:
                job.control.wait_while_paused()
            if dist.agree_now(state.step):
                stop, save = dist.any_rank(job.control.stop_requested, job.control.checkpoint_requested)
                if stop:
                    checkpoint(epoch, b, order_state)
                    raise StopRequested()
                if save:
                    job.control.checkpoint_requested = False
                    checkpoint(epoch, b, order_state)
            if min(cfg.batch_size, n - b * cfg.batch_size) < 2 * world:  # decided on the global batch, the
                continue  # same on every rank: a lone sample per rank has nothing to be contrasted with
            positions = feed.positions(perm, b)
            with autocast():
                loss = net(x, positions, epoch, b)
            (state.scaler.scale(loss) if state.scaler.is_enabled() else loss).backward()
            if state.scaler.is_enabled():
                state.scaler.step(optimizer)
                state.scaler.update()
            else:
                optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state.step += 1
            total += loss.detach() * len(idx)
            count += len(idx)
            samples += len(idx)
            if time.monotonic() - since >= EMIT_EVERY_S:
                report(epoch + (b + 1) / per_epoch)
        report(epoch + 1)
        if (epoch + 1) % spec.training.checkpoint_every_epochs == 0 or epoch + 1 == cfg.epochs:
            checkpoint(epoch + 1, 0, state.order.get_state())


def probe(job, model: torch.nn.Module, epoch: float, step: int, train_feed: Feed, val_feed: Feed) -> float | None:
    """pretrain/probe_acc: a linear probe of the trunk's features, fitted on the training
    data's labels and measured on the validation split; when training has no labels (the
    transfer set is unlabelled), fitted on one half of the validation split and measured on
    the other. Without any labels it is not measured, and the log says so."""
    data, emit = job.data, job.emitter
    train_y = data.train.y
    labelled = np.flatnonzero(train_y >= 0)[:PROBE_SAMPLES] if train_y is not None else np.array([], int)
    if len(labelled) and data.val.y is not None and len(data.val):
        fit_x = feature_rows(model, train_feed, labelled)
        fit_y = torch.from_numpy(train_y[labelled])
        test_x = feature_rows(model, val_feed, None)
        test_y = torch.from_numpy(data.val.y)
        how = f"fitted on {len(labelled):,} labelled training samples, measured on the validation split"
    elif data.val.y is not None and len(data.val) >= 4:
        every = feature_rows(model, val_feed, None)
        order = torch.from_numpy(np.random.default_rng(0).permutation(len(data.val)))
        half = len(order) // 2
        y = torch.from_numpy(data.val.y)
        fit_x, fit_y, test_x, test_y = every[order[:half]], y[order[:half]], every[order[half:]], y[order[half:]]
        how = (f"the training data has no labels, so fitted on {half:,} of the validation split's labelled "
               f"samples and measured on the other {len(order) - half:,}")
    else:
        emit.log("linear probe not measured: there are no labels, in training or validation, "
                 "to fit and measure it on", "warning")
        return None
    acc = linear_probe(fit_x, fit_y, test_x, test_y, len(job.spec.classes))
    emit.log(f"linear probe of the pretrained features: {acc:.1%} ({how})")
    values = {"pretrain/probe_acc": acc}
    emit.emit("metric", step=step, epoch=epoch, values=values)
    job.on_metrics(step, epoch, values)
    return acc


@torch.inference_mode()
def feature_rows(model: torch.nn.Module, feed: Feed, rows: np.ndarray | None) -> torch.Tensor:
    """The trunk's features [N, F] (on the CPU, float32) of the feed's samples, or of `rows` of them."""
    model.eval()
    out = []
    wanted = None if rows is None else torch.from_numpy(rows)
    for pos, x in feed.in_order(1024 if not feed.streamed else feed.batch_size):
        if wanted is not None:
            keep = torch.isin(pos.cpu(), wanted)
            if not keep.any():
                continue
            x = x[keep.to(x.device)]
        out.append(features(model, x).float().cpu())
        if wanted is not None and sum(len(o) for o in out) >= len(wanted):
            break
    return torch.cat(out)
