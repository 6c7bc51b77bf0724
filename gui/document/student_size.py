"""The student's size in words, for the inspector: its parameters and the memory training it
takes, worked out from the spec's formulas (`size()` on each architecture class, no torch), so
the line follows every edit at once. Qt-free."""

from __future__ import annotations

from pydantic import ValidationError

from engine.spec import StudentSpec, TrainingSpec, training_memory
from gui.document.model import Document, Node
from gui.document.node_checks import sample_shape
from gui.document.schema import ARCHITECTURES, with_defaults


def size_words(doc: Document, student: Node) -> str:
    """'11.2 M parameters' and, on a second line, 'to train: about 1.3 GB at batch 64 (fp32,
    CPU) · 0.8 GB (bf16, GPU)', or why the size is not known yet."""
    arch_props = student.props.get("architecture") or {}
    kind = arch_props.get("kind", StudentSpec.model_fields["architecture"].default.kind)
    member = ARCHITECTURES.get(kind)
    if member is None or not hasattr(member, "size"):
        return ""
    try:
        arch = member(**with_defaults(member, arch_props))
    except ValidationError:
        return "size: shown when the architecture's settings are valid"
    data = next((n for n in doc.of_kind("data")), None)
    shape = sample_shape(data) if data is not None else None
    if shape is None:
        return ("size: shown once the data's sample shape is known (connect a data node; for a "
                "file, Check Pipeline reads it)")
    classes = len(student.props.get("classes") or []) or 2
    try:
        size = arch.size(tuple(shape), classes)
    except ValueError as exc:  # e.g. a patch that does not divide the image
        return f"size: {exc}"
    train = with_defaults(TrainingSpec, student.props.get("training"))
    try:
        valid = TrainingSpec.model_validate(train)
    except ValidationError:
        valid = None
    if valid is None or valid.accumulate > valid.batch_size:
        return "size: shown when the training settings are valid"
    part = max(1, -(-int(train["batch_size"]) // int(train["accumulate"])))
    precision = train["precision"]
    at = f"at batch {train['batch_size']}" + (f" ({train['accumulate']} parts of {part})"
                                              if train["accumulate"] > 1 else "")
    if precision == "auto":
        cpu, gpu = training_memory(size, part, 4), training_memory(size, part, 2)
        memory = f"to train: about {_bytes(cpu)} {at} (fp32, CPU) · {_bytes(gpu)} (bf16, GPU)"
    else:
        memory = f"to train: about {_bytes(training_memory(size, part, 4 if precision == 'fp32' else 2))} " \
                 f"{at} ({precision})"
    if train.get("activation_checkpointing"):
        memory += "; activation checkpointing keeps less"
    return f"{_count(size.parameters)} parameters\n{memory}"


def _count(n: int) -> str:
    if n >= 1e9:
        return f"{n / 1e9:.2f} B"
    if n >= 1e6:
        return f"{n / 1e6:.1f} M"
    if n >= 1e3:
        return f"{n / 1e3:.1f} k"
    return str(n)


def _bytes(n: int) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{max(n, 1) / 2**10:.0f} KB"
