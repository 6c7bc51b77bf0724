"""`distill-engine export`: ONNX files that run in onnxruntime on raw inputs, and a report."""

import errno
import json
import shutil

import numpy as np
import onnxruntime as ort
import pytest
import torch
from sklearn.datasets import load_digits

from engine import export
from engine.errors import RunFailed
from engine.spec import QuantizeStep
from tests.helpers import DEMO, parse_events, run_engine, write_spec

pytestmark = pytest.mark.slow  # trains a run through the engine subprocess, then exports it


def test_export_writes_verified_onnx_int8_and_a_report(tmp_path, demo_dict):
    demo_dict["training"]["epochs"] = 5
    run = run_engine("run", write_spec(tmp_path, demo_dict), "--run-dir", tmp_path / "run", "--db", tmp_path / "db")
    assert run.returncode == 0, run.stderr
    out = tmp_path / "export"
    proc = run_engine("export", tmp_path / "run", "--out", out, "--quantize", "int8")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["parity_max_abs_diff"] < 1e-4
    assert report["files"]["onnx_int8"]["bytes"] * 3 < report["files"]["onnx_fp32"]["bytes"]
    assert abs(report["accuracy"]["onnx_int8"] - report["accuracy"]["onnx_fp32"]) < 0.02
    assert (out / "MODEL_CARD.md").read_text().startswith("# digits experts")

    # the exported model takes the raw digits as the dataset gives them, any batch size
    digits = load_digits()
    session = ort.InferenceSession(str(out / "student.onnx"), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"x": digits.images[:, None].astype(np.float32)})[0]
    assert logits.shape == (1797, 10)
    assert (logits.argmax(1) == digits.target).mean() > 0.9
    meta = {p.key: p.value for p in __import__("onnx").load(str(out / "student.onnx")).metadata_props}
    assert json.loads(meta["classes"]) == [str(i) for i in range(10)]


def test_export_of_a_folder_without_a_student(tmp_path):
    proc = run_engine("export", tmp_path, "--out", tmp_path / "x")
    assert proc.returncode == 2 and "holds no trained student" in proc.stderr and "Traceback" not in proc.stderr


# ── the bad cases, on one trained run ────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("trained")
    spec = json.loads(DEMO.read_text())
    for t in spec["teachers"]:
        t["path"] = str((DEMO.parent / t["path"]).resolve())
    spec["training"]["epochs"] = 4
    run = run_engine("run", write_spec(folder, spec), "--run-dir", folder / "run", "--db", folder / "db")
    assert run.returncode == 0, run.stderr
    return folder / "run"


def test_int8_over_the_accuracy_limit_is_not_kept_but_fp32_is(trained_run, tmp_path, monkeypatch):
    real = export._quantize

    def ruined(fp32, int8, step, train_x, out_dir):  # an int8 model that answers 0 for everything
        real(fp32, int8, step, np.zeros_like(train_x), out_dir)
        import onnx
        from onnx import numpy_helper

        proto = onnx.load(str(int8))
        for init in proto.graph.initializer:
            if init.name.endswith("_quantized") or init.data_type == onnx.TensorProto.INT8:
                init.CopyFrom(numpy_helper.from_array(np.zeros_like(numpy_helper.to_array(init)), init.name))
        onnx.save(proto, str(int8))

    monkeypatch.setattr(export, "_quantize", ruined)
    report = export.export_run(trained_run, tmp_path, QuantizeStep(max_accuracy_drop=0.5))
    assert not (tmp_path / "student.int8.onnx").exists() and (tmp_path / "student.onnx").is_file()
    assert report["quantization"]["kept"] is False and report["quantization"]["accuracy_drop_points"] > 0.5
    assert "onnx_int8" not in report["files"] and report["accuracy"]["onnx_int8_rejected"] < 0.5
    [problem] = report["problems"]
    assert problem["kind"] == "accuracy_drop" and "limit 0.5" in problem["message"] and "fp32" in problem["message"]
    assert "accuracy_drop" in (tmp_path / "MODEL_CARD.md").read_text()


