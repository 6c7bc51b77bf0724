"""One run, from spec file to finished event: check inputs, open the store, train, record.

Exit codes: 0 completed, 1 failed, 2 invalid input (spec or files), 3 stopped by the user.
"""

from __future__ import annotations

import errno
import hashlib
import json
import re
import sys
import time
import traceback
from pathlib import Path

import platformdirs

from engine.atomic_io import atomic_write_text
from engine.errors import InputError, RunFailed
from engine.events import Control, Emitter

EXIT_COMPLETED, EXIT_FAILED, EXIT_INVALID, EXIT_STOPPED = 0, 1, 2, 3


def default_run_dir(name: str, db_path: Path | None = None) -> Path:
    """A new folder in `runs/` beside the store (by default in the user data dir), created
    here so it is this run's alone (another one made in the same second gets `-2`, `-3`…)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:60] or "run"
    root = (Path(db_path).resolve().parent if db_path else
            Path(platformdirs.user_data_dir("distill-studio", appauthor=False))) / "runs"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder, i = root / f"{stamp}-{slug}", 2
    while True:
        try:
            root.mkdir(parents=True, exist_ok=True)
            folder.mkdir()
            return folder
        except FileExistsError:
            folder, i = root / f"{stamp}-{slug}-{i}", i + 1
        except OSError:  # not writable: prepare_run_dir says so, with the folder's name
            return folder


def spec_hash(spec_json: str) -> str:
    return hashlib.sha256(spec_json.encode()).hexdigest()


def prepare_run_dir(run_dir: Path, spec_path: Path | None = None, resume: bool = False,
                    spec_json: str | None = None):
    """Make sure the folder can be written and is this run's: lock it against other engines
    and, for a new run, refuse one that holds anything but the spec file it was given
    (engine/run_folder.py). Returns the lock; release it when done."""
    from engine.run_folder import FolderLock, check_fresh, probe_writable

    where = "RUN_DIR" if resume else "--run-dir"
    try:
        probe_writable(run_dir)
    except OSError as exc:
        raise InputError.one(where, f"cannot write to the run folder {run_dir} "
                             f"({exc.strerror or exc})", "choose a folder you can write to with "
                             "--run-dir, or free disk space", "run_dir") from None
    lock = FolderLock(run_dir, where)
    if not resume:
        try:
            check_fresh(run_dir, {Path(spec_path)} if spec_path else set(), spec_json, where)
        except BaseException:
            lock.release()
            raise
    return lock


RUN_FILE = "run.json"  # in a run folder: which store row the run writes to


def find_resumable(run_dir: Path, db_path: Path | None,
                   warn=lambda _m: None) -> tuple[Path, Path | None, int, Path]:
    """(spec copy, store, run id, checkpoint) of a run folder, or InputError saying what is missing."""
    import json

    from engine.checkpoint import checkpoint_dirs, latest_checkpoint

    run_dir = Path(run_dir)
    where = "RUN_DIR"
    if not (run_dir / RUN_FILE).is_file() or not (run_dir / "spec.distill.json").is_file():
        raise InputError.one(where, f"{run_dir} is not a run folder (no {RUN_FILE} or spec copy)",
                             "give the folder a run was started in (shown in its 'started' event)")
    try:
        info = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
        run_id = int(info["run_id"])
    except (ValueError, KeyError, TypeError, OSError):
        raise InputError.one(where, f"{run_dir / RUN_FILE} is damaged",
                             "start the run again from its spec") from None
    check_spec_copy(run_dir / "spec.distill.json", info.get("spec_sha256"), run_id)
    checkpoint = latest_checkpoint(run_dir / "checkpoints", warn)
    if checkpoint is None:
        damaged = bool(checkpoint_dirs(run_dir / "checkpoints"))
        raise InputError.one(where, f"the run in {run_dir} has " + (
            "no checkpoint that is intact" if damaged else "no checkpoint yet"),
            f"start it again from its spec (in this folder too: `distill-engine run "
            f"{run_dir / 'spec.distill.json'} --run-dir {run_dir}`): it stopped before its "
            "first checkpoint was saved"
            if not damaged else "start it again from its spec")
    db = db_path or (Path(info["db"]) if info.get("db") else None)
    return run_dir / "spec.distill.json", db, run_id, checkpoint


def check_spec_copy(copy: Path, started_with: str | None, run_id: int) -> None:
    """InputError when the run folder's spec copy is not the spec the run started with (its
    sha256, kept in run.json and in the store): its checkpoints hold the student of that spec,
    and the run continues only as it started."""
    if not started_with:  # a run folder from before the hash was kept: the store's is checked
        return
    try:
        now = hashlib.sha256(copy.read_bytes()).hexdigest()
    except OSError as exc:
        raise InputError.one("RUN_DIR", f"cannot read the spec copy {copy} ({exc.strerror or exc})",
                             "check the run folder's permissions") from None
    if now != started_with:
        raise InputError.one("RUN_DIR", (
            f"the spec copy {copy} was changed after run {run_id} started; a run continues only "
            "with the spec it started with (its checkpoints hold that spec's student)"),
            f"put the original spec back (the store keeps it: `distill-engine runs --json`, run "
            f"{run_id}), or start a new run from the edited spec with `distill-engine run`",
            "spec_changed")


def export_after_run(spec, run_dir: Path, emitter: Emitter, on_artifact) -> dict:
    """The spec's export (and quantize step), with progress and the files as artifacts."""
    from engine.export import export_run

    folder = spec.export.folder if spec.export and spec.export.folder else run_dir / "export"
    emitter.log(f"exporting to {folder}")
    report = export_run(run_dir, folder, spec.quantize,
                        spec.export.safetensors if spec.export else True,
                        lambda stage, fraction: emitter.emit("progress", phase="export", stage=stage,
                                                             fraction=fraction), run_locked=True)
    for kind, info in report["files"].items():
        on_artifact(kind, folder / info["path"])
    on_artifact("report", folder / "report.json")
    for problem in report["problems"] + report["notes"]:  # notes: e.g. accuracy not measured
        emitter.log(f"{problem['message']}; {problem['hint']}", "warning")
    return {**report, "folder": str(folder)}


