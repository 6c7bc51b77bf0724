"""Every strategy of the catalogue runs from a spec through the real engine subprocess."""

import copy

import pytest

from tests.helpers import demo_spec, parse_events, run_engine, write_spec

pytestmark = pytest.mark.slow  # every test trains through the engine subprocess

SMALL = {"kind": "mlp", "width": 32, "depth": 1, "dropout": 0.0}


def quick(spec: dict, epochs: int = 2) -> dict:
    spec = copy.deepcopy(spec)
    spec["training"].update(epochs=epochs, checkpoint_every_epochs=epochs)
    return spec


def run(tmp_path, spec: dict, name: str) -> tuple[int, list[dict], str]:
    folder = tmp_path / name
    folder.mkdir()
    path = write_spec(folder, spec)
    proc = run_engine("run", path, "--run-dir", folder / "run", "--db", tmp_path / "runs.sqlite", timeout=300)
    return proc.returncode, parse_events(proc.stdout), proc.stderr


def metrics(events: list[dict]) -> dict[str, float]:
    out: dict[str, float] = {}
    for e in events:
        if e["event"] == "metric":
            out.update(e["values"])
    return out


def logs(events: list[dict]) -> str:
    return "\n".join(e["message"] for e in events if e["event"] == "log")


@pytest.fixture(scope="module")
def experts(tmp_path_factory, demo_dict_module):
    """Two small experts that know every digit, trained on labels alone (no teachers) with
    different seeds: the teachers of the ensemble, FedAvg, growth and continual runs."""
    tmp = tmp_path_factory.mktemp("experts")
    paths = []
    for seed in (1, 2):
        spec = quick(dict(demo_dict_module, name=f"expert {seed}", teachers=[],
                          student={"architecture": SMALL}), epochs=6)
        spec["strategy"] = {"hard_label_weight": 1.0}
        spec["training"]["lr"] = 0.01
        spec["training"]["seed"] = seed
        code, events, err = run(tmp, spec, f"e{seed}")
        assert code == 0, err
        values = metrics(events)
        assert "loss/kd" not in values and values["loss/ce"] > 0 and values["test/acc"] > 0.8
        paths.append(str(tmp / f"e{seed}" / "run" / "student.safetensors"))
    return paths


@pytest.fixture(scope="module")
def demo_dict_module():
    return demo_spec()


def zoo_teacher(name: str, path: str) -> dict:
    return {"name": name, "path": path, "classes": [str(d) for d in range(10)], "architecture": SMALL}


@pytest.mark.parametrize("setting", [{"teacher_weighting": "confidence"}, {"teacher_weighting": "entropy"},
                                     {"teacher_weighting": "selective"}, {"teacher_weighting": "label_aware"},
                                     {"partial_classes": "zero_fill"}])
def test_weightings_and_partial_class_rules_train_a_good_student(tmp_path, demo_dict, setting):
    spec = quick(demo_dict, epochs=3)
    spec["strategy"].update(setting)
    code, events, err = run(tmp_path, spec, "w")
    assert code == 0, err
    values = metrics(events)
    assert values["val/acc"] > 0.8
    assert {"loss/kd/low digits", "loss/kd/middle digits", "loss/kd/high digits"} <= set(values)


def test_feddf_starts_from_fedavg_and_distils_the_averaged_logits(tmp_path, demo_dict, experts):
    spec = quick(dict(demo_dict, teachers=[zoo_teacher("client a", experts[0]), zoo_teacher("client b", experts[1])],
                      student={"architecture": SMALL, "init": {"kind": "fedavg"}}))
    spec["data"]["use_labels"] = False
    spec["strategy"]["combine"] = "average_logits"
    code, events, err = run(tmp_path, spec, "feddf")
    assert code == 0, err
    values = metrics(events)
    assert "loss/kd/ensemble" in values and "loss/ce" not in values
    assert values["test/acc"] > 0.8 and values["test/teacher_acc/client a"] > 0.8  # measured, never trained on
    assert "FedAvg of the 2 teachers" in logs(events)


def test_a_grown_student_starts_where_its_teacher_is(tmp_path, demo_dict, experts):
    spec = quick(dict(demo_dict, teachers=[zoo_teacher("small", experts[0])],
                      student={"architecture": {"kind": "mlp", "width": 96, "depth": 2},
                               "init": {"kind": "grow", "teacher": "small"}}), epochs=1)
    spec["training"]["lr"] = 1e-7  # hardly moves: the grown student must already be the teacher
    code, events, err = run(tmp_path, spec, "grow")
    assert code == 0, err
    values = metrics(events)
    assert "grown from teacher 'small'" in logs(events)
    assert values["test/acc"] == pytest.approx(values["test/teacher_acc/small"], abs=0.01)


