"""The dashboard under a heavy event stream, offscreen; one JSON object on the last line.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/gui_stream.py [--seconds 10] [--rate 2000]

1. A synthetic engine stream of `rate` metric events per second (JSON lines, read by the app's
   EventReader and handed to the dashboard as the run controller does) for `seconds`, while a
   10 ms probe timer measures how late the event loop runs: `p99_latency_ms` (goal < 50) and
   `dropped` (events whose points are missing from the curves; goal 0).
2. `redraw_ms`: one full dashboard update — new data handed to 8 curves of 1e6 points each
   and the plots rendered — median of several (goal < 16).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gui.engine_client.events import EventReader  # noqa: E402
from gui.panels.dashboard import Dashboard  # noqa: E402

NAMES = ["loss/total", "loss/kd", "loss/ce", "lr"]


def stream(app: QApplication, seconds: float, rate: int) -> dict:
    dash = Dashboard()
    dash.resize(1200, 420)
    dash.show()
    sent, lateness, reader = 0, [], EventReader()
    start = time.perf_counter()
    per_tick = max(1, rate // 200)  # a tick every 5 ms

    def feed() -> None:
        nonlocal sent
        due = int((time.perf_counter() - start) * rate)
        while sent < due:
            line = json.dumps({"event": "metric", "time": time.time(), "step": sent, "epoch": sent / 1000,
                               "values": {n: 1.0 / (1 + sent) + i for i, n in enumerate(NAMES)}})
            for event in reader.read_line(line):  # typed and checked, as the run client reads
                dash.add_metrics(event.epoch, event.values)
            sent += 1

    last = [time.perf_counter()]

    def probe() -> None:
        now = time.perf_counter()
        lateness.append(max(0.0, (now - last[0]) * 1000 - 10))
        last[0] = now

    feeder, prober = QTimer(interval=5), QTimer(interval=10)
    feeder.timeout.connect(feed)
    prober.timeout.connect(probe)
    feeder.start()
    prober.start()
    del per_tick
    while time.perf_counter() - start < seconds:
        app.processEvents()
    feeder.stop()
    prober.stop()
    feed()
    app.processEvents()
    received = min(dash.points(n) for n in NAMES)
    dash.close()
    return {"events": sent, "dropped": sent - received,
            "p99_latency_ms": round(float(np.percentile(lateness, 99)), 2),
            "median_latency_ms": round(statistics.median(lateness), 2)}


def redraw(app: QApplication, points: int, curves: int = 8, repeats: int = 7) -> float:
    dash = Dashboard()
    dash.resize(1200, 420)
    dash.show()
    x = np.linspace(0, 100, points)
    rng = np.random.default_rng(0)
    for c in range(curves):
        name = f"loss/kd/teacher {c}"
        dash.add_metrics(0.0, {name: 0.0})
        dash.series[name].extend(x[1:], np.cumsum(rng.normal(size=points - 1)) / 100 + c)
    dash._redraw()
    dash.graphics.grab()  # the first render (caches, fonts)
    times = []
    for r in range(repeats):
        for c in range(curves):  # new data on every curve, as when a run streams
            name = f"loss/kd/teacher {c}"
            dash.series[name].append(100.0 + r, float(c))
            dash._dirty.add(name)
        start = time.perf_counter()
        dash._redraw()
        dash.graphics.grab()  # render the plots
        times.append((time.perf_counter() - start) * 1000)
    dash.close()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--points", type=int, default=1_000_000)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication(sys.argv)
    result = stream(app, args.seconds, args.rate)
    result["redraw_ms"] = round(redraw(app, args.points), 2)
    result.update(rate=args.rate, seconds=args.seconds, curves=8, points_per_curve=args.points)
    result["goals"] = {"p99_latency_ms<50": result["p99_latency_ms"] < 50, "dropped==0": result["dropped"] == 0,
                       "redraw_ms<16": result["redraw_ms"] < 16}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
