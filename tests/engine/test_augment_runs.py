"""Augmentation in real runs of the engine: targets 'views' label K augmented views once (in the
cache, reused by the next run), 'live' runs the teachers on each augmented batch; data that is
not images, or hints, are refused before training."""

from __future__ import annotations

import pytest

from tests.engine.test_image_folder import digit_folders, folder_spec
from tests.helpers import demo_spec, parse_events, run_engine, write_spec


@pytest.mark.slow
def test_views_are_labelled_once_and_reused_from_the_cache(tmp_path):
    spec = demo_spec()
    spec["training"].update(epochs=2, augment={"targets": "views", "views": 2, "color_jitter": 0.1})
    path, db = write_spec(tmp_path, spec), tmp_path / "store" / "runs.sqlite"
    first = run_engine("run", path, "--db", db, "--run-dir", tmp_path / "a", timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    events = parse_events(first.stdout)
    teachers = len(spec["teachers"])
    assert [e["cache"] for e in events if e["event"] == "teacher_outputs"] == ["miss"] * 2 * teachers
    assert any("targets views: 2 augmented view(s)" in e.get("message", "") for e in events)
    assert len(list((db.parent / "cache" / "teacher-outputs").glob("*.npy"))) == 2 * teachers
    again = run_engine("run", path, "--db", db, "--run-dir", tmp_path / "b", timeout=300)
    assert [e["cache"] for e in parse_events(again.stdout) if e["event"] == "teacher_outputs"] == ["hit"] * 2 * teachers
    final = next(e for e in events if e["event"] == "finished")
    assert final["status"] == "completed" and final["final"]["test/acc"] > 0.5


@pytest.mark.slow
def test_live_targets_on_a_streamed_folder(tmp_path):
    root = digit_folders(tmp_path, 120, 40, 0)
    spec = folder_spec(root, unlabeled=str(root / "unlabelled"), workers=1)
    spec["training"].update(epochs=1, augment={"targets": "live"})
    done = run_engine("run", write_spec(tmp_path, spec), "--db", tmp_path / "runs.sqlite", timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    events = parse_events(done.stdout)
    assert not [e for e in events if e["event"] == "teacher_outputs"]  # nothing cached: live
    assert any("targets live" in e.get("message", "") for e in events)


def test_augmenting_what_is_not_images_or_with_hints_is_refused(tmp_path):
    import numpy as np

    np.savez(tmp_path / "rows.npz", x=np.random.default_rng(0).normal(size=(60, 5)).astype(np.float32),
             y=np.arange(60) % 2)
    spec = {"schema_version": 1, "name": "rows", "classes": ["a", "b"],
            "data": {"format": "npz", "path": str(tmp_path / "rows.npz")},
            "strategy": {"hard_label_weight": 1.0}, "training": {"augment": {}}}
    from engine.errors import InputError
    from engine.preflight import prepare
    from engine.spec import parse_spec

    with pytest.raises(InputError, match=r"images \[C, H, W\]; the samples are shaped \[5\]"):
        prepare(parse_spec(spec), 1)