def test_hints_heads_confidence_and_calibration_together(tmp_path, demo_dict, experts):
    spec = quick(demo_dict)
    spec["teachers"].append(zoo_teacher("zoo", experts[0]))
    spec["data"]["use_labels"] = False
    spec["strategy"].update(
        hints=[{"teacher": "low digits", "teacher_layer": "/body/body.2/Relu_output_0", "student_layer": "body.2"},
               {"teacher": "zoo", "teacher_layer": "body.2", "student_layer": "body.4"}],
        task_heads=True, confidence_weight=0.3, calibration={"labels_per_class": 5})
    code, events, err = run(tmp_path, spec, "all")
    assert code == 0, err
    values = metrics(events)
    assert {"loss/hint/low digits//body/body.2/Relu_output_0", "loss/hint/zoo/body.2", "loss/heads",
            "loss/confidence", "loss/calibration", "loss/kd/calibrated"} <= set(values)
    assert "calibration: 50 labelled samples" in logs(events)
    assert values["test/acc"] > 0.8


def test_a_hint_on_a_missing_layer_names_the_layers_there_are(tmp_path, demo_dict):
    spec = quick(demo_dict)
    spec["strategy"]["hints"] = [{"teacher": "low digits", "teacher_layer": "nope"}]
    code, events, _ = run(tmp_path, spec, "bad")
    assert code == 2
    error = next(e for e in events if e["event"] == "error")
    assert "no layer 'nope'" in error["message"] and "/body/body.2/Relu_output_0" in error["hint"]


def test_continual_keeps_the_previous_student_as_a_teacher(tmp_path, demo_dict, experts):
    spec = quick(dict(demo_dict, teachers=demo_dict["teachers"][:1], student={"architecture": SMALL}))
    spec["strategy"]["previous_student"] = experts[0]
    code, events, err = run(tmp_path, spec, "continual")
    assert code == 0, err
    values = metrics(events)
    assert "loss/kd/previous student" in values and "loss/kd/low digits" in values
    assert "started from the weights in student.safetensors" in logs(events)


def test_disjoint_teachers_without_labels_are_warned_about(tmp_path, demo_dict):
    spec = quick(demo_dict, epochs=1)
    high = dict(demo_dict["teachers"][2], mapping={"seven": "6", "eight": "7", "nine": "8", "zero": "9"})
    spec["teachers"] = [demo_dict["teachers"][0], high]  # {0…4} and {6…9}: nothing links them
    spec["data"]["use_labels"] = False
    code, events, _ = run(tmp_path, spec, "disjoint")
    warnings = [e["message"] for e in events if e["event"] == "log" and e.get("level") == "warning"]
    assert any("fall into 2 groups" in w and "calibration" in w for w in warnings), (code, warnings)


def test_label_aware_weighting_on_data_without_labels_is_named(tmp_path, demo_dict):
    import numpy as np
    from sklearn.datasets import load_digits

    np.savez(tmp_path / "unlabelled.npz", x=load_digits().data.astype("float32"))
    spec = quick(dict(demo_dict, data={"format": "npz", "path": str(tmp_path / "unlabelled.npz")}), epochs=1)
    spec["strategy"]["teacher_weighting"] = "label_aware"
    code, events, _ = run(tmp_path, spec, "no-labels")
    error = next(e for e in events if e["event"] == "error")
    assert code == 2 and error["field"] == "strategy.teacher_weighting" and "no labels" in error["message"]


def test_no_teachers_and_no_labels_is_named(tmp_path, demo_dict):
    import numpy as np
    from sklearn.datasets import load_digits

    np.savez(tmp_path / "unlabelled.npz", x=load_digits().data.astype("float32"))
    spec = quick(dict(demo_dict, teachers=[], data={"format": "npz", "path": str(tmp_path / "unlabelled.npz")}))
    spec["strategy"] = {"hard_label_weight": 1.0}
    code, events, _ = run(tmp_path, spec, "nothing")
    error = next(e for e in events if e["event"] == "error")
    assert code == 2 and error["field"] == "teachers" and "nothing to learn from" in error["message"]


def test_fedavg_of_onnx_teachers_is_named(tmp_path, demo_dict):
    spec = quick(demo_dict, epochs=1)
    for t in spec["teachers"]:  # an architecture does not make an ONNX file's weights readable
        t["architecture"] = spec["student"]["architecture"]
    spec["student"]["init"] = {"kind": "fedavg"}
    code, events, _ = run(tmp_path, spec, "onnx-fedavg")
    error = next(e for e in events if e["event"] == "error")
    assert code == 2 and error["field"] == "student.init" and "not zoo weights" in error["message"]
