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

from engine.errors import InputError

# How often (in steps) the ranks agree on stop and checkpoint requests: an all_reduce every
# step would make every rank wait for the slowest one's host work each step.
AGREE_EVERY = 16


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def local_processes() -> int:
    """The processes torchrun started on this node (--nproc_per_node)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))


def check_gpus(processes: int, gpus: int) -> None:
    """One GPU per process: more processes on a node than GPUs it sees is a clear error, before
    CUDA fails with 'invalid device ordinal'."""
    if processes > gpus:
        raise InputError.one(
            "training.device", f"torchrun started {processes} processes on this machine, but it has "
            f"{gpus} CUDA GPU{'s' if gpus != 1 else ''}; each process trains on a GPU of its own",
            f"start at most {gpus} processes (torchrun --nproc_per_node={max(gpus, 1)}), or set "
            '"training": {"device": "cpu"} to run the processes on the CPU (gloo)', "device")


def device_for_rank(device: torch.device) -> torch.device:
    """The device this process trains on: under torchrun on CUDA, the GPU cuda:LOCAL_RANK."""
    if world_size() <= 1 or device.type != "cuda":
        return device
    check_gpus(local_processes(), torch.cuda.device_count())
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))


def init(device: torch.device) -> tuple[int, int]:
    """(rank, world size); joins the process group when started by torchrun. `device`: the one
    `device_for_rank` chose (on CUDA, this process's own GPU)."""
    if world_size() <= 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
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
    """Each flag, true if it is true on any rank (stop and checkpoint come to rank 0 only). A
    collective: every rank calls it at the same step (the loop does, every AGREE_EVERY steps)."""
    if not active():
        return list(flags)
    # NCCL reduces GPU tensors only; gloo, CPU ones
    on = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    t = torch.tensor([float(f) for f in flags], device=on)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def agree_now(step: int) -> bool:
    """Whether the ranks compare their stop and checkpoint requests before this step: every
    step in one process (a flag read), every AGREE_EVERY steps under torchrun (a collective)."""
    return not active() or step % AGREE_EVERY == 0


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model as the training step sees it: DDP across ranks, or itself."""
    if not active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