def run_worker(spec, run_dir: Path | None, resume: bool, device, threads: int, control: Control,
               emitter: Emitter, db_path: Path | None) -> int:
    """A rank other than 0 under torchrun: the same training, silent; rank 0 reports and
    writes. Problems are reported by rank 0, which meets them too."""
    from engine import dist
    from engine.checkpoint import latest_checkpoint, load_checkpoint
    from engine.data import load_dataset
    from engine.device import choose_precision
    from engine.store import cache_root
    from engine.teachers import load_teachers
    from engine.text_export import run_tokenizer
    from engine.train import Job, StopRequested, train

    emitter.enabled = False
    run_dir = Path(dist.share(None))
    dist.barrier()  # rank 0 has checked the data (an image folder's check is then in the cache)
    data = load_dataset(run_tokenizer(spec, run_dir), cache_root(db_path))  # rank 0 checked them (preflight)
    teachers = load_teachers(spec, data.train.for_teachers[:8], threads, data.table)
    state = load_checkpoint(latest_checkpoint(run_dir / "checkpoints")) if resume else None
    cache = cache_root(db_path) / "teacher-outputs"
    job = Job(spec, data, teachers, device, choose_precision(spec.training.precision, device), run_dir,
              emitter, control, cache_dir=cache)
    try:
        train(job, state)
    except StopRequested:
        return EXIT_STOPPED
    finally:
        dist.shutdown()
    return EXIT_COMPLETED


