"""Epoch time with 1, 2, 4 and 8 teachers, teacher outputs cached and live; one JSON object on
the last line.

    .venv/bin/python bench/teacher_scaling.py [--epochs 8] [--threads 2]

Each configuration is a real engine run of the demo pipeline (the digits, an MLP 256×2
student) with its teachers repeated to make K (the three demo experts, in turn). Epoch time
is the median gap between epoch-end checkpoints after the first epoch. Key `ratio_8_to_1`:
epoch time with 8 teachers over 1, outputs cached (goal ≤ 1.1).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINE_MAIN = str(ROOT / "engine" / "__main__.py")  # by absolute path with -P: nothing from the working directory
DEMO = ROOT / "assets" / "examples" / "digits-experts.distill.json"


def spec_with(k: int, mode: str, epochs: int, threads: int) -> dict:
    spec = json.loads(DEMO.read_text())
    base = spec["teachers"]
    spec["teachers"] = []
    for i in range(k):
        t = dict(base[i % len(base)])
        t["name"] = f"{t['name']} #{i + 1}"
        t["path"] = str((DEMO.parent / t["path"]).resolve())
        spec["teachers"].append(t)
    spec["training"].update(epochs=epochs, cpu_threads=threads, teacher_outputs=mode)
    return spec


def epoch_time(spec: dict, folder: Path) -> float:
    folder.mkdir(parents=True)
    (folder / "spec.distill.json").write_text(json.dumps(spec))
    proc = subprocess.run([sys.executable, "-P", ENGINE_MAIN, "run", str(folder / "spec.distill.json"),
                           "--run-dir", str(folder / "run"), "--db", str(folder.parent / "db.sqlite")],
                          cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-2000:])
    ends = [e["time"] for e in map(json.loads, proc.stdout.splitlines()) if e["event"] == "checkpoint"]
    return statistics.median(b - a for a, b in zip(ends[1:], ends[2:], strict=False))  # after the first epoch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    times: dict[str, dict[int, float]] = {"cache": {}, "live": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("cache", "live"):
            for k in (1, 2, 4, 8):
                times[mode][k] = epoch_time(spec_with(k, mode, args.epochs, args.threads),
                                            Path(tmp) / f"{mode}-{k}")
                print(f"{mode} K={k}: {times[mode][k] * 1000:.1f} ms per epoch", file=sys.stderr)
    result = {
        "epoch_ms": {mode: {str(k): round(v * 1000, 1) for k, v in t.items()} for mode, t in times.items()},
        "ratio_8_to_1": round(times["cache"][8] / times["cache"][1], 3),
        "ratio_8_to_1_live": round(times["live"][8] / times["live"][1], 3),
        "threads": args.threads, "epochs": args.epochs,
    }
    result["goal_ratio_8_to_1<=1.1"] = result["ratio_8_to_1"] <= 1.1
    print(json.dumps(result))


if __name__ == "__main__":
    main()
