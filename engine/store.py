"""The run store: one SQLite file (WAL, busy timeout, batched inserts) through sqlite-utils.

Tables: runs (one row per run), metrics (run_id, step, epoch, name, value),
artifacts (run_id, kind, path, sha256, bytes). The app reads it while the engine writes.

A run's duration is the time the engine worked on it (`run_seconds`): each engine session
(start or resume, until stopped, failed or completed) adds its length to `active_s`; the
idle time between a stop and a resume does not count. Rows from stores written before
`active_s` existed (NULL, or the column missing) count from start to end, as then.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from pathlib import Path

import platformdirs

from engine.errors import InputError, RunFailed

BUSY_TIMEOUT_MS = 10_000
FLUSH_EVERY_S = 1.0  # metrics reach readers (the app) within a second, in batched inserts
# columns of `runs` later versions added; an older store gets them when opened
NEWER_RUN_COLUMNS = {"active_s": "FLOAT", "session_started": "FLOAT", "parameters": "INTEGER"}


def run_seconds(row: dict, now: float | None = None) -> float:
    """How long the engine worked on a run: its finished sessions (`active_s`) plus, while it
    runs, the current one. A row without `active_s` (an older store): from start to end (or
    now), idle gaps included, as it was counted then."""
    now = time.time() if now is None else now
    active, since = row.get("active_s"), row.get("session_started")
    if active is None:
        started = row.get("started")
        return max(0.0, (row.get("ended") or now) - started) if started else 0.0
    if row.get("status") == "running" and since is not None:
        active += now - since
    return max(0.0, active)


def default_db_path() -> Path:
    return Path(platformdirs.user_data_dir("distill-studio", appauthor=False)) / "runs.sqlite"


def cache_root(db_path: Path | None) -> Path:
    """The cache folder beside a store: teacher outputs, what was checked of image folders."""
    return Path(db_path or default_db_path()).resolve().parent / "cache"


class StoreDamaged(InputError):
    """The store's file is not a readable SQLite database (overwritten, truncated, not one)."""

    kind = "store_damaged"

    def __init__(self, path: Path, detail: str):
        from engine.errors import Problem

        self.path, self.detail = path, detail
        super().__init__([Problem("--db", f"the run store {path} is damaged ({detail}); its runs "
                                  "cannot be read", f"move it aside (for example to {aside_name(path)}) "
                                  "and a new, empty store is started; the old file is kept")])


def _damaged(exc: sqlite3.DatabaseError) -> bool:
    """A damaged file, not a busy or unopenable one (those are OperationalError)."""
    return not isinstance(exc, sqlite3.OperationalError) or "malformed" in str(exc)


def open_checked(path: str | Path | None = None) -> Store:
    """The store, after reading its file read-only (nothing is written to a damaged file), or
    StoreDamaged."""
    path = Path(path) if path else default_db_path()
    if path.is_file() and path.stat().st_size:
        try:
            probe = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            try:
                probe.execute("select count(*) from sqlite_master").fetchone()
                probe.execute("PRAGMA schema_version").fetchone()
            finally:
                probe.close()
        except sqlite3.DatabaseError as exc:
            if _damaged(exc):
                raise StoreDamaged(path, str(exc)) from None
            raise
    try:
        store = Store(path)
    except sqlite3.DatabaseError as exc:
        if _damaged(exc):
            raise StoreDamaged(path, str(exc)) from None
        raise
    try:
        store.runs(limit=1)
    except sqlite3.DatabaseError as exc:
        store.conn.close()
        if _damaged(exc):
            raise StoreDamaged(path, str(exc)) from None
        raise
    return store


def aside_name(path: Path) -> Path:
    return path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")


def move_aside(path: Path) -> Path:
    """Rename a damaged store (and its WAL files) out of the way, keeping it; where it went."""
    target = aside_name(path)
    n = 1
    while target.exists():
        target, n = target.with_name(f"{aside_name(path).name}-{n}"), n + 1
    path.rename(target)
    for suffix in ("-wal", "-shm"):
        extra = path.with_name(path.name + suffix)
        if extra.exists():
            extra.rename(target.with_name(target.name + suffix))
    return target