def execute(spec_path: Path | None, run_dir: Path | None, db_path: Path | None,
            emitter: Emitter, control: Control, resume: bool = False) -> int:
    """Run a spec (or, with `resume`, continue the run in `run_dir` from its last checkpoint);
    report everything as events. Returns the exit code."""
    from engine.spec import load_spec

    store = run_id = lock = board = None
    owns_row = False  # only a run this process started or reopened is finished by it
    status, code, error = "failed", EXIT_FAILED, None
    try:
        checkpoint_path = None
        if resume:
            spec_path, db_path, run_id, checkpoint_path = find_resumable(
                run_dir, db_path, lambda message: emitter.log(message, "warning"))
        spec = load_spec(spec_path)
        import torch  # heavy imports after the spec is known to be good

        from engine import dist
        from engine.device import choose_device, choose_precision, describe, set_threads
        from engine.preflight import prepare
        from engine.pretrain.phase import steps as pretraining_steps
        from engine.store import cache_root, open_checked
        from engine.tensorboard_log import TensorBoardLog
        from engine.train import Job, StopRequested, describe_split, plan, train

        # 1. Where it runs: threads, device, and (under torchrun) which process this is.
        threads = set_threads(spec.training.cpu_threads)
        device = dist.device_for_rank(choose_device(spec.training.device))  # under torchrun: cuda:LOCAL_RANK
        rank, world = dist.init(device)
        if rank > 0:
            return run_worker(spec, run_dir, resume, device, threads, control, emitter, db_path)

        # 2. Its inputs, checked before anything is recorded: folder, data, teachers, and what
        #    training would refuse in its first second (the same checks as `validate`).
        run_dir = dist.share((run_dir or default_run_dir(spec.name, db_path)).resolve())
        lock = prepare_run_dir(run_dir, spec_path, resume, spec.to_json())
        amp = choose_precision(spec.training.precision, device)
        from engine.text_export import run_tokenizer

        prepared = prepare(run_tokenizer(spec, run_dir), threads, cache_root(db_path))
        data, teachers = prepared.data, prepared.teachers
        if data.text is not None:  # the student's tokenizer, kept with the run (resume, export)
            atomic_write_text(run_dir / "tokenizer.json", data.text.json)
        dist.barrier()  # the other ranks read the data now (engine/run.py run_worker)

        # 3. Its row in the store: a new one, or the stopped run's own.
        store = open_checked(db_path)  # a damaged store: exit 2, saying so
        run_id, resume_state = open_row(store, spec, run_dir, run_id, checkpoint_path, describe(device))
        owns_row = True
        emitter.emit("started", run_id=run_id, resumed=resume, name=spec.name, run_dir=str(run_dir),
                     db=str(store.path), device=describe(device), threads=threads,
                     precision=str(amp).replace("torch.", "") if amp else "fp32", processes=world,
                     torch=torch.__version__, split=describe_split(data), labeled=data.labeled,
                     teachers=[{"name": t.name, "classes": t.spec.classes, "sha256": t.sha256}
                               for t in teachers],
                     epochs=sum(phase.epochs for phase in plan(spec)) + pretraining_steps(spec, len(data.train))[0])
        for note in data.notes:
            emitter.log(note)
        for f in prepared.findings:  # in the log and on the teacher's node
            emitter.emit("teacher_check", teacher=f.teacher, level=f.level, message=f.message, hint=f.hint,
                         field=f.where, accuracy=f.accuracy, samples=f.samples, fix=f.fix)

        # 4. Training, then the export the spec asks for.
        lost = StoreWatch(store, emitter)
        # the metrics in TensorBoard too (RUN_DIR/tensorboard); a resumed session hides what
        # the earlier one wrote after the checkpoint it continues from (engine/tensorboard_log.py)
        board = TensorBoardLog(run_dir, resume_state["step"] + 1 if resume_state else None)
        job = Job(spec, data, teachers, device, amp, run_dir, emitter, control,
                  on_metrics=lambda step, epoch, values: (store.add_metrics(run_id, step, epoch, values),
                                                          board.add(step, values), lost.check()),
                  on_artifact=lambda kind, path: record_artifact(store, run_id, emitter, kind, path),
                  cache_dir=store.path.parent / "cache" / "teacher-outputs")
        try:
            result = train(job, resume_state, store.best_metrics(run_id))
        except StopRequested:
            status, code = "stopped", EXIT_STOPPED
            store.finish_run(run_id, status, store.best_metrics(run_id))
            owns_row = False  # recorded
            lost.check(final=True)
            emitter.emit("finished", status=status, run_id=run_id, exit_code=code)
            return code
        report, export_error = export_kept_student(spec, run_dir, emitter, job.on_artifact)
        status, code = "completed", EXIT_COMPLETED
        store.finish_run(run_id, status, result.best, parameters=result.parameters)
        owns_row = False
        lost.check(final=True)
        emitter.emit("finished", status=status, run_id=run_id, exit_code=code, best=result.best,
                     final=result.final, parameters=result.parameters, sparsity=result.sparsity,
                     student=str(result.student_path), export=report, export_error=export_error)
        return code
    except Exception as exc:  # every failure is reported as an error event, never hidden
        status = "failed"
        code, error = report_failure(exc, emitter)
    finally:
        if board is not None:
            close_board(board, emitter)
        if store is not None:
            close_store(store, run_id if owns_row else None, status, error, emitter)
        if lock is not None:
            lock.release()
        if "torch" in sys.modules:
            from engine import dist

            dist.shutdown()
    emitter.emit("finished", status="failed", run_id=run_id, exit_code=code)
    return code


