"""The training loop: many frozen teachers distilled into one student. Read it top to bottom.

A run is a list of phases: the student's self-supervised pretraining where student.init asks
for it (engine/pretrain/phase.py), the distillation itself, then one per prune step (prune,
then a short distillation fine-tune from the same teachers). Each phase has its own optimiser and
schedule; the step counter, the metrics and the checkpoints run on across phases.

What it uses, each in its own module: the student zoo (engine/models/), the data split
(engine/data/), the teachers' targets and the loss terms (engine/strategies/), the training
state that checkpoints save (engine/train_state.py) and the metric meter (engine/meter.py).
No per-step host sync: loss values are summed on the device and read a few times per second.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torch.utils.checkpoint

from engine import compress, dist
from engine.atomic_io import atomic_write
from engine.augment import Augmenter, cost_note
from engine.data import Dataset
from engine.data.feed import Feed, workers_for
from engine.errors import InputError, StopRequested
from engine.events import Control, Emitter
from engine.grad_norms import GradNorms
from engine.memory import release
from engine.meter import Meter, hits
from engine.models import build_model, count_parameters, hidden_widths, require
from engine.models.contract import Student
from engine.pretrain import phase as pretraining
from engine.spec import PipelineSpec, PruneStep
from engine.strategies import Batch, Setup, build_criterion
from engine.strategies.calibration import calibrate
from engine.strategies.targets import Targets, TeacherTargets, unlabeled_groups_warning
from engine.student_init import init_student
from engine.train_state import TrainState


@dataclass
class Job:
    """What one training needs: the spec, its data and teachers, where it runs and reports."""

    spec: PipelineSpec
    data: Dataset
    teachers: list
    device: torch.device
    amp_dtype: torch.dtype | None
    run_dir: Path
    emitter: Emitter
    control: Control
    on_metrics: Callable[[int, float, dict[str, float]], None] = lambda *a: None
    on_artifact: Callable[[str, Path], None] = lambda *a: None
    cache_dir: Path | None = None  # teacher outputs kept between runs; None: not kept


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
    prune_step: int | None = None  # which of the spec's prune steps (0-based)


def plan(spec: PipelineSpec) -> list[Phase]:
    """The distillation, then a prune + fine-tune phase per prune step."""
    return [Phase("distill", spec.training.epochs, spec.training.lr)] + [
        Phase(f"prune {i + 1}", step.finetune_epochs, step.finetune_lr, step, i)
        for i, step in enumerate(spec.prune_steps)]


def train(job: Job, resume: dict | None = None, best_so_far: dict[str, float] | None = None) -> Result:
    """Train the student; with `resume` (a checkpoint), continue exactly where it was saved."""
    spec, data, device, emit = job.spec, job.data, job.device, job.emitter
    cfg = spec.training
    torch.manual_seed(cfg.seed)
    phases = plan(spec)
    start_phase = resume.get("phase", 0) if resume else 0
    pretrain_resume = resume if resume and resume.get("pretraining") else None  # stopped in pretraining

    # 1. The student, and the data: in memory, on the device once (no per-step copies); an
    #    image folder streamed from disk by worker processes (engine/data/feed.py).
    model = make_student(job, resume)
    for i, step in enumerate(spec.compression):  # before training, not after it
        if isinstance(step, PruneStep) and step.method == "structured":
            require(model, "structured_pruning", f"compression[{i}].method")
    result = Result(parameters=count_parameters(model),  # after pruning, the store's best is older
                    best=dict(best_so_far or {}) if start_phase == 0 else {})
    emit.log(f"student: {spec.student.architecture.kind}, {result.parameters:,} parameters")
    rank, world = dist.rank(), dist.size()
    train_feed, val_feed = (Feed(part, device, cfg.batch_size, workers_for(spec.data), channels_last(data, device),
                                 rank if part is data.train else 0, world if part is data.train else 1)
                            for part in (data.train, data.val))
    if data.streamed:
        emit.log(f"data: streamed from disk, {train_feed.workers} decoding processes")
    augment = augmenter(spec, data)
    if augment is not None:
        emit.log(cost_note(cfg.augment, len(data.train), len(job.teachers), len(spec.classes),
                           sum(p.epochs for p in phases)))

    # 2. The teachers are frozen: their soft targets are computed once (or read from the disk
    #    cache of an earlier run), or live on each batch.
    targets, alpha, calibration, val_targets = teacher_targets(job, train_feed.y, augment)

    # 3. The loss: every registered term the strategy asks for (engine/strategies/).
    probe = torch.from_numpy(np.ascontiguousarray(data.train.x[:2])).to(device)
    criterion = build_criterion(Setup(spec, model, job.teachers, data.labeled, alpha, data.train.for_teachers,
                                      probe, device, calibration, resumed_later_phase=start_phase > 0))
    if resume and resume.get("aux"):
        criterion.load_learned(resume["aux"])
    state = TrainState(model, criterion, torch.amp.GradScaler(device.type, enabled=job.amp_dtype == torch.float16),
                       torch.Generator().manual_seed(cfg.seed), device)

    # 4. The phases, each a loop over epochs and batches (under torchrun, each rank takes its
    #    share of every global batch).
    n = len(data.train)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    pre_epochs, pre_steps = pretraining.steps(spec, n)  # (0, 0) without self-supervised pretraining
    total_steps = pre_steps + steps_per_epoch * sum(p.epochs for p in phases)
    total_epochs = pre_epochs + sum(p.epochs for p in phases)
    distill_steps = max(total_steps - pre_steps, 1)  # the losses' progress (warm-ups) counts distillation only
    autocast = (lambda: torch.autocast(device.type, dtype=job.amp_dtype)) if job.amp_dtype else contextlib.nullcontext
    state.step = resume["step"] if resume else 0
    epochs_before = pre_epochs + sum(p.epochs for p in phases[:start_phase])

    say = Reporter(job, state, result, total_steps, total_epochs, train_feed, val_feed, val_targets)
    # train/acc (engine/meter.py) counts the labelled samples on the host when every one has a label
    all_labelled = data.train.y is not None and bool((data.train.y >= 0).all())
    compiling = compile_wanted(spec, device)
    if cfg.activation_checkpointing:
        require_blocks(model)
    if pre_epochs and (resume is None or pretrain_resume is not None):  # 0. the trunk, self-supervised
        pretraining.pretrain(job, state, total_steps, total_epochs, pretrain_resume, train_feed, val_feed)
        resume = None  # the distillation starts afresh from the pretrained trunk
    for k in range(start_phase, len(phases)):
        phase = phases[k]
        resuming = resume is not None and k == start_phase
        if k > 0:
            criterion.end_distillation()  # adapters and task heads learn in the distillation only
        if phase.prune is not None and not resuming:
            result.best = {}  # the run's best is that of the model it delivers: the pruned one
            state.model = prune(state.model, phase.prune, emit)
            say.validate(float(epochs_before))  # the drop pruning caused, before fine-tuning
        net = dist.wrap(state.model, device)  # DDP under torchrun: gradients averaged across ranks
        checkpointed_blocks(state.model, cfg.activation_checkpointing)  # in training only, never in eval
        step = Step(net, criterion, state, autocast, cfg.accumulate, all_labelled)
        if compiling:  # the training step only; evaluation runs the plain model
            step.student = torch.compile(net)
            emit.log(f"{phase.name}: compiling the student (torch.compile); the first steps are slow")
        state.start_phase(k, cfg, phase.lr, steps_per_epoch * phase.epochs)
        start_epoch, start_batch = 0, 0
        if resuming:  # everything that decides the next step: weights, moments, RNGs, position
            start_epoch, start_batch = state.restore(resume)
            emit.log(f"resumed at {phase.name} epoch {start_epoch + 1}, step {state.step}")
        elif k > 0:
            emit.log(f"{phase.name}: {compress.describe(phase.prune)}")
        meter = Meter(criterion.names, device)
        norms = GradNorms(state.model, device) if cfg.gradient_norms and rank == 0 else None  # rank 0 reports
        shapes, before = set(), None  # the batch shapes stepped on (texts: lengths vary); what a compile may undo

        for epoch in range(start_epoch, phase.epochs):
            state.model.train()
            order_state = state.order.get_state()
            perm = torch.randperm(n, generator=state.order)
            first = start_batch if epoch == start_epoch else 0  # a run stopped mid-epoch goes on there
            seen = epochs_before + epoch  # which augmented draw (or cached view) this epoch uses
            for b, idx, x in train_feed.batches(perm, first):  # idx: positions in the training part
                if job.control.paused:
                    job.control.wait_while_paused()
                if dist.agree_now(state.step):  # under torchrun a collective: every 16 steps, not each
                    stop, save = dist.any_rank(job.control.stop_requested, job.control.checkpoint_requested)
                    if stop:
                        say.checkpoint(epoch, b, order_state)
                        raise StopRequested()
                    if save:
                        job.control.checkpoint_requested = False
                        say.checkpoint(epoch, b, order_state)

                labels = train_feed.labels(idx)
                if augment is not None:  # each sample's draw depends on (seed, sample, epoch) alone
                    x = augment(x, train_feed.positions(perm, b), augment.key(seen))
                if compiling and tuple(x.shape) not in shapes:  # a new shape: the step may compile now
                    before = side_effects(state.model, device)
                    shapes.add(tuple(x.shape))
                try:
                    parts = step(x, idx, labels, targets, seen, (state.step - pre_steps) / distill_steps)
                except Exception as exc:
                    if step.student is net or not compile_error(exc):
                        raise
                    emit.log(f"{phase.name}: torch.compile failed, so the student trains uncompiled "
                             f"(slower steps): {first_line(exc)}", "warning")
                    compiling, step.student = False, net
                    restore_side_effects(state.model, device, before)  # what the failed try moved
                    state.optimizer.zero_grad(set_to_none=True)  # the failed try's part gradients
                    parts = step(x, idx, labels, targets, seen, (state.step - pre_steps) / distill_steps)
                if norms is not None:  # training.gradient_norms: read between the backward pass and the step
                    state.unscale()
                    norms.add()
                state.step_optimizer()
                for values, size, right in parts:
                    meter.add(values, size, right)  # summed on the device, read a few times a second
                if meter.due:
                    say.progress(meter, phase, epochs_before + epoch + (b + 1) / steps_per_epoch, norms)

            say.progress(meter, phase, epochs_before + epoch + 1, norms)
            say.validate(float(epochs_before + epoch + 1))
            if (epoch + 1) % cfg.checkpoint_every_epochs == 0 or epoch + 1 == phase.epochs:
                say.checkpoint(epoch + 1, 0, state.order.get_state())
        checkpointed_blocks(state.model, False)
        compress.make_permanent(state.model)
        epochs_before += phase.epochs
    criterion.end_distillation()
    result.sparsity = compress.sparsity(state.model)
    result.parameters = count_parameters(state.model)
    if rank == 0:
        finish(job, state.model, result, state.step, total_epochs)
    return result


@dataclass
class Reporter:
    """What the loop tells the app and the store: metrics and progress a few times a second,
    validation scores after each epoch (and the run's best), checkpoints."""

    job: Job
    state: TrainState
    result: Result
    total_steps: int
    total_epochs: int
    train_feed: Feed
    val_feed: Feed
    val_targets: Targets | None
    _waited: tuple[float, float] = (0.0, 0.0)  # (clock, the feed's wait) at the last progress

    def checkpoint(self, epoch: int, batch: int, order_state: torch.Tensor) -> None:
        if dist.rank() == 0:  # rank 0 alone writes; everyone waits until it is on disk
            folder = self.state.save(self.job.run_dir / "checkpoints", epoch, batch, order_state)
            self.job.emitter.emit("checkpoint", path=str(folder), step=self.state.step, epoch=epoch,
                                  bytes=(folder / "state.pt").stat().st_size)
            self.job.on_artifact("checkpoint", folder / "state.pt")
        dist.barrier()

    def progress(self, meter: Meter, phase: Phase, epoch_progress: float, norms: GradNorms | None = None) -> None:
        read = meter.read(self.state.step)  # the one host sync (two with the gradient norms)
        if read is None:
            return
        values, rate = read
        if norms is not None:
            values.update(norms.read())  # grad/<layer group>: their mean since the last read
        step, device, batch_size = self.state.step, self.job.device, self.job.spec.training.batch_size
        values["lr"] = self.state.scheduler.get_last_lr()[0]
        self.job.emitter.emit("metric", step=step, epoch=round(epoch_progress, 4), values=values)
        self.job.on_metrics(step, epoch_progress, values)
        extra = {"gpu_mem_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1)} \
            if device.type == "cuda" else {}  # the allocator's own counter: no sync
        now, waited = time.perf_counter(), self.train_feed.wait_s
        if self.train_feed.streamed and self._waited[0]:  # the share of the time spent waiting for data
            extra["data_wait"] = round(min(1.0, (waited - self._waited[1]) / max(now - self._waited[0], 1e-9)), 4)
        self._waited = (now, waited)
        self.job.emitter.emit(
            "progress", **extra, step=step, total_steps=self.total_steps, epoch=round(epoch_progress, 4),
            epochs=self.total_epochs, phase="distill" if phase.prune is None else "prune",
            prune_step=phase.prune_step, fraction=round(step / max(self.total_steps, 1), 4),
            samples_per_s=round(rate, 1), eta_s=round((self.total_steps - step) * batch_size / max(rate, 1e-9), 1))

    def validate(self, epoch_done: float) -> None:
        job = self.job
        val = evaluate(self.state.model, self.val_feed, self.val_targets, job.spec.strategy,
                       job.amp_dtype, job.device, batch_size=eval_batch(self.val_feed))
        if val:
            job.emitter.emit("metric", step=self.state.step, epoch=epoch_done, values=val)
            job.on_metrics(self.state.step, epoch_done, val)
            for key, v in val.items():
                better = max if key.endswith("acc") else min
                self.result.best[key] = better(self.result.best.get(key, v), v)
            self.result.final.update(val)


def make_student(job: Job, resume: dict | None) -> torch.nn.Module:
    """The student the spec describes, with its starting weights and input statistics. A run
    resumed after structured pruning has narrower layers; one resumed inside magnitude
    pruning, masks."""
    spec, data = job.spec, job.data
    model = build_model(spec.student.architecture, data.sample_shape, len(spec.classes),
                        widths=resume.get("widths") if resume else None)
    started_from = None if resume else init_student(model, spec, job.teachers)
    if started_from:
        job.emitter.log(f"student {started_from}")
    else:  # weights it starts from bring their own normalisation
        model.normalize.fit(data.train.stats_sample())
    if resume and resume.get("masked"):
        compress.restore_masks(model)
    model.to(job.device)
    if channels_last(data, job.device):
        model.to(memory_format=torch.channels_last)
    return model


def channels_last(data: Dataset, device: torch.device) -> bool:
    """Images on a GPU: the memory layout its convolutions run fastest on."""
    return device.type == "cuda" and len(data.sample_shape) == 3


def augmenter(spec: PipelineSpec, data: Dataset) -> Augmenter | None:
    """The student's augmentation (spec.training.augment), or None. uint8 images (a folder, a
    uint8 .npy) stay within 0-255; float data keeps its own range, unclamped."""
    settings = spec.training.augment
    if settings is None:
        return None
    uint8 = data.train.streamed and data.train.x.source.dtype == np.uint8
    return Augmenter(settings, spec.training.seed, (0.0, 255.0) if uint8 else None)


def teacher_targets(job: Job, y_train: torch.Tensor | None, augment: Augmenter | None = None):
    """(the teachers' targets, the hard-label weight α, the calibration samples, the
    unlabelled validation split's targets)."""
    spec, data, emit = job.spec, job.data, job.emitter
    strategy = spec.strategy

    def cache_report(name: str, hit: bool) -> None:
        emit.emit("teacher_outputs", teacher=name, cache="hit" if hit else "miss",
                  message=f"teacher '{name}': outputs " + ("read from the cache" if hit else "computed and cached"))

    said = [0.0]

    def streamed_pass(done: int, total: int) -> None:
        """A pass over streamed data takes minutes: say how far it is, and stop when asked."""
        if job.control.stop_requested:
            raise StopRequested()
        if done == total or time.monotonic() - said[0] > 5:
            said[0] = time.monotonic()
            emit.log(f"teacher outputs: {done:,} of {total:,} samples")

    targets = TeacherTargets(spec, job.teachers, job.device, job.cache_dir, cache_report, workers_for(spec.data),
                             streamed_pass)
    warning = unlabeled_groups_warning(spec, data.labeled)
    if warning:
        emit.log(warning, "warning")
    calibration = None
    if strategy.calibration is not None and job.teachers:
        calibration, right = calibrate(targets, data, job.device, strategy.calibration.labels_per_class,
                                       spec.training.seed)
        emit.log(f"calibration: {len(calibration[1])} labelled samples; the merged teachers get "
                 f"{right:.1%} of them right")
    started = time.monotonic()
    if dist.rank() > 0:  # rank 0 computes the teachers' outputs into the cache; the others read them
        dist.barrier()
    targets.prepare(data.train.for_teachers, y_train, augment)
    if dist.rank() == 0 and dist.size() > 1:
        dist.barrier()
    val_targets = targets.of(data.val.for_teachers, None) if data.val.y is None and len(data.val) else None
    emit.log(f"teacher outputs {'run live on each batch' if targets.live else 'ready'} for "
             f"{len(job.teachers)} teachers on {len(data.train)} samples in {time.monotonic() - started:.2f}s")
    alpha = strategy.hard_label_weight if data.labeled else 0.0
    if not job.teachers:
        if not data.labeled:
            raise InputError.one("teachers", "the spec has no teachers and the data has no labels, "
                                 "so there is nothing to learn from", "add a teacher, or give data with labels")
        alpha = 1.0
    return targets, alpha, calibration, val_targets


def finish(job: Job, model: torch.nn.Module, result: Result, step: int, total_epochs: int) -> None:
    """The trained student as safetensors (weights only, safe to share), then its test scores."""
    from safetensors.torch import save_file

    spec, data, device = job.spec, job.data, job.device
    path = job.run_dir / "student.safetensors"
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata={
        "classes": json.dumps(list(spec.classes)), "architecture": spec.student.architecture.model_dump_json(),
        "widths": json.dumps(hidden_widths(model))}))
    job.on_artifact("student", path)
    result.student_path = path
    if data.test.y is None:  # no labels in the data and no test file: say so, once, at the end
        from engine.export import why_not_measured

        why, hint = why_not_measured(spec)
        job.emitter.log(f"test accuracy could not be measured: {why}, {hint}", "warning")
        return
    if not len(data.test):
        return
    test_feed = Feed(data.test, device, spec.training.batch_size, workers_for(spec.data))
    test = evaluate(model, test_feed, None, spec.strategy, job.amp_dtype, device, prefix="test",
                    batch_size=eval_batch(test_feed))
    test.update(teacher_accuracies(job.teachers, data.test.for_teachers, data.test.y))
    job.emitter.emit("metric", step=step, epoch=total_epochs, values=test)
    job.on_metrics(step, float(total_epochs), test)
    result.final.update(test)


