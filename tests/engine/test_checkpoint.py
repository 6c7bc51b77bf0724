"""Checkpoint folders: manifest last, rename into place, damaged ones skipped, old ones pruned."""

import errno
import json
import os
import shutil

import pytest
import torch

from engine import checkpoint as ck
from engine.checkpoint import (
    checkpoint_dirs,
    has_checkpoint,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    verify,
)


def state(step):
    return {"model": {"w": torch.full((2, 3), float(step))}, "step": step, "rng": torch.get_rng_state()}


def test_round_trip_with_a_manifest_written_last(tmp_path):
    folder = save_checkpoint(tmp_path, state(7), 7, {"epoch": 1})
    assert folder.name == "step-000000007" and sorted(os.listdir(folder)) == ["manifest.json", "state.pt"]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["step"] == 7 and manifest["epoch"] == 1 and manifest["torch"] == torch.__version__
    assert manifest["files"]["state.pt"]["bytes"] == (folder / "state.pt").stat().st_size
    back = load_checkpoint(folder)
    assert back["step"] == 7 and torch.equal(back["model"]["w"], state(7)["model"]["w"])
    assert has_checkpoint(tmp_path) is False  # a run folder holds them in checkpoints/


def test_only_the_newest_are_kept_once_a_new_one_is_committed(tmp_path):
    for step in (10, 20, 30):
        save_checkpoint(tmp_path, state(step), step, {})
    assert [p.name for p in checkpoint_dirs(tmp_path)] == ["step-000000030", "step-000000020"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_damaged_newest_checkpoint_is_skipped_with_a_warning(tmp_path):
    save_checkpoint(tmp_path, state(10), 10, {})
    newest = save_checkpoint(tmp_path, state(20), 20, {})
    data = bytearray((newest / "state.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    (newest / "state.pt").write_bytes(bytes(data))
    warnings = []
    chosen = latest_checkpoint(tmp_path, warnings.append)
    assert chosen.name == "step-000000010" and load_checkpoint(chosen)["step"] == 10
    assert warnings == ["checkpoint step-000000020 is skipped: state.pt does not match its manifest (damaged)"]

    (chosen / "manifest.json").unlink()  # a save cut off before its manifest
    assert verify(chosen) == "it has no manifest (the save did not finish)"
    assert latest_checkpoint(tmp_path) is None


def test_a_save_that_fails_midway_leaves_the_previous_checkpoint_and_no_temp_folder(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, state(1), 1, {})

    def crash(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ck, "_fsync_dir", crash)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path, state(2), 2, {})
    assert [p.name for p in tmp_path.iterdir()] == ["step-000000001"]
    assert load_checkpoint(latest_checkpoint(tmp_path))["step"] == 1


def test_free_space_is_checked_before_writing(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: shutil._ntuple_diskusage(100, 100, 1000))
    with pytest.raises(OSError) as err:
        save_checkpoint(tmp_path, state(1), 1, {})
    assert err.value.errno == errno.ENOSPC and "not enough free space" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_a_temp_folder_left_by_a_killed_process_is_cleaned_up(tmp_path):
    stale = tmp_path / ".tmp-step-000000005-99999999"
    stale.mkdir()
    (stale / "state.pt").write_bytes(b"half")
    save_checkpoint(tmp_path, state(6), 6, {})
    assert not stale.exists() and [p.name for p in checkpoint_dirs(tmp_path)] == ["step-000000006"]


def test_saving_the_same_step_twice_keeps_one_valid_checkpoint(tmp_path):
    save_checkpoint(tmp_path, state(4), 4, {})
    save_checkpoint(tmp_path, state(4), 4, {})
    assert [p.name for p in tmp_path.iterdir()] == ["step-000000004"] and verify(tmp_path / "step-000000004") is None
