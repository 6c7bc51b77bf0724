"""Training on several processes with torch.distributed, as started by `torchrun`.

    torchrun --nproc_per_node=N -m engine run SPEC [--run-dir DIR] [--db FILE]

Each process holds the data and the teachers' outputs; every step, the global batch (the
spec's batch_size, cut from the same seeded permutation on every rank) is split between the
ranks, and DistributedDataParallel averages the gradients: one step is the step a single
process would take on the whole batch. Rank 0 alone writes events, the store and checkpoints;
the others wait at barriers around checkpoints. Backends: NCCL on CUDA, gloo on CPU.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init(device_kind: str) -> tuple[int, int]:
    """(rank, world size); joins the process group when started by torchrun."""
    if world_size() <= 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if device_kind == "cuda" else "gloo"
        if device_kind == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def size() -> int:
    return dist.get_world_size() if active() else 1


def barrier() -> None:
    if active():
        dist.barrier()


def share(value):
    """Rank 0's value, on every rank (e.g. the run folder it chose)."""
    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def any_rank(*flags: bool) -> list[bool]:
    """Each flag, true if it is true on any rank (stop and checkpoint come to rank 0 only)."""
    if not active():
        return list(flags)
    t = torch.tensor([float(f) for f in flags])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model as the training step sees it: DDP across ranks, or itself."""
    if not active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
