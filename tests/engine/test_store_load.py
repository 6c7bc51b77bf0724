"""SQLite under load: an engine process writes ≥ 5k metric rows/s while another process reads
the store the way the app does. No "database is locked", a bounded WAL, every row there."""

import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from engine.store import Store
from tests.helpers import ROOT

pytestmark = pytest.mark.slow  # an engine subprocess writes while the test reads

WRITER = """
import json, sys, time
from engine.store import Store
db, seconds, rate = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
store = Store(db)
run_id = store.create_run("load", "{}", "h", ".", "cpu")
names = [f"loss/kd/teacher-{i}" for i in range(20)]
start, step, rows = time.monotonic(), 0, 0
while time.monotonic() - start < seconds:
    store.add_metrics(run_id, step, step / 100, {n: step * 0.001 + i for i, n in enumerate(names)})
    step += 1
    rows += len(names)
    ahead = rows / rate - (time.monotonic() - start)  # paced at `rate` rows per second
    if ahead > 0:
        time.sleep(ahead)
store.finish_run(run_id, "completed", {})
elapsed = time.monotonic() - start
store.close()
print(json.dumps({"run_id": run_id, "rows": rows, "seconds": elapsed}))
"""


def test_the_app_reads_while_the_engine_writes_fast(tmp_path):
    db = tmp_path / "runs.sqlite"
    Store(db).close()  # the app opened the store first
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db), "6", "6000"], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    reader = Store(db)
    reads, largest_wal, seen = 0, 0, 0
    while writer.poll() is None:  # what the Runs panel and the dashboard do, far more often
        runs = reader.runs(limit=500)
        if runs:
            seen = reader.db.execute("select count(*) from metrics where run_id = ?", [runs[0]["id"]]).fetchone()[0]
            reader.metrics(runs[0]["id"], "loss/kd/teacher-3")
        wal = db.with_name(db.name + "-wal")
        largest_wal = max(largest_wal, wal.stat().st_size if wal.exists() else 0)
        reads += 1
        time.sleep(0.01)
    out, err = writer.communicate()
    assert writer.returncode == 0, err  # a "database is locked" would end it with a traceback
    result = json.loads(out)
    rate = result["rows"] / result["seconds"]
    assert rate >= 5000, rate
    total = sqlite3.connect(db).execute("select count(*) from metrics where run_id = ?",
                                        [result["run_id"]]).fetchone()[0]
    assert total == result["rows"] and reads > 100 and seen > 0
    assert largest_wal < 32 * 1024 * 1024, largest_wal
    print(f"\n{result['rows']} rows at {rate:,.0f} rows/s; {reads} reads; largest WAL {largest_wal / 1e6:.1f} MB")
