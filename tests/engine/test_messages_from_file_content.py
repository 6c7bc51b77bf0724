"""What the engine says about a hostile or odd file: a message with a hint (never a traceback),
at most a short escaped excerpt of the file's content, user names printed escaped, and file
contents that could be misread (relabelled dtypes, subgraph external data, class names with a
comma) refused or kept exactly."""

import pytest
from onnx import TensorProto, helper

from tests.helpers import run_engine


def unknown_dtype_onnx(path):
    """Valid protobuf whose input and output have an element type onnx has no name for."""
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph)
    model.graph.input[0].type.tensor_type.elem_type = 99
    model.graph.output[0].type.tensor_type.elem_type = 99
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.slow
def test_inspect_never_prints_a_traceback_for_a_bad_file(tmp_path):
    proc = run_engine("inspect", str(unknown_dtype_onnx(tmp_path / "odd.onnx")))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("cannot inspect: odd.onnx cannot be read") and "hint:" in proc.stderr


SHADOW = "".join(f"user{i}:$6$s4ltS3cret{i}$Zm9vYmFyYmF6cXV4aGFzaGhhc2hoYXNo{i}:19000:0:99999:7:::\x1b[2J\n"
                 for i in range(30))


def csv_spec(tmp_path, demo_dict, **data):
    import json

    (tmp_path / "shadow.csv").write_text(SHADOW)
    demo_dict["data"] = {"format": "csv", "path": str(tmp_path / "shadow.csv"), **data}
    path = tmp_path / "spec.distill.json"
    path.write_text(json.dumps(demo_dict))
    return path


def leaked(output: str) -> list[str]:
    """The secrets of SHADOW that appear in `output`."""
    return [f"S3cret{i}$" for i in range(30) if f"S3cret{i}$" in output]


@pytest.mark.slow
@pytest.mark.parametrize("data", [{}, {"label_column": "x", "columns": ["user0:$6$s4ltS3cret0$Zm9v"]}])
def test_a_file_that_is_no_csv_is_quoted_only_in_short_escaped_excerpts(tmp_path, demo_dict, data):
    proc = run_engine("validate", str(csv_spec(tmp_path, demo_dict, **data)))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    assert "\x1b" not in out  # the escape sequence is written as \x1b, never sent to the terminal
    # the header (a column's name) and one cell, each a 40-character excerpt: never a whole line
    assert len(leaked(out)) <= 2 and "Zm9vYmFyYmF6cXV4aGFzaGhhc2hoYXNo" not in out


def test_unknown_labels_from_a_file_are_short_escaped_excerpts(tmp_path):
    import numpy as np

    from engine.data.labels import labels_to_indices
    from engine.errors import InputError

    labels = np.array([line for line in SHADOW.splitlines()])
    with pytest.raises(InputError) as info:
        labels_to_indices(labels, ["a", "b"], "data.path")
    message = info.value.problems[0].message
    assert "\x1b" not in message and len(message) < 200 and len(leaked(message)) <= 3


EVIL = "a\u202egnp.exe\x1b[2J\x1b]0;owned\x07\rb"  # a bidi override, a screen clear, a title, a return


def shown_safely(out: str) -> None:
    assert not any(ch in out for ch in ("\u202e", "\x1b", "\x07", "\r")), out
    assert "\\u202e" in out and "\\x1b[2J" in out  # what the name holds is still readable


@pytest.mark.slow
def test_validate_prints_names_with_control_and_bidi_characters_escaped(tmp_path, demo_dict):
    import json

    demo_dict["name"] = EVIL
    demo_dict["teachers"][0]["name"] = EVIL
    path = tmp_path / "spec.distill.json"
    path.write_text(json.dumps(demo_dict))
    proc = run_engine("validate", str(path))
    shown_safely(proc.stdout + proc.stderr)


@pytest.mark.slow
def test_runs_prints_names_with_control_and_bidi_characters_escaped(tmp_path):
    from engine.store import Store

    store = Store(tmp_path / "runs.sqlite")
    store.create_run(EVIL, "{}", "h", tmp_path / "run", "cpu\x1b[31m")
    store.close()
    proc = run_engine("runs", "--db", str(tmp_path / "runs.sqlite"))
    assert proc.returncode == 0, proc.stderr
    shown_safely(proc.stdout)


def test_a_students_classes_are_a_json_list_and_the_old_comma_format_still_reads(tmp_path):
    import torch
    from safetensors.torch import save_file

    from engine.model_files import student_metadata

    arch = '{"kind": "mlp", "width": 8, "depth": 1, "dropout": 0.0}'
    new, old = tmp_path / "new.safetensors", tmp_path / "old.safetensors"
    save_file({"w": torch.zeros(2)}, str(new), metadata={"classes": '["cat, black", "dog"]', "architecture": arch})
    save_file({"w": torch.zeros(2)}, str(old), metadata={"classes": "cat,dog", "architecture": arch})
    assert student_metadata(new, "s")[0] == ["cat, black", "dog"]
    assert student_metadata(old, "s")[0] == ["cat", "dog"]


