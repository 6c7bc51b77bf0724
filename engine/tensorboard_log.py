"""A run's metrics as TensorBoard event files, in RUN_DIR/tensorboard (tensorboardX).

Written by rank 0 only, from the same values and at the same moments as the `metric` events
(the train loop's `on_metrics`: no extra host sync). Each session of a run (the first, and
each resume) writes its own event file; a resumed session's file starts with TensorBoard's
restart marker (a SessionLog START at the checkpoint's step + 1), so TensorBoard drops what
the earlier session wrote after that checkpoint (a killed run's last steps, trained again
now): no step shows twice.

engine/tensorboard_export.py writes the same files for an older run, from the store.

    tensorboard --logdir RUN_DIR/tensorboard
"""

from __future__ import annotations

import math
from pathlib import Path

from engine.tensorboard_folder import event_files, folder

FLUSH_S = 5  # what a run wrote reaches TensorBoard within a few seconds


class TensorBoardLog:
    """One session's event file. `purge_step`: where a resumed session continues (the steps
    from there on that an earlier session wrote are hidden by TensorBoard)."""

    def __init__(self, run_dir: Path, purge_step: int | None = None):
        from tensorboardX import SummaryWriter

        where = folder(run_dir)
        where.mkdir(parents=True, exist_ok=True)
        # tensorboardX names a file by the second it was opened: two sessions in one second
        # would share a name (the second truncating the first). A session number keeps them
        # apart and in order (TensorBoard reads a folder's files in name order).
        session = len(event_files(run_dir))
        self.writer = SummaryWriter(logdir=str(where), purge_step=purge_step, max_queue=1000,
                                    flush_secs=FLUSH_S, filename_suffix=f".s{session:04d}")

    def add(self, step: int, values: dict[str, float], walltime: float | None = None) -> None:
        for name, value in values.items():
            if isinstance(value, int | float) and math.isfinite(value):
                self.writer.add_scalar(name, float(value), step, walltime=walltime)

    def close(self) -> None:
        self.writer.close()
