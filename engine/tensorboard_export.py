"""`distill-engine tensorboard RUN_DIR`: the TensorBoard files of a run from before runs
wrote them (engine/tensorboard_log.py), from the metrics the store keeps."""

from __future__ import annotations

from pathlib import Path

from engine.tensorboard_folder import event_files
from engine.tensorboard_log import TensorBoardLog


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
