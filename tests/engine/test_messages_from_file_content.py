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
