"""A look at the Insights panel: the main window with the fixture's insights, one PNG per tab.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python tests/gui/insights_screenshot.py OUT_DIR [KIND]

(or QT_QPA_PLATFORM=offscreen). KIND: image (default), text or table.
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
from tests.gui.insights_fixture import write_insights  # noqa: E402


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "insights-shots")
    kind = sys.argv[2] if len(sys.argv) > 2 else "image"
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv)
    work = Path(tempfile.mkdtemp(prefix="insights-shot-"))
    settings = QSettings(str(work / "settings.ini"), QSettings.IniFormat)
    window = MainWindow(settings, db=work / "runs.sqlite")
    window.resize(1500, 950)
    run_dir = work / "run"
    run_dir.mkdir()
    (run_dir / "student.safetensors").write_bytes(b"")
    write_insights(run_dir, kind)
    run_id = window.store.create_run("pets and birds", "{}", "hash", run_dir, "cpu")
    window.store.finish_run(run_id, "completed", {"val/acc": 0.9})
    window.runs.refresh()
    window.show()
    window.resizeDocks([window.insights_dock], [620], Qt.Vertical)
    window.show_insights(run_id)
    panel = window.insights
    for i in range(panel.tabs.count()):
        panel.tabs.setCurrentIndex(i)
        for _ in range(5):
            app.processEvents()
        key = list(panel.pages)[i]
        window.grab_screenshot(out / f"window-{kind}-{key}.png")
        panel.save_picture(key, out / f"picture-{kind}-{key}.png")
    window.undo_stack.setClean()
    window.close()


if __name__ == "__main__":
    main()
