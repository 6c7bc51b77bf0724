"""Render assets/icons/distill-studio.svg to the PNG sizes desktops ask for (Qt's SVG renderer).

    .venv/bin/python assets/icons/render_icons.py

Writes distill-studio-<N>.png beside the SVG for N in SIZES; run it again after editing the SVG.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SVG = HERE / "distill-studio.svg"
SIZES = (16, 32, 48, 64, 128, 256, 512)


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 — fonts, image plugins
    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        print(f"render_icons: {SVG} is not a valid SVG", file=sys.stderr)
        return 1
    for size in SIZES:
        image = QImage(size, size, QImage.Format_ARGB32)
        image.fill(Qt.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.Antialiasing)
        renderer.render(painter)
        painter.end()
        out = HERE / f"distill-studio-{size}.png"
        if not image.save(str(out)):
            print(f"render_icons: could not write {out}", file=sys.stderr)
            return 1
        print(out.relative_to(HERE.parent.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