def test_a_full_disk_is_named_and_finished_files_stay(trained_run, tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export.shutil, "copyfile", full)
    with pytest.raises(RunFailed) as err:
        export.export_run(trained_run, tmp_path)
    assert err.value.kind == "disk_full" and "disk is full" in err.value.message
    assert (tmp_path / "student.onnx").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no half-written temp files


def test_an_operator_that_does_not_export_is_named(tmp_path):
    class Spectral(torch.nn.Module):
        def forward(self, x):
            m = x.reshape(-1, 8, 8)
            return torch.linalg.eigh(m @ m.transpose(1, 2))[0]

    with pytest.raises(RunFailed) as err:
        export.to_onnx(Spectral(), np.ones((1, 1, 8, 8), np.float32), tmp_path / "m.onnx", {})
    assert err.value.kind == "export_operator" and "aten::linalg_eigh" in err.value.message
    assert list(tmp_path.iterdir()) == []


def test_cli_static_quantization_with_events(trained_run, tmp_path):
    proc = run_engine("export", trained_run, "--out", tmp_path / "o", "--calibration", "64", "--events")
    assert proc.returncode == 0, proc.stderr
    events = parse_events(proc.stdout)
    stages = [e["stage"] for e in events if e["event"] == "progress"]
    assert stages == ["load", "onnx", "verify", "quantize", "evaluate", "report", "done"]
    report = events[-1]["report"]
    assert events[-1]["event"] == "finished" and report["quantization"]["mode"] == "static"
    assert report["quantization"]["calibration_samples"] == 64 and "onnx_int8" in report["files"]
    ops = {n.op_type for n in __import__("onnx").load(str(tmp_path / "o" / "student.int8.onnx")).graph.node}
    assert "QuantizeLinear" in ops  # static QDQ, not dynamic


def test_cli_refuses_bad_numbers_and_folders(trained_run, tmp_path):
    bad = run_engine("export", trained_run, "--out", tmp_path / "o", "--calibration", "0")
    assert bad.returncode == 2 and "--calibration" in bad.stderr and "Traceback" not in bad.stderr
    (tmp_path / "file").write_text("x")
    bad = run_engine("export", trained_run, "--out", tmp_path / "file" / "sub")
    assert bad.returncode == 2 and "cannot write to" in bad.stderr
    copy = tmp_path / "copy"
    shutil.copytree(trained_run, copy)
    (copy / "student.safetensors").write_bytes(b"\x00" * 20)
    bad = run_engine("export", copy, "--out", tmp_path / "o2")
    assert bad.returncode == 2 and "safetensors" in bad.stderr and "Traceback" not in bad.stderr


def test_a_second_export_into_the_folder_leaves_no_stale_files(trained_run, tmp_path):
    out = tmp_path / "o"
    assert run_engine("export", trained_run, "--out", out, "--quantize", "int8").returncode == 0
    assert (out / "student.int8.onnx").is_file()
    proc = run_engine("export", trained_run, "--out", out, "--no-safetensors")
    assert proc.returncode == 0, proc.stderr
    assert not (out / "student.int8.onnx").exists() and not (out / "student.safetensors").exists()
    assert set(json.loads((out / "report.json").read_text())["files"]) == {"onnx_fp32"}


def test_a_quantizer_failure_keeps_fp32_and_says_so(trained_run, tmp_path, monkeypatch):
    def broken(*args):
        raise RuntimeError("unsupported node")

    monkeypatch.setattr(export, "_quantize", broken)
    report = export.export_run(trained_run, tmp_path, QuantizeStep())
    assert report["problems"][0]["kind"] == "quantize_failed" and "unsupported node" in report["problems"][0]["message"]
    assert (tmp_path / "student.onnx").is_file() and not (tmp_path / "student.int8.onnx").exists()
