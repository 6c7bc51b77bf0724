"""Image folders in the app: dropped from the file manager onto the canvas, chosen with a folder
picker, scanned by a real engine child (progress, cancel, scan again), counted on the node and
shown as a thumbnail grid in the inspector, with the one-click "Use these N classes"."""

from __future__ import annotations

import pytest
import shiboken6
from PIL import Image
from PySide6.QtCore import QPointF, QProcess
from PySide6.QtWidgets import QFileDialog, QLabel, QPushButton

from gui.canvas.items import summary
from gui.document.commands import AddNode
from gui.document.kinds import default_props
from gui.document.model import Node
from gui.document.validation import ERROR, node_status
from tests.gui.helpers import drop, file_mime

pytestmark = pytest.mark.slow  # a real engine process scans each folder


def pets(root):
    for i in range(4):
        (root / "cat").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 30), (220, 30 * i, 40)).save(root / "cat" / f"c{i}.png")
    for i in range(5):
        (root / "dog").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (30, 60), (30, 30 * i, 200)).save(root / "dog" / f"d{i}.jpg")
    (root / "dog" / "broken.jpg").write_bytes(b"not a jpeg at all")
    return root


def scanned(node) -> bool:
    return "scan" in node.info or "error" in node.info


def folder_nodes(window):
    return [n for n in window.doc.of_kind("data") if n.props.get("format") == "folder"]


def test_dropped_folder_becomes_a_scanned_data_node_with_counts_and_thumbnails(window, qtbot, tmp_path):
    root = pets(tmp_path / "pets")
    student = Node(window.doc.new_id("student"), "student", default_props("student"), (400, 0))
    window.undo_stack.push(AddNode(window.doc, student))
    seen: list[dict] = []
    window.doc.nodeChanged.connect(lambda nid: seen.append(dict(window.doc.nodes[nid].info)))
    assert drop(window.view, file_mime(root), QPointF(0, 0))
    [node] = folder_nodes(window)
    assert node.props["path"] == str(root) and node.props["format"] == "folder"
    assert "scanning" in node.info  # at once: the engine works in its own process
    qtbot.waitUntil(lambda: scanned(window.doc.nodes[node.id]), timeout=30000)
    node = window.doc.nodes[node.id]
    assert node.info["scan"]["counts"] == {"cat": 4, "dog": 6}
    assert any(i.get("scanning") == 10 for i in seen)  # the listing's count was shown on the way
    item = window.scene.node_items[node.id]
    assert "2 classes · 10 images" in item.lines and item.lines[0] == "Images: pets"
    # the student's classes are the digits: the node says so, the inspector offers the fix
    state, reason = node_status(window.doc, node)
    assert state == ERROR and "cat, dog" in reason and "Use these 2 classes" in reason
    item.setSelected(True)
    inspector = window.inspector
    status = inspector.findChild(QLabel, "folder-scan-status")
    assert status.text() == "2 classes · 10 images"
    thumbs = [w for w in inspector.findChildren(QLabel) if w.objectName().startswith("thumb-0-")]
    assert len(thumbs) == 4 and all(t.pixmap().width() == 48 and not t.pixmap().isNull() for t in thumbs)
    pixel = thumbs[0].pixmap().toImage().pixelColor(24, 24)
    assert pixel.red() > 180 and pixel.blue() < 90  # the cat images are red
    assert inspector.findChild(QLabel, "folder-class-0").text() == "cat · 4"
    assert inspector.findChild(QLabel, "folder-class-1").text() == "dog · 6"
    bad = inspector.findChild(QLabel, "thumb-bad-1-3")
    assert bad is not None and "dog/broken.jpg" in bad.toolTip()
    use = inspector.findChild(QPushButton, "folder-use-classes")
    assert use.text() == "Use these 2 classes"
    use.click()
    assert window.doc.student().props["classes"] == ["cat", "dog"]
    assert node_status(window.doc, window.doc.nodes[node.id])[0] != ERROR
    assert inspector.findChild(QPushButton, "folder-use-classes") is None
    window.undo_stack.undo()  # one undo step
    assert window.doc.student().props["classes"] == [str(i) for i in range(10)]


