"""Batches of one part of the data on the training device, the one way the loop gets samples.

- **In memory** (arrays: the demo, npz, CSV, IDX): the whole part is copied to the device once
  and each batch is an index_select there: no per-step copies, as fast as it gets.
- **Streamed** (image folders): batches are read by `torch.utils.data.DataLoader` worker
  processes (`data.workers`; each worker decodes its batches with one thread), in the source's
  own type (uint8 images stay uint8, a quarter of float32), pinned when the device is a GPU and
  copied without blocking; they become float32 on the device. At most `workers × PREFETCH`
  batches wait in memory, so memory stays bounded whatever the size of the data.

Texts (token ids right-padded to max_length) are batched by length: each run of BUCKET global
batches of the shuffled order is sorted by length, cut into batches, and those batches are
shuffled; each batch is cut to its longest text (rounded up to a multiple of 8), so short texts
cost little (the order depends
on the shuffle alone, so a resumed run sees the same batches).

Time the loop spends waiting for the next batch is summed in `wait_s` (the `data_wait` share
of the progress events: near 0 means the data keeps up with training).
"""

from __future__ import annotations

import copy
import itertools
import time
from collections.abc import Iterator

import numpy as np
import torch

from engine.data import Part
from engine.errors import InputError
from engine.memory import release

PREFETCH = 4  # batches each worker reads ahead
RELEASE_EVERY = 16  # streamed batches between returns of freed memory to the system (engine/memory.py)
BUCKET = 50  # texts: global batches sorted by length together


class _Reader(torch.utils.data.Dataset):
    """What a worker runs: one whole batch per call (`__getitems__`), positions in the part."""

    def __init__(self, part: Part):
        self.samples = part.x

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        return self.__getitems__([i])

    def __getitems__(self, positions: list[int]):
        pos = np.asarray(positions, dtype=np.int64)
        try:
            x = torch.from_numpy(self.samples.native(pos))
        except InputError as exc:  # said in the engine process: its message, not a worker traceback
            return exc
        return torch.from_numpy(pos), x


def _one_thread(_worker: int) -> None:
    torch.set_num_threads(1)


def _as_is(batch):
    """The batch `__getitems__` made (module-level: a spawned worker must be able to import it)."""
    return batch


