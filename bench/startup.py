"""Time from launch to the main window shown with the demo project on the canvas, against a
minimal script that imports PySide6 and pyqtgraph and shows a window with one plot; the two
alternated in one run. One JSON object on the last line.

    .venv/bin/python bench/startup.py [--rounds 5]

Both run offscreen and end the same way: the shown window rendered to a PNG, then exit (the
app goes the way `distill-studio PROJECT` does: window, project opened, first paint; the model
files' details arrive afterwards from a background process, as they do for a user).
Key `ratio` = app / minimal (goal ≤ 1.3). Also checks that the app never imported torch.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "assets" / "examples" / "digits-experts.distill.json"

MINIMAL = """
import sys
import pyqtgraph as pg
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication(sys.argv)
window = QMainWindow()
window.setCentralWidget(pg.PlotWidget())
window.resize(1400, 860)
window.show()
app.processEvents()
window.grab().save(sys.argv[1])
"""

APP = """
import os, sys, tempfile
from pathlib import Path
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
from gui.main_window import MainWindow
app = QApplication(sys.argv[:1])
settings = QSettings(str(Path(tempfile.mkdtemp()) / "settings.ini"), QSettings.IniFormat)
window = MainWindow(settings=settings, db=Path(tempfile.mkdtemp()) / "runs.sqlite")
window.resize(1400, 860)
window.show()
window.open_project(Path(sys.argv[2]), ask=False)  # the model files are read in the background
app.processEvents()
window.grab().save(sys.argv[1])
assert "torch" not in sys.modules, "the app imported torch"
for reader in list(window.model_inspector._running):  # timed up to here; do not let them
    reader.kill()                                      # run on into the next measurement
    reader.waitForFinished(5000)
os._exit(0)
"""


def timed(script: str, png: Path) -> float:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", script, str(png), str(DEMO)], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0 or not png.is_file():
        raise SystemExit(proc.stderr[-2000:])
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    app_s, minimal_s = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds + 1):  # round 0 warms the file cache
            a = timed(APP, Path(tmp) / f"app{r}.png")
            m = timed(MINIMAL, Path(tmp) / f"min{r}.png")
            if r:
                app_s.append(a)
                minimal_s.append(m)
    app, minimal = statistics.median(app_s), statistics.median(minimal_s)
    result = {"app_s": round(app, 3), "minimal_s": round(minimal, 3), "ratio": round(app / minimal, 3),
              "rounds": args.rounds}
    result["goal_ratio<=1.3"] = result["ratio"] <= 1.3
    print(json.dumps(result))


if __name__ == "__main__":
    main()