class StoreWatch:
    """Says (a warning, once) when the store file was deleted or replaced during the run: the
    engine's writes then go to a file no one else can open, and the run's record is lost. The
    run goes on — its checkpoints and student are in the run folder — and completes."""

    def __init__(self, store, emitter: Emitter):
        self.store, self.emitter, self.told = store, emitter, False

    def check(self, final: bool = False) -> None:
        if self.told:
            return
        what = self.store.lost(force=final)
        if what:
            self.told = True
            self.emitter.log(f"the run store {self.store.path} was {what} during the run, so this run's "
                             "record (status, metrics, artifacts) is not in it; the run's files are kept "
                             "in its folder", "warning")


def close_board(board, emitter: Emitter) -> None:
    """The TensorBoard file's last scalars to disk; a failure is a warning (the store and
    the run folder have everything), never a crash in the cleanup."""
    try:
        board.close()
    except Exception as exc:  # noqa: BLE001
        emitter.log(f"the TensorBoard files could not be completed ({exc})", "warning")


def close_store(store, run_id: int | None, status: str, error: str | None, emitter: Emitter) -> None:
    """Record how an unfinished run ended (`run_id` None: nothing to record) and close the
    store; a store that cannot be written (a full disk) is a warning here, never a crash in
    the cleanup, so the `finished` event still goes out."""
    try:
        if run_id is not None:
            store.finish_run(run_id, status, store.best_metrics(run_id), error)
    except Exception as exc:  # noqa: BLE001 — the run's own failure is already reported
        emitter.log(f"the run's status could not be recorded in the store {store.path} "
                    f"({getattr(exc, 'message', exc)}); it shows as running until resumed", "warning")
    try:
        store.close()
    except Exception as exc:  # noqa: BLE001
        emitter.log(f"the store {store.path} could not be closed cleanly ({getattr(exc, 'message', exc)})",
                    "warning")