class Step:
    """One training step's forward and backward passes: the batch cut into `accumulate` parts
    (at most one per sample), each run forward and backward alone with its loss weighted by its
    share of the batch, so that the gradients add up to those of the whole batch; under DDP the
    ranks average them once, after the last part (`no_sync` for the others). Exact for the
    per-sample terms (KD, confidence, task heads) and for the cross-entropy's mean over the
    labelled samples; BatchNorm, the hint loss's scale and batch-level teacher weightings see
    each part alone, as in any gradient accumulation. The optimiser step is the caller's.
    Returns each part's metric values (on the device), size and (right, labelled) counts of
    the student's argmax (engine/meter.py: train/acc; None without labels)."""

    def __init__(self, net: torch.nn.Module, criterion, state: TrainState, autocast, accumulate: int,
                 all_labelled: bool = False):
        self.net, self.criterion, self.state, self.autocast = net, criterion, state, autocast
        self.accumulate = accumulate
        self.all_labelled = all_labelled  # every training sample has a label: none is -1
        self.no_sync = getattr(net, "no_sync", contextlib.nullcontext)  # DDP: no all_reduce but after the last part
        self.student: Callable[[torch.Tensor], torch.Tensor] = net  # or its torch.compile'd forward

    def __call__(self, x: torch.Tensor, idx: torch.Tensor, labels: torch.Tensor | None, targets: TeacherTargets,
                 seen: int, progress: float) -> list[tuple[torch.Tensor, int, torch.Tensor | None]]:
        n = len(idx)
        k = min(self.accumulate, n)
        if k <= 1:
            return [self.part(x, idx, labels, targets, seen, progress, None)]
        bounds = [n * i // k for i in range(k + 1)]
        labelled = None if labels is None else labels.ge(0).sum()  # some may be unlabelled (-1)
        out = []
        for i in range(k):
            a, b = bounds[i], bounds[i + 1]
            with contextlib.nullcontext() if i == k - 1 else self.no_sync():
                out.append(self.part(x[a:b], idx[a:b], None if labels is None else labels[a:b], targets, seen,
                                     progress, (b - a) / n, labelled))
        return out

    def part(self, x, idx, labels, targets: TeacherTargets, seen: int, progress: float,
             share: float | None, labelled: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, int, torch.Tensor | None]:
        batch = Batch(x, idx, labels, targets.batch(idx, labels, x, seen), self.state.step, progress, self.student,
                      share=share or 1.0, labelled=labelled)
        with self.autocast():
            loss, values = self.criterion(batch)
        self.state.backward(loss if share is None else loss * share)
        return values, len(idx), hits(batch.logits, labels, self.all_labelled)


def compile_wanted(spec: PipelineSpec, device: torch.device) -> bool:
    """training.compile as asked; none: on for a large student (resnet, vit, transformer) on a GPU."""
    asked = spec.training.compile
    if asked is None:
        return device.type == "cuda" and type(spec.student.architecture).large
    return asked


def compile_error(exc: BaseException) -> bool:
    """Whether torch.compile (dynamo, inductor, their C++ compiler) raised `exc`, as opposed to
    the model, the loss or the device, whose errors must not be hidden by a fallback."""
    for _ in range(8):
        if type(exc).__module__.startswith(("torch._dynamo", "torch._inductor")):
            return True
        exc = getattr(exc, "inner_exception", None) or exc.__cause__
        if exc is None:
            return False
    return False


def side_effects(model: torch.nn.Module, device: torch.device) -> tuple:
    """What a step changes besides the weights (the RNG states, BatchNorm's statistics), taken
    before a step that may compile, so that a failed compile can be undone and the uncompiled
    retry is the step the run would have taken."""
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return torch.get_rng_state(), cuda, {k: v.clone() for k, v in model.named_buffers()}


def restore_side_effects(model: torch.nn.Module, device: torch.device, saved: tuple | None) -> None:
    if saved is None:
        return
    cpu, cuda, buffers = saved
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state(cuda, device)
    with torch.no_grad():
        for k, v in model.named_buffers():
            if k in buffers and buffers[k].shape == v.shape:
                v.copy_(buffers[k])


def first_line(exc: BaseException) -> str:
    """The first line of what went wrong at the root (dynamo wraps its backend's error)."""
    for _ in range(8):
        inner = getattr(exc, "inner_exception", None) or exc.__cause__
        if inner is None:
            break
        exc = inner
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:300]}" if text else type(exc).__name__


