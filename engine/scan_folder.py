"""`distill-engine scan FOLDER`: what an image folder holds, for the app's data node.

The folder is listed as the image-folder source lists it (engine/data/images.py): labelled (one
subfolder per class) or flat (unlabelled). The result says which, how many images there are in
all and per class, which other files were left alone (by suffix), and for the first
MAX_THUMB_CLASSES classes up to `thumbs` small thumbnails each (decoded as the data is, at
THUMB_SIZE, PNG-encoded, base64): enough to see that the folder is what the user meant. An
image that cannot be decoded is reported with its path and why, never raised. Torch-free.

The answer fits well under the app's line cap (gui/engine_client/events.MAX_LINE_BYTES, 4 MiB):
at most MAX_THUMB_CLASSES × MAX_THUMBS thumbnails of 48×48 RGB (under 10 KB each as base64),
and the counts of at most MAX_CLASSES_LISTED classes (the total is always given).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from pathlib import Path

from engine.data.images import BadImage, Listing, decode, list_images

THUMB_SIZE = (48, 48)
MAX_THUMB_CLASSES = 12
MAX_THUMBS = 8  # per class
DEFAULT_THUMBS = 4
MAX_CLASSES_LISTED = 5000  # class counts in the answer; more are summed up, not listed
MAX_REASON = 200


def scan(root: Path, thumbs: int = DEFAULT_THUMBS,
         progress: Callable[[str, int, float], None] | None = None,
         cancelled: Callable[[], bool] | None = None) -> dict:
    """The folder's summary (module docstring); InputError for a folder that is no image
    folder; `progress(stage, count, fraction)` while listing (every 1000 images) and while
    making thumbnails."""
    thumbs = max(0, min(MAX_THUMBS, thumbs))
    listing = list_images(Path(root), "folder",
                          progress=(lambda n: progress("listing", n, 0.0)) if progress else None,
                          cancelled=cancelled)
    counts = listing.counts()
    labelled = listing.labelled
    names = sorted(counts)
    result = {
        "folder": str(Path(root).resolve()),
        "kind": "labelled" if labelled else "flat",
        "images": len(listing.files),
        "classes_total": len(names) if labelled else 0,
        "counts": {c: counts[c] for c in names[:MAX_CLASSES_LISTED]} if labelled else {},
        "ignored": dict(sorted(listing.ignored.items())),
        "thumb_size": list(THUMB_SIZE),
        "groups": _thumbnails(listing, names if labelled else [""], thumbs, progress),
    }
    return result


def _thumbnails(listing: Listing, names: list[str], thumbs: int,
                progress: Callable[[str, int, float], None] | None) -> list[dict]:
    """For the first MAX_THUMB_CLASSES classes (a flat folder: one group named ""), the first
    `thumbs` images: PNG as base64, or the path and why it cannot be read."""
    counts = listing.counts()
    wanted = {c: [] for c in names[:MAX_THUMB_CLASSES]}
    for name, cls in zip(listing.files, listing.classes):
        group = wanted.get(cls or "")
        if group is not None and len(group) < thumbs:
            group.append(name)
    total = sum(len(v) for v in wanted.values()) or 1
    done = 0
    groups = []
    for cls, files in wanted.items():
        made, bad = [], []
        for name in files:
            try:
                made.append({"path": name, "png": _png(listing.root / name)})
            except BadImage as exc:
                bad.append({"path": name, "reason": str(exc)[:MAX_REASON]})
            except Exception as exc:  # noqa: BLE001 — a file no check foresaw: reported, never raised
                bad.append({"path": name, "reason": f"cannot be read ({type(exc).__name__}: "
                            f"{' '.join(str(exc).split())})"[:MAX_REASON]})
            done += 1
            if progress:
                progress("thumbnails", done, done / total)
        groups.append({"class": cls, "count": counts.get(cls, 0),
                       "thumbs": made, "unreadable": bad})
    return groups


def _png(path: Path) -> str:
    from PIL import Image

    array = decode(path, THUMB_SIZE, "crop", 3)  # uint8 [3, H, W]
    out = io.BytesIO()
    Image.fromarray(array.transpose(1, 2, 0), "RGB").save(out, format="PNG", optimize=True)
    return base64.b64encode(out.getvalue()).decode("ascii")


def format_scan(result: dict) -> list[str]:
    """The scan in a few lines, for the terminal."""
    lines = [f"{result['folder']}: {result['images']:,} images, "
             + (f"labelled, {result['classes_total']} classes" if result["kind"] == "labelled"
                else "flat (unlabelled)")]
    for cls, n in list(result["counts"].items())[:30]:
        lines.append(f"  {cls}: {n:,}")
    if result["classes_total"] > 30:
        lines.append(f"  … and {result['classes_total'] - 30} more classes")
    if result["ignored"]:
        lines.append("left alone (not images): " + ", ".join(
            f"{n} {suffix or 'without suffix'}" for suffix, n in result["ignored"].items()))
    for g in result["groups"]:
        for b in g["unreadable"]:
            lines.append(f"unreadable: {b['path']} {b['reason']}")
    return lines
