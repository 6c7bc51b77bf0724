"""Everything a run checks before its first training step, in one place.

`distill-engine validate` and `distill-engine run` both call `prepare`, so a spec that
validate passes does not fail in the first second of a run: the data is read and split, every
teacher is loaded and tried on samples (input shape, output width, probabilities or logits,
accuracy on labelled samples), and the checks training makes before its first step are made
without training (the student's architecture and starting weights, what pruning needs, what
the strategy needs of the labels, hint layers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.data import Dataset, load_dataset
from engine.errors import InputError, Problem
from engine.spec import PipelineSpec, PruneStep
from engine.teacher_checks import Finding, check_teachers
from engine.teachers import load_teachers, teacher_file_problems


@dataclass
class Prepared:
    data: Dataset
    teachers: list
    findings: list[Finding]  # for each teacher: what was read or noticed, warnings first to act on


def prepare(spec: PipelineSpec, threads: int, cache_dir=None) -> Prepared:
    """The data and teachers, checked; or one InputError with every problem found. `cache_dir`:
    the cache beside the store (what was checked of an image folder is kept there)."""
    try:
        data = load_dataset(spec, cache_dir)
    except InputError as exc:  # the teachers cannot be tried without data: their files still can
        raise InputError(exc.problems + teacher_file_problems(spec), kind=exc.kind) from None
    teachers = load_teachers(spec, data.train.for_teachers[:8], threads, data.table)
    findings = [f for t in teachers for f in t.findings] + check_teachers(teachers, data)
    problems = training_problems(spec, data, teachers)
    if problems:
        raise InputError(problems)
    return Prepared(data, teachers, findings)


def training_problems(spec: PipelineSpec, data: Dataset, teachers: list) -> list[Problem]:
    """What training would refuse before its first step, found without training: the student is
    built without memory (torch's meta device) to check it fits the data, and for real (on the
    CPU, thrown away) only when a check runs it: starting weights, hints, task heads. A student
    too large for the memory then fails in training, with its run recorded."""
    import torch

    from engine.models import ARCHITECTURES, build_model, require
    from engine.strategies import Setup, build_criterion
    from engine.strategies.calibration import calibration_samples
    from engine.strategies.weightings import WEIGHTINGS
    from engine.student_init import init_student

    problems: list[Problem] = []

    def attempt(check) -> object:
        try:
            return check()
        except InputError as exc:
            problems.extend(exc.problems)
            return None

    arch = spec.student.architecture
    with torch.device("meta"):
        shape_only = build_model(arch, data.sample_shape, len(spec.classes), "student.architecture")
    text = data.text  # texts: the student's tokenizer
    if text is not None and arch.kind == "transformer":
        if arch.vocab_size < text.vocab_size:  # ids the training texts lack would fail in the exported model
            problems.append(Problem("student.architecture.vocab_size", f"the student's tokenizer holds "
                                    f"{text.vocab_size:,} tokens and the student's embedding {arch.vocab_size:,}: "
                                    "a text with a token beyond it would fail", f"set student.architecture."
                                    f"vocab_size to at least {text.vocab_size}" + (", or data.vocab_size lower"
                                    if spec.data.tokenizer is None and spec.data.vocab_size > arch.vocab_size else "")))
        if arch.pad_id != text.pad_id:
            problems.append(Problem("student.architecture.pad_id", f"the texts are padded with id {text.pad_id} "
                                    f"(the tokenizer's padding token) and the student masks id {arch.pad_id} "
                                    "as padding", f"set student.architecture.pad_id to {text.pad_id}"))
    check_samples = getattr(ARCHITECTURES[arch.kind], "check_samples", None)  # e.g. token ids in range
    if check_samples is not None and not problems:
        found = check_samples(arch, [p.stats_sample() for p in (data.train, data.val, data.test) if len(p)])
        if found is not None:
            problems.extend(found.problems)
    if spec.training.activation_checkpointing:
        from engine.train import require_blocks

        attempt(lambda: require_blocks(shape_only))
    strategy = spec.strategy
    runs_student = spec.student.init.kind != "scratch" or strategy.previous_student is not None \
        or strategy.hints or strategy.task_heads
    model = build_model(arch, data.sample_shape, len(spec.classes), "student.architecture") if runs_student else None
    if model is not None:
        attempt(lambda: init_student(model, spec, teachers))
    for i, step in enumerate(spec.compression):
        if isinstance(step, PruneStep) and step.method == "structured":
            attempt(lambda i=i: require(ARCHITECTURES[arch.kind], "structured_pruning", f"compression[{i}].method"))
    augment = spec.training.augment
    if augment is not None and len(data.sample_shape) != 3:
        problems.append(Problem("training.augment", f"augmentation crops, flips and colours images "
                                f"[C, H, W]; the samples are shaped {list(data.sample_shape)}",
                                "remove training.augment"))
    if data.streamed and strategy.hints:
        problems.append(Problem("strategy.hints", "feature hints read every training sample's teacher "
                                "features into memory, and this data is streamed from disk because it "
                                "need not fit there", "remove the hints, or use data held in memory "
                                "(.npz) for a hint-based distillation"))
    elif augment is not None and strategy.hints:
        problems.append(Problem("training.augment", "feature hints are read from the teachers once, on "
                                "the images as they are, and would not match the augmented images the "
                                "student sees", "remove the hints or the augmentation"))
    if not teachers and not data.labeled:
        problems.append(Problem("teachers", "the spec has no teachers and the data has no labels, so "
                                "there is nothing to learn from", "add a teacher, or give data with labels"))
    calibration = None
    if strategy.calibration is not None and teachers:
        picked = attempt(lambda: calibration_samples(data, strategy.calibration.labels_per_class,
                                                     spec.training.seed))
        if picked is not None:
            idx, labels = picked
            calibration = (torch.from_numpy(data.train.x[idx[:2]]), torch.from_numpy(labels[:2]))
    weighting = WEIGHTINGS[strategy.teacher_weighting]
    if teachers and weighting.needs_labels and not data.labeled and strategy.calibration is None \
            and strategy.combine != "average_logits":
        problems.append(Problem("strategy.teacher_weighting", f"{strategy.teacher_weighting} weighting "
                                "reads each sample's label, and the data has no labels", "give data "
                                "with labels, or pick a label-free weighting: confidence, entropy or selective"))
    if not problems and model is not None:  # the loss terms that run the student: hints, task heads
        alpha = strategy.hard_label_weight if data.labeled else 0.0
        x = np.ascontiguousarray(data.train.x[:8])
        attempt(lambda: build_criterion(Setup(spec, model, teachers, data.labeled, alpha if teachers else 1.0,
                                              data.train.for_teachers[:8], torch.from_numpy(x[:2]),
                                              torch.device("cpu"), calibration)))
    return problems
