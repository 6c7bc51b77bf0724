"""Image folders (`data.format: folder`): listing, decoding, unreadable files, partial labels,
streaming through worker processes, the teachers' pass into the memory-mapped cache, and a
real run of the engine on a folder."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.data import Part, load_dataset
from engine.data import images as folder_images
from engine.data.feed import Feed
from engine.errors import InputError
from engine.spec import parse_spec
from tests.helpers import TEACHERS, parse_events, run_engine, write_spec

CLASSES = [str(i) for i in range(10)]


def digit_folders(root: Path, labelled: int = 240, unlabelled: int = 60, test: int = 80) -> Path:
    """scikit-learn's digits as grey PNGs and JPEGs: class subfolders, a flat folder, a test folder."""
    from sklearn.datasets import load_digits

    d = load_digits()
    for i, (img, y) in enumerate(zip(d.images[:labelled + unlabelled + test], d.target)):
        im = Image.fromarray((img / 16 * 255).astype(np.uint8))
        folder = (root / "labelled" / str(y) if i < labelled else root / "unlabelled" if i < labelled + unlabelled
                  else root / "test" / str(y))
        folder.mkdir(parents=True, exist_ok=True)
        im.save(folder / f"{i:05d}.{'png' if i % 2 else 'bmp'}")
    return root


def folder_spec(root: Path, **data) -> dict:
    return {"schema_version": 1, "name": "folder", "classes": CLASSES,
            "data": {"format": "folder", "path": str(root / "labelled"), "size": [8, 8], "channels": 1,
                     "workers": 0, **data},
            "teachers": [{"name": "low", "path": str(TEACHERS / "digits-0-4.onnx"),
                          "classes": ["0", "1", "2", "3", "4"], "input": {"scale": 16 / 255}}],
            "student": {"architecture": {"kind": "cnn"}},
            "training": {"epochs": 2, "batch_size": 32}}


def test_labelled_unlabelled_and_test_folders_combine(tmp_path):
    root = digit_folders(tmp_path)
    spec = parse_spec(folder_spec(root, unlabeled=str(root / "unlabelled"), test_folder=str(root / "test")))
    data = load_dataset(spec, tmp_path / "cache")
    assert data.streamed and data.sample_shape == (1, 8, 8)
    assert len(data.test) == 80 and data.test_from == "test"
    # the unlabelled images all train (label -1); validation measures against labels only
    assert int((data.train.y < 0).sum()) == 60
    assert (data.val.y >= 0).all() and len(data.train) + len(data.val) == 300
    x = data.train.x[:4]
    assert x.dtype == np.float32 and x.shape == (4, 1, 8, 8) and x.max() > 100  # 0-255, as the folder holds it
    with pytest.raises(TypeError, match="read in batches"):
        np.asarray(data.train.x)
    picked = data.labelled_samples(500)
    assert picked is not None and (picked[1] >= 0).all()


