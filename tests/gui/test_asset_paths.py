"""The app's own files (examples, demo teachers, icons) are found from a checkout and, through
`sys._MEIPASS`, from the installed (PyInstaller) app."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import gui.asset_paths as asset_paths

ROOT = Path(__file__).resolve().parents[2]


def test_from_a_checkout_the_assets_are_beside_gui():
    assert asset_paths.ASSETS == ROOT / "assets"
    assert {p.name for p in asset_paths.EXAMPLES.glob("*.distill.json")} >= {
        "digits-experts.distill.json", "digits-compressed.distill.json"}
    assert asset_paths.DEMO.is_file()
    icons = asset_paths.app_icon_files()
    assert [p.name for p in icons] == [f"distill-studio-{n}.png" for n in asset_paths.ICON_SIZES]
    assert (asset_paths.ICONS / "distill-studio.svg").is_file()


def test_in_the_installed_app_the_assets_are_in_the_bundle(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    try:
        frozen = importlib.reload(asset_paths)
        assert frozen.EXAMPLES == tmp_path / "assets" / "examples"
        assert frozen.app_icon_files() == []  # nothing there yet: no icon rather than an error
    finally:
        monkeypatch.undo()
        importlib.reload(asset_paths)
    assert asset_paths.ASSETS == ROOT / "assets"


def test_the_app_sets_its_window_icon(qapp):
    from gui.app import set_app_icon

    set_app_icon(qapp)
    assert not qapp.windowIcon().isNull()
    assert len(qapp.windowIcon().availableSizes()) == len(asset_paths.ICON_SIZES)
    assert qapp.desktopFileName() == "distill-studio"  # installer/distill-studio.desktop
