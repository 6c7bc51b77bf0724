"""`distill-studio [PROJECT]`: open a project and run it.

The windowed editor is built on this same path: the app never trains in its own process; it
starts the engine (`python -m engine run PROJECT`) as a child process and reads its events.
Until the editor lands, the app runs the project headless and shows the events as text.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from gui.event_text import EventText

DEMO = Path(__file__).resolve().parent.parent / "assets" / "examples" / "digits-experts.distill.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="distill-studio", description="Open and run a Distill "
                                     "Studio project (default: the bundled digits demo).")
    parser.add_argument("project", nargs="?", type=Path, default=DEMO,
                        help="a .distill.json project file")
    parser.add_argument("--db", type=Path, help="the run store (default: in the user data dir)")
    parser.add_argument("--run-dir", type=Path, help="where to keep the run's files")
    args = parser.parse_args(argv)
    if not args.project.is_file():
        print(f"distill-studio: no project file at {args.project}\n  hint: check the path; "
              f"the demo is {DEMO}", file=sys.stderr)
        return 2

    cmd = [sys.executable, "-m", "engine", "run", str(args.project)]
    if args.db:
        cmd += ["--db", str(args.db)]
    if args.run_dir:
        cmd += ["--run-dir", str(args.run_dir)]
    text = EventText()
    with subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                          bufsize=1) as engine:
        while True:
            try:
                for line in engine.stdout:
                    for out in text.feed(line):
                        print(out, flush=True)
                break
            except KeyboardInterrupt:  # the engine got the same signal: it checkpoints and stops
                print("stopping: the engine saves a checkpoint first…", flush=True)
        code = engine.wait()
    if text.finished is None:
        print(f"the engine exited with code {code} before finishing; see the messages above",
              file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