class Store:
    """Reads go through the stdlib connection (the app only reads, and starts faster without
    sqlite-utils); writes through sqlite-utils on the same connection."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if self.conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            self.conn.execute("PRAGMA journal_mode = wal")
        self._writer = None
        self._pending: list[dict] = []
        self._flushed = time.monotonic()
        self._create_tables()
        self._identity = _identity(self.path)  # to tell when the file is deleted or replaced
        self._looked = time.monotonic()

    @property
    def db(self):
        """sqlite-utils over the same connection, for writing."""
        if self._writer is None:
            import sqlite_utils

            self._writer = sqlite_utils.Database(self.conn)
        return self._writer

    def _create_tables(self) -> None:
        with self.conn:
            self.conn.executescript("""
                CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, name TEXT, spec TEXT,
                    spec_hash TEXT, status TEXT, device TEXT, started FLOAT, ended FLOAT,
                    run_dir TEXT, best_metrics TEXT, error TEXT, active_s FLOAT,
                    session_started FLOAT, parameters INTEGER);
                CREATE TABLE IF NOT EXISTS metrics (run_id INTEGER REFERENCES runs(id), step INTEGER,
                    epoch FLOAT, name TEXT, value FLOAT);
                CREATE INDEX IF NOT EXISTS idx_metrics_run_id_name_step ON metrics (run_id, name, step);
                CREATE TABLE IF NOT EXISTS artifacts (run_id INTEGER REFERENCES runs(id), kind TEXT,
                    path TEXT, sha256 TEXT, bytes INTEGER);
            """)
        have = {row[1] for row in self.conn.execute("PRAGMA table_info(runs)")}
        for column, kind in NEWER_RUN_COLUMNS.items():
            if column not in have:  # a store from an older version: the column is added, empty
                try:
                    with self.conn:
                        self.conn.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")
                except sqlite3.OperationalError:  # read-only or busy: read as before (run_seconds)
                    pass

    @contextlib.contextmanager
    def _writing(self):
        """A write; sqlite's failure becomes a RunFailed that names the store (a full disk)."""
        try:
            yield
        except sqlite3.Error as exc:
            text = str(exc)
            if "full" in text.lower():
                raise RunFailed("disk_full", f"the disk holding the run store {self.path} is full ({text})",
                                "free disk space, then resume the run from its last checkpoint") from exc
            raise RunFailed("store", f"writing to the run store {self.path} failed ({text})",
                            "check the store file, its folder's permissions and free space; then "
                            "resume the run from its last checkpoint") from exc

    def lost(self, force: bool = False) -> str | None:
        """'deleted' or 'replaced' when the store's file is no longer the one opened (then
        what is written goes nowhere anyone can read); None while it is. Looks at most once a
        second unless forced."""
        now = time.monotonic()
        if not force and now - self._looked < FLUSH_EVERY_S:
            return None
        self._looked = now
        current = _identity(self.path)
        if current is None:
            return "deleted"
        return None if current == self._identity else "replaced"

    def _rows(self, sql: str, args=()) -> list[dict]:
        return [dict(row) for row in self.conn.execute(sql, args)]

    # runs
    def create_run(self, name: str, spec_json: str, spec_hash: str, run_dir: Path, device: str) -> int:
        now = time.time()
        with self._writing():
            table = self.db["runs"].insert({
                "name": name, "spec": spec_json, "spec_hash": spec_hash, "status": "running",
                "device": device, "started": now, "run_dir": str(run_dir), "best_metrics": "{}",
                "active_s": 0.0, "session_started": now,
            })
        return int(table.last_pk)

    def finish_run(self, run_id: int, status: str, best: dict[str, float], error: str | None = None,
                   parameters: int | None = None) -> None:
        """The run's outcome (and the delivered student's parameter count, when known); the
        engine session that ends adds its length to the run's working time. When the last
        metrics cannot be written (a full disk) the outcome is still tried (one small row),
        then the metrics' failure is raised."""
        try:
            self.flush()
        except RunFailed:
            self._update_run(run_id, status, best, error, parameters)
            raise
        self._update_run(run_id, status, best, error, parameters)

    def _update_run(self, run_id: int, status: str, best: dict[str, float], error: str | None,
                    parameters: int | None) -> None:
        now = time.time()
        values = {"status": status, "ended": now, "best_metrics": json.dumps(best), "error": error}
        row = self.run(run_id) or {}
        if row.get("session_started") is not None:  # the session ends now (ended twice: counted once)
            values.update(active_s=(row.get("active_s") or 0.0) + max(0.0, now - row["session_started"]),
                          session_started=None)
        if parameters is not None:
            values["parameters"] = parameters
        with self._writing():
            self.db["runs"].update(run_id, values)

    def run(self, run_id: int) -> dict | None:
        rows = self._rows("select * from runs where id = ?", [run_id])
        return rows[0] if rows else None

    def reopen_run(self, run_id: int) -> None:
        """A resumed run is running again; its metrics continue where they stopped, and a new
        engine session starts counting its working time (a row from before `active_s`: its
        earlier sessions count from start to end)."""
        now = time.time()
        row = self.run(run_id) or {}
        active = row.get("active_s")
        if active is None:
            active = max(0.0, (row.get("ended") or now) - (row.get("started") or now))
        with self._writing():
            self.db["runs"].update(run_id, {"status": "running", "ended": None, "error": None,
                                            "active_s": active, "session_started": now})

    def best_metrics(self, run_id: int) -> dict[str, float]:
        """Best value so far of each validation metric (highest accuracy, lowest loss)."""
        rows = self.conn.execute(
            "select name, max(value), min(value) from metrics where run_id = ? and name like 'val/%' "
            "group by name", [run_id]).fetchall()
        return {name: hi if name.endswith("acc") else lo for name, hi, lo in rows}

    def last_metrics(self, run_id: int, prefix: str) -> dict[str, float]:
        """The last value written of each of a run's metrics whose name starts with `prefix`
        (e.g. "test/": the final test scores, the teachers' among them)."""
        rows = self.conn.execute("select name, value from metrics where run_id = ? and name like ? "
                                 "escape '\\' order by step, rowid", [run_id, _like(prefix)]).fetchall()
        return {name: value for name, value in rows}

    def runs(self, limit: int | None = None) -> list[dict]:
        return self._rows("select * from runs order by started desc, id desc limit ?",
                          [-1 if limit is None else limit])

    # metrics, batched: `add_metrics` buffers, `flush` writes one transaction
    def add_metrics(self, run_id: int, step: int, epoch: float, values: dict[str, float]) -> None:
        self._pending.extend({"run_id": run_id, "step": step, "epoch": epoch, "name": k, "value": v}
                             for k, v in values.items())
        if len(self._pending) >= 2000 or time.monotonic() - self._flushed >= FLUSH_EVERY_S:
            self.flush()

    def flush(self) -> None:
        self._flushed = time.monotonic()
        if self._pending:
            rows, self._pending = self._pending, []
            with self._writing(), self.db.conn:
                self.db["metrics"].insert_all(rows, batch_size=1000)

    def metrics(self, run_id: int, name: str | None = None) -> list[dict]:
        where, args = ("run_id = ?", [run_id]) if name is None else ("run_id = ? and name = ?", [run_id, name])
        return self._rows(f"select * from metrics where {where} order by step", args)

    def metric_names(self, run_id: int, prefix: str) -> list[str]:
        """The names of a run's metrics that start with `prefix` (e.g. "grad/"), in the order
        the run first wrote them."""
        rows = self.conn.execute("select name from metrics where run_id = ? and name like ? escape '\\' "
                                 "group by name order by min(rowid)", [run_id, _like(prefix)]).fetchall()
        return [name for (name,) in rows]

    def add_artifact(self, run_id: int, kind: str, path: Path, sha256: str, size: int) -> None:
        with self._writing():
            self.db["artifacts"].insert({"run_id": run_id, "kind": kind, "path": str(path),
                                         "sha256": sha256, "bytes": size})

    def artifacts(self, run_id: int) -> list[dict]:
        return self._rows("select * from artifacts where run_id = ?", [run_id])

    def close(self) -> None:
        """Write what is pending and close; the connection is closed even when the write fails."""
        try:
            self.flush()
        finally:
            self.conn.close()


def _like(prefix: str) -> str:
    """A LIKE pattern (ESCAPE '\\') for names starting with `prefix`: its _ and % are letters."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino
