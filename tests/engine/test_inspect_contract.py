"""`distill-engine inspect` reads what a model file says and proposes the teacher's contract:
class labels held in a scikit-learn graph, parameters held in node attributes, the layout an
input shape shows, the normalisation an export script wrote into the metadata, and whether the
scores are probabilities. Real files: skl2onnx conversions, a torch export, hand-built graphs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.inspect_model import format_report, inspect_model
from engine.model_metadata import numbers, strings
from engine.spec import TeacherInput
from tests.helpers import TEACHERS, image_onnx, run_engine

NAMES = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return x.astype(np.float32)[:600], y[:600]


def _sklearn_onnx(folder, model, x, zipmap: bool, name: str):
    from skl2onnx import to_onnx

    options = None if zipmap is None else {"zipmap": zipmap}
    path = folder / name
    path.write_bytes(to_onnx(model, x[:1], options=options).SerializeToString())
    return path


@pytest.mark.parametrize("labels, zipmap", [("strings", False), ("ints", False), ("ints", True)])
def test_a_scikit_learn_classifier_gives_its_classes_and_probabilities(tmp_path, digits, labels, zipmap):
    from sklearn.linear_model import LogisticRegression

    x, y = digits
    y = NAMES[y] if labels == "strings" else y
    model = LogisticRegression(max_iter=300).fit(x, y)
    info = inspect_model(_sklearn_onnx(tmp_path, model, x, zipmap, "sk.onnx"))
    assert info["classes"] == [str(c) for c in model.classes_]  # in the model's output order
    assert info["classes_from"] == "graph"
    assert info["proposed"]["outputs"] == "probabilities"
    assert info["parameters"] == model.coef_.size + model.intercept_.size
    assert bool(info["warnings"]) == zipmap and ("zipmap" in " ".join(info["warnings"])) == zipmap
    report = format_report(info)
    assert f"classes:    {', '.join(map(str, model.classes_))} (from the graph)" in report
    assert "not recorded" not in report


def test_decision_values_are_not_called_probabilities(tmp_path, digits):
    """skl2onnx names a linear SVM's decision values 'probabilities' too: nothing is proposed."""
    from sklearn.svm import LinearSVC

    x, y = digits
    model = LinearSVC().fit(x, NAMES[y])
    info = inspect_model(_sklearn_onnx(tmp_path, model, x, None, "svm.onnx"))
    assert info["classes"] == list(model.classes_) and "outputs" not in info["proposed"]


def test_a_forest_counts_its_tree_values_as_parameters(tmp_path, digits):
    from sklearn.ensemble import RandomForestClassifier

    x, y = digits
    model = RandomForestClassifier(n_estimators=3, max_depth=4, random_state=0).fit(x, y)
    info = inspect_model(_sklearn_onnx(tmp_path, model, x, False, "forest.onnx"))
    assert info["parameters"] > sum(t.tree_.node_count for t in model.estimators_)
    assert info["proposed"]["outputs"] == "probabilities"


@pytest.fixture(scope="module")
def nhwc_model(tmp_path_factory):
    """A torch model that takes channels-last images [N, 28, 28, 1] and ends in a softmax."""
    import torch

    class ChannelsLast(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 4, 3)
            self.head = torch.nn.Linear(4 * 26 * 26, 10)

        def forward(self, x):
            return torch.softmax(self.head(self.conv(x.permute(0, 3, 1, 2)).flatten(1)), dim=1)

    path = tmp_path_factory.mktemp("nhwc") / "nhwc.onnx"
    torch.onnx.export(ChannelsLast(), (torch.zeros(1, 28, 28, 1),), str(path), dynamo=False,
                      input_names=["image"], output_names=["scores"],
                      dynamic_axes={"image": {0: "batch"}, "scores": {0: "batch"}})
    return path


def test_a_channels_last_input_proposes_nhwc(nhwc_model):
    info = inspect_model(nhwc_model)
    proposed = info["proposed"]
    assert proposed["input"] == {"layout": "nhwc"}
    assert TeacherInput.model_validate(proposed["input"]).layout == "nhwc"
    assert proposed["outputs"] == "probabilities"  # from the Softmax node, not the name
    assert "input [N, 28, 28, 1] is channels-last: layout nhwc" in proposed["reasons"]
    assert any("28×28" in r for r in proposed["reasons"])  # the fixed size is said, not proposed


def test_the_demo_teacher_is_channels_first_with_logits():
    proposed = inspect_model(TEACHERS / "digits-0-4.onnx")["proposed"]
    assert proposed["input"] == {"layout": "nchw"} and proposed["outputs"] == "logits"


