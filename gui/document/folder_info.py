"""What a folder data node knows about its folder, kept in the node's `info` (not undoable,
not saved) by gui/folder_scans.py from the engine's scan (engine/scan_folder.py):

- {"folder": PATH, "scanning": COUNT, "stage": "listing" | "thumbnails"} while the engine scans
- {"folder": PATH, "scan": RESULT} once it has
- {"folder": PATH, "error": MESSAGE} when it could not (the node shows the error)
- {"folder": PATH, "cancelled": True} when the user cancelled it

Read here for the node card, the node's status and the inspector. Qt-free.
"""

from __future__ import annotations

from gui.document.model import Node


def is_folder_node(node: Node) -> bool:
    return node.kind == "data" and node.props.get("format") == "folder"


def scan_of(node: Node) -> dict | None:
    """The scan of the node's current folder, if done."""
    info = node.info
    if info.get("folder") != node.props.get("path") or not isinstance(info.get("scan"), dict):
        return None
    return info["scan"]


def scan_words(info: dict) -> str:
    """One line: 'scanning… 12,000 images', '10 classes · 1,234 images', '500 unlabelled images'."""
    if "scanning" in info:
        if info.get("stage") == "thumbnails":
            return f"scanning… making thumbnails ({info['scanning']:,})"
        return f"scanning… {info['scanning']:,} images"
    if info.get("cancelled"):
        return "scan cancelled: the folder is not checked yet"
    if info.get("error"):
        return "cannot scan the folder"
    scan = info.get("scan")
    if not isinstance(scan, dict):
        return ""
    images = f"{scan['images']:,} image{'s' if scan['images'] != 1 else ''}"
    if scan.get("kind") == "labelled":
        n = scan.get("classes_total", 0)
        return f"{n} class{'es' if n != 1 else ''} · {images}"
    return f"{images} unlabelled"


def unknown_classes(node: Node, classes: list[str]) -> list[str] | None:
    """The folder's classes (subfolders) that are not among `classes` (the student's); None when
    not known (not scanned, flat, or more classes than the scan lists)."""
    scan = scan_of(node)
    if scan is None or scan.get("kind") != "labelled" or node.props.get("use_labels") is False:
        return None
    counts = scan.get("counts") or {}
    if len(counts) < scan.get("classes_total", 0):
        return None
    return [c for c in counts if c not in classes]


def folder_classes(node: Node) -> list[str]:
    scan = scan_of(node)
    return list((scan or {}).get("counts") or {})
