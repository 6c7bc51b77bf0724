"""The image-folder example from the window: opened, its folder scanned onto the data node,
run with the engine streaming the photos, to a completed run with the teachers' outputs cached."""

from __future__ import annotations

import json

import pytest

from tests.gui.helpers import start_run
from tests.helpers import ROOT, write_spec

EXAMPLE = ROOT / "assets" / "examples" / "digit-photos.distill.json"


def example_with_absolute_paths(epochs: int) -> dict:
    spec = json.loads(EXAMPLE.read_text())
    for key in ("path", "unlabeled", "test_folder"):
        spec["data"][key] = str((EXAMPLE.parent / spec["data"][key]).resolve())
    for t in spec["teachers"]:
        t["path"] = str((EXAMPLE.parent / t["path"]).resolve())
    spec["training"].update(epochs=epochs)
    spec["training"]["augment"]["views"] = 2
    spec["compression"] = []
    return spec


@pytest.mark.slow
def test_the_example_opens_with_its_folder_scanned(window, qtbot):
    assert window.open_project(EXAMPLE, ask=False)  # relative folder paths, as shipped
    data = window.doc.of_kind("data")[0]
    qtbot.waitUntil(lambda: "scan" in window.doc.nodes[data.id].info, timeout=60000)
    scan = window.doc.nodes[data.id].info["scan"]
    assert scan["images"] == 500 and len(scan["counts"]) == 10
    from gui.canvas.items import summary

    assert "10 classes · 500 images" in " ".join(summary(window.doc.nodes[data.id]))


@pytest.mark.slow
def test_a_run_of_the_folder_example_from_the_window(window, qtbot, tmp_path):
    ended = start_run(window, qtbot, write_spec(tmp_path, example_with_absolute_paths(2), "photos.distill.json"))
    qtbot.waitUntil(lambda: bool(ended), timeout=240000)
    assert ended[0][0] == "completed", ended
    events = window.runner.engine_events
    assert any("streamed from disk" in getattr(e, "message", "") for e in events if e.event == "log")
    finished = next(e for e in events if e.event == "finished")
    assert finished.final["test/acc"] > 0.8
    teachers = window.doc.of_kind("teacher")
    assert all("cached" in window.scene.node_items[t.id].live for t in teachers)
