"""Hostile files, second round (issue 22): small files that declare huge sizes, and files that
used to crash the engine. Each is refused with exit 2 and a message that names the file and the
absurd number, before anything large is allocated.

The engine runs as a subprocess under an address-space limit (`ulimit -v`), so a check that
came too late fails the test with an out-of-memory error instead of taking the machine's
memory; no test here allocates what a bomb declares.
"""

import gzip
import json
import struct
import sys
import zipfile

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from tests.helpers import ROOT, write_spec

pytestmark = pytest.mark.slow  # every test starts the engine as a subprocess

LIMIT_KIB = 4 << 20  # 4 GiB of address space for the engine


def limited_engine(*args, timeout=120):
    """`python -m engine ARGS` under a 4 GiB address-space limit."""
    import subprocess

    command = " ".join(["ulimit -v", str(LIMIT_KIB), "&&", "exec", sys.executable, "-m", "engine",
                        *(f"'{a}'" for a in map(str, args))])
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, stdin=subprocess.DEVNULL)


def validate(tmp_path, spec: dict):
    done = limited_engine("validate", write_spec(tmp_path, spec), "--json")
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.returncode == 2, done.stdout + done.stderr[-2000:]
    return json.loads(done.stdout)["problems"]


def write_zeros(stream, nbytes, chunk=16 << 20):
    """Zeros into a (compressing) stream, a chunk at a time: never the whole size in memory."""
    block = bytes(chunk)
    while nbytes > 0:
        stream.write(block[:min(chunk, nbytes)])
        nbytes -= chunk


# ── safetensors: widths in the metadata, and metadata of the wrong type ─────────────────────


def mlp_teacher(folder, demo_dict, metadata=None, width=8):
    """A small mlp teacher (64 inputs, 1 hidden layer, 5 classes) as safetensors, in the spec."""
    path = folder / "teacher.safetensors"
    state = {"normalize.mean": torch.zeros(1, 1, 1), "normalize.std": torch.ones(1, 1, 1),
             "body.1.weight": torch.zeros(width, 64), "body.1.bias": torch.zeros(width),
             "head.weight": torch.zeros(5, width), "head.bias": torch.zeros(5)}
    save_file(state, str(path), metadata=metadata)
    demo_dict["teachers"] = [{"name": "forged", "path": str(path), "format": "safetensors",
                              "classes": ["0", "1", "2", "3", "4"],
                              "architecture": {"kind": "mlp", "width": width, "depth": 1}}]
    return path


@pytest.mark.parametrize("widths, said", [([65536, 65536], "65536"), ([1] * 1_000_000, "1000000 widths")])
def test_widths_in_a_teachers_metadata_are_checked_before_the_model_is_built(widths, said, tmp_path, demo_dict):
    mlp_teacher(tmp_path, demo_dict, {"widths": json.dumps(widths)})
    problems = validate(tmp_path, demo_dict)
    [problem] = problems
    assert problem["path"].startswith("teachers[0]") and "teacher.safetensors" in problem["message"]
    assert said in problem["message"] and "smaller student" not in problem["message"]


def test_widths_that_fit_no_tensor_are_refused_before_the_model_is_built(tmp_path, demo_dict):
    mlp_teacher(tmp_path, demo_dict, {"widths": "[4096]"})
    [problem] = validate(tmp_path, demo_dict)
    assert "hidden width 4096" in problem["message"] and "teacher.safetensors" in problem["message"]


def test_honest_widths_still_load(tmp_path, demo_dict):
    mlp_teacher(tmp_path, demo_dict, {"widths": "[8]"})
    done = limited_engine("validate", write_spec(tmp_path, demo_dict), "--json")
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]


def _raw_safetensors(path, metadata):
    header = {"__metadata__": metadata, "w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
    raw = json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + bytes(8))
    return path


@pytest.mark.parametrize("metadata", [["a", "b"], "classes", {"classes": 5}, {"classes": ["0", "1"]}])
def test_safetensors_metadata_of_the_wrong_type_is_refused(metadata, tmp_path, demo_dict):
    path = _raw_safetensors(tmp_path / "student.safetensors", metadata)
    inspected = limited_engine("inspect", path)
    assert inspected.returncode == 2 and "Traceback" not in inspected.stderr, inspected.stderr[-2000:]
    assert "__metadata__" in inspected.stderr
    demo_dict["strategy"]["previous_student"] = str(path)
    [problem] = validate(tmp_path, demo_dict)
    assert problem["path"] == "strategy.previous_student" and "__metadata__" in problem["message"]


# ── data files that declare more than they hold, or unpack to gigabytes ─────────────────────


def _npy_header(shape, dtype="<f8"):
    buffer = __import__("io").BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def test_an_npz_member_declaring_more_than_it_holds_is_refused(tmp_path, demo_dict):
    path = tmp_path / "forged.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("x.npy", _npy_header((1 << 20, 1 << 20)) + bytes(64))
    demo_dict["data"] = {"format": "npz", "path": str(path)}
    [problem] = validate(tmp_path, demo_dict)
    assert problem["path"] == "data.path" and "forged.npz" in problem["message"]
    assert "[1048576, 1048576]" in problem["message"]


