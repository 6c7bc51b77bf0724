import sqlite3

from engine.store import Store


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
