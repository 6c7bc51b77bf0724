"""Hostile model files: each is refused with exit 2 and a reason, and nothing in it runs.

Every payload would create a marker file if it ran; the tests assert the marker never appears,
both when the file is inspected (`distill-engine inspect`) and when a spec uses it as a teacher
(`distill-engine validate`, which loads teachers as a run does).
"""

import json
import os
import pickle
import zipfile

import numpy as np
import onnx
import pytest
import torch
from onnx import helper, numpy_helper

from tests.helpers import run_engine, write_spec

pytestmark = pytest.mark.slow  # every test starts the engine as a subprocess


class Payload:
    """Unpickling this writes the marker file (what an attacker's pickle would do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


def pickled_pt(folder, marker):
    path = folder / "raw-pickle.pt"
    path.write_bytes(pickle.dumps({"weight": Payload(marker)}))
    return path


def zipped_pt(folder, marker):
    path = folder / "zip-checkpoint.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "extra": Payload(marker)}, path)
    assert zipfile.is_zipfile(path)
    return path


def torchscript_pt(folder, marker):
    class Net(torch.nn.Module):
        def forward(self, x):
            return x.reshape(x.shape[0], -1)[:, :10]

    path = folder / "scripted.pt"
    torch.jit.save(torch.jit.script(Net()), str(path))
    return path


def _onnx_with_external(folder, location):
    weight = numpy_helper.from_array(np.zeros((64, 10), np.float32), "w")
    weight.ClearField("raw_data")
    weight.data_location = onnx.TensorProto.EXTERNAL
    weight.external_data.add(key="location", value=location)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["n", 64])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["n", 10])], [weight])
    path = folder / f"external-{abs(hash(location))}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def traversal_onnx(folder, marker):
    return _onnx_with_external(folder, "../../etc/passwd")


def absolute_onnx(folder, marker):
    return _onnx_with_external(folder, "/etc/passwd")


def symlink_onnx(folder, marker):
    (folder / "weights.bin").symlink_to("/etc/passwd")
    return _onnx_with_external(folder, "weights.bin")


def _safetensors(folder, name, header: bytes, body: bytes = b""):
    path = folder / name
    path.write_bytes(len(header).to_bytes(8, "little") + header + body)
    return path


def truncated_safetensors(folder, marker):
    header = json.dumps({"w": {"dtype": "F32", "shape": [1000, 1000], "data_offsets": [0, 4_000_000]}}).encode()
    return _safetensors(folder, "truncated.safetensors", header, b"\0" * 100)


def oversized_header_safetensors(folder, marker):
    path = folder / "oversized.safetensors"
    path.write_bytes((1 << 60).to_bytes(8, "little") + b"{}")
    return path


def forged_shape_safetensors(folder, marker):
    header = json.dumps({"w": {"dtype": "F32", "shape": [10 ** 9, 10 ** 9], "data_offsets": [0, 16]}}).encode()
    return _safetensors(folder, "forged.safetensors", header, b"\0" * 16)


def empty_file(folder, marker):
    path = folder / "empty.onnx"
    path.write_bytes(b"")
    return path


def random_bytes(ext):
    def make(folder, marker):
        path = folder / f"random{ext}"
        path.write_bytes(np.random.default_rng(0).bytes(4096))
        return path
    return make


HOSTILE = {
    "raw pickle with a payload": (pickled_pt, "could run code"),
    "zip checkpoint with a payload": (zipped_pt, "could run code"),
    "TorchScript not marked trusted": (torchscript_pt, "TorchScript"),
    "ONNX external data with ../": (traversal_onnx, "outside its folder"),
    "ONNX external data at an absolute path": (absolute_onnx, "outside its folder"),
    "ONNX external data through a link leading out": (symlink_onnx, "outside its folder"),
    "truncated safetensors": (truncated_safetensors, "outside the file"),
    "safetensors with an oversized header": (oversized_header_safetensors, "bad header size"),
    "safetensors with a forged shape": (forged_shape_safetensors, "does not match its shape"),
    "empty file": (empty_file, "empty (0 bytes)"),
    "random .onnx": (random_bytes(".onnx"), "not a valid ONNX model"),
    "random .safetensors": (random_bytes(".safetensors"), "safetensors"),
    "random .pt": (random_bytes(".pt"), "not a readable PyTorch file"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_file_is_refused_and_nothing_runs(name, tmp_path, demo_dict):
    make, reason = HOSTILE[name]
    folder = tmp_path / "models"
    folder.mkdir()
    marker = tmp_path / "PAYLOAD-RAN"
    path = make(folder, marker)

    inspected = run_engine("inspect", path)
    assert inspected.returncode == 2, inspected.stdout
    assert reason in inspected.stderr and "Traceback" not in inspected.stderr

    demo_dict["teachers"][0].update(path=str(path), architecture={"kind": "mlp", "width": 32, "depth": 1})
    checked = run_engine("validate", write_spec(tmp_path, demo_dict), "--json")
    assert checked.returncode == 2 and "Traceback" not in checked.stderr
    problems = json.loads(checked.stdout)["problems"]
    assert any(p["path"].startswith("teachers[0]") for p in problems), problems
    assert not marker.exists()


def test_torchscript_runs_only_when_marked_trusted(tmp_path, demo_dict):
    path = torchscript_pt(tmp_path, None)
    demo_dict["teachers"][0].update(path=str(path), format="torchscript",
                                    classes=[str(i) for i in range(10)])
    refused = run_engine("validate", write_spec(tmp_path, demo_dict), "--json")
    assert refused.returncode == 2
    [problem] = json.loads(refused.stdout)["problems"]
    assert problem["path"] == "teachers[0].trusted" and "holds code" in problem["message"]
    demo_dict["teachers"][0]["trusted"] = True
    accepted = run_engine("validate", write_spec(tmp_path, demo_dict), "--json")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr


def test_reading_a_safe_state_dict_still_works(tmp_path):
    path = tmp_path / "ok.pt"
    torch.save({"w": torch.zeros(3)}, path)
    assert run_engine("inspect", path).returncode == 0
    assert not os.path.exists(tmp_path / "PAYLOAD-RAN")
