import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from engine.data import load_dataset
from engine.errors import InputError
from engine.models import build_model
from engine.spec import MlpArch, parse_spec
from engine.teachers import load_teachers


@pytest.fixture
def demo(demo_dict):
    spec = parse_spec(demo_dict)
    return spec, load_dataset(spec)


PROBE = np.zeros((2, 1, 8, 8), np.float32)


def teachers_of(demo_dict):
    spec = parse_spec(demo_dict)
    return load_teachers(spec, PROBE, threads=1)


def test_onnx_teachers_know_their_digits_and_map_into_the_student(demo):
    spec, data = demo
    teachers = load_teachers(spec, data.train.x[:4], threads=1)
    assert [t.student_index.tolist() for t in teachers] == [[0, 1, 2, 3, 4], [4, 5, 6, 7], [7, 8, 9, 0]]
    for t in teachers:
        logits = t.predict(data.val.x, batch_size=100)
        assert logits.shape == (len(data.val), len(t.spec.classes))
        own = np.isin(data.val.y, t.student_index)
        predicted = t.student_index[logits[own].argmax(1)]
        assert (predicted == data.val.y[own]).mean() > 0.9, t.name


def test_declared_classes_must_match_the_outputs(demo_dict):
    demo_dict["teachers"][0]["classes"] = ["0", "1", "2"]
    with pytest.raises(InputError) as info:
        teachers_of(demo_dict)
    assert info.value.problems[0].path == "teachers[0].classes"
    assert "gives 5 outputs per sample but declares 3 classes" in info.value.problems[0].message


def test_teacher_input_must_fit_the_data(demo_dict):
    spec = parse_spec(demo_dict)
    with pytest.raises(InputError) as info:
        load_teachers(spec, np.zeros((2, 1, 28, 28), np.float32), threads=1)
    problems = info.value.problems
    assert len(problems) == 3  # every teacher reported at once
    assert "expects samples shaped [1, 8, 8] (64 values)" in problems[0].message


@pytest.mark.parametrize("content", [b"", b"\x00\x01garbage" * 50, b"not a model at all"])
def test_corrupt_onnx_teacher_names_the_file(tmp_path, demo_dict, content):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(content)
    demo_dict["teachers"][1]["path"] = str(bad)
    with pytest.raises(InputError) as info:
        teachers_of(demo_dict)
    (problem,) = info.value.problems
    assert problem.path == "teachers[1].path" and "broken.onnx" in problem.message


def _zoo_weights(tmp_path, n_classes=4, width=16, kind="safetensors"):
    torch.manual_seed(0)
    model = build_model(MlpArch(width=width, depth=1), (1, 8, 8), n_classes)
    path = tmp_path / f"w.{ 'safetensors' if kind == 'safetensors' else 'pt'}"
    if kind == "safetensors":
        save_file(model.state_dict(), str(path))
    else:
        torch.save(model.state_dict(), path)
    return model, path


@pytest.mark.parametrize("kind", ["safetensors", "pytorch"])
def test_zoo_weight_teachers_give_the_models_outputs(tmp_path, demo_dict, kind):
    model, path = _zoo_weights(tmp_path, kind=kind)
    demo_dict["teachers"][1].update(path=str(path), architecture={"kind": "mlp", "width": 16, "depth": 1})
    t = teachers_of(demo_dict)[1]
    x = np.random.rand(7, 1, 8, 8).astype(np.float32) * 16
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert np.allclose(t.predict(x), expected, atol=1e-6)


def test_zoo_weights_that_do_not_fit_the_architecture(tmp_path, demo_dict):
    _, path = _zoo_weights(tmp_path, width=16)
    demo_dict["teachers"][1].update(path=str(path), architecture={"kind": "mlp", "width": 32, "depth": 1})
    with pytest.raises(InputError) as info:
        teachers_of(demo_dict)
    message = info.value.problems[0].message
    assert "do not fit the architecture" in message and "body.1.weight" in message


def _softmax_onnx(path, w):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "w"], ["z"]),
         helper.make_node("Softmax", ["z"], ["p"], axis=1)], "probs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["batch", w.shape[1]])],
        [numpy_helper.from_array(w, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_probability_outputs_become_log_probabilities(tmp_path, demo_dict):
    w = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32) * 0.1
    _softmax_onnx(tmp_path / "p.onnx", w)
    demo_dict["teachers"][1].update(path=str(tmp_path / "p.onnx"), outputs="probabilities")
    x = np.random.default_rng(1).random((5, 1, 8, 8)).astype(np.float32)
    out = teachers_of(demo_dict)[1].predict(x)
    expected = torch.log_softmax(torch.from_numpy(x.reshape(5, 64) @ w), dim=1).numpy()
    assert np.allclose(out, expected, atol=1e-5)


def test_a_scikit_learn_teacher_exported_with_skl2onnx(tmp_path, demo_dict, demo):
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    spec, data = demo
    keep = data.train.y < 5
    x = data.train.x[keep].reshape(int(keep.sum()), -1)
    model = LogisticRegression(max_iter=500).fit(x, data.train.y[keep])
    (tmp_path / "sk.onnx").write_bytes(to_onnx(model, x[:1], options={"zipmap": False}).SerializeToString())
    demo_dict["teachers"][0].update(path=str(tmp_path / "sk.onnx"), outputs="probabilities")
    teacher = load_teachers(parse_spec(demo_dict), data.train.x[:4], threads=1)[0]
    own = data.val.y < 5
    predicted = teacher.predict(data.val.x[own]).argmax(1)
    assert (predicted == data.val.y[own]).mean() > 0.9  # label output skipped, probabilities used

    (tmp_path / "zip.onnx").write_bytes(to_onnx(model, x[:1]).SerializeToString())  # ZipMap output
    demo_dict["teachers"][0]["path"] = str(tmp_path / "zip.onnx")
    with pytest.raises(InputError) as info:
        load_teachers(parse_spec(demo_dict), data.train.x[:4], threads=1)
    assert "zipmap" in info.value.problems[0].hint