def test_unreadable_images_are_named_and_skipped_or_refused(tmp_path):
    root = digit_folders(tmp_path, 40, 0, 0)
    broken = root / "labelled" / "3" / "truncated.png"
    good = (root / "labelled" / "3").iterdir().__next__().read_bytes()
    broken.write_bytes(good[: len(good) // 2])
    (root / "labelled" / "4" / "notes.jpg").write_text("not an image")
    (root / "labelled" / "README.txt").write_text("left alone")
    data = load_dataset(parse_spec(folder_spec(root)), None)
    said = " ".join(data.notes)
    assert "skipped 2 of 42 images" in said and str(broken) in said and "notes.jpg" in said
    assert "1 file that is not an image was left alone" in said
    assert len(data.train) + len(data.val) + len(data.test) == 40
    with pytest.raises(InputError) as refused:
        load_dataset(parse_spec(folder_spec(root, corrupt="refuse")), None)
    assert str(broken) in str(refused.value) and "data.corrupt" in refused.value.problems[0].hint


def test_the_check_is_kept_and_a_changed_folder_is_checked_again(tmp_path, monkeypatch):
    root = digit_folders(tmp_path, 40, 0, 0)
    spec = parse_spec(folder_spec(root))
    load_dataset(spec, tmp_path / "cache")
    assert list((tmp_path / "cache" / "image-checks").glob("*.json"))
    calls = []
    real = folder_images.decode
    monkeypatch.setattr(folder_images, "decode", lambda *a, **k: calls.append(a) or real(*a, **k))
    load_dataset(spec, tmp_path / "cache")
    assert calls == []  # the same folder: read from the cache
    Image.new("L", (8, 8), 200).save(root / "labelled" / "5" / "new.png")
    load_dataset(spec, tmp_path / "cache")
    assert len(calls) == 41  # another fingerprint: every image decoded again


def test_folders_that_cannot_be_used_say_why(tmp_path):
    root = digit_folders(tmp_path, 20, 0, 0)
    Image.new("L", (8, 8)).save(root / "labelled" / "loose.png")
    with pytest.raises(InputError, match="either one subfolder per class"):
        load_dataset(parse_spec(folder_spec(root)), None)
    (root / "labelled" / "loose.png").unlink()
    (root / "labelled" / "cat").mkdir()
    Image.new("L", (8, 8)).save(root / "labelled" / "cat" / "a.png")
    with pytest.raises(InputError, match="not classes of the spec: 'cat'"):
        load_dataset(parse_spec(folder_spec(root)), None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images in"):
        load_dataset(parse_spec(folder_spec(tmp_path, path=str(tmp_path / "empty"))), None)
    with pytest.raises(InputError, match="is a file, not a folder"):
        load_dataset(parse_spec(folder_spec(tmp_path, path=str(root / "labelled" / "cat" / "a.png"))), None)
    (root / "labelled" / "cat" / "a.png").unlink()
    (root / "labelled" / "cat").rmdir()
    with pytest.raises(InputError, match="holds class subfolders"):
        load_dataset(parse_spec(folder_spec(root, unlabeled=str(root / "labelled"))), None)


def test_decoding_honours_exif_and_converts_modes(tmp_path):
    tall = np.zeros((40, 20, 3), dtype=np.uint8)
    tall[:10] = 255  # white at the top
    img = Image.fromarray(tall)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: shown turned 90° clockwise
    img.save(tmp_path / "rotated.jpg", exif=exif.tobytes(), quality=95)
    out = folder_images.decode(tmp_path / "rotated.jpg", (20, 40), "stretch", 3)
    assert out.shape == (3, 20, 40)
    assert out[:, :, -8:].mean() > 200 and out[:, :, :8].mean() < 50  # the white band is now on the right
    Image.new("RGBA", (16, 16), (255, 0, 0, 0)).save(tmp_path / "rgba.png")
    Image.new("P", (16, 16)).save(tmp_path / "palette.bmp")
    Image.new("L", (16, 16), 77).save(tmp_path / "grey.webp", lossless=True)
    assert folder_images.decode(tmp_path / "rgba.png", (8, 8), "crop", 3)[:, 0, 0].tolist() == [255, 0, 0]
    assert folder_images.decode(tmp_path / "palette.bmp", (8, 8), "crop", 1).shape == (1, 8, 8)
    assert folder_images.decode(tmp_path / "grey.webp", (8, 8), "crop", 3)[:, 0, 0].tolist() == [77, 77, 77]


def test_an_image_declaring_huge_dimensions_is_refused_before_decoding(tmp_path):
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    (tmp_path / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    with pytest.raises(folder_images.BadImage, match="pixels"):
        folder_images.decode(tmp_path / "bomb.png", (8, 8))


def test_streamed_batches_match_the_images_and_split_by_rank(tmp_path):
    root = digit_folders(tmp_path, 60, 0, 0)
    data = load_dataset(parse_spec(folder_spec(root, split={"val": 0.0, "test": 0.0})), None)
    order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(0))
    expected = data.train.x[order.numpy()]
    for workers in (0, 2):
        feed = Feed(data.train, torch.device("cpu"), 16, workers)
        got = list(feed.batches(order))
        assert [b for b, _, _ in got] == [0, 1, 2, 3]
        assert torch.equal(torch.cat([idx for _, idx, _ in got]), order)
        assert np.array_equal(torch.cat([x for _, _, x in got]).numpy(), expected)
    halves = [list(Feed(data.train, torch.device("cpu"), 16, 0, rank=r, world=2).batches(order, first=1))
              for r in (0, 1)]
    assert torch.equal(halves[0][0][1], order[16:32:2]) and torch.equal(halves[1][0][1], order[17:32:2])
    memory = Feed(Part(np.asarray(expected), None), torch.device("cpu"), 16)  # the in-memory path, alike
    assert np.array_equal(torch.cat([x for _, x in memory.in_order()]).numpy(), expected)


@pytest.mark.slow
def test_a_run_on_folders_streams_caches_and_exports(tmp_path):
    root = digit_folders(tmp_path)
    spec = folder_spec(root, unlabeled=str(root / "unlabelled"), test_folder=str(root / "test"), workers=1)
    spec["compression"] = [{"kind": "quantize", "mode": "dynamic"}]
    path = write_spec(tmp_path, spec)
    db = tmp_path / "store" / "runs.sqlite"
    done = run_engine("run", path, "--db", db, "--run-dir", tmp_path / "run1", timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    events = parse_events(done.stdout)
    assert [e["cache"] for e in events if e["event"] == "teacher_outputs"] == ["miss"]
    assert any("60 unlabelled" in e.get("message", "") for e in events if e["event"] == "log")
    assert any("data_wait" in e for e in events if e["event"] == "progress" and e["phase"] == "distill")
    final = next(e for e in events if e["event"] == "finished")["final"]
    assert final["test/acc"] > 0.5 and "test/teacher_acc/low" in final
    cached = list((db.parent / "cache" / "teacher-outputs").glob("*.npy"))
    assert len(cached) == 1 and np.load(cached[0], mmap_mode="r").shape == (240 - 36 + 60, 5)
    report = json.loads((tmp_path / "run1" / "export" / "report.json").read_text())
    assert report["input"]["shape"] == ["batch", 1, 8, 8] and "onnx_int8" in report["accuracy"]
    again = run_engine("run", path, "--db", db, "--run-dir", tmp_path / "run2", timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert [e["cache"] for e in parse_events(again.stdout) if e["event"] == "teacher_outputs"] == ["hit"]


@pytest.mark.slow
def test_validate_refuses_a_folder_with_a_damaged_image_by_name(tmp_path):
    root = digit_folders(tmp_path, 30, 0, 0)
    bad = root / "labelled" / "7" / "damaged.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 40)
    done = run_engine("validate", write_spec(tmp_path, folder_spec(root, corrupt="refuse")))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert str(bad) in done.stderr and "data.corrupt" in done.stderr


@pytest.mark.slow
def test_worker_processes_start_while_the_command_pipe_is_open(tmp_path):
    """As the app runs it: stdin is a pipe that stays open for pause/stop. The workers that
    check and decode the images are forked while the control thread waits on that pipe; they
    must not wait forever for its lock (they did)."""
    import os
    import subprocess

    from tests.helpers import SAFE_PATH, engine_cmd

    root = digit_folders(tmp_path, 300, 0, 0)
    path = write_spec(tmp_path, folder_spec(root, workers=1))
    proc = subprocess.Popen(engine_cmd("run", path, "--db", tmp_path / "runs.sqlite"), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **SAFE_PATH})
    import threading

    threading.Timer(300, proc.kill).start()  # a hang fails the test instead of stalling the suite
    try:
        lines = []
        for line in proc.stdout:  # stdin stays open throughout
            lines.append(line)
            if '"event":"finished"' in line.replace(" ", ""):
                break
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0, proc.stderr.read()[-2000:]
    finally:
        proc.kill()
    assert next(e for e in parse_events("".join(lines)) if e["event"] == "finished")["status"] == "completed"


@pytest.mark.slow
def test_a_stopped_streamed_run_resumes_to_the_same_weights(tmp_path):
    """Streamed batches, augmented views and the data position survive a stop: the resumed run
    ends with exactly the weights of an uninterrupted one."""
    from safetensors.torch import load_file

    from tests.helpers import start_engine, wait_for

    root = digit_folders(tmp_path, 240, 60, 0)
    spec = folder_spec(root, unlabeled=str(root / "unlabelled"), workers=1)
    spec["training"].update(epochs=6, cpu_threads=1, batch_size=16,
                            augment={"targets": "views", "views": 2, "flip": False})
    path, db = write_spec(tmp_path, spec), tmp_path / "db.sqlite"
    whole = run_engine("run", path, "--run-dir", tmp_path / "whole", "--db", db, timeout=300)
    assert whole.returncode == 0, whole.stderr[-2000:]
    proc = start_engine(path, tmp_path / "parts", db)
    wait_for(proc, "checkpoint", 2)
    proc.stdin.write("stop\n")
    proc.stdin.flush()
    rest = parse_events(proc.stdout.read())
    assert proc.wait(timeout=120) == 3 and rest[-1]["status"] == "stopped"
    resumed = run_engine("resume", tmp_path / "parts", timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = load_file(str(tmp_path / "whole" / "student.safetensors"))
    b = load_file(str(tmp_path / "parts" / "student.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_linked_class_folders_are_read_once_each_and_loops_end(tmp_path):
    root = digit_folders(tmp_path / "real", 40, 0, 0)
    linked = tmp_path / "linked"
    linked.mkdir()
    for c in CLASSES:  # a data set assembled from links, one of them a loop back to the top
        (linked / c).symlink_to(root / "labelled" / c, target_is_directory=True)
    (root / "labelled" / "3" / "loop").symlink_to(linked, target_is_directory=True)
    data = load_dataset(parse_spec(folder_spec(root, path=str(linked), split={"val": 0.0, "test": 0.0})), None)
    assert len(data.train) == 40 and sorted(set(data.train.y.tolist())) == list(range(10))


def test_a_class_without_images_is_said(tmp_path):
    root = digit_folders(tmp_path, 40, 0, 0)
    import shutil

    shutil.rmtree(root / "labelled" / "9")
    data = load_dataset(parse_spec(folder_spec(root)), None)
    assert any("no images of 1 of the spec's classes (9)" in n for n in data.notes)


def test_a_passing_read_failure_is_not_remembered(tmp_path, monkeypatch):
    root = digit_folders(tmp_path, 20, 0, 0)
    real = folder_images.decode

    def flaky(path, *a, **k):
        if path.name.startswith("00003"):
            raise folder_images.BadImage("cannot be read (Permission denied)", lasting=False)
        return real(path, *a, **k)

    monkeypatch.setattr(folder_images, "decode", flaky)
    data = load_dataset(parse_spec(folder_spec(root)), tmp_path / "cache")
    assert any("Permission denied" in n for n in data.notes)
    assert not list((tmp_path / "cache" / "image-checks").glob("*.json"))  # checked again next time
    monkeypatch.setattr(folder_images, "decode", real)
    data = load_dataset(parse_spec(folder_spec(root)), tmp_path / "cache")
    assert not any("skipped" in n for n in data.notes)


def test_augmentation_keeps_float_data_unclamped_and_uint8_in_range(tmp_path):
    from engine.train import augmenter

    x = np.random.default_rng(0).normal(0, 2, size=(40, 3, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    spec = {"schema_version": 1, "name": "f", "classes": ["a", "b"], "strategy": {"hard_label_weight": 1.0},
            "data": {"format": "npy", "path": str(tmp_path / "x.npy")}, "training": {"augment": {}}}
    data = load_dataset(parse_spec(spec))
    assert augmenter(parse_spec(spec), data).value_range is None  # normalised floats: negatives kept
    root = digit_folders(tmp_path, 20, 0, 0)
    folder = {**folder_spec(root), "training": {"augment": {}}}
    assert augmenter(parse_spec(folder), load_dataset(parse_spec(folder))).value_range == (0.0, 255.0)


def test_hints_are_refused_for_streamed_data(tmp_path):
    from engine.preflight import prepare

    root = digit_folders(tmp_path, 60, 0, 0)
    spec = folder_spec(root)
    spec["strategy"] = {"hints": [{"teacher": "low", "teacher_layer": "x", "student_layer": "body.2"}]}
    with pytest.raises(InputError, match="streamed from disk"):
        prepare(parse_spec(spec), 1)


def test_stale_temp_files_of_a_killed_pass_are_removed(tmp_path):
    from engine.teacher_cache import _remove_stale

    (tmp_path / "abc.tmp-999999999.npy").write_bytes(b"x")
    (tmp_path / "abc.npy").write_bytes(b"x")
    import os

    (tmp_path / f"def.tmp-{os.getpid()}.npy").write_bytes(b"x")  # a live process's: kept
    _remove_stale(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["abc.npy", f"def.tmp-{os.getpid()}.npy"]


@pytest.mark.slow
def test_streaming_works_when_workers_are_spawned(tmp_path):
    """macOS and Windows start worker processes by spawning them: what they are given must be
    importable, not a local function."""
    import subprocess
    import sys

    root = digit_folders(tmp_path, 40, 0, 0)
    script = tmp_path / "spawned.py"
    script.write_text(f"""
import multiprocessing, sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
if __name__ == "__main__":
    multiprocessing.set_start_method("spawn")
    import torch
    from engine.data import load_dataset
    from engine.data.feed import Feed
    from engine.spec import parse_spec
    spec = {json.dumps(folder_spec(root, split={"val": 0.0, "test": 0.0}))!r}
    import json
    data = load_dataset(parse_spec(json.loads(spec)), None)
    got = list(Feed(data.train, torch.device("cpu"), 16, 1).in_order())
    print(sum(len(x) for _, x in got))
""")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "40"


@pytest.mark.slow
def test_stop_during_the_teachers_pass_stops_there_and_leaves_no_temp_files(tmp_path):
    from tests.helpers import start_engine, wait_for

    root = digit_folders(tmp_path, 900, 0, 0)
    path, db = write_spec(tmp_path, folder_spec(root, workers=1)), tmp_path / "store" / "runs.sqlite"
    proc = start_engine(path, tmp_path / "run", db)
    wait_for(proc, "started", 1)
    proc.stdin.write("stop\n")  # the pass over the folder starts now, 256 images a batch
    proc.stdin.flush()
    rest = parse_events(proc.stdout.read())
    assert proc.wait(timeout=120) == 3 and rest[-1]["status"] == "stopped"
    assert not [e for e in rest if e["event"] in ("checkpoint", "teacher_outputs")]  # stopped in the pass
    assert not list((db.parent / "cache" / "teacher-outputs").glob("*"))