def test_folder_dropped_on_a_folder_node_becomes_its_folder_and_a_bad_one_is_named(window, qtbot, tmp_path):
    first = tmp_path / "flat"
    first.mkdir()
    for i in range(3):
        Image.new("RGB", (20, 20), (10, 200, 10)).save(first / f"{i}.png")
    assert drop(window.view, file_mime(first), QPointF(0, 0))
    [node] = folder_nodes(window)
    qtbot.waitUntil(lambda: scanned(window.doc.nodes[node.id]), timeout=30000)
    assert "3 images unlabelled" in window.scene.node_items[node.id].lines
    second = pets(tmp_path / "pets")
    center = window.scene.node_items[node.id].sceneBoundingRect().center()
    assert drop(window.view, file_mime(second), center)
    assert len(folder_nodes(window)) == 1  # the same node, another folder
    assert window.doc.nodes[node.id].props["path"] == str(second)
    qtbot.waitUntil(lambda: "scan" in window.doc.nodes[node.id].info
                    and window.doc.nodes[node.id].info["folder"] == str(second), timeout=30000)
    window.undo_stack.undo()
    assert window.doc.nodes[node.id].props["path"] == str(first)
    # a folder without images: the engine's message on the node
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    center = window.scene.node_items[node.id].sceneBoundingRect().center()
    assert drop(window.view, file_mime(empty), center)
    qtbot.waitUntil(lambda: "error" in window.doc.nodes[node.id].info, timeout=30000)
    state, reason = node_status(window.doc, window.doc.nodes[node.id])
    assert state == ERROR and "no images in" in reason and "1 .txt" in reason


def test_cancel_kills_the_scan_and_leaves_the_node_usable(window, qtbot, tmp_path):
    root = pets(tmp_path / "pets")
    assert drop(window.view, file_mime(root), QPointF(0, 0))
    [node] = folder_nodes(window)
    window.scene.node_items[node.id].setSelected(True)
    cancel = window.inspector.findChild(QPushButton, "folder-scan-cancel")
    assert cancel is not None and window.folder_scans.scanner.busy == 1
    assert window.inspector.findChild(QLabel, "folder-scan-status").text().startswith("scanning…")
    procs = window.folder_scans.scanner.findChildren(QProcess)
    assert len(procs) == 1 and procs[0].state() != QProcess.NotRunning
    cancel.click()  # the engine is still starting: its answer must never arrive
    assert window.folder_scans.scanner.busy == 0
    qtbot.waitUntil(lambda: not shiboken6.isValid(procs[0]) or procs[0].state() == QProcess.NotRunning,
                    timeout=300)  # killed, not left to finish (starting alone takes longer)
    assert window.doc.nodes[node.id].info == {"folder": str(root), "cancelled": True}
    qtbot.wait(2500)
    node = window.doc.nodes[node.id]
    assert "scan" not in node.info and node_status(window.doc, node)[0] != ERROR
    assert "scan cancelled" in window.scene.node_items[node.id].lines[-1]
    again = window.inspector.findChild(QPushButton, "folder-scan-again")
    again.click()
    qtbot.waitUntil(lambda: "scan" in window.doc.nodes[node.id].info, timeout=30000)
    assert window.doc.nodes[node.id].info["scan"]["images"] == 10


def test_the_folder_field_opens_a_folder_picker(window, qtbot, tmp_path, monkeypatch):
    root = pets(tmp_path / "pets")
    asked = []
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: asked.append("folder") or str(root)))
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: asked.append("file") or ("", "")))
    props = {**default_props("data"), "format": "folder", "path": ""}
    node = Node(window.doc.new_id("data"), "data", props, (0, 0))
    window.undo_stack.push(AddNode(window.doc, node))
    window.scene.node_items[node.id].setSelected(True)
    window.inspector.findChild(QPushButton, "browse-path").click()
    assert asked == ["folder"]
    assert window.doc.nodes[node.id].props["path"] == str(root)
    qtbot.waitUntil(lambda: "scan" in window.doc.nodes[node.id].info, timeout=30000)
    assert summary(window.doc.nodes[node.id])[-1] == "2 classes · 10 images"
