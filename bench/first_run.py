"""A new user's first session, timed, through the real window: fresh settings and a fresh run
store, the welcome page's "Open the demo", Check Pipeline, Run, then the result bar's "Export…"
until the verified int8 file's report is on screen. With --tour it goes on through the rest of
issue 20's points: Open Folder's fallback, a cancelled export, the Undo button, a second run
compared with the first, a long message read in full, a teacher's classes read from its file,
and a broken pipeline whose problems are all listed, marked on their nodes, with Run refused.
A screenshot at each step goes to --shots. Prints one JSON object of figures.

    xvfb-run -a -s "-screen 0 1600x1100x24" .venv/bin/python bench/first_run.py --tour --shots DIR
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=Path, default=Path(tempfile.mkdtemp(prefix="first-run-")))
    parser.add_argument("--size", default="1600x1000", help="the window's size, WxH")
    parser.add_argument("--theme", default="", help="system, light or dark: View → Theme first")
    parser.add_argument("--tour", action="store_true", help="go on through the rest of issue 20's points")
    args = parser.parse_args()
    args.shots.mkdir(parents=True, exist_ok=True)

    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QMessageBox, QToolBar

    from gui.document.commands import SetProps
    from scripts.window_driver import WindowDriver

    d = WindowDriver(args.size, "first-run-home-")
    window, wait = d.window, d.wait
    if args.theme:
        d.theme(args.theme)
    times: dict[str, float] = {}

    def shoot(name: str, widget=None) -> None:
        d.shoot(args.shots / f"{name}.png", widget)

    def box(name: str) -> QMessageBox | None:
        return window.findChild(QMessageBox, name)

    # 1. the welcome page: the demo one click away, the three steps
    wait(window.isVisible, 10, "the window")
    times["window_shown_s"] = d.elapsed()
    shoot("01-welcome")
    QTest.mouseClick(window.welcome.demo_button, Qt.LeftButton)
    wait(lambda: window.doc.student() is not None, 10, "the demo")
    wait(lambda: window.model_inspector.busy == 0, 60, "the teachers' files")
    shoot("02-demo-fitted")  # item 7: readable cards, fitted on open

    # 9. a wait with words: Check Pipeline
    window.check_pipeline()
    shoot("03-checking")
    wait(lambda: window.act_check.isEnabled(), 60, "the check")
    shoot("04-checked")

    # the run: engine start, ETA, result bar, charts
    ended: list[tuple[str, str]] = []
    window.runner.runEnded.connect(lambda status, message: ended.append((status, message)))
    window.runner.act_run.trigger()
    shoot("05-engine-starting")
    wait(lambda: "ETA about" in window.runner.run_label.text() or ended, 120, "an ETA")
    shoot("06-running-eta")
    wait(lambda: bool(ended), 600, "the run")
    times["run_completed_s"] = d.elapsed()
    wait(window.result_bar.isVisible, 5, "the result bar")
    window.dashboard_dock.raise_()
    shoot("07-result-bar-and-charts")  # items 1 and 5
    window.dashboard.log_loss.setChecked(True)
    shoot("08-charts-log-scale", window.dashboard)
    window.dashboard.log_loss.setChecked(False)

    # 1. Export… from the result bar, to the verified int8 file
    QTest.mouseClick(window.result_bar.export_button, Qt.LeftButton)
    wait(lambda: window.bar_export or window.pending_export is not None, 10, "the export to start")
    wait(lambda: window.pending_export is None and not window.bar_export, 900, "the export")
    times["exported_s"] = d.elapsed()
    report = window.export_panel.report or {}
    result = window.result_bar.label.text()
    window.export_dock.raise_()
    shoot("09-export-report")  # item 2: warmed-up medians
    if args.tour:
        tour(d, args, shoot, box, QTest, Qt, QPointF, QToolBar, SetProps)
    print(json.dumps({"first_run_wall_s": round(times["exported_s"], 1),
                      **{k: round(v, 1) for k, v in times.items()},
                      "result_bar": result,
                      "files": sorted(report.get("files", {})), "shots": str(args.shots)}, indent=1))
    d.close()
    return 0 if report.get("files", {}).get("onnx_int8") else 1


def tour(d, args, shoot, box, QTest, Qt, QPointF, QToolBar, SetProps) -> None:  # noqa: N803 (Qt names)
    """Issue 20's other points, after the first export."""
    window, wait, pump = d.window, d.wait, d.pump
    ended: list[tuple[str, str]] = []
    window.runner.runEnded.connect(lambda status, message: ended.append((status, message)))
    QTest.mouseClick(window.result_bar.open_button, Qt.LeftButton)
    pump(0.5)
    if window.folder_dialog is not None and window.folder_dialog.isVisible():  # no file manager here
        shoot("10-open-folder-fallback", window.folder_dialog)
        window.folder_dialog.close()

    # 10. a cancelled export keeps the last report
    window.export_panel.start()
    wait(lambda: window.export_panel.engine.running, 10, "a second export")
    window.export_panel.engine.cancel()
    wait(lambda: not window.export_panel.engine.running, 30, "the cancel")
    shoot("11-export-cancelled", window.export_panel)

    # 6. a second run, compared with the first
    student = window.doc.student()
    training = {**student.props["training"], "epochs": 4}
    window.undo_stack.push(SetProps(window.doc, student.id, {**student.props, "training": training}, "training"))
    toolbar = window.findChild(QToolBar)
    shoot("12-undo-button", toolbar)  # item 10: "Undo", the edit in its tooltip
    ended.clear()
    window.runner.act_run.trigger()
    wait(lambda: bool(ended), 600, "the second run")
    window.runs_dock.raise_()
    window.runs.select_ids([r["id"] for r in window.store.runs()][:2])
    pump(0.5)
    shoot("13-runs-compared", window.runs)

    # 8. a message too long for the status bar, read in full
    window.statusBar().showMessage("Cannot use digits-bad.onnx: the file is not a valid ONNX model "
                                   "(Error parsing message with type 'onnx.ModelProto'); hint: re-export the "
                                   "model to ONNX; the file may be damaged or of another format, or was "
                                   "cut short while copying", 60000)
    shoot("14-long-message")
    long_message = window.statusBar()
    long_message.show_full()
    shoot("14b-long-message-read", long_message.full_box)
    long_message.full_box.close()

    # 3. a teacher file without class names: numbered from its output width
    from tests.gui.helpers import drop, file_mime

    window.undo_stack.setClean()
    window.new_project()
    teacher_file = d.home / "expert.onnx"
    shutil.copyfile(ROOT / "assets/teachers/digits-4-7.onnx", teacher_file)
    drop(window.view, file_mime(teacher_file), QPointF(0, 0))
    wait(lambda: window.model_inspector.busy == 0 and window.doc.of_kind("teacher"), 60, "the teacher's file")
    pump(0.5)
    window.scene.clearSelection()
    window.scene.node_items[window.doc.of_kind("teacher")[0].id].setSelected(True)
    shoot("15-teacher-classes")

    # 4. every problem at once, on its nodes; Run refused
    broken = d.home / "broken"
    broken.mkdir()
    header = ",".join([f"p{i}" for i in range(64)] + ["label"])
    from sklearn.datasets import load_digits

    digits = load_digits()
    rows = [",".join([str(int(v)) for v in x] + [str(y)]) for x, y in zip(digits.data[:300], digits.target[:300])]
    cells = rows[5].split(",")
    cells[10] = ""
    rows[5] = ",".join(cells)
    (broken / "digits.csv").write_text("\n".join([header] + rows) + "\n")
    damaged = (ROOT / "assets/teachers/digits-4-7.onnx").read_bytes()
    (broken / "middle.onnx").write_bytes(damaged[: len(damaged) // 2])
    spec = json.loads((ROOT / "assets/examples/digits-experts.distill.json").read_text())
    spec["data"] = {"format": "csv", "path": "digits.csv", "label_column": "label"}
    for t in spec["teachers"]:
        t["path"] = str((ROOT / "assets/examples" / t["path"]).resolve())
    spec["teachers"][1]["path"] = "middle.onnx"
    (broken / "broken.distill.json").write_text(json.dumps(spec, indent=1))
    window.undo_stack.setClean()
    window.open_project(broken / "broken.distill.json", ask=False)
    wait(lambda: window.model_inspector.busy == 0, 60, "the files")
    window.check_pipeline()
    wait(lambda: box("problems-box") is not None and box("problems-box").isVisible(), 90, "the problems")
    shoot("16-check-problems", box("problems-box"))
    box("problems-box").close()
    pump(0.3)
    shoot("17-nodes-red")
    window.runner.run_pipeline()
    shoot("18-run-refused", window.runner.last_problem_box)
    window.runner.last_problem_box.close()



if __name__ == "__main__":
    sys.exit(main())
