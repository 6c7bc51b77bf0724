"""A spec with prune → quantize → export, run by the real engine; the files checked from outside."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from engine.checkpoint import latest_checkpoint, load_checkpoint
from engine.data import load_dataset
from engine.spec import parse_spec
from tests.helpers import parse_events, run_engine, start_engine, wait_for, write_spec

pytestmark = pytest.mark.slow  # every test trains through the engine subprocess

PLAIN_SCRIPT = """
import json, sys
import numpy as np, onnxruntime as ort
data = np.load(sys.argv[2])
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
logits = session.run(None, {session.get_inputs()[0].name: data["x"]})[0]
print(json.dumps({"acc": float((logits.argmax(1) == data["y"]).mean()), "rows": len(logits)}))
"""


def test_prune_quantize_export_files_run_in_plain_onnxruntime(tmp_path, demo_dict):
    demo_dict["training"]["epochs"] = 8
    demo_dict["compression"] = [
        {"kind": "prune", "method": "magnitude", "sparsity": 0.5, "scope": "global", "finetune_epochs": 3},
        {"kind": "quantize", "mode": "static", "calibration_samples": 128}]
    demo_dict["export"] = {"folder": "exported"}
    spec_path = write_spec(tmp_path, demo_dict)
    proc = run_engine("run", spec_path, "--run-dir", tmp_path / "run", "--db", tmp_path / "db")
    assert proc.returncode == 0, proc.stderr
    events = parse_events(proc.stdout)
    logs = [e["message"] for e in events if e["event"] == "log"]
    assert any("pruned 50.0% of the weights by magnitude (global)" in m for m in logs)
    assert any(m.startswith("prune 1:") for m in logs)
    kinds = {e["kind"] for e in events if e["event"] == "artifact"}
    assert {"student", "onnx_fp32", "onnx_int8", "safetensors", "report"} <= kinds
    finished = events[-1]
    assert finished["status"] == "completed" and finished["sparsity"] >= 0.49
    report = finished["export"]
    out = tmp_path / "exported"  # relative to the spec file
    assert report["folder"] == str(out) and json.loads((out / "report.json").read_text())["sparsity"] >= 0.49

    # the weights really are half zero, and the fine-tune phase's epochs were run
    weights = load_file(str(out / "student.safetensors"))
    linear = [v for k, v in weights.items() if k.endswith("weight") and v.ndim == 2]
    zeros = sum(int((w == 0).sum()) for w in linear) / sum(w.numel() for w in linear)
    assert 0.49 <= zeros <= 0.51
    assert max(e["epoch"] for e in events if e["event"] == "progress" and "epoch" in e) == 11

    # a plain onnxruntime script, no project code, on the raw test split: the reported accuracy
    split = load_dataset(parse_spec(demo_dict, tmp_path)).test
    np.savez(tmp_path / "test.npz", x=split.x, y=split.y)
    for key, name in (("onnx_fp32", "student.onnx"), ("onnx_int8", "student.int8.onnx")):
        plain = subprocess.run([sys.executable, "-I", "-c", PLAIN_SCRIPT, str(out / name),
                                str(tmp_path / "test.npz")], capture_output=True, text=True,
                               cwd=tmp_path, timeout=60)
        assert plain.returncode == 0, plain.stderr
        measured = json.loads(plain.stdout)
        assert measured["rows"] == report["test_samples"] == len(split.y)
        assert measured["acc"] == report["accuracy"][key]
    assert report["accuracy"]["onnx_fp32"] > 0.9
    assert report["files"]["onnx_int8"]["bytes"] * 2.5 < report["files"]["onnx_fp32"]["bytes"]
    assert report["quantization"] == {"mode": "static", "max_accuracy_drop": 1.0, "calibration_samples": 128,
                                      "accuracy_drop_points": report["quantization"]["accuracy_drop_points"],
                                      "kept": True, "checked": True, "skipped_because": None,
                                      "agreement_with_fp32": report["quantization"]["agreement_with_fp32"]}
    card = (out / "MODEL_CARD.md").read_text()
    assert "prune magnitude 50%; quantize static" in card and "sparsity 50" in card


def test_structured_pruning_exports_a_smaller_model(tmp_path, demo_dict):
    demo_dict["training"]["epochs"] = 6
    demo_dict["compression"] = [{"kind": "prune", "method": "structured", "sparsity": 0.75,
                                 "finetune_epochs": 5, "finetune_lr": 0.002}]
    run = run_engine("run", write_spec(tmp_path, demo_dict), "--run-dir", tmp_path / "run", "--db", tmp_path / "db")
    assert run.returncode == 0, run.stderr
    finished = parse_events(run.stdout)[-1]
    assert finished["parameters"] < 85_002 / 4 and finished["export"] is None
    proc = run_engine("export", tmp_path / "run", "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["hidden_widths"] == [64, 64] and report["parameters"] == finished["parameters"]
    assert report["accuracy"]["onnx_fp32"] > 0.85 and "onnx_int8" not in report["files"]


def test_stopped_in_the_fine_tune_resumes_to_the_same_weights(tmp_path, demo_dict):
    demo_dict["training"].update(epochs=4, cpu_threads=1)
    demo_dict["compression"] = [{"kind": "prune", "method": "magnitude", "sparsity": 0.5, "finetune_epochs": 3},
                                {"kind": "prune", "method": "structured", "sparsity": 0.5, "finetune_epochs": 3}]
    spec = write_spec(tmp_path, demo_dict)
    db = tmp_path / "db.sqlite"
    whole = run_engine("run", spec, "--run-dir", tmp_path / "whole", "--db", db)
    assert whole.returncode == 0, whole.stderr

    for stop_after in (5, 8):  # inside the magnitude fine-tune (masks on), then the structured one
        folder = tmp_path / f"parts{stop_after}"
        proc = start_engine(spec, folder, db)
        wait_for(proc, "checkpoint", stop_after)
        proc.stdin.write("stop\n")
        proc.stdin.flush()
        proc.stdout.read()
        assert proc.wait(timeout=60) == 3
        ckpt = load_checkpoint(latest_checkpoint(folder / "checkpoints"))
        assert ckpt["phase"] == (1 if stop_after == 5 else 2)
        resumed = run_engine("resume", folder)
        assert resumed.returncode == 0, resumed.stderr
        a = load_file(str(tmp_path / "whole" / "student.safetensors"))
        b = load_file(str(folder / "student.safetensors"))
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), (stop_after, k)


def test_a_failed_export_keeps_the_completed_run_and_says_why(tmp_path, demo_dict):
    demo_dict["training"]["epochs"] = 2
    (tmp_path / "a-file").write_text("not a folder")
    demo_dict["export"] = {"folder": "a-file/out"}
    run = run_engine("run", write_spec(tmp_path, demo_dict), "--run-dir", tmp_path / "run", "--db", tmp_path / "db")
    assert run.returncode == 0, run.stderr
    events = parse_events(run.stdout)
    [error] = [e for e in events if e["event"] == "error"]
    assert error["message"].startswith("the export failed: cannot write to") and "export it again" in error["hint"]
    assert events[-1]["status"] == "completed" and events[-1]["export"] is None
    assert "cannot write to" in events[-1]["export_error"]
    assert (tmp_path / "run" / "student.safetensors").is_file()


def test_a_structurally_pruned_student_teaches_in_turn_and_exports_without_test_split(tmp_path, demo_dict):
    demo_dict["training"]["epochs"] = 2
    demo_dict["data"]["split"] = {"val": 0.0, "test": 0.0}
    demo_dict["compression"] = [{"kind": "prune", "method": "structured", "sparsity": 0.5, "finetune_epochs": 1}]
    demo_dict["export"] = {}
    run = run_engine("run", write_spec(tmp_path, demo_dict), "--run-dir", tmp_path / "run", "--db", tmp_path / "db")
    assert run.returncode == 0, run.stderr
    report = parse_events(run.stdout)[-1]["export"]
    assert report["evaluated_on"] == "train" and report["test_samples"] == 1797
    assert "train accuracy (1797 samples)" in (tmp_path / "run" / "export" / "MODEL_CARD.md").read_text()

    demo_dict.pop("compression"), demo_dict.pop("export")
    demo_dict["teachers"] = [{"name": "pruned", "path": str(tmp_path / "run" / "student.safetensors"),
                              "classes": [str(i) for i in range(10)],
                              "architecture": {"kind": "mlp", "width": 256, "depth": 2}}]
    checked = run_engine("validate", write_spec(tmp_path, demo_dict, "second.distill.json"))
    assert checked.returncode == 0, checked.stderr