@pytest.mark.slow
def test_a_class_name_with_a_comma_survives_into_a_continual_run(tmp_path, demo_dict):
    import json

    spec = dict(demo_dict, teachers=[], strategy={"hard_label_weight": 1.0},
                classes=[f"digit {i}, handwritten" for i in range(10)],
                student={"architecture": {"kind": "mlp", "width": 16, "depth": 1, "dropout": 0.0}})
    spec["training"].update(epochs=1, checkpoint_every_epochs=1)
    (tmp_path / "a.json").write_text(json.dumps(spec))
    first = run_engine("run", str(tmp_path / "a.json"), "--run-dir", str(tmp_path / "run"),
                       "--db", str(tmp_path / "runs.sqlite"), timeout=300)
    assert first.returncode == 0, first.stderr
    spec["strategy"] = {"hard_label_weight": 1.0, "previous_student": str(tmp_path / "run" / "student.safetensors")}
    (tmp_path / "b.json").write_text(json.dumps(spec))
    proc = run_engine("validate", str(tmp_path / "b.json"))
    assert proc.returncode == 0, proc.stdout + proc.stderr


SMALL = {"kind": "mlp", "width": 32, "depth": 1, "dropout": 0.0}


def zoo_weights(tmp_path, relabel: str | None = None, fmt: str = "safetensors"):
    """A real zoo teacher's weights; `relabel`: its F32 tensors' dtype in the header changed to
    this (same width: the header still adds up), or, for .pt, the tensors cast to int32."""
    import torch
    from pydantic import TypeAdapter
    from safetensors.torch import save_file

    from engine.models import build_model
    from engine.spec import Architecture

    model = build_model(TypeAdapter(Architecture).validate_python(SMALL), (64,), 10, "t")
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if fmt == "pt":
        path = tmp_path / "zoo.pt"
        torch.save({k: v.to(torch.int32) if relabel else v for k, v in state.items()}, path)
        return path
    path = tmp_path / "zoo.safetensors"
    save_file(state, str(path))
    if relabel:
        raw = path.read_bytes()
        n = int.from_bytes(raw[:8], "little")
        header = raw[8:8 + n].replace(b'"F32"', f'"{relabel}"'.encode())
        path.write_bytes(raw[:8] + header + raw[8 + n:])
    return path


@pytest.mark.parametrize("relabel", ["I32", "U32"])
def test_f32_weights_relabelled_as_integers_are_refused_with_the_tensor_name(tmp_path, relabel):
    from engine.errors import InputError
    from engine.model_files import load_safetensors

    assert all(t.is_floating_point() for t in load_safetensors(zoo_weights(tmp_path), "t").values())
    with pytest.raises(InputError) as info:
        load_safetensors(zoo_weights(tmp_path, relabel), "teachers[3].path")
    problem = info.value.problems[0]
    assert problem.path == "teachers[3].path" and "zoo.safetensors: tensor '" in problem.message
    assert "values, where weights are floating-point numbers" in problem.message


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["safetensors", "pt"])
def test_a_teacher_with_integer_weights_is_refused_by_validate(tmp_path, demo_dict, fmt):
    import json

    demo_dict["teachers"].append({"name": "zoo", "path": str(zoo_weights(tmp_path, "I32", fmt)),
                                  "classes": [str(d) for d in range(10)], "architecture": SMALL})
    (tmp_path / "spec.json").write_text(json.dumps(demo_dict))
    proc = run_engine("validate", str(tmp_path / "spec.json"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "teachers[3].path" in proc.stderr and "int32 values, where weights are floating-point" in proc.stderr


def external_tensor(name: str, location: str):
    tensor = helper.make_tensor(name, TensorProto.FLOAT, [1, 4], [0.0] * 4)
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value=location)
    return tensor


def if_model(path, location: str, where: str):
    """y = If(cond) with external data deep in its then-branch: as an initializer of a Loop's
    body inside the branch ('initializer'), or a Constant's value in the branch ('constant')."""
    const = helper.make_node("Constant", [], ["c"], value=external_tensor("c", location))
    if where == "constant":
        then = helper.make_graph([const], "then", [], [helper.make_tensor_value_info("c", TensorProto.FLOAT, [1, 4])])
    else:
        body = helper.make_graph([helper.make_node("Identity", ["w"], ["w_out"]),
                                  helper.make_node("Identity", ["cond_in"], ["cond_out"])], "body",
                                 [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                                  helper.make_tensor_value_info("cond_in", TensorProto.BOOL, [])],
                                 [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
                                  helper.make_tensor_value_info("w_out", TensorProto.FLOAT, [1, 4])],
                                 initializer=[external_tensor("w", location)])
        loop = helper.make_node("Loop", ["", "cond"], ["c"], body=body)
        then = helper.make_graph([loop], "then", [], [helper.make_tensor_value_info("c", TensorProto.FLOAT, None)])
    other = helper.make_graph([helper.make_node("Identity", ["x"], ["c2"])], "else", [],
                              [helper.make_tensor_value_info("c2", TensorProto.FLOAT, [1, 4])])
    graph = helper.make_graph([helper.make_node("If", ["cond"], ["y"], then_branch=then, else_branch=other)], "g",
                              [helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
                               helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    path.write_bytes(helper.make_model(graph).SerializeToString())
    return path


@pytest.mark.parametrize("where", ["constant", "initializer"])
@pytest.mark.parametrize("location, words, kind", [("../../../../etc/passwd", "outside its folder", "unsafe_model"),
                                                   ("weights.bin", "needs its external data file", "missing_file")])
def test_external_data_inside_subgraphs_is_checked_by_the_projects_own_rule(tmp_path, where, location, words, kind):
    from engine.errors import InputError
    from engine.model_files import read_onnx

    with pytest.raises(InputError) as info:
        read_onnx(if_model(tmp_path / "m.onnx", location, where), "teachers[0].path")
    problem = info.value.problems[0]
    assert words in problem.message and info.value.kind == kind, problem.message
