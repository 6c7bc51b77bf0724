"""Every teacher gets the input it expects, or a clear message (issue 15's three silent cases),
with real exported models: a torchvision-layout ResNet that expects ImageNet normalisation
outside the model, a CNN exported channels-last, a scikit-learn classifier giving
probabilities."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.data import load_dataset
from engine.errors import InputError
from engine.preflight import prepare
from engine.spec import parse_spec
from engine.teacher_checks import check_teachers
from engine.teachers import load_teachers
from tests.engine.contract_models import (
    TinyResNet,
    imagenet_normalised,
    rgb_digits,
    sklearn_teacher,
    train_and_export,
)
from tests.helpers import parse_events, run_engine, write_spec

LOW = [0, 1, 2, 3, 4]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """The RGB data as an npz (0-255 pixels, labels) and the teachers, trained once."""
    folder = tmp_path_factory.mktemp("contract")
    x, y = rgb_digits()
    np.savez(folder / "rgb.npz", x=x, y=y)
    np.savez(folder / "rgb-nhwc.npz", x=x.transpose(0, 2, 3, 1), y=y)
    resnet = train_and_export(TinyResNet(10), imagenet_normalised(x), y, folder / "resnet.onnx", epochs=6)
    nhwc = train_and_export(TinyResNet(10, channels_last=True), x.transpose(0, 2, 3, 1) / 255, y,
                            folder / "nhwc.onnx", epochs=8, dynamic_spatial=True)
    skl = sklearn_teacher(folder / "skl.onnx", LOW)
    return {"folder": folder, "resnet": resnet, "nhwc": nhwc, "skl": skl}


def spec_for(made, teacher: dict, data: str = "rgb.npz", **extra) -> dict:
    return {"schema_version": 1, "name": "contract", "classes": [str(i) for i in range(10)],
            "data": {"format": "npz", "path": str(made["folder"] / data), **extra},
            "teachers": [{"name": "t", "classes": [str(i) for i in range(10)], **teacher}],
            "student": {"architecture": {"kind": "mlp", "width": 64, "depth": 1}},
            "training": {"epochs": 1, "cpu_threads": 1}}


def accuracy(spec: dict) -> float:
    s = parse_spec(spec)
    data = load_dataset(s)
    t = load_teachers(s, data.train.x[:8], 1, data.table)[0]
    return float((t.predict(data.test.x).argmax(1) == data.test.y).mean())


def test_imagenet_teacher_fed_raw_pixels_is_flagged_with_the_fix_and_the_contract_fixes_it(made):
    raw = spec_for(made, {"path": str(made["resnet"])})
    s = parse_spec(raw)
    data = load_dataset(s)
    findings = check_teachers(load_teachers(s, data.train.x[:8], 1), data)
    warning = next(f for f in findings if f.level == "warning")
    assert warning.where == "teachers[0].input" and "ImageNet mean/std" in warning.message
    assert warning.fix["mean"] == [0.485, 0.456, 0.406] and abs(warning.fix["scale"] - 1 / 255) < 1e-6
    assert "set teachers[0].input" in warning.hint
    declared = spec_for(made, {"path": str(made["resnet"]), "input": warning.fix})
    before, after = accuracy(raw), accuracy(declared)
    assert after > 0.8 and after > before + 0.3, (before, after)
    s = parse_spec(declared)
    data = load_dataset(s)
    assert not [f for f in check_teachers(load_teachers(s, data.train.x[:8], 1), data) if f.level == "warning"]


def test_nhwc_teacher_is_transposed_not_reshaped(made):
    spec = spec_for(made, {"path": str(made["nhwc"]), "input": {"scale": 1 / 255}})
    s = parse_spec(spec)
    data = load_dataset(s)
    t = load_teachers(s, data.train.x[:8], 1)[0]
    assert t.adapter.layout == "nhwc"
    assert any("channels last" in f.message for f in t.findings)
    assert accuracy(spec) > 0.8
    # declared the wrong way round: refused, naming the layout that fits
    wrong = spec_for(made, {"path": str(made["nhwc"]), "input": {"scale": 1 / 255, "layout": "nchw"}})
    with pytest.raises(InputError) as info:
        load_teachers(parse_spec(wrong), np.zeros((2, 3, 8, 8), np.float32), 1)
    assert "set its input.layout to nhwc" in info.value.problems[0].hint


def test_nhwc_data_is_transposed_for_a_cnn_student_and_nchw_teachers(made):
    spec = spec_for(made, {"path": str(made["resnet"]), "input": {
        "scale": 1 / 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}}, data="rgb-nhwc.npz")
    spec["student"] = {"architecture": {"kind": "cnn", "channels": 8, "depth": 1}}
    prepared = prepare(parse_spec(spec), 1)
    assert prepared.data.sample_shape == (3, 8, 8)  # channels first: the CNN convolves over colour
    assert any("NHWC" in n for n in prepared.data.notes)
    assert accuracy(spec) > 0.8


def test_a_fixed_size_teacher_names_the_size_to_set(made, tmp_path):
    import torch

    model = TinyResNet(10).eval()
    path = tmp_path / "fixed.onnx"
    torch.onnx.export(model, (torch.zeros(1, 3, 16, 16),), str(path), input_names=["input"],
                      dynamic_axes={"input": {0: "batch"}}, opset_version=17, dynamo=False)
    with pytest.raises(InputError) as info:
        load_teachers(parse_spec(spec_for(made, {"path": str(path)})), np.zeros((2, 3, 8, 8), np.float32), 1)
    problem = info.value.problems[0]
    assert "expects samples shaped [3, 16, 16]" in problem.message and "input.size to [16, 16]" in problem.hint
    resized = spec_for(made, {"path": str(path), "input": {"size": [16, 16]}})
    t = load_teachers(parse_spec(resized), np.zeros((2, 3, 8, 8), np.float32), 1)[0]
    assert t.adapter(np.zeros((2, 3, 8, 8), np.float32)).shape == (2, 3, 16, 16)


def test_sklearn_probabilities_are_detected_or_warned_about(made, tmp_path):
    x = np.load(made["folder"] / "rgb.npz")
    from sklearn.datasets import load_digits

    d = load_digits()
    np.savez(tmp_path / "grey.npz", x=d.data.astype(np.float32), y=d.target)
    base = {"schema_version": 1, "name": "skl", "classes": [str(i) for i in range(10)],
            "data": {"format": "npz", "path": str(tmp_path / "grey.npz")},
            "teachers": [{"name": "skl", "path": str(made["skl"]), "classes": [str(i) for i in LOW]}]}
    s = parse_spec(base)
    data = load_dataset(s)
    t = load_teachers(s, data.train.x[:8], 1)[0]
    assert t.outputs == "probabilities"
    assert any(f.level == "info" and "outputs probabilities" in f.message for f in t.findings)
    logits = t.predict(data.test.x[:5])
    assert np.allclose(np.exp(logits).sum(1), 1, atol=1e-4)  # read as log-probabilities
    base["teachers"][0]["outputs"] = "logits"
    s = parse_spec(base)
    t = load_teachers(s, data.train.x[:8], 1)[0]
    warning = next(f for f in t.findings if f.level == "warning")
    assert warning.where == "teachers[0].outputs" and "look like probabilities" in warning.message
    del x


def test_misordered_classes_are_found_with_the_order_that_fits(made, tmp_path):
    from sklearn.datasets import load_digits

    d = load_digits()
    np.savez(tmp_path / "grey.npz", x=d.data.astype(np.float32), y=d.target)
    spec = {"schema_version": 1, "name": "order", "classes": [str(i) for i in range(10)],
            "data": {"format": "npz", "path": str(tmp_path / "grey.npz")},
            "teachers": [{"name": "skl", "path": str(made["skl"]), "classes": ["1", "0", "2", "3", "4"]}]}
    s = parse_spec(spec)
    data = load_dataset(s)
    findings = check_teachers(load_teachers(s, data.train.x[:8], 1), data)
    warning = next(f for f in findings if f.level == "warning")
    assert warning.fix == {"classes": ["0", "1", "2", "3", "4"]} and warning.where == "teachers[0]"


def test_validate_and_run_report_the_check_as_events_and_json(made, tmp_path):
    spec = spec_for(made, {"path": str(made["resnet"])})
    path = write_spec(tmp_path, spec)
    out = run_engine("validate", path, "--json")
    assert out.returncode == 0, out.stderr
    checks = json.loads(out.stdout)["checks"]
    assert any(c["level"] == "warning" and c["field"] == "teachers[0].input" for c in checks)
    text = run_engine("validate", path)
    assert "warning: teacher 't' gets" in text.stdout and "hint: set teachers[0].input" in text.stdout
    done = run_engine("run", path, "--run-dir", tmp_path / "run", "--db", tmp_path / "runs.sqlite")
    events = parse_events(done.stdout)
    assert done.returncode == 0, done.stderr[-2000:]
    warned = [e for e in events if e["event"] == "teacher_check" and e["level"] == "warning"]
    assert warned and warned[0]["teacher"] == "t" and warned[0]["fix"]["std"] == [0.229, 0.224, 0.225]


def test_validate_refuses_what_run_would_refuse_in_its_first_second(tmp_path):
    from sklearn.datasets import load_digits

    from tests.helpers import demo_spec

    d = load_digits()
    np.savez(tmp_path / "unlabelled.npz", x=d.data.reshape(-1, 1, 8, 8).astype(np.float32))
    spec = demo_spec()
    spec["data"] = {"format": "npz", "path": str(tmp_path / "unlabelled.npz")}
    spec["strategy"] = {"calibration": {"labels_per_class": 5}}
    out = run_engine("validate", write_spec(tmp_path, spec), "--json")
    assert out.returncode == 2
    problems = json.loads(out.stdout)["problems"]
    assert problems[0]["path"] == "strategy.calibration" and "no labels" in problems[0]["message"]
    spec = demo_spec()  # a hint on a layer the teacher does not have: found without training
    spec["strategy"] = {"hints": [{"teacher": "low digits", "teacher_layer": "no such tensor"}]}
    out = run_engine("validate", write_spec(tmp_path, spec), "--json")
    assert out.returncode == 2
    problems = json.loads(out.stdout)["problems"]
    assert problems[0]["path"] == "strategy.hints[0].teacher_layer" and "has no layer" in problems[0]["message"]


def test_a_table_teacher_reads_its_own_columns_by_name(tmp_path):
    """A teacher trained on 2 of a table's columns (one of them categorical, one-hot) is given
    exactly those, in its order; the student reads them all."""
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    n = 300
    size = rng.normal(size=n)
    noise = rng.normal(size=(n, 2))
    colour = rng.choice(["blue", "red"], size=n)
    label = np.where(size + (colour == "red") * 1.5 > 0.7, "big", "small")
    rows = ["noise1;size;colour;noise2;label"] + [
        f"{a:.4f};{s:.4f};{c};{b:.4f};{y}" for a, s, c, b, y in zip(noise[:, 0], size, colour, noise[:, 1], label)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    # the teacher's own order: colour one-hot (blue, red), then size
    x = np.stack([(colour == "blue"), (colour == "red"), size], axis=1).astype(np.float32)
    clf = LogisticRegression().fit(x, label)
    (tmp_path / "t.onnx").write_bytes(to_onnx(clf, x[:1], options={id(clf): {"zipmap": False}},
                                              target_opset=17).SerializeToString())
    spec = {"schema_version": 1, "name": "cols", "classes": ["big", "small"],
            "data": {"format": "csv", "path": str(tmp_path / "t.csv"), "label_column": "label",
                     "categorical": ["colour"]},
            "teachers": [{"name": "t", "path": str(tmp_path / "t.onnx"), "classes": ["big", "small"],
                          "input": {"columns": ["colour", "size"]}}]}
    prepared = prepare(parse_spec(spec), 1)
    assert prepared.data.sample_shape == (5,)  # the student: noise1, size, colour=blue, colour=red, noise2
    info = next(f for f in prepared.findings if f.accuracy is not None)
    assert info.accuracy > 0.9
    spec["teachers"][0]["input"]["columns"] = ["colour", "weight"]
    with pytest.raises(InputError) as err:
        prepare(parse_spec(spec), 1)
    assert err.value.problems[0].path == "teachers[0].input.columns" and "weight" in err.value.problems[0].message


def test_an_idx_test_set_without_its_labels_is_refused_not_given_the_training_labels(tmp_path):
    import gzip

    from sklearn.datasets import load_digits

    d = load_digits()
    images = d.images.astype(np.uint8)

    def idx(path, array):
        header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
        with gzip.open(path, "wb") as f:
            f.write(header + array.tobytes())

    idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    idx(tmp_path / "train-labels-idx1-ubyte.gz", d.target.astype(np.uint8))
    idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)  # as many samples as the training file
    spec = {"schema_version": 1, "name": "idx", "classes": [str(i) for i in range(10)],
            "data": {"format": "idx", "images": str(tmp_path / "train-images-idx3-ubyte.gz"),
                     "labels": str(tmp_path / "train-labels-idx1-ubyte.gz"),
                     "test_images": str(tmp_path / "t10k-images-idx3-ubyte.gz")},
            "strategy": {"hard_label_weight": 1.0}}
    with pytest.raises(InputError) as err:
        load_dataset(parse_spec(spec))
    assert err.value.problems[0].path == "data.test_images" and "has no labels" in err.value.problems[0].message
    spec["data"]["test_labels"] = spec["data"]["labels"]
    data = load_dataset(parse_spec(spec))
    assert len(data.test) == len(images) and data.test_from == "t10k-images-idx3-ubyte.gz"
    assert len(data.train) + len(data.val) == len(images)  # split.test is not used


def test_a_model_exported_for_one_sample_per_call_runs_and_a_failing_input_is_named(made, tmp_path):
    import torch

    model = TinyResNet(10).eval()
    fixed = tmp_path / "batch1.onnx"  # torch.onnx.export without dynamic_axes: batch fixed at 1
    torch.onnx.export(model, (torch.zeros(1, 3, 8, 8),), str(fixed), input_names=["input"], opset_version=17,
                      dynamo=False)
    x = np.random.default_rng(0).normal(size=(5, 3, 8, 8)).astype(np.float32)
    t = load_teachers(parse_spec(spec_for(made, {"path": str(fixed)})), x[:2], 1)[0]
    assert t.fixed_batch == 1
    expected = model(torch.from_numpy(x)).detach().numpy()
    assert np.allclose(t.predict(x), expected, atol=1e-4)
    anything = tmp_path / "any.onnx"  # every axis dynamic: an nhwc contract reaches the convolution wrongly
    torch.onnx.export(model, (torch.zeros(1, 3, 8, 8),), str(anything), input_names=["input"], opset_version=17,
                      dynamic_axes={"input": {0: "b", 1: "c", 2: "h", 3: "w"}}, dynamo=False)
    with pytest.raises(InputError) as err:
        load_teachers(parse_spec(spec_for(made, {"path": str(anything), "input": {"layout": "nhwc"}})), x[:2], 1)
    problem = err.value.problems[0]
    assert problem.path == "teachers[0].input" and "fails on its input [8, 8, 3] (NHWC)" in problem.message
