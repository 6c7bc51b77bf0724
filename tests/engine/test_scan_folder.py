"""`distill-engine scan FOLDER`: what an image folder holds, as the app's data node shows it,
through the real command line (a subprocess), on real PNG and JPEG files made here."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from engine.scan_folder import MAX_THUMB_CLASSES, scan
from gui.engine_client.events import MAX_LINE_BYTES
from tests.helpers import parse_events, run_engine


def image(path, size=(40, 30), color=(200, 30, 30), noise=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    if noise:
        pixels = np.random.default_rng(len(str(path))).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels, "RGB").save(path)
    else:
        Image.new("RGB", size, color).save(path)
    return path


def labelled(root):
    for i in range(4):
        image(root / "cat" / f"c{i}.png", color=(220, 40 * i, 40))
    for i in range(5):
        image(root / "dog" / f"d{i}.jpg", size=(30, 90), color=(30, 40 * i, 200))
    (root / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (root / "notes.txt").write_text("not an image")
    (root / "cat" / "labels.csv").write_text("a,b")
    return root


@pytest.mark.slow
def test_scan_json_lists_classes_counts_ignored_files_and_thumbnails(tmp_path):
    root = labelled(tmp_path / "pets")
    done = run_engine("scan", root, "--json", "--thumbs", "4")
    assert done.returncode == 0, done.stderr
    events = parse_events(done.stdout)  # every line is an event of the protocol
    finished = events[-1]
    assert finished["event"] == "finished" and finished["status"] == "completed"
    report = finished["report"]
    assert report["kind"] == "labelled" and report["images"] == 10
    assert report["counts"] == {"cat": 4, "dog": 6} and report["classes_total"] == 2
    assert report["ignored"] == {".csv": 1, ".txt": 1}
    listing = [e for e in events if e["event"] == "progress" and e["stage"] == "listing"]
    assert listing and listing[-1]["step"] == 10 and all(e["phase"] == "scan" for e in listing)
    cat, dog = report["groups"]
    assert (cat["class"], cat["count"], dog["class"], dog["count"]) == ("cat", 4, "dog", 6)
    assert len(cat["thumbs"]) == 4 and not cat["unreadable"]
    # dog: its first 4 files in sorted order are broken.jpg, d0, d1, d2: the broken one is named, with why
    assert [t["path"] for t in dog["thumbs"]] == ["dog/d0.jpg", "dog/d1.jpg", "dog/d2.jpg"]
    assert dog["unreadable"][0]["path"] == "dog/broken.jpg" and "not an image" in dog["unreadable"][0]["reason"]
    thumb = Image.open(io.BytesIO(base64.b64decode(cat["thumbs"][0]["png"])))
    assert thumb.format == "PNG" and thumb.size == (48, 48)
    red = np.asarray(thumb.convert("RGB"))[24, 24]
    assert red[0] > 180 and red[2] < 80  # the image's own colour, not a placeholder


@pytest.mark.slow
def test_scan_of_a_flat_folder_and_plain_text_output(tmp_path):
    root = tmp_path / "loose"
    for i in range(3):
        image(root / f"{i}.png")
    done = run_engine("scan", root, "--json")
    report = parse_events(done.stdout)[-1]["report"]
    assert done.returncode == 0 and report["kind"] == "flat" and report["images"] == 3
    assert report["counts"] == {} and len(report["groups"]) == 1 and len(report["groups"][0]["thumbs"]) == 3
    text = run_engine("scan", root)
    assert text.returncode == 0 and "3 images, flat (unlabelled)" in text.stdout


@pytest.mark.slow
@pytest.mark.parametrize("what", ["missing", "file", "empty", "mixed"])
def test_a_bad_folder_exits_2_with_a_clear_message(tmp_path, what):
    target = tmp_path / "data"
    if what == "file":
        target.write_text("x")
    elif what == "empty":
        (target / "cat").mkdir(parents=True)
        (target / "cat" / "a.txt").write_text("x")
    elif what == "mixed":
        image(target / "cat" / "a.png")
        image(target / "loose.png")
    expected = {"missing": "no folder at", "file": "is a file, not a folder", "empty": "no images in",
                "mixed": "holds 1 images directly and 1 in subfolders"}[what]
    done = run_engine("scan", target, "--json")
    assert done.returncode == 2
    events = parse_events(done.stdout)
    assert events[-1] == {**events[-1], "event": "finished", "status": "failed", "exit_code": 2}
    error = next(e for e in events if e["event"] == "error")
    assert expected in error["message"] and error["hint"]
    text = run_engine("scan", target)
    assert text.returncode == 2 and "cannot scan: " in text.stderr and expected in text.stderr
    assert "Traceback" not in text.stderr


@pytest.mark.slow
def test_progress_every_1000_images_and_the_answer_stays_small(tmp_path):
    """13 classes of noise images (PNG's worst case): thumbnails of the first 12 only, 8 each at
    most, and the answer line far under the app's line cap."""
    root = tmp_path / "many"
    for c in range(13):
        for i in range(9):
            image(root / f"class{c:02d}" / f"{i}.png", size=(64, 64), noise=True)
    extra = root / "class00"
    blank = (root / "class00" / "0.png").read_bytes()
    for i in range(1000):
        (extra / f"copy{i}.png").write_bytes(blank)
    done = run_engine("scan", root, "--json", "--thumbs", "99")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    events = [json.loads(line) for line in lines]
    steps = [e["step"] for e in events if e["event"] == "progress" and e["stage"] == "listing"]
    assert steps == [1000, 1117]
    report = events[-1]["report"]
    assert report["classes_total"] == 13 and len(report["groups"]) == MAX_THUMB_CLASSES
    assert all(len(g["thumbs"]) == 8 for g in report["groups"])
    assert len(lines[-1]) < MAX_LINE_BYTES / 4  # noise: about 9 KB a thumbnail, the worst PNG can do


def test_scan_can_be_cancelled_while_listing(tmp_path):
    from engine.data.images import Cancelled

    root = tmp_path / "c"
    blank = image(root / "a" / "0.png").read_bytes()
    for i in range(450):
        (root / "a" / f"{i}.png").write_bytes(blank)
    with pytest.raises(Cancelled):
        scan(root, cancelled=lambda: True)
