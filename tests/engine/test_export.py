"""`distill-engine export`: ONNX files that run in onnxruntime on raw inputs, and a report."""

import json

import numpy as np
import onnxruntime as ort
from sklearn.datasets import load_digits

from tests.conftest import run_engine, write_spec


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
