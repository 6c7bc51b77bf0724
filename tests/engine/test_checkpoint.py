import os

import pytest
import torch

from engine.atomic_io import atomic_write
from engine.checkpoint import load_checkpoint, save_checkpoint


def test_checkpoint_round_trip(tmp_path):
    state = {"model": {"w": torch.arange(6.0).reshape(2, 3)}, "step": 7, "rng": torch.get_rng_state()}
    path = tmp_path / "ck" / "last.pt"
    size = save_checkpoint(path, state)
    assert size == path.stat().st_size > 0
    back = load_checkpoint(path)
    assert back["step"] == 7 and torch.equal(back["model"]["w"], state["model"]["w"])


def test_a_failed_save_keeps_the_previous_checkpoint_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"step": 1})
    before = path.read_bytes()

    def crash_midway(tmp):
        tmp.write_bytes(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(path, crash_midway)
    assert path.read_bytes() == before
    assert load_checkpoint(path)["step"] == 1
    assert os.listdir(tmp_path) == ["last.pt"]


def test_replace_is_the_only_way_the_final_name_appears(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append((os.path.basename(src), os.path.basename(dst), os.path.exists(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    save_checkpoint(tmp_path / "last.pt", {"step": 2})
    ((src, dst, existed),) = seen
    assert src.startswith(".last.pt.tmp-") and dst == "last.pt" and not existed
