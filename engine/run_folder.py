"""A run folder belongs to one run (torch-free).

- A new run starts only in a folder that does not exist yet or is empty (the spec file the run
  was given may lie in it: the app writes its project there first). A folder that holds
  anything else — another run's checkpoints, a user's files — is refused with what it holds,
  so two runs never mix and nothing the product did not write is overwritten or deleted.
- While an engine works in a run folder it holds a lock on `.engine.lock` inside it (an
  advisory `flock`, released by the system when the process ends, however it ends), so a
  second engine on the same folder — another `run`, a `resume` — is refused, naming the first
  one's pid. The lock file is removed when the engine is done with the folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from engine.errors import InputError

LOCK_FILE = ".engine.lock"


def probe_writable(folder: Path) -> None:
    """Create the folder and write (then remove) a file of a unique name in it; OSError when
    it cannot be written. Never touches a file that was there."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".write-test-", dir=folder)
    os.close(fd)
    os.unlink(name)


def check_fresh(run_dir: Path, allowed: set[Path], spec_json: str | None = None,
                where: str = "--run-dir") -> None:
    """InputError unless `run_dir` holds nothing but its lock file and the `allowed` paths,
    or is the start of this very spec's run that ended before its first checkpoint (nothing to
    resume: it may start again there)."""
    allowed = {p.resolve() for p in allowed}
    entries = [p for p in run_dir.iterdir() if p.name != LOCK_FILE]
    held = sorted(p.name + ("/" if p.is_dir() and not p.is_symlink() else "")
                  for p in entries if p.resolve() not in allowed)
    if not held or (spec_json is not None and _unstarted(
            run_dir, [p.name + ("/" if p.is_dir() else "") for p in entries], spec_json)):
        return
    shown = ", ".join(held[:6]) + (f" and {len(held) - 6} more" if len(held) > 6 else "")
    if (run_dir / "run.json").is_file():
        message = f"the run folder {run_dir} already holds another run ({shown})"
        hint = (f"a run folder belongs to one run: leave out {where} for a new folder, choose an "
                f"empty one, or continue that run with `distill-engine resume {run_dir}`")
    else:
        message = f"the run folder {run_dir} is not empty: it holds {shown}"
        hint = (f"a run folder belongs to one run, and a run never overwrites files it did not "
                f"write: give {where} a new or empty folder, or leave it out for a new one")
    raise InputError.one(where, message, hint, "run_dir")


def _unstarted(run_dir: Path, held: list[str], spec_json: str) -> bool:
    """The folder holds only the spec copy and run.json of a run of this same spec, and no
    checkpoint (at most a save that never finished): that run can only start again."""
    if not {"spec.distill.json", "run.json"} <= set(held) <= {"spec.distill.json", "run.json", "checkpoints/"}:
        return False
    copy, checkpoints = run_dir / "spec.distill.json", run_dir / "checkpoints"
    if copy.is_symlink() or (run_dir / "run.json").is_symlink() or checkpoints.is_symlink():
        return False
    if checkpoints.is_dir() and any(not p.name.startswith(".tmp-step-") for p in checkpoints.iterdir()):
        return False
    try:
        return copy.read_text(encoding="utf-8") == spec_json
    except (OSError, UnicodeDecodeError):
        return False


class FolderLock:
    """An exclusive lock on a run folder for this process's lifetime (or until `release`)."""

    def __init__(self, run_dir: Path, where: str = "--run-dir"):
        self.path = Path(run_dir) / LOCK_FILE
        self.fd: int | None = None
        self._acquire(where)

    def _acquire(self, where: str) -> None:
        try:
            import fcntl
        except ImportError:  # not POSIX: an O_EXCL file with a pid, stale when that pid is gone
            self._acquire_exclusive(where)
            return
        for _ in range(5):  # the file may be removed by its holder between open and lock
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _read_pid(self.path)
                os.close(fd)
                raise self._held(holder, where) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, str(os.getpid()).encode())
                self.fd = fd
                return
            os.close(fd)
        raise self._held(None, where)

    def _acquire_exclusive(self, where: str) -> None:
        for _ in range(2):
            try:
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
                os.write(self.fd, str(os.getpid()).encode())
                return
            except FileExistsError:
                holder = _read_pid(self.path)
                if holder is not None and _alive(holder):
                    raise self._held(holder, where) from None
                with contextlib.suppress(OSError):  # a stale lock: its process is gone
                    self.path.unlink()
        raise self._held(None, where)

    def _held(self, pid: int | None, where: str) -> InputError:
        folder = self.path.parent
        who = f"another engine (process {pid})" if pid else "another engine"
        return InputError.one(where, f"{who} is working in the run folder {folder}",
                              "wait until it has finished (or stop it), then try again; two "
                              "engines in one folder would mix their checkpoints", "run_dir_in_use")

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()  # before the lock goes: a newcomer then makes a new file
        with contextlib.suppress(OSError):
            os.close(self.fd)
        self.fd = None


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_bytes()[:32].decode(errors="replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def cache_of(run_dir: Path) -> Path | None:
    """The cache beside the run's store (what was checked of an image folder), if it is known."""
    from engine.store import cache_root

    try:
        info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        return cache_root(Path(info["db"])) if info.get("db") else None
    except (OSError, ValueError, KeyError, TypeError):
        return None
