import sqlite3

import engine.store
from engine.store import Store, run_seconds
from tests.helpers import Clock


def test_runs_metrics_and_artifacts_in_a_real_sqlite_file(tmp_path):
    db = tmp_path / "runs.sqlite"
    store = Store(db)
    first = store.create_run("a", "{}", "h1", tmp_path / "a", "cpu")
    second = store.create_run("b", "{}", "h2", tmp_path / "b", "cpu")
    for step in range(1, 2501):  # crosses the batch size: some flushed early, the rest at finish
        store.add_metrics(first, step, step / 100, {"loss/total": 1.0 / step})
    store.add_artifact(first, "student", tmp_path / "s.safetensors", "ab" * 32, 123)
    store.finish_run(first, "completed", {"val/acc": 0.95})
    store.close()

    conn = sqlite3.connect(db)  # read it back as another client would
    assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"
    assert conn.execute("select count(*) from metrics where run_id = ?", (first,)).fetchone()[0] == 2500
    status, best = conn.execute("select status, best_metrics from runs where id = ?", (first,)).fetchone()
    assert status == "completed" and "0.95" in best
    assert conn.execute("select status from runs where id = ?", (second,)).fetchone()[0] == "running"

    again = Store(db)
    assert [r["name"] for r in again.runs()] == ["b", "a"]  # newest first
    assert again.metrics(first, "loss/total")[0]["value"] == 1.0
    assert again.artifacts(first)[0]["bytes"] == 123


def test_busy_timeout_is_set(tmp_path):
    store = Store(tmp_path / "x.sqlite")
    assert store.db.execute("pragma busy_timeout").fetchone()[0] >= 5000


def test_a_runs_metric_names_by_prefix_in_the_order_written(tmp_path):
    store = Store(tmp_path / "x.sqlite")
    run, other = (store.create_run(n, "{}", n, tmp_path / n, "cpu") for n in ("a", "b"))
    for step in (1, 2):
        store.add_metrics(run, step, step / 10, {"loss/total": 1.0, "grad/body.blocks.10": 0.1,
                                                 "grad/body.blocks.2": 0.2, "grad/head": 0.3, "gradual": 1.0})
    store.add_metrics(other, 1, 0.1, {"grad/x": 1.0})
    store.flush()
    assert store.metric_names(run, "grad/") == ["grad/body.blocks.10", "grad/body.blocks.2", "grad/head"]
    assert store.metric_names(run, "loss_") == []  # _ and % are letters, not wildcards


def test_a_resumed_runs_duration_counts_only_the_engine_sessions(tmp_path, monkeypatch):
    clock = Clock(1_000_000.0)
    monkeypatch.setattr(engine.store, "time", clock)
    db = tmp_path / "runs.sqlite"
    store = Store(db)
    run = store.create_run("a", "{}", "h", tmp_path / "a", "cpu")
    clock.now += 30  # the first session works 30 s, then is stopped
    assert run_seconds(store.run(run), clock.now) == 30
    store.finish_run(run, "stopped", {"val/acc": 0.5})
    clock.now += 3600  # an hour idle before the resume: not counted
    assert run_seconds(store.run(run), clock.now) == 30
    store.reopen_run(run)
    clock.now += 12
    assert run_seconds(store.run(run), clock.now) == 42  # running: the current session counts
    store.finish_run(run, "completed", {"val/acc": 0.9}, parameters=1234)
    store.finish_run(run, "completed", {"val/acc": 0.9})  # recorded twice: counted once
    store.close()

    row = Store(db).run(run)  # as another client reads it
    assert row["active_s"] == 42 and row["ended"] - row["started"] == 3642
    assert run_seconds(row) == 42 and row["parameters"] == 1234


def test_an_older_store_is_read_as_before_and_gains_the_new_columns(tmp_path, monkeypatch):
    db = tmp_path / "old.sqlite"
    conn = sqlite3.connect(db)  # the runs table as earlier versions wrote it
    conn.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, name TEXT, spec TEXT, spec_hash TEXT, "
                 "status TEXT, device TEXT, started FLOAT, ended FLOAT, run_dir TEXT, best_metrics TEXT, "
                 "error TEXT)")
    conn.execute("INSERT INTO runs (name, spec, spec_hash, status, device, started, ended, run_dir, "
                 "best_metrics) VALUES ('old', '{}', 'h', 'stopped', 'cpu', 100.0, 160.0, '.', '{}')")
    conn.commit()
    conn.close()
    assert run_seconds({"status": "stopped", "started": 100.0, "ended": 160.0}) == 60  # no column at all

    clock = Clock(5000.0)
    monkeypatch.setattr(engine.store, "time", clock)
    store = Store(db)
    row = store.run(1)
    assert row["active_s"] is None and run_seconds(row) == 60  # start to end, as before
    store.reopen_run(1)  # resumed by this version: the old session counts as it was, the new one alone
    clock.now += 15
    store.finish_run(1, "completed", {})
    assert run_seconds(store.run(1)) == 75


def test_a_runs_last_test_scores(tmp_path):
    store = Store(tmp_path / "x.sqlite")
    run = store.create_run("a", "{}", "h", tmp_path / "a", "cpu")
    store.add_metrics(run, 10, 1.0, {"test/acc": 0.5, "val/acc": 0.4})
    store.add_metrics(run, 20, 2.0, {"test/acc": 0.8, "test/teacher_acc/low_digits": 0.9, "testing": 1.0})
    store.flush()
    assert store.last_metrics(run, "test/") == {"test/acc": 0.8, "test/teacher_acc/low_digits": 0.9}
