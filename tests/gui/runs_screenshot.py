"""A look at the runs comparison: the main window, its Runs panel showing the fixture's three
runs (tests/gui/runs_fixture.py) selected, side by side.

    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/gui/runs_screenshot.py OUT.png
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QSettings, Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from gui.main_window import MainWindow  # noqa: E402
from tests.gui.runs_fixture import write_runs  # noqa: E402


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs-compare.png")
    app = QApplication.instance() or QApplication(sys.argv)
    work = Path(tempfile.mkdtemp(prefix="runs-shot-"))
    ids = write_runs(work / "runs.sqlite", work)
    settings = QSettings(str(work / "settings.ini"), QSettings.IniFormat)
    window = MainWindow(settings, db=work / "runs.sqlite")
    window.resize(1500, 950)
    window.show()
    window.runs_dock.raise_()
    window.resizeDocks([window.runs_dock], [560], Qt.Vertical)
    window.runs.refresh()
    window.runs.select_ids(ids)
    for _ in range(10):
        app.processEvents()
    window.grab().save(str(out))
    window.undo_stack.setClean()
    window.close()


if __name__ == "__main__":
    main()
