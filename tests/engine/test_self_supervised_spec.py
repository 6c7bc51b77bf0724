"""student.init kind 'self_supervised' in the spec: its settings, defaults and messages."""

import pytest

from engine.errors import InputError
from engine.spec import SelfSupervisedSpec, parse_spec


def spec_with(init: dict) -> dict:
    return {"schema_version": 1, "name": "s", "data": {"format": "builtin", "name": "digits"},
            "classes": [str(d) for d in range(10)], "teachers": [], "strategy": {"hard_label_weight": 1.0},
            "student": {"architecture": {"kind": "mlp"}, "init": init}}


def problems(init: dict) -> list[tuple[str, str]]:
    with pytest.raises(InputError) as err:
        parse_spec(spec_with(init))
    return [(p.path, p.message) for p in err.value.problems]


def test_self_supervised_takes_the_default_pretraining_and_round_trips():
    spec = parse_spec(spec_with({"kind": "self_supervised"}))
    assert spec.student.init.pretraining == SelfSupervisedSpec()
    again = parse_spec(__import__("json").loads(spec.to_json()))
    assert again.student.init == spec.student.init
    other = parse_spec(spec_with({"kind": "scratch"}))
    assert "pretraining" not in other.to_json()  # other kinds carry no pretraining settings


def test_pretraining_settings_with_another_kind_are_refused_saying_what_to_do():
    (path, message), = problems({"kind": "scratch", "pretraining": {"epochs": 3}})
    assert path == "student.init"
    assert "init is 'scratch'" in message and "set kind to 'self_supervised'" in message


@pytest.mark.parametrize("pretraining, where, words", [
    ({"temperature": 0}, "student.init.pretraining.temperature", "greater than 0"),
    ({"epochs": 0}, "student.init.pretraining.epochs", "greater than or equal to 1"),
    ({"batch_size": 1}, "student.init.pretraining.batch_size", "greater than or equal to 2"),
    ({"feature_mask": 1.0}, "student.init.pretraining.feature_mask", "less than 1"),
    ({"crop_scale": [0.9, 0.2]}, "student.init.pretraining", "the minimum is above the maximum"),
    ({"method": "mae"}, "student.init.pretraining.method", "simclr"),
    ({"mask_ratio": 1.0}, "student.init.pretraining.mask_ratio", "less than 1"),
    ({"epochs": 3, "typo": 1}, "student.init.pretraining.typo", "xtra"),
])
def test_bad_pretraining_settings_name_the_field(pretraining, where, words):
    found = problems({"kind": "self_supervised", "pretraining": pretraining})
    assert any(path == where and words in message for path, message in found), found


@pytest.mark.parametrize("architecture, method", [
    ({"kind": "mlp"}, "simclr"), ({"kind": "cnn"}, "simclr"), ({"kind": "resnet"}, "simclr"),
    ({"kind": "vit"}, "masked"), ({"kind": "transformer"}, "masked"),
])
def test_auto_picks_masked_prediction_for_token_students_and_simclr_for_the_others(architecture, method):
    data = spec_with({"kind": "self_supervised"})
    data["student"]["architecture"] = architecture
    pretraining = parse_spec(data).student.init.pretraining
    assert pretraining.method == "auto" and pretraining.method_for(architecture["kind"]) == method


@pytest.mark.parametrize("architecture, method, words", [
    ({"kind": "mlp"}, "masked", "a mlp student has neither"),
    ({"kind": "resnet"}, "masked", "use a transformer (text) or vit (images) student"),
    ({"kind": "transformer"}, "simclr", "set init.pretraining.method to masked"),
])
def test_a_method_the_student_cannot_take_is_refused_saying_what_to_do(architecture, method, words):
    data = spec_with({"kind": "self_supervised", "pretraining": {"method": method}})
    data["student"]["architecture"] = architecture
    with pytest.raises(InputError) as info:
        parse_spec(data)
    assert any(p.path == "student" and words in p.message for p in info.value.problems), info.value.problems


def test_a_vit_may_still_take_simclr():
    data = spec_with({"kind": "self_supervised", "pretraining": {"method": "simclr", "mask_ratio": 0.5}})
    data["student"]["architecture"] = {"kind": "vit"}
    assert parse_spec(data).student.init.pretraining.method_for("vit") == "simclr"
