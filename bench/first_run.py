"""A new user's first run, timed: the app starts with fresh settings and a fresh run store, the
welcome page's "Open the demo" is clicked, then Run, then the result bar's "Export…", until the
export report is on screen. Screenshots of the welcome page, the result bar and the export report
go to --shots. Prints one JSON object of figures.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python bench/first_run.py --shots /tmp/shots
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=Path, default=Path(tempfile.mkdtemp(prefix="first-run-")))
    parser.add_argument("--size", default="1600x1000", help="the window's size, WxH")
    args = parser.parse_args()
    args.shots.mkdir(parents=True, exist_ok=True)

    from PySide6.QtCore import QSettings, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    home = Path(tempfile.mkdtemp(prefix="first-run-home-"))
    t0 = time.perf_counter()
    window = MainWindow(QSettings(str(home / "settings.ini"), QSettings.IniFormat), db=home / "runs.sqlite")
    window.resize(*(int(v) for v in args.size.split("x")))
    window.show()
    times: dict[str, float] = {}
    shots: dict[str, str] = {}

    def wait(cond, timeout_s: float, what: str) -> None:
        end = time.perf_counter() + timeout_s
        while not cond():
            if time.perf_counter() > end:
                raise TimeoutError(f"waited {timeout_s:.0f} s for {what}")
            app.processEvents()
            time.sleep(0.02)

    def shoot(name: str) -> None:
        for _ in range(10):
            app.processEvents()
            time.sleep(0.02)
        path = args.shots / f"{name}.png"
        window.grab().save(str(path))
        shots[name] = str(path)

    wait(lambda: window.isVisible(), 10, "the window")
    times["window_shown_s"] = time.perf_counter() - t0
    assert window.welcome_shown, "the welcome page is not on show"
    shoot("1-welcome")

    QTest.mouseClick(window.welcome.demo_button, Qt.LeftButton)
    wait(lambda: not window.welcome_shown and window.doc.student() is not None, 10, "the demo")
    wait(lambda: window.model_inspector.busy == 0, 60, "the teachers' files")
    times["demo_open_s"] = time.perf_counter() - t0
    shoot("2-demo-opened")

    ended: list[tuple[str, str]] = []
    window.runner.runEnded.connect(lambda status, message: ended.append((status, message)))
    window.runner.act_run.trigger()
    wait(lambda: bool(ended), 600, "the run")
    times["run_completed_s"] = time.perf_counter() - t0
    if ended[0][0] != "completed":
        print(json.dumps({"error": ended[0]}))
        return 1
    wait(lambda: window.result_bar.isVisible(), 5, "the result bar")
    shoot("3-result-bar")

    QTest.mouseClick(window.result_bar.export_button, Qt.LeftButton)
    wait(lambda: window.bar_export or window.pending_export is not None, 10, "the export to start")
    wait(lambda: window.pending_export is None and not window.bar_export, 900, "the export")
    times["exported_s"] = time.perf_counter() - t0
    report = window.export_panel.report
    shoot("4-export-report")
    figures = {"first_run_wall_s": round(times["exported_s"], 1),
               **{k: round(v, 1) for k, v in times.items()},
               "result_bar": window.result_bar.label.text(),
               "export_folder": (report or {}).get("folder"),
               "files": sorted((report or {}).get("files", {})),
               "shots": shots}
    print(json.dumps(figures, indent=1))
    window.undo_stack.setClean()
    window.close()
    return 0 if report else 1


if __name__ == "__main__":
    sys.exit(main())
