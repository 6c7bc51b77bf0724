"""Student architectures registered by the spec's `architecture.kind`.

Adding an architecture: its settings class in engine/spec.py (in the `Architecture` union)
and one module here that defines a `Student` subclass decorated with `@register("kind")`,
imported in `engine/models/__init__.py`.
"""

from __future__ import annotations

from torch import nn

from engine.errors import InputError

ARCHITECTURES: dict[str, type] = {}


def register(kind: str):
    """Class decorator: make `cls` the student built for `architecture.kind == kind`."""
    def add(cls):
        if kind in ARCHITECTURES:
            raise ValueError(f"architecture '{kind}' is registered twice")
        cls.kind = kind
        ARCHITECTURES[kind] = cls
        return cls
    return add


def build_model(arch, sample_shape: tuple[int, ...], n_classes: int,
                where: str = "student.architecture", widths: list[int] | None = None) -> nn.Module:
    """The student (or zoo teacher) that `arch` describes, for samples of `sample_shape`. The
    sample ranks it takes are the spec class's (`sample_ranks`, `takes`): the app reads them too."""
    cls = ARCHITECTURES.get(arch.kind)
    if cls is None:
        raise InputError.one(f"{where}.kind", f"no architecture '{arch.kind}' in this build",
                             f"use one of: {', '.join(ARCHITECTURES)}")
    ranks = type(arch).sample_ranks
    if ranks is not None and len(sample_shape) not in ranks:
        others = [k for k in ARCHITECTURES if k != arch.kind]
        raise InputError.one(where, f"a {arch.kind} needs {type(arch).takes}; the data gives samples "
                             f"shaped {list(sample_shape)}", f"use another architecture ({', '.join(others)}) "
                             "for this data, or give it data it takes")
    return cls(tuple(sample_shape), n_classes, arch, widths)


def fit_weights(arch, sample_shape: tuple[int, ...], n_classes: int, where: str, state: dict,
                file_name: str, widths: list[int] | None = None) -> nn.Module:
    """The model `arch` describes with `state` (a file's weights) loaded, in eval mode. The model
    is first built on the meta device (no memory) and its tensors' shapes compared with the
    file's, so hidden widths a file records cannot make it allocate more than the file holds."""
    import torch

    with torch.device("meta"):
        shell = build_model(arch, sample_shape, n_classes, where, widths=widths)
    expected = {k: tuple(v.shape) for k, v in shell.state_dict().items()}
    del shell
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if tuple(state[k].shape) != expected[k])
    if missing or unexpected or wrong:
        detail = "; ".join(part for part in (
            f"missing {', '.join(missing[:4])}" if missing else "",
            f"unexpected {', '.join(unexpected[:4])}" if unexpected else "",
            "shape differs for " + ", ".join(
                f"{k} (file {list(state[k].shape)}, architecture {list(expected[k])})"
                for k in wrong[:3]) if wrong else "") if part)
        if widths is not None:
            raise InputError.one(where, f"the hidden widths {widths[:8]}{' …' if len(widths) > 8 else ''} "
                                 f"recorded in {file_name}'s metadata do not fit its tensors: {detail}",
                                 "give the file a run saved, or remove 'widths' from its metadata",
                                 "corrupt_model")
        raise InputError.one(where, f"the weights in {file_name} do not fit the architecture: {detail}",
                             "set the architecture (kind, width/channels, depth) the weights "
                             "were trained with, and the teacher's classes", "shape_mismatch")
    model = build_model(arch, sample_shape, n_classes, where, widths=widths)
    model.load_state_dict(state)
    return model.eval()


def hidden_widths(model: nn.Module) -> list[int]:
    return model.hidden_widths() if hasattr(model, "hidden_widths") else []


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