def require_blocks(model: torch.nn.Module) -> None:
    """Activation checkpointing recomputes the student's blocks: an architecture without any
    cannot have it."""
    if getattr(model, "blocks", lambda: [])():
        return
    from engine.models import ARCHITECTURES

    able = [kind for kind, cls in ARCHITECTURES.items() if cls.blocks is not Student.blocks]
    raise InputError.one("training.activation_checkpointing", f"the '{getattr(model, 'kind', '?')}' "
                         "student has no repeated blocks to recompute",
                         f"set it to false, or use an architecture with blocks ({', '.join(sorted(able))})")


def checkpointed_blocks(model: torch.nn.Module, on: bool) -> None:
    """With `on`, each of the student's blocks keeps only its input for the backward pass and
    recomputes the rest there (torch.utils.checkpoint); in training only: evaluation and export
    run the blocks as they are. With `on` false, the blocks are plain again."""
    for block in getattr(model, "blocks", lambda: [])():
        if "forward" in block.__dict__:
            del block.forward  # the class's own forward again
        if on:
            block.forward = _checkpointed(block)


def _checkpointed(block: torch.nn.Module) -> Callable:
    plain = type(block).forward.__get__(block)
    norms = [m for m in block.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]

    @contextlib.contextmanager
    def recompute_keeps_statistics():
        """The backward pass runs the block's forward again; its BatchNorms normalise with the
        batch's statistics as the first pass did, but must not move their running statistics
        a second time (momentum 0 leaves them exactly as they are)."""
        saved = [(m, m.momentum, m.num_batches_tracked.clone()) for m in norms]
        for m in norms:
            m.momentum = 0.0
        try:
            yield
        finally:
            for m, momentum, tracked in saved:
                m.momentum = momentum
                m.num_batches_tracked.copy_(tracked)

    def contexts():
        return contextlib.nullcontext(), recompute_keeps_statistics()

    def forward(*args, **kwargs):
        if block.training and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(plain, *args, use_reentrant=False,
                                                     context_fn=contexts if norms else _no_contexts, **kwargs)
        return plain(*args, **kwargs)
    return forward


