"""Where training runs: device, numeric precision and CPU threads, chosen on purpose."""

from __future__ import annotations

import os

import torch

from engine.errors import InputError


def choose_device(requested: str) -> torch.device:
    """auto: CUDA, then Apple MPS, then CPU. Asking for a device that is absent is an error."""
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if requested == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if requested == "cuda" and not cuda:
        raise InputError.one("training.device", "the spec asks for a CUDA GPU, but none is "
                             "available to PyTorch here", "set training.device to \"auto\" or "
                             "\"cpu\", or install a CUDA build of torch on a GPU machine", "device")
    if requested == "mps" and not mps:
        raise InputError.one("training.device", "the spec asks for Apple MPS, which is not "
                             "available here", "set training.device to \"auto\" or \"cpu\"", "device")
    return torch.device(requested)


def choose_precision(requested: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32. auto: bf16 on GPUs that support it."""
    if requested == "fp32":
        return None
    if requested == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return None
    if requested == "fp16" and device.type == "cpu":
        raise InputError.one("training.precision", "fp16 training needs a GPU; this run is on the CPU",
                             "use \"auto\", \"fp32\" or \"bf16\" on the CPU", "device")
    return torch.bfloat16 if requested == "bf16" else torch.float16


def default_threads() -> int:
    """The cores this process may use, at most 8 (more threads rarely help small models)."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:
        available = os.cpu_count() or 1
    return max(1, min(8, available))


def set_threads(requested: int | None) -> int:
    n = requested or default_threads()
    torch.set_num_threads(n)
    return n


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{device.index or 0} ({torch.cuda.get_device_name(device)})"
    return device.type
