"""The README's screenshots of the examples, taken through the real window with fresh settings and
a fresh run store (`make screenshot` also renews the demo's three):

- assets/screenshot-student.png: the ResNet example, its student's size in the inspector;
- assets/screenshot-folder.png: the image-folder example, the data node's scan and photos;
- assets/screenshot-text.png: the text example after a run from the Run button, its data node's
  texts per class in the inspector;
- assets/screenshot-dark.png: the same in View → Theme → Dark, with the run's curves;
- docs/self-supervised-run.png: the text example again, its student first pretrained
  self-supervised (masked tokens): the pretraining loss's chart and the linear probe's dot.

    xvfb-run -a -s "-screen 0 1600x1100x24" .venv/bin/python scripts/screenshots.py [OUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EXAMPLES = ROOT / "assets" / "examples"


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "assets"
    out.mkdir(parents=True, exist_ok=True)
    from PySide6.QtWidgets import QLabel, QScrollArea

    from scripts.window_driver import WindowDriver

    d = WindowDriver("1600x1000", "screenshots-")
    window, wait, settle = d.window, d.wait, d.pump

    def open_example(name: str) -> None:
        window.undo_stack.setClean()
        assert window.open_project(EXAMPLES / f"{name}.distill.json", ask=False)
        wait(lambda: window.model_inspector.busy == 0 and not window.busy.isVisible(), 120, "the example's files")

    def select(kind: str, scroll_to_end: bool = False) -> None:
        node = window.doc.of_kind(kind)[0]
        window.scene.clearSelection()
        window.scene.node_items[node.id].setSelected(True)
        settle()
        bar = window.inspector.findChild(QScrollArea).verticalScrollBar()
        bar.setValue(bar.maximum() if scroll_to_end else 0)
        settle()

    open_example("digits-resnet")
    select("student")
    window.grab_screenshot(out / "screenshot-student.png")

    open_example("digit-photos")
    wait(lambda: all("scan" in n.info or "error" in n.info for n in window.doc.of_kind("data")), 120, "the scan")
    select("data", scroll_to_end=True)  # the scan's photos per class
    window.grab_screenshot(out / "screenshot-folder.png")

    open_example("package-descriptions")
    ended: list[str] = []
    window.runner.runEnded.connect(lambda status, _message: ended.append(status))
    assert window.runner.run_pipeline()
    wait(lambda: bool(ended), 900, "the text example's run")
    window.result_bar.close_button.click()
    select("data", scroll_to_end=True)
    window.grab_screenshot(out / "screenshot-text.png")
    window.dashboard_dock.raise_()
    d.theme("dark")
    window.grab_screenshot(out / "screenshot-dark.png")
    d.theme("light")

    student = window.doc.of_kind("student")[0]  # Start from: self_supervised, as the inspector sets it
    props = dict(student.props, init={"kind": "self_supervised", "pretraining": {"epochs": 2}})
    window.doc.set_props(student.id, props)
    assert window.runner.run_pipeline()
    wait(lambda: len(ended) == 2, 900, "the text example's run with pretraining")
    window.result_bar.close_button.click()
    select("student")
    area = window.inspector.findChild(QScrollArea)  # its Initial weights: the pretraining's settings
    heading = area.widget().findChild(QLabel, "heading-init")
    area.verticalScrollBar().setValue(heading.mapTo(area.widget(), heading.rect().topLeft()).y() - 8)
    settle()
    window.dashboard_dock.raise_()
    docs = ROOT / "docs" if len(sys.argv) == 1 else out
    window.grab_screenshot(docs / "self-supervised-run.png")
    print(f"text example runs: {', '.join(ended)}; screenshots in {out} and {docs}")
    d.close()
    return 0 if ended == ["completed", "completed"] else 1


if __name__ == "__main__":
    sys.exit(main())
