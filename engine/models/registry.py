"""Student architectures registered by the spec's `architecture.kind`.

Adding an architecture: its settings class in engine/spec.py (in the `Architecture` union)
and one module here that defines a `Student` subclass decorated with `@register("kind")`,
imported in `engine/models/__init__.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from engine.errors import InputError


@dataclass(frozen=True)
class Entry:
    cls: type
    sample_ranks: tuple[int, ...] | None  # the sample ranks it accepts; None: any
    needs: str
    fix: str


ARCHITECTURES: dict[str, type] = {}
_ENTRIES: dict[str, Entry] = {}


def register(kind: str, sample_ranks: tuple[int, ...] | None = None, needs: str = "", fix: str = ""):
    """Class decorator: make `cls` the student built for `architecture.kind == kind`."""
    def add(cls):
        if kind in ARCHITECTURES:
            raise ValueError(f"architecture '{kind}' is registered twice")
        cls.kind = kind
        ARCHITECTURES[kind] = cls
        _ENTRIES[kind] = Entry(cls, sample_ranks, needs, fix)
        return cls
    return add


def build_model(arch, sample_shape: tuple[int, ...], n_classes: int,
                where: str = "student.architecture", widths: list[int] | None = None) -> nn.Module:
    """The student (or zoo teacher) that `arch` describes, for samples of `sample_shape`."""
    entry = _ENTRIES.get(arch.kind)
    if entry is None:
        raise InputError.one(f"{where}.kind", f"no architecture '{arch.kind}' in this build",
                             f"use one of: {', '.join(ARCHITECTURES)}")
    if entry.sample_ranks is not None and len(sample_shape) not in entry.sample_ranks:
        raise InputError.one(where, f"a {arch.kind} needs {entry.needs}; the data gives samples "
                             f"shaped {list(sample_shape)}", entry.fix)
    return entry.cls(tuple(sample_shape), n_classes, arch, widths)


def hidden_widths(model: nn.Module) -> list[int]:
    return model.hidden_widths() if hasattr(model, "hidden_widths") else []


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


