import gzip
import struct

import numpy as np
import pytest

from engine.data import load_dataset
from engine.errors import InputError
from engine.spec import parse_spec

CLASSES = ["a", "b", "c"]


def spec_for(data: dict, demo_dict: dict, classes=CLASSES):
    demo_dict["data"] = data
    demo_dict["classes"] = classes
    for t in demo_dict["teachers"]:  # teachers are not loaded here; keep their classes valid
        t["classes"], t["mapping"] = classes[:2], {}
    return parse_spec(demo_dict)


def write_idx(path, array, dtype_code=0x08, gz=False):
    head = struct.pack(">BBBB", 0, 0, dtype_code, array.ndim) + struct.pack(f">{array.ndim}i", *array.shape)
    raw = head + array.astype(">u1" if dtype_code == 0x08 else ">f4").tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def test_builtin_digits_are_images_split_with_a_seed(demo_dict):
    spec = parse_spec(demo_dict)
    a, b = load_dataset(spec), load_dataset(spec)
    assert a.sample_shape == (1, 8, 8)
    assert (len(a.train), len(a.val), len(a.test)) == (1257, 270, 270)
    assert np.array_equal(a.val.y, b.val.y) and a.fingerprint == b.fingerprint
    assert a.labeled and a.train.x.dtype == np.float32
    demo_dict["data"]["split"]["seed"] = 1
    c = load_dataset(parse_spec(demo_dict))
    assert not np.array_equal(a.val.x, c.val.x) and a.fingerprint != c.fingerprint


def test_split_parts_are_disjoint_and_complete(tmp_path, demo_dict):
    x = np.arange(100, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(100) % 3)
    data = load_dataset(spec_for({"format": "npz", "path": str(tmp_path / "d.npz"),
                                  "split": {"val": 0.2, "test": 0.1}}, demo_dict))
    ids = np.concatenate([data.train.x[:, 0], data.val.x[:, 0], data.test.x[:, 0]])
    assert sorted(ids.tolist()) == list(range(100))
    assert (len(data.train), len(data.val), len(data.test)) == (70, 20, 10)


def test_npz_with_class_name_labels_and_unlabeled(tmp_path, demo_dict):
    np.savez(tmp_path / "d.npz", x=np.random.rand(30, 4), y=np.array(["a", "b", "c"] * 10))
    data = load_dataset(spec_for({"format": "npz", "path": str(tmp_path / "d.npz")}, demo_dict))
    assert set(data.train.y.tolist()) == {0, 1, 2}
    np.savez(tmp_path / "u.npz", x=np.random.rand(30, 4))
    data = load_dataset(spec_for({"format": "npz", "path": str(tmp_path / "u.npz")}, demo_dict))
    assert not data.labeled and data.train.y is None


@pytest.mark.parametrize("y", [np.array(["a", "b", "c", "", "", ""] * 10), np.array([0, 1, 2, -1, -1, -1] * 10)])
def test_npz_samples_without_a_label_go_to_training_only(tmp_path, demo_dict, y):
    np.savez(tmp_path / "d.npz", x=np.random.rand(60, 4), y=y)
    data = load_dataset(spec_for({"format": "npz", "path": str(tmp_path / "d.npz"),
                                  "split": {"val": 0.2, "test": 0.2, "seed": 0}}, demo_dict))
    assert (data.train.y == -1).sum() == 30  # every unlabelled sample, in training
    assert set(data.train.y[data.train.y >= 0].tolist()) <= {0, 1, 2} and (data.train.y >= 0).sum() == 18
    assert (data.val.y >= 0).all() and (data.test.y >= 0).all() and len(data.val) == len(data.test) == 6


def test_an_npz_whose_every_label_is_missing_says_to_leave_y_out(tmp_path, demo_dict):
    np.savez(tmp_path / "d.npz", x=np.random.rand(6, 4), y=np.array([""] * 6))
    with pytest.raises(InputError) as info:
        load_dataset(spec_for({"format": "npz", "path": str(tmp_path / "d.npz")}, demo_dict))
    assert "marks every sample unlabelled" in info.value.problems[0].message


def test_use_labels_false_drops_labels(tmp_path, demo_dict):
    np.savez(tmp_path / "d.npz", x=np.random.rand(30, 4), y=np.arange(30) % 3)
    data = load_dataset(spec_for({"format": "npz", "path": str(tmp_path / "d.npz"),
                                  "use_labels": False}, demo_dict))
    assert not data.labeled and data.train.y is None
    # measured against, never trained on; calibration alone may read the hidden ones
    assert data.test.y is not None and data.val.y is not None
    assert len(data.hidden_labels) == len(data.train)


@pytest.mark.parametrize("arrays, words", [
    ({"inputs": np.zeros((5, 2))}, "no array named 'x'"),
    ({"x": np.zeros((5, 2)), "y": np.arange(4)}, "4 labels in y for 5 samples"),
    ({"x": np.zeros((5, 2)), "y": np.array([0, 1, 2, 3, 7])}, "labels run from 0 to 7"),
    ({"x": np.array([[1.0, np.nan]] * 5)}, "NaN or infinite"),
])
def test_bad_npz_files(tmp_path, demo_dict, arrays, words):
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(InputError) as info:
        load_dataset(spec_for({"format": "npz", "path": str(tmp_path / "d.npz")}, demo_dict))
    assert words in info.value.problems[0].message


def test_npz_with_pickled_objects_is_refused(tmp_path, demo_dict):
    np.savez(tmp_path / "d.npz", x=np.array([object(), object()], dtype=object))
    with pytest.raises(InputError) as info:
        load_dataset(spec_for({"format": "npz", "path": str(tmp_path / "d.npz")}, demo_dict))
    assert "not a readable .npz" in info.value.problems[0].message