def open_row(store, spec, run_dir: Path, run_id: int | None, checkpoint_path: Path | None,
             device: str) -> tuple[int, dict | None]:
    """(the run's id in the store, the checkpoint to resume from or None). A new run writes its
    spec copy and run.json into its folder; a resumed one must be in the store, not completed."""
    if checkpoint_path is None:
        spec_json = spec.to_json()
        atomic_write_text(run_dir / "spec.distill.json", spec_json)
        run_id = store.create_run(spec.name, spec_json, spec_hash(spec_json), run_dir, device)
        atomic_write_text(run_dir / RUN_FILE, json.dumps({"run_id": run_id, "db": str(store.path),
                                                          "spec_sha256": spec_hash(spec_json)}))
        return run_id, None
    from engine.checkpoint import load_checkpoint

    row = store.run(run_id)
    if row is None:
        raise InputError.one("--db", f"run {run_id} is not in the store {store.path}",
                             "give the store the run was started with (--db FILE)")
    if row["run_dir"] and Path(row["run_dir"]).resolve() != run_dir.resolve():
        raise InputError.one("--db", f"run {run_id} in the store {store.path} is another run "
                             f"(its folder is {row['run_dir']}), not the one in {run_dir}",
                             "give the store the run was started with (--db FILE)")
    check_spec_copy(run_dir / "spec.distill.json", row["spec_hash"], run_id)
    if row["status"] == "completed":
        raise InputError.one("RUN_DIR", f"run {run_id} has already completed",
                             "start a new run from its spec to train again")
    state = load_checkpoint(checkpoint_path)
    store.reopen_run(run_id)
    return run_id, state


def record_artifact(store, run_id: int, emitter: Emitter, kind: str, path: Path) -> None:
    from engine.model_files import sha256_of

    digest, size = sha256_of(path), path.stat().st_size
    store.add_artifact(run_id, kind, path, digest, size)
    if kind != "checkpoint":
        emitter.emit("artifact", kind=kind, path=str(path), sha256=digest, bytes=size)


def export_kept_student(spec, run_dir: Path, emitter: Emitter, on_artifact) -> tuple[dict | None, str | None]:
    """The spec's export, if it asks for one: (its report, None), or (None, why it failed).
    The student is trained and kept whatever happens to its export."""
    if not spec.exports:
        return None, None
    try:
        return export_after_run(spec, run_dir, emitter, on_artifact), None
    except (InputError, RunFailed) as exc:
        problem = exc.problems[0] if isinstance(exc, InputError) else exc
        emitter.error(exc.kind, f"the export failed: {problem.message}",
                      f"{problem.hint}; the trained student is kept in {run_dir}, "
                      "export it again from the Export panel or `distill-engine export`")
        return None, problem.message


def report_failure(exc: Exception, emitter: Emitter) -> tuple[int, str]:
    """One error event for a failed run, with a hint the user can act on; (exit code, message)."""
    if isinstance(exc, InputError):
        first = exc.problems[0]
        emitter.error(exc.kind, first.message, first.hint, field=first.path,
                      problems=[p.as_dict() for p in exc.problems])
        return EXIT_INVALID, str(exc)
    if isinstance(exc, RunFailed):
        emitter.error(exc.kind, exc.message, exc.hint)
        return EXIT_FAILED, exc.message
    traceback.print_exc()
    if isinstance(exc, OSError):
        if exc.errno == errno.ENOSPC:
            emitter.error("disk_full", f"the disk is full ({exc.filename or 'while saving'})",
                          "free disk space, then resume the run from its last checkpoint")
        else:
            emitter.error("io", f"a file operation failed: {exc}", "check the paths and permissions")
        return EXIT_FAILED, str(exc)
    error = f"{type(exc).__name__}: {exc}"  # a bug or an unexpected library failure
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower() or \
            "can't allocate memory" in str(exc).lower():
        emitter.error("out_of_memory", f"the engine ran out of memory ({str(exc)[:200]})",
                      "use a smaller student or batch_size, or close other programs; then "
                      "resume the run from its last checkpoint")
        return EXIT_FAILED, f"out of memory: {str(exc)[:300]}"
    emitter.error("crash", f"the engine failed unexpectedly: {error}",
                  "the details are on stderr; please report them with the spec")
    return EXIT_FAILED, error
