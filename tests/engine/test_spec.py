import json

import pytest

from engine.errors import InputError
from engine.spec import SCHEMA_VERSION, load_spec, parse_spec
from tests.helpers import DEMO, write_spec


def problems_of(data, tmp_path=None):
    with pytest.raises(InputError) as info:
        parse_spec(data, base_dir=tmp_path)
    return info.value.problems


def test_demo_spec_is_valid_and_paths_resolve_against_its_folder():
    spec = load_spec(DEMO)
    assert spec.schema_version == SCHEMA_VERSION
    assert len(spec.teachers) == 3
    for t in spec.teachers:
        assert t.path.is_absolute() and t.path.is_file(), t.path
    assert spec.teachers[2].student_classes_of() == ["7", "8", "9", "0"]


def test_relative_paths_resolve_against_the_spec_file(tmp_path, demo_dict):
    (tmp_path / "models").mkdir()
    demo_dict["teachers"][0]["path"] = "models/a.onnx"
    spec = load_spec(write_spec(tmp_path, demo_dict))
    assert spec.teachers[0].path == (tmp_path / "models" / "a.onnx").resolve()


def test_missing_and_unknown_fields_are_named(demo_dict):
    del demo_dict["name"]
    demo_dict["training"]["epochz"] = 3
    found = {p.path: p for p in problems_of(demo_dict)}
    assert "name" in found and "add" in found["name"].hint
    assert "training.epochz" in found
    assert "spelling" in found["training.epochz"].hint


def test_wrong_values_name_their_field_without_union_tags(demo_dict):
    demo_dict["student"]["architecture"]["width"] = "wide"
    demo_dict["training"]["optimizer"] = "lion"
    demo_dict["strategy"]["temperature"] = -1
    paths = {p.path for p in problems_of(demo_dict)}
    assert paths == {"student.architecture.width", "training.optimizer", "strategy.temperature"}


def test_every_problem_is_reported_at_once(demo_dict):
    demo_dict["teachers"][0]["weight"] = 0
    demo_dict["training"]["epochs"] = 0
    demo_dict["data"]["split"]["val"] = 2
    assert len(problems_of(demo_dict)) == 3


def test_newer_schema_version_is_refused_by_name(demo_dict):
    demo_dict["schema_version"] = SCHEMA_VERSION + 1
    (problem,) = problems_of(demo_dict)
    assert problem.path == "schema_version"
    assert "newer" in problem.message and "update" in problem.hint


def test_teacher_class_that_does_not_map_into_the_student(demo_dict):
    demo_dict["teachers"][2]["mapping"].pop("zero")
    (problem,) = problems_of(demo_dict)
    assert problem.path == "teachers[2].classes"
    assert "'zero'" in problem.message and "mapping" in problem.hint


def test_mapping_of_an_unknown_class_and_duplicate_targets(demo_dict):
    demo_dict["teachers"][2]["mapping"]["ten"] = "1"
    demo_dict["teachers"][0]["mapping"] = {"1": "0"}
    paths = {p.path for p in problems_of(demo_dict)}
    assert "teachers[2].mapping.ten" in paths
    assert "teachers[0].mapping" in paths


def test_duplicate_names_and_weights_only_teacher_without_architecture(demo_dict):
    demo_dict["classes"][1] = "0"
    demo_dict["teachers"][1]["name"] = "low digits"
    demo_dict["teachers"][1]["path"] = "w.safetensors"
    paths = {p.path for p in problems_of(demo_dict)}
    assert {"classes", "teachers[1].name", "teachers[1].architecture"} <= paths


def test_split_that_leaves_nothing_to_train_on(demo_dict):
    demo_dict["data"]["split"] = {"val": 0.5, "test": 0.5}
    (problem,) = problems_of(demo_dict)
    assert problem.path == "data.split"


def test_broken_json_names_line(tmp_path):
    path = tmp_path / "broken.distill.json"
    path.write_text('{"schema_version": 1,\n "name": "x" "data": {}}')
    with pytest.raises(InputError) as info:
        load_spec(path)
    assert "line 2" in info.value.problems[0].message


def test_missing_spec_file(tmp_path):
    with pytest.raises(InputError) as info:
        load_spec(tmp_path / "nope.distill.json")
    assert "no spec file" in info.value.problems[0].message


def test_spec_round_trips_through_json(demo_dict):
    spec = parse_spec(demo_dict)
    again = parse_spec(json.loads(spec.to_json()))
    assert again == spec


def test_values_that_would_crash_or_poison_a_run_are_refused(demo_dict):
    demo_dict["data"]["split"]["seed"] = -1
    demo_dict["training"]["seed"] = 2**70
    demo_dict["teachers"][0]["weight"] = float("inf")
    demo_dict["training"]["weight_decay"] = float("nan")
    paths = {p.path for p in problems_of(demo_dict)}
    assert paths == {"data.split.seed", "training.seed", "teachers[0].weight", "training.weight_decay"}


@pytest.mark.parametrize("change, where, words", [
    ({"teachers": []}, "teachers", "learn only from labels"),
    ({"strategy": {"hints": [{"teacher": "nobody", "teacher_layer": "x"}]}}, "strategy.hints[0].teacher",
     "no teacher is named 'nobody'"),
    ({"student": {"init": {"kind": "grow", "teacher": "low digits"}}}, "student.init",
     "works from mlp, cnn or resnet teachers"),
    ({"student": {"init": {"kind": "fedavg"}}}, "student.init", "student's architecture"),
    ({"strategy": {"combine": "average_logits"}}, "strategy.combine", "know only some"),
    ({"strategy": {"previous_student": "old.safetensors"}, "student": {"init": {"kind": "fedavg"}}},
     "student.init", "at once"),
])
def test_strategy_settings_the_teachers_cannot_serve_are_named(demo_dict, change, where, words):
    problems = problems_of({**demo_dict, **change})
    assert any(p.path == where and words in p.message for p in problems), problems


def test_weights_copied_from_a_teacher_that_sees_transformed_samples_are_refused(demo_dict):
    demo_dict["teachers"][0]["input"] = {"scale": 0.5}
    demo_dict["student"]["init"] = {"kind": "fedavg"}
    problems = problems_of(demo_dict)
    assert any(p.path == "student.init" and "low digits" in p.message and "input contract" in p.message
               for p in problems), problems


def test_label_only_spec_without_teachers_is_valid(demo_dict):
    parse_spec({**demo_dict, "teachers": [], "strategy": {"hard_label_weight": 1.0}})