def test_an_npz_zip_bomb_is_refused_before_it_is_unpacked(tmp_path, demo_dict):
    path = tmp_path / "bomb.npz"
    shape = (1 << 20, 1024)  # 1 GiB of bytes in a ~1 MB file; 4 GiB more as float32
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        with z.open("x.npy", "w", force_zip64=True) as member:
            member.write(_npy_header(shape, "|u1"))
            write_zeros(member, shape[0] * shape[1])
    assert path.stat().st_size < 16 << 20
    demo_dict["data"] = {"format": "npz", "path": str(path)}
    [problem] = validate(tmp_path, demo_dict)
    assert "bomb.npz" in problem["message"] and "[1048576, 1024]" in problem["message"]
    assert "GiB" in problem["message"]


def _idx_header(dims, type_code=0x08):
    return bytes([0, 0, type_code, len(dims)]) + b"".join(struct.pack(">i", d) for d in dims)


def test_an_idx_gz_bomb_is_refused_before_it_is_unpacked(tmp_path, demo_dict):
    path = tmp_path / "images-idx3-ubyte.gz"
    dims = [1024, 1024, 1024]  # 1 GiB of bytes in a ~1 MB file, 4 GiB more as float32
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(_idx_header(dims))
        write_zeros(f, 1 << 30)
    demo_dict["data"] = {"format": "idx", "images": str(path)}
    [problem] = validate(tmp_path, demo_dict)
    assert problem["path"] == "data.images" and path.name in problem["message"]
    assert "[1024, 1024, 1024]" in problem["message"]


def test_idx_sizes_whose_product_overflows_are_refused(tmp_path, demo_dict):
    path = tmp_path / "images-idx3-ubyte"
    path.write_bytes(_idx_header([1 << 16] * 4) + bytes(64))  # 2**64 wraps to 0 in int64
    demo_dict["data"] = {"format": "idx", "images": str(path)}
    [problem] = validate(tmp_path, demo_dict)
    assert problem["path"] == "data.images" and path.name in problem["message"]
    assert "[65536, 65536, 65536, 65536]" in problem["message"]


def test_a_proc_file_given_as_a_csv_is_refused(tmp_path, demo_dict):
    demo_dict["data"] = {"format": "csv", "path": "/proc/self/pagemap", "label_column": "y"}
    [problem] = validate(tmp_path, demo_dict)
    assert problem["path"] == "data.path" and "not a regular file" in problem["message"]


def test_a_csv_cell_over_128_kib_is_read(tmp_path, demo_dict):
    path = tmp_path / "long.csv"
    path.write_text("a,b,y\n" + "".join(f"{i},{i},{i % 2}\n" for i in range(20)) + '1,"' + "x" * 200_000 + '",0\n')
    demo_dict.update(classes=["0", "1"], teachers=[])
    demo_dict["strategy"]["hard_label_weight"] = 1.0
    demo_dict["data"] = {"format": "csv", "path": str(path), "label_column": "y", "columns": ["a"]}
    done = limited_engine("validate", write_spec(tmp_path, demo_dict), "--json")
    assert "Traceback" not in done.stderr and "field larger" not in done.stdout + done.stderr, done.stderr[-2000:]
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]


def test_a_csv_row_that_cannot_be_parsed_is_named(tmp_path, demo_dict):
    path = tmp_path / "huge-cell.csv"
    with path.open("w") as f:
        f.write("a,y\n1,0\n2,1\n3,\"")
        f.write("x" * ((64 << 20) + 10))  # one cell past the 64 MiB a cell may be
        f.write("\",0\n")
    demo_dict.update(classes=["0", "1"], teachers=[])
    demo_dict["strategy"]["hard_label_weight"] = 1.0
    demo_dict["data"] = {"format": "csv", "path": str(path), "label_column": "y"}
    [problem] = validate(tmp_path, demo_dict)
    assert problem["path"] == "data.path" and "row 4" in problem["message"]


# ── ONNX: constants and statically known outputs that would take gigabytes ───────────────────