def test_csv_with_a_label_column(tmp_path, demo_dict):
    rows = ["f1,label,f2"] + [f"{i},{'abc'[i % 3]},{i * 2}" for i in range(20)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    data = load_dataset(spec_for({"format": "csv", "path": str(tmp_path / "t.csv"),
                                  "label_column": "label", "split": {"val": 0, "test": 0}}, demo_dict))
    assert data.sample_shape == (2,)
    assert data.train.x[3].tolist() == [3.0, 6.0] and data.train.y[3] == 0


def test_csv_problems_name_row_and_column(tmp_path, demo_dict):
    (tmp_path / "t.csv").write_text("f1,f2\n1,2\n3,x\n")
    with pytest.raises(InputError) as info:
        load_dataset(spec_for({"format": "csv", "path": str(tmp_path / "t.csv")}, demo_dict))
    assert "row 3, column 'f2'" in info.value.problems[0].message
    with pytest.raises(InputError) as info:
        load_dataset(spec_for({"format": "csv", "path": str(tmp_path / "t.csv"),
                               "label_column": "kind"}, demo_dict))
    assert info.value.problems[0].path == "data.label_column"


@pytest.mark.parametrize("gz", [False, True])
def test_idx_images_and_labels(tmp_path, demo_dict, gz):
    images = np.random.default_rng(0).integers(0, 256, size=(40, 5, 6))
    write_idx(tmp_path / "img", images, gz=gz)
    write_idx(tmp_path / "lab", np.arange(40) % 3, gz=gz)
    data = load_dataset(spec_for({"format": "idx", "images": str(tmp_path / "img"),
                                  "labels": str(tmp_path / "lab"),
                                  "split": {"val": 0, "test": 0}}, demo_dict))
    assert data.sample_shape == (1, 5, 6)
    assert np.array_equal(data.train.x[:, 0], images.astype(np.float32))
    assert data.train.y.tolist() == (np.arange(40) % 3).tolist()


def test_idx_truncated_and_not_idx(tmp_path, demo_dict):
    write_idx(tmp_path / "img", np.zeros((10, 4, 4)))
    (tmp_path / "cut").write_bytes((tmp_path / "img").read_bytes()[:50])
    (tmp_path / "txt").write_text("hello world")
    for name, words in (("cut", "truncated"), ("txt", "not an IDX file")):
        with pytest.raises(InputError) as info:
            load_dataset(spec_for({"format": "idx", "images": str(tmp_path / name)}, demo_dict))
        assert words in info.value.problems[0].message


def test_missing_data_file(tmp_path, demo_dict):
    with pytest.raises(InputError) as info:
        load_dataset(spec_for({"format": "npz", "path": str(tmp_path / "none.npz")}, demo_dict))
    assert info.value.problems[0].path == "data.path"


@pytest.mark.skipif(not __import__("pathlib").Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_idx_from_debian(demo_dict):
    root = "/usr/share/datasets/fashion-mnist"
    import glob
    images = sorted(glob.glob(f"{root}/t10k-images*"))[0]
    labels = sorted(glob.glob(f"{root}/t10k-labels*"))[0]
    data = load_dataset(spec_for({"format": "idx", "images": images, "labels": labels},
                                 demo_dict, classes=[str(i) for i in range(10)]))
    assert data.sample_shape == (1, 28, 28) and len(data.train) + len(data.val) + len(data.test) == 10000


def test_csv_with_a_byte_order_mark_and_float_labels(tmp_path, demo_dict):
    rows = ["label,f1"] + [f"{i % 3},{i}" for i in range(12)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n", encoding="utf-8-sig")  # as Excel saves
    data = load_dataset(spec_for({"format": "csv", "path": str(tmp_path / "t.csv"),
                                  "label_column": "label", "split": {"val": 0, "test": 0}}, demo_dict))
    assert data.train.y.tolist() == [i % 3 for i in range(12)]
    np.savez(tmp_path / "f.npz", x=np.random.rand(9, 2), y=np.array([0.0, 1.0, 2.0] * 3))
    data = load_dataset(spec_for({"format": "npz", "path": str(tmp_path / "f.npz"),
                                  "split": {"val": 0, "test": 0}}, demo_dict))
    assert data.train.y.tolist() == [0, 1, 2] * 3
    np.savez(tmp_path / "g.npz", x=np.random.rand(3, 2), y=np.array([0.5, 1.0, 2.0]))
    with pytest.raises(InputError):
        load_dataset(spec_for({"format": "npz", "path": str(tmp_path / "g.npz")}, demo_dict))


def test_idx_with_a_damaged_header(tmp_path, demo_dict):
    (tmp_path / "bad").write_bytes(bytes([0, 0, 0x08, 200]) + b"\0" * 40)
    with pytest.raises(InputError) as info:
        load_dataset(spec_for({"format": "idx", "images": str(tmp_path / "bad")}, demo_dict))
    assert "damaged IDX header" in info.value.problems[0].message


def test_a_rebatched_feed_shares_the_samples_on_the_device_and_batches_anew(demo_dict):
    """The self-supervised pretraining batches distillation's training data at its own size
    without a second copy of it."""
    import torch

    from engine.data.feed import Feed

    part = load_dataset(parse_spec(demo_dict)).train
    feed = Feed(part, torch.device("cpu"), 64)
    other = feed.rebatched(256)
    assert other.x is feed.x and other.y is feed.y  # the same tensors
    assert (other.batch_size, feed.batch_size) == (256, 64)
    sizes = [len(idx) for _b, idx, _x in other.batches(torch.arange(len(part)))]
    assert sizes[0] == 256 and sum(sizes) == len(part) and other.steps() == -(-len(part) // 256)
    assert feed.steps() == -(-len(part) // 64)  # the original is left as it was