def _no_contexts():
    return contextlib.nullcontext(), contextlib.nullcontext()


def prune(model: torch.nn.Module, step: PruneStep, emitter: Emitter) -> torch.nn.Module:
    """Apply one prune step; structured pruning returns a new, smaller model."""
    before = count_parameters(model)
    if step.method == "magnitude":
        compress.apply_magnitude(model, step.sparsity, step.scope)
        emitter.log(f"pruned {compress.sparsity(model):.1%} of the weights by magnitude ({step.scope})")
        return model
    model, widths = compress.apply_structured(model, step.sparsity, "compression")
    emitter.log(f"structured pruning: hidden widths now {widths}; parameters {before:,} -> "
                f"{count_parameters(model):,}")
    return model


def eval_batch(feed: Feed) -> int:
    """Samples per evaluation batch: 1024 from memory; from disk, the training batch size, so
    the activations of evaluation take no more memory than training's (streamed data exists to
    keep memory bounded)."""
    return min(feed.batch_size, 1024) if feed.streamed else 1024


@torch.inference_mode()
def evaluate(model, feed: Feed, targets: Targets | None, strategy, amp_dtype, device, prefix="val",
             batch_size: int = 1024) -> dict[str, float]:
    """Accuracy and cross-entropy against labels; without labels, the KD loss on this split."""
    y = feed.y
    if len(feed) == 0 or (y is None and targets is None):
        return {}
    model.eval()
    with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        logits = torch.cat([model(x) for _, x in feed.in_order(batch_size)]).float()
    if feed.streamed:
        release()  # what evaluation freed goes back to the system (engine/memory.py)
    if y is not None:
        acc = (logits.argmax(1) == y).float().mean()
        return {f"{prefix}/acc": acc.item(), f"{prefix}/loss": F.cross_entropy(logits, y).item()}
    kd, _ = targets.kd(logits, strategy)
    return {f"{prefix}/kd": kd.item()}


def teacher_accuracies(teachers: list, x: np.ndarray, y: np.ndarray | None) -> dict[str, float]:
    """Each teacher's accuracy on the test samples of the classes it knows: what the student is
    measured against (for weak-to-strong, the weak teacher's side of the PGR). The test part
    may come from its own labelled file while the training data has no labels."""
    out: dict[str, float] = {}
    if y is None or not len(y):
        return out
    for t in teachers:
        known = np.flatnonzero(np.isin(y, t.student_index))
        if len(known):  # in slices: a streamed test set is read a slice at a time
            pred = np.concatenate([t.student_index[t.predict(x[known[i:i + 1024]]).argmax(axis=1)]
                                   for i in range(0, len(known), 1024)])
            out[f"test/teacher_acc/{t.name}"] = float((pred == y[known]).mean())
    return out


def describe_split(data: Dataset) -> dict[str, int]:
    return {"train": len(data.train), "val": len(data.val), "test": len(data.test)}
