"""The metric meter: loss values summed on the device, batch by batch, and read a few times a
second (the loop's one host sync), with the samples per second since the last read."""

from __future__ import annotations

import math
import time

import torch

from engine.errors import RunFailed

EMIT_EVERY_S = 0.25


class Meter:
    def __init__(self, names: list[str], device: torch.device):
        self.names = names
        self.sums = torch.zeros(len(names), device=device)
        self.count = self.samples = 0
        self.since = time.monotonic()

    def add(self, values: torch.Tensor, n: int) -> None:
        self.sums.add_(values, alpha=n)
        self.count += n
        self.samples += n

    @property
    def due(self) -> bool:
        return time.monotonic() - self.since >= EMIT_EVERY_S

    def read(self, step: int) -> tuple[dict[str, float], float] | None:
        """(the mean of each value since the last read, samples per second), and start again;
        None when nothing was added. A non-finite loss stops the run here."""
        if self.count == 0:
            return None
        values = dict(zip(self.names, (self.sums / self.count).tolist()))
        if not all(math.isfinite(v) for v in values.values()):
            raise RunFailed("non_finite_loss", f"the loss became {values['loss/total']} near "
                            f"step {step}", "lower training.lr, or check the data and teachers "
                            "for extreme values; checkpoints saved so far are kept")
        now = time.monotonic()
        rate = self.samples / max(now - self.since, 1e-9)
        self.sums.zero_()
        self.count = self.samples = 0
        self.since = now
        return values, rate
