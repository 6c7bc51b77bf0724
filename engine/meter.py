"""The metric meter: loss values summed on the device, batch by batch, and read a few times a
second (the loop's one host sync), with the samples per second since the last read.

Beside the losses it counts, also on the device, the labelled training samples the student
saw and how many of them its argmax got right: `train/acc` when any were labelled since the
last read (none without labels, e.g. `data.use_labels: false`)."""

from __future__ import annotations

import math
import time

import torch

from engine.errors import RunFailed

EMIT_EVERY_S = 0.25
TRAIN_ACC = "train/acc"


def hits(logits: torch.Tensor, labels: torch.Tensor | None, all_labelled: bool
         ) -> tuple[torch.Tensor, torch.Tensor | int] | None:
    """(right, labelled) for a batch: how many labels the student's argmax got right, on the
    device (no sync; an unlabelled -1 never matches), and how many samples have a label (the
    batch's size when every training sample has one, else counted on the device); None without
    labels. Only measures, never trains; a few small ops a step."""
    if labels is None:
        return None
    with torch.no_grad():
        right = (logits.detach().argmax(1) == labels).sum()
        return right, len(labels) if all_labelled else labels.ge(0).sum()


class Meter:
    def __init__(self, names: list[str], device: torch.device):
        self.names = names
        self.sums = torch.zeros(len(names), device=device)
        self.right = torch.zeros((), device=device, dtype=torch.long)  # since the last read
        self.labelled = torch.zeros((), device=device, dtype=torch.long)  # counted on the device
        self.labelled_n = 0  # and known on the host
        self.count = self.samples = 0
        self.since = time.monotonic()

    def add(self, values: torch.Tensor, n: int, hits: tuple[torch.Tensor, torch.Tensor | int] | None = None) -> None:
        self.sums.add_(values, alpha=n)
        if hits is not None:
            right, labelled = hits
            self.right.add_(right)
            if isinstance(labelled, int):
                self.labelled_n += labelled
            else:
                self.labelled.add_(labelled)
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
        counts = torch.stack([self.right, self.labelled]).to(self.sums.dtype)
        *means, right, labelled = torch.cat([self.sums / self.count, counts]).tolist()  # one sync
        labelled += self.labelled_n
        values = dict(zip(self.names, means))
        if not all(math.isfinite(v) for v in values.values()):
            raise RunFailed("non_finite_loss", f"the loss became {values['loss/total']} near "
                            f"step {step}", "lower training.lr, or check the data and teachers "
                            "for extreme values; checkpoints saved so far are kept")
        if labelled > 0:
            values[TRAIN_ACC] = right / labelled
        now = time.monotonic()
        rate = self.samples / max(now - self.since, 1e-9)
        self.sums.zero_()
        self.right.zero_()
        self.labelled.zero_()
        self.labelled_n = 0
        self.count = self.samples = 0
        self.since = now
        return values, rate
