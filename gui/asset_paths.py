"""Where the app's own files are: example projects, demo teachers, icons.

From a checkout they are in assets/ beside gui/; in the installed app (PyInstaller) the build
puts them at the same place relative to the bundle's root, `sys._MEIPASS`.
"""

from __future__ import annotations

import sys
from pathlib import Path

ASSETS = Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parent.parent)) / "assets"
EXAMPLES = ASSETS / "examples"
DEMO = EXAMPLES / "digits-experts.distill.json"
ICONS = ASSETS / "icons"
ICON_SIZES = (16, 32, 48, 64, 128, 256, 512)  # distill-studio-<N>.png, rendered from the SVG


def app_icon_files() -> list[Path]:
    """The window icon's pictures, smallest first (those that exist)."""
    return [p for n in ICON_SIZES if (p := ICONS / f"distill-studio-{n}.png").is_file()]
