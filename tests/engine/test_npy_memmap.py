"""`.npy` samples, memory-mapped and streamed (`data.format: npy`): uint8 stays uint8 until the
device, NHWC is transposed batch by batch, a forged header or object array is refused, and a
real run trains from it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.data import load_dataset
from engine.data.feed import _Reader
from engine.errors import InputError
from engine.spec import parse_spec
from tests.helpers import TEACHERS, parse_events, run_engine, write_spec

CLASSES = [str(i) for i in range(10)]


def digits_npy(folder, nhwc: bool = True):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.images.astype(np.uint8)[:, None]  # 0-16, [N, 1, 8, 8]
    np.save(folder / "x.npy", x.transpose(0, 2, 3, 1) if nhwc else x)
    np.save(folder / "y.npy", np.array([str(v) for v in d.target]))  # class names
    return d


def spec_for(folder, **data) -> dict:
    return {"schema_version": 1, "name": "npy", "classes": CLASSES,
            "data": {"format": "npy", "path": str(folder / "x.npy"), "labels": str(folder / "y.npy"), **data},
            "teachers": [{"name": "low", "path": str(TEACHERS / "digits-0-4.onnx"), "classes": CLASSES[:5]}],
            "student": {"architecture": {"kind": "cnn"}}, "training": {"epochs": 2}}


def test_samples_are_mapped_and_read_in_their_own_type(tmp_path):
    d = digits_npy(tmp_path)
    data = load_dataset(parse_spec(spec_for(tmp_path)))
    assert data.streamed and data.sample_shape == (1, 8, 8) and "NHWC" in data.notes[0]
    rows = np.array([5, 0, 3])
    pos, x = _Reader(data.train).__getitems__(rows.tolist())
    assert x.dtype == torch.uint8 and x.shape == (3, 1, 8, 8)  # a quarter of float32 until the device
    source_rows = data.train.x.idx[rows]
    assert np.array_equal(x.numpy()[:, 0], d.images[source_rows].astype(np.uint8))
    assert np.array_equal(data.train.y, d.target[data.train.x.idx])


def test_forged_header_object_arrays_and_wrong_labels_are_refused(tmp_path):
    digits_npy(tmp_path)
    raw = (tmp_path / "x.npy").read_bytes()
    forged = raw.replace(b"(1797, 8, 8, 1)", b"(9999999, 8, 8, 1)".ljust(len(b"(1797, 8, 8, 1)")))
    (tmp_path / "forged.npy").write_bytes(forged if forged != raw else raw[:200])
    with pytest.raises(InputError, match="forged header|not a readable"):
        load_dataset(parse_spec(spec_for(tmp_path, path=str(tmp_path / "forged.npy"))))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="not numbers"):
        load_dataset(parse_spec(spec_for(tmp_path, path=str(tmp_path / "objects.npy"))))
    np.save(tmp_path / "short.npy", np.zeros(5, dtype=np.int64))
    with pytest.raises(InputError, match="5 labels for 1797 samples"):
        load_dataset(parse_spec(spec_for(tmp_path, labels=str(tmp_path / "short.npy"))))


@pytest.mark.slow
def test_a_run_trains_from_a_memory_mapped_array(tmp_path):
    digits_npy(tmp_path, nhwc=False)
    done = run_engine("run", write_spec(tmp_path, spec_for(tmp_path)), "--db", tmp_path / "runs.sqlite", timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    events = parse_events(done.stdout)
    assert any("streamed from disk" in e.get("message", "") for e in events if e["event"] == "log")
    assert next(e for e in events if e["event"] == "finished")["final"]["test/acc"] > 0.6


def test_nan_in_float_samples_is_refused_with_the_rows(tmp_path):
    x = np.zeros((50, 4), dtype=np.float32)
    x[7, 2] = np.nan
    x[31, 0] = np.inf
    np.save(tmp_path / "x.npy", x)
    spec = {"schema_version": 1, "name": "n", "classes": ["a", "b"], "strategy": {"hard_label_weight": 1.0},
            "data": {"format": "npy", "path": str(tmp_path / "x.npy")}}
    with pytest.raises(InputError, match=r"2 values are NaN or infinite \(first in samples 7, 31\)"):
        load_dataset(parse_spec(spec))