def onnx_teacher(folder, demo_dict, nodes, initializers, outputs=5, name="teacher.onnx"):
    """An ONNX teacher of the digits (64 inputs) from `nodes`, which compute y from x."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", outputs])],
                              initializers)
    path = folder / name
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    demo_dict["teachers"] = [{"name": "forged", "path": str(path), "classes": [str(i) for i in range(outputs)]}]
    return path


@pytest.mark.parametrize("count", [10**9, 10**12])
def test_an_onnx_constant_of_shape_bomb_is_refused(count, tmp_path, demo_dict):
    from onnx import helper, numpy_helper

    nodes = [helper.make_node("MatMul", ["x", "W"], ["m"]),
             helper.make_node("ConstantOfShape", ["shape"], ["c"],
                              value=numpy_helper.from_array(np.zeros(1, np.float32))),
             helper.make_node("ReduceSum", ["c"], ["s"], keepdims=0),
             helper.make_node("Add", ["m", "s"], ["y"])]
    path = onnx_teacher(tmp_path, demo_dict, nodes, [numpy_helper.from_array(np.zeros((64, 5), np.float32), "W"),
                                                      numpy_helper.from_array(np.array([count], np.int64), "shape")])
    assert path.stat().st_size < 4096
    inspected = limited_engine("inspect", path)
    assert inspected.returncode == 2 and "Traceback" not in inspected.stderr, inspected.stderr[-2000:]
    assert f"[{count}]" in inspected.stderr and "ConstantOfShape" in inspected.stderr
    [problem] = validate(tmp_path, demo_dict)
    assert problem["path"] == "teachers[0].path" and f"[{count}]" in problem["message"]


def test_an_onnx_expand_bomb_is_refused(tmp_path, demo_dict):
    from onnx import helper, numpy_helper

    nodes = [helper.make_node("Expand", ["one", "shape"], ["c"]),
             helper.make_node("ReduceSum", ["c"], ["s"], keepdims=0),
             helper.make_node("MatMul", ["x", "W"], ["m"]),
             helper.make_node("Add", ["m", "s"], ["y"])]
    onnx_teacher(tmp_path, demo_dict, nodes, [numpy_helper.from_array(np.zeros((64, 5), np.float32), "W"),
                                              numpy_helper.from_array(np.ones(1, np.float32), "one"),
                                              numpy_helper.from_array(np.array([10**5, 10**5], np.int64), "shape")])
    [problem] = validate(tmp_path, demo_dict)
    assert "Expand" in problem["message"] and "[100000, 100000]" in problem["message"]


def test_a_teacher_whose_output_is_batch_by_batch_is_refused_by_validate(tmp_path, demo_dict):
    """[batch, batch] outputs (x·xᵀ) have the declared width at the probe's batch size only."""
    from onnx import helper

    nodes = [helper.make_node("Transpose", ["x"], ["t"]), helper.make_node("MatMul", ["x", "t"], ["y"])]
    onnx_teacher(tmp_path, demo_dict, nodes, [], outputs=8)  # the probe is 8 samples
    [problem] = validate(tmp_path, demo_dict)
    assert problem["path"].startswith("teachers[0]") and "[batch, classes]" in problem["message"]


def test_a_teacher_whose_output_is_transposed_is_refused_by_validate(tmp_path, demo_dict):
    from onnx import helper, numpy_helper

    nodes = [helper.make_node("MatMul", ["x", "W"], ["m"]), helper.make_node("Transpose", ["m"], ["y"])]
    onnx_teacher(tmp_path, demo_dict, nodes, [numpy_helper.from_array(np.zeros((64, 8), np.float32), "W")],
                 outputs=8)
    [problem] = validate(tmp_path, demo_dict)
    assert problem["path"].startswith("teachers[0]") and "[batch, classes]" in problem["message"]


# ── specs nested too deeply, and a damaged run store ───────────────────────────────────────


@pytest.mark.parametrize("depth", [150, 100_000])
def test_a_deeply_nested_spec_is_refused(depth, tmp_path, demo_dict):
    from engine.errors import InputError
    from engine.spec import load_spec

    path = tmp_path / "deep.distill.json"
    text = json.dumps(demo_dict)
    path.write_text(text[:-1] + ', "name": ' + "[" * depth + "]" * depth + "}")
    with pytest.raises(InputError, match="nested"):
        load_spec(path)
    done = limited_engine("validate", path)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "nested" in done.stdout + done.stderr


def test_a_damaged_store_is_said_to_be_damaged_and_kept(tmp_path):
    db = tmp_path / "runs.sqlite"
    garbage = np.random.default_rng(0).bytes(64 * 1024)
    db.write_bytes(garbage)
    done = limited_engine("runs", "--db", db)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert str(db) in done.stderr and "damaged" in done.stderr
    assert db.read_bytes() == garbage  # read only: the old file is as it was


def test_a_damaged_store_can_be_moved_aside_and_a_new_one_started(tmp_path):
    from engine.store import StoreDamaged, move_aside, open_checked

    db = tmp_path / "runs.sqlite"
    db.write_bytes(b"SQLite format 3\0" + bytes(range(256)) * 64)  # a header, then garbage
    with pytest.raises(StoreDamaged) as raised:
        open_checked(db)
    kept = move_aside(raised.value.path)
    assert kept.exists() and kept.read_bytes().startswith(b"SQLite format 3") and not db.exists()
    store = open_checked(db)
    assert store.runs() == []
    store.close()


def test_an_onnxruntime_failure_during_validate_is_a_problem_of_that_teacher(tmp_path, demo_dict):
    """The graph is valid, but onnxruntime fails running it (64 values cannot be reshaped to 7s)."""
    from onnx import helper, numpy_helper

    nodes = [helper.make_node("Reshape", ["x", "shape"], ["y"])]
    onnx_teacher(tmp_path, demo_dict, nodes, [numpy_helper.from_array(np.array([-1, 7], np.int64), "shape")],
                 outputs=7)
    [problem] = validate(tmp_path, demo_dict)
    assert problem["path"].startswith("teachers[0]") and "forged" in problem["message"]
