"""`distill-studio [PROJECT]`: the desktop app.

    distill-studio [PROJECT]                    open the editor (on PROJECT if given)
    distill-studio [PROJECT] --screenshot PNG   render the window at a fixed size, save, exit 0
    distill-studio PROJECT --run [--quit-when-done] [--screenshot PNG]
                                                run it from the window as the Run button does;
                                                when done, save the window and exit (0: completed)
    distill-studio PROJECT --headless           run PROJECT through the engine, events as text

The app never trains in its own process: it starts the engine (`python -m engine …`) as a
child process and reads its events (in the installed app: its own executable, `--engine …`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from engine.text_safety import escape_lines
from gui.asset_paths import DEMO, app_icon_files
from gui.engine_client.engine_command import ENGINE_ENVIRONMENT, engine_command
from gui.engine_client.event_text import EventText

SCREENSHOT_SIZE = (1400, 860)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="distill-studio", description="Distill Studio: build a "
                                     "distillation pipeline on a canvas and run it.")
    parser.add_argument("project", nargs="?", type=Path, help="a .distill.json project file")
    parser.add_argument("--screenshot", type=Path, metavar="PNG",
                        help="render the main window, save it as PNG and exit")
    parser.add_argument("--run", action="store_true", help="start the run as the Run button does")
    parser.add_argument("--quit-when-done", action="store_true",
                        help="with --run: exit when the run ends (0 completed, 1 failed, 3 stopped)")
    parser.add_argument("--headless", action="store_true",
                        help="no window: run the project through the engine, events as text")
    parser.add_argument("--db", type=Path, help="the run store (default: in the user data dir)")
    parser.add_argument("--run-dir", type=Path, help="where a headless run keeps its files")
    args = parser.parse_args(argv)
    if args.project is not None and not args.project.is_file():
        print(f"distill-studio: no project file at {args.project}\n  hint: check the path; "
              f"the demo is {DEMO}", file=sys.stderr)
        return 2
    if args.headless:
        return run_headless(args.project or DEMO, args.db, args.run_dir)
    if args.run and args.project is None:
        parser.error("--run needs a PROJECT")
    return run_window(args.project, args.screenshot, args.db, args.run, args.quit_when_done)


EXIT_CODES = {"completed": 0, "failed": 1, "stopped": 3}


def run_window(project: Path | None, screenshot: Path | None, db: Path | None = None,
               run: bool = False, quit_when_done: bool = False) -> int:
    if screenshot and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # no screen needed for a picture
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Distill Studio")
    app.setOrganizationName("distill-studio")
    set_app_icon(app)
    settings = None
    if screenshot:  # a picture shows the default layout, not this user's
        import tempfile

        from PySide6.QtCore import QSettings

        settings = QSettings(str(Path(tempfile.mkdtemp()) / "settings.ini"), QSettings.IniFormat)
    window = MainWindow(settings=settings, db=db)
    if screenshot:
        window.resize(*SCREENSHOT_SIZE)
    window.show()
    if project is not None and not window.open_project(project, ask=False) and run:
        print(f"distill-studio: cannot open {project}", file=sys.stderr)
        return 2
    if run:
        def finish(status: str, message: str) -> None:
            if screenshot:
                window.view.fit_to_view()
                window.grab_screenshot(screenshot)
            if quit_when_done:
                window.undo_stack.setClean()
                print(f"run {status}: {message.splitlines()[0]}", flush=True)
                app.exit(EXIT_CODES.get(status, 1))

        window.runner.runEnded.connect(finish)
        if not window.runner.run_pipeline():
            print("distill-studio: the pipeline cannot run; see the message in the window",
                  file=sys.stderr)
            if quit_when_done:
                return 2
        if quit_when_done:
            code = app.exec()
            window.close()
            return code
        return app.exec()
    if screenshot:
        waited = [0]

        def shoot():  # wait (without blocking) until the model files have been read
            waited[0] += 1
            if window.model_inspector.busy and waited[0] < 200:
                QTimer.singleShot(100, shoot)
                return
            window.view.fit_to_view()
            if window.doc.nodes:
                window.scene.clearSelection()
                window.scene.node_items[next(iter(window.doc.nodes))].setSelected(True)
            QTimer.singleShot(200, lambda: (window.grab_screenshot(screenshot), app.exit(0)))

        QTimer.singleShot(300, shoot)
        code = app.exec()
        window.undo_stack.setClean()
        window.close()
        return code
    code = app.exec()
    if window.keep_engine_running:  # leave without destroying the engine's process object
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def set_app_icon(app) -> None:
    """The window icon (every size of assets/icons), and the desktop entry's name, by which
    desktops match the window to the menu entry's icon."""
    from PySide6.QtGui import QIcon

    app.setDesktopFileName("distill-studio")
    icon = QIcon()
    for path in app_icon_files():
        icon.addFile(str(path))
    app.setWindowIcon(icon)


def run_headless(project: Path, db: Path | None, run_dir: Path | None) -> int:
    program, arguments = engine_command(["run", str(project)])
    cmd = [program, *arguments]
    if db:
        cmd += ["--db", str(db)]
    if run_dir:
        cmd += ["--run-dir", str(run_dir)]
    text = EventText()
    with subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8",
                          errors="replace", bufsize=1, env={**os.environ, **ENGINE_ENVIRONMENT}) as engine:
        while True:
            try:
                for line in engine.stdout:
                    for out in text.feed(line):  # names from the spec: escaped for the terminal
                        print(escape_lines(out), flush=True)
                break
            except KeyboardInterrupt:  # the engine got the same signal: it checkpoints and stops
                print("stopping: the engine saves a checkpoint first…", flush=True)
        code = engine.wait()
    if text.finished is None:
        print(f"the engine exited with code {code} before finishing; see the messages above",
              file=sys.stderr)
    elif text.finished.status == "completed" and code != 0:  # the exit code has the last word
        print(f"the engine reported the run completed, then exited with code {code}: it failed",
              file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
