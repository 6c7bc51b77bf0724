"""Time the bundled demo through the real engine process; print one JSON object of figures.

    .venv/bin/python bench/demo_run.py [--repeats 3]

Figures: wall seconds per run (process start to exit), seconds until the `started` event
(imports, data, teachers), training samples/s from the progress events, and accuracy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINE_MAIN = str(ROOT / "engine" / "__main__.py")  # by absolute path with -P: nothing from the working directory
DEMO = ROOT / "assets" / "examples" / "digits-experts.distill.json"


def one_run(folder: Path) -> dict:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-P", ENGINE_MAIN, "run", str(DEMO), "--run-dir",
                             str(folder / "run"), "--db", str(folder / "db.sqlite")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    started_at, rates, finished = None, [], None
    for line in proc.stdout:
        event = json.loads(line)
        if event["event"] == "started":
            started_at = time.perf_counter() - start
        elif event["event"] == "progress":
            rates.append(event["samples_per_s"])
        elif event["event"] == "finished":
            finished = event
    proc.wait()
    return {"wall_s": time.perf_counter() - start, "startup_s": started_at,
            "samples_per_s": statistics.median(rates), "val_acc": finished["best"]["val/acc"],
            "test_acc": finished["final"]["test/acc"], "status": finished["status"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(one_run(Path(tmp)))
    print(json.dumps({
        "bench": "demo_run", "repeats": args.repeats,
        "wall_s_median": round(statistics.median(r["wall_s"] for r in runs), 2),
        "startup_s_median": round(statistics.median(r["startup_s"] for r in runs), 2),
        "train_samples_per_s_median": round(statistics.median(r["samples_per_s"] for r in runs)),
        "val_acc": runs[-1]["val_acc"], "test_acc": runs[-1]["test_acc"],
        "all_completed": all(r["status"] == "completed" for r in runs),
    }))


if __name__ == "__main__":
    main()
