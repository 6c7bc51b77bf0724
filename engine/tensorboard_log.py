"""A run's metrics as TensorBoard event files, in RUN_DIR/tensorboard (tensorboardX).

Written by rank 0 only, from the same values and at the same moments as the `metric` events
(the train loop's `on_metrics`: no extra host sync). Each session of a run (the first, and
each resume) writes its own event file; a resumed session's file starts with TensorBoard's
restart marker (a SessionLog START at the checkpoint's step + 1), so TensorBoard drops what
the earlier session wrote after that checkpoint (a killed run's last steps, trained again
now): no step shows twice.

`export_from_store` writes the same files for an older run, from the metrics in the store.

    tensorboard --logdir RUN_DIR/tensorboard
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path

FOLDER = "tensorboard"
FLUSH_S = 5  # what a run wrote reaches TensorBoard within a few seconds


def folder(run_dir: Path) -> Path:
    return Path(run_dir) / FOLDER


def event_files(run_dir: Path) -> list[Path]:
    where = folder(run_dir)
    return sorted(where.glob("events.out.tfevents.*")) if where.is_dir() else []


def view_command(run_dir: Path) -> str:
    """The command that shows the run in TensorBoard (quoted for a POSIX shell)."""
    return f"tensorboard --logdir {shlex.quote(str(folder(run_dir)))}"


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


def export_from_store(run_dir: Path, run: dict, metrics: list[dict]) -> int:
    """An older run's stored metrics (rows of the store's metrics table) as one event file in
    RUN_DIR/tensorboard. The store keeps no time per metric: the wall times are spread evenly
    by step between the run's start and end. Returns the number of scalars written."""
    started = float(run.get("started") or 0.0)
    ended = float(run.get("ended") or started)
    last = max((int(m["step"]) for m in metrics), default=0)
    log = TensorBoardLog(run_dir)
    try:
        for m in metrics:
            at = started + (ended - started) * (int(m["step"]) / last if last else 0.0)
            log.add(int(m["step"]), {m["name"]: m["value"]}, walltime=at)
    finally:
        log.close()
    return len(metrics)


def ensure_for_run(run_dir: Path, db_path: Path | None) -> tuple[bool, int]:
    """RUN_DIR/tensorboard for a run folder: (whether it was written now, scalars written).
    A folder that already has event files is left as it is. InputError when `run_dir` is not
    a run folder, or its run or metrics are not in the store."""
    import json

    from engine.errors import InputError
    from engine.run import RUN_FILE
    from engine.store import StoreDamaged, open_checked

    run_dir = Path(run_dir)
    info_file = run_dir / RUN_FILE
    if not info_file.is_file():
        raise InputError.one("RUN_DIR", f"{run_dir} is not a run folder (it has no {RUN_FILE})",
                             "give the folder a run was started in (the Runs panel and `distill-engine runs "
                             "--json` show it)")
    if event_files(run_dir):
        return False, 0
    try:
        info = json.loads(info_file.read_text(encoding="utf-8"))
        run_id = int(info["run_id"])
    except (ValueError, KeyError, TypeError, OSError):
        raise InputError.one("RUN_DIR", f"{info_file} is damaged", "start the run again from its spec") from None
    db = db_path or (Path(info["db"]) if info.get("db") else None)
    try:
        store = open_checked(db)
    except StoreDamaged as exc:
        raise InputError.one("--db", str(exc), "give the store the run was recorded in (--db FILE)") from None
    try:
        run = store.run(run_id)
        if run is None or (run["run_dir"] and Path(run["run_dir"]).resolve() != run_dir.resolve()):
            raise InputError.one("--db", f"run {run_id} of {run_dir} is not in the store {store.path}",
                                 "give the store the run was recorded in (--db FILE)")
        metrics = store.metrics(run_id)
    finally:
        store.close()
    if not metrics:
        raise InputError.one("RUN_DIR", f"the store {store.path} has no metrics for run {run_id}",
                             "the run stopped before its first metrics; start it again from its spec")
    return True, export_from_store(run_dir, run, metrics)