def test_metadata_mean_and_std_are_proposed(tmp_path):
    path = image_onnx(tmp_path / "m.onnx", ["batch", 3, 8, 8],
                        {"mean": "[0.485, 0.456, 0.406]", "STD": "0.229, 0.224, 0.225",
                         "channel_order": "BGR", "rescale_factor": "1/255", "accuracy": "0.93"})
    info = inspect_model(path)
    proposed = info["proposed"]
    assert proposed["input"] == {"layout": "nchw", "channel_order": "bgr", "scale": pytest.approx(1 / 255),
                                 "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    TeacherInput.model_validate(proposed["input"])
    assert proposed["outputs"] == "logits" and info["accuracy"] == 0.93
    report = format_report(info)
    assert "proposed:   6 settings" in report
    assert "  - metadata mean is [0.485, 0.456, 0.406]: mean [0.485, 0.456, 0.406]" in report


def test_metadata_the_spec_would_refuse_is_not_proposed(tmp_path):
    path = image_onnx(tmp_path / "m.onnx", ["batch", 1, 8, 8],
                        {"mean": "[0.5, 0.5, 0.5]", "std": "0", "scale": "fast", "layout": "NCHW"})
    proposed = inspect_model(path)["proposed"]
    assert proposed["input"] == {"layout": "nchw"}  # 3 means for 1 channel; std 0; no number
    said = " | ".join(proposed["reasons"])
    assert "has 3 values but the model takes 1 channel" in said and "std '0' holds a value ≤ 0" in said
    assert "scale 'fast' is not one positive number" in said

    path = image_onnx(tmp_path / "m.onnx", ["batch", 1, 8, 8], {"data_format": "channels_last",
                                                                   "mean": "0.5 0.5", "std": "[0.5, 0.25, 1]"})
    proposed = inspect_model(path)["proposed"]
    assert "layout" not in proposed["input"]  # the shape and the metadata disagree
    said = " | ".join(proposed["reasons"])
    assert "metadata data_format says nhwc but input [N, 1, 8, 8] reads as nchw" in said
    assert "mean" not in proposed["input"] and "not proposed: mean, std (mean has 2 values and std 3" in said


def test_timm_style_size_and_crop(tmp_path):
    path = image_onnx(tmp_path / "m.onnx", ["batch", 3, "height", "width"],
                        {"input_size": "[3, 224, 224]", "crop_pct": "0.875", "interpolation": "bicubic"},
                        softmax=True)
    proposed = inspect_model(path)["proposed"]
    assert proposed["input"] == {"layout": "nchw", "size": [256, 256], "crop": [224, 224]}
    assert proposed["outputs"] == "probabilities"
    assert any("bilinearly" in r for r in proposed["reasons"])


def test_weights_files_propose_from_their_metadata(tmp_path):
    from safetensors.numpy import save_file

    path = tmp_path / "w.safetensors"
    save_file({"body.0.weight": np.zeros((4, 3), np.float32), "head.bias": np.zeros(2, np.float32)}, str(path),
              metadata={"columns": '["age", "height", "weight"]', "id2label": '{"1": "b", "0": "a"}'})
    info = inspect_model(path)
    assert info["proposed"]["input"] == {"columns": ["age", "height", "weight"]}
    assert info["classes"] == ["a", "b"] and info["classes_from"] == "metadata"


def test_metadata_values_are_read_liberally():
    assert numbers("1/255") == [pytest.approx(1 / 255)] and numbers("224x224") == [224, 224]
    assert numbers("(0.5 0.25)") == [0.5, 0.25] and numbers("nan") is None and numbers("a, b") is None
    assert strings("cat, dog") == ["cat", "dog"] and strings('{"0": "x", "10": "z", "2": "y"}') == ["x", "y", "z"]


@pytest.mark.slow  # starts the engine as a subprocess
def test_the_command_line_prints_the_classes_and_the_proposal(tmp_path, digits, nhwc_model):
    from sklearn.linear_model import LogisticRegression

    x, y = digits
    path = _sklearn_onnx(tmp_path, LogisticRegression(max_iter=300).fit(x, NAMES[y]), x, False, "sk.onnx")
    text = run_engine("inspect", path)
    assert text.returncode == 0, text.stderr
    assert "classes:    eight, five, four, nine, one, seven, six, three, two, zero (from the graph)" in text.stdout
    assert "proposed:   1 setting" in text.stdout and ": outputs probabilities" in text.stdout
    as_json = run_engine("inspect", "--json", nhwc_model)
    proposed = json.loads(as_json.stdout)["proposed"]
    assert proposed["input"] == {"layout": "nhwc"} and proposed["outputs"] == "probabilities"