class Feed:
    """One part's batches on `device`: `batches(order)` for training (shuffled, this rank's share
    of each global batch), `in_order()` for evaluation."""

    def __init__(self, part: Part, device: torch.device, batch_size: int, workers: int = 0,
                 channels_last: bool = False, rank: int = 0, world: int = 1):
        self.part, self.device, self.batch_size = part, device, batch_size
        self.workers, self.rank, self.world = workers, rank, world
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.wait_s = 0.0
        self.streamed = part.streamed
        self.y = torch.from_numpy(part.y).to(device) if part.y is not None else None
        self.x = None
        self.lengths: np.ndarray | None = None  # texts: each sample's tokens before the padding
        if part.pad_id is not None and not self.streamed and len(part):
            real = np.asarray(part.x) != part.pad_id
            width = real.shape[1]
            self.lengths = np.where(real.any(axis=1), width - np.argmax(real[:, ::-1], axis=1), 1)
        self._arranged: tuple[torch.Tensor, torch.Tensor] | None = None
        if not self.streamed:
            self.x = torch.from_numpy(np.ascontiguousarray(part.x)).to(device)
            if channels_last:
                self.x = self.x.contiguous(memory_format=torch.channels_last)

    def __len__(self) -> int:
        return len(self.part)

    def rebatched(self, batch_size: int) -> Feed:
        """The same part in batches of another size, sharing its samples on the device (no
        second copy of the data: the self-supervised pretraining's batches, its probe)."""
        other = copy.copy(self)
        other.batch_size, other._arranged = batch_size, None
        return other

    def steps(self) -> int:
        return -(-len(self.part) // self.batch_size)

    def batches(self, order: torch.Tensor, first: int = 0) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        """(batch number, positions on the device, samples float32 on the device) for the global
        batches of `order` (a permutation of the part, on the CPU) from batch `first` on; under
        torchrun each rank gets its share of every global batch."""
        bs = self.batch_size
        if not self.streamed:
            order = self.arranged(order)
            order_dev = order.to(self.device)
            for b in range(first, self.steps()):
                idx = order_dev[b * bs:(b + 1) * bs][self.rank::self.world]
                x = self.x.index_select(0, idx)
                if self.lengths is not None:  # texts: cut to the batch's longest (positions on the CPU)
                    x = self.cut(x, order[b * bs:(b + 1) * bs][self.rank::self.world])
                yield b, idx, x
            return
        cuts = [self.positions(order, b).tolist() for b in range(first, self.steps())]
        for b, (idx, x) in zip(range(first, self.steps()), self._stream(cuts)):
            yield b, idx, x

    def positions(self, order: torch.Tensor, b: int) -> torch.Tensor:
        """The positions of this rank's samples in global batch b of `order`, on the CPU."""
        return self.arranged(order)[b * self.batch_size:(b + 1) * self.batch_size][self.rank::self.world]

    def arranged(self, order: torch.Tensor) -> torch.Tensor:
        """`order` batched by length (texts), else as it is."""
        if self.lengths is None:
            return order
        if self._arranged is not None and self._arranged[0] is order:
            return self._arranged[1]
        bs, pos = self.batch_size, order.numpy()
        batches = []
        for start in range(0, len(pos), bs * BUCKET):
            chunk = pos[start:start + bs * BUCKET]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches += [chunk[i:i + bs] for i in range(0, len(chunk), bs)]
        last = batches.pop() if len(batches[-1]) < bs else None  # a short batch stays last
        rng = np.random.default_rng(pos[:8].tolist())  # from the shuffle alone: the same on resume
        batches = [batches[i] for i in rng.permutation(len(batches))] + ([last] if last is not None else [])
        arranged = torch.from_numpy(np.concatenate(batches))
        self._arranged = (order, arranged)
        return arranged

    def cut(self, x: torch.Tensor, positions: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Texts: the batch cut to its longest text, rounded up to a multiple of 8 (fewer shapes
        for torch.compile, and the widths matrix units like; positions on the CPU)."""
        if self.lengths is None or not len(positions):
            return x
        longest = int(self.lengths[np.asarray(positions)].max())
        return x[:, :min(x.shape[1], -(-longest // 8) * 8)]

    def in_order(self, batch_size: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(positions, samples) on the device, every sample once, in order."""
        bs = batch_size or self.batch_size
        n = len(self.part)
        if not self.streamed:
            for i in range(0, n, bs):
                yield torch.arange(i, min(i + bs, n), device=self.device), self.cut(self.x[i:i + bs],
                                                                                    np.arange(i, min(i + bs, n)))
            return
        yield from self._stream([list(range(i, min(i + bs, n))) for i in range(0, n, bs)])

    def _stream(self, cuts: list[list[int]]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if not cuts:
            return
        pin = self.device.type == "cuda"
        loader = torch.utils.data.DataLoader(
            _Reader(self.part), batch_sampler=cuts, num_workers=self.workers, collate_fn=_as_is,
            pin_memory=pin, prefetch_factor=PREFETCH if self.workers else None,
            worker_init_fn=_one_thread if self.workers else None)
        it = iter(loader)
        for count in itertools.count(1):
            if count % RELEASE_EVERY == 0:
                release()
            started = time.perf_counter()
            got = next(it, None)
            self.wait_s += time.perf_counter() - started
            if got is None:
                return
            if isinstance(got, InputError):
                raise got
            pos, x = got
            x = x.to(self.device, non_blocking=pin).float()
            if self.memory_format is torch.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield pos.to(self.device, non_blocking=pin), x

    def labels(self, idx: torch.Tensor) -> torch.Tensor | None:
        return self.y.index_select(0, idx) if self.y is not None else None


def workers_for(settings) -> int:
    """The decoding processes a source asks for (`data.workers`), or 0 for data in memory."""
    from engine.data.images import default_workers

    return default_workers(getattr(settings, "workers", 0))
