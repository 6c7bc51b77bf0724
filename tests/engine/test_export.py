"""`distill-engine export`: ONNX files that run in onnxruntime on raw inputs, and a report."""

import errno
import json
import shutil
import time

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

    def ruined(fp32, int8, step, train_x, out_dir, *inputs):  # an int8 model that answers 0 for everything
        real(fp32, int8, step, np.zeros_like(train_x), out_dir, *inputs)
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


# ── unlabelled transfer data: a labelled test file, or no labels at all ─────────────────


def unlabelled_spec(folder, test_file: bool) -> tuple:
    """The demo's teachers on digits given as an npz without `y` (the transfer set); with
    test_file, 397 other digits with their labels in their own npz."""
    digits = load_digits()
    x, y = digits.images[:, None].astype(np.float32), digits.target
    order = np.random.default_rng(0).permutation(len(x))
    np.savez(folder / "transfer.npz", x=x[order[:1400]])
    np.savez(folder / "digits-test.npz", x=x[order[1400:]], y=y[order[1400:]])
    spec = json.loads(DEMO.read_text())
    for t in spec["teachers"]:
        t["path"] = str((DEMO.parent / t["path"]).resolve())
    spec["training"]["epochs"] = 6
    spec["data"] = {"format": "npz", "path": "transfer.npz", "split": {"val": 0.1, "test": 0.1, "seed": 0}}
    if test_file:
        spec["data"]["test_file"] = "digits-test.npz"
    return write_spec(folder, spec), spec, (x[order[1400:]], y[order[1400:]])


def test_unlabelled_transfer_with_a_test_file_measures_student_teachers_and_int8(tmp_path):
    spec_path, spec, (test_x, test_y) = unlabelled_spec(tmp_path, test_file=True)
    spec["compression"] = [{"kind": "quantize", "mode": "dynamic", "max_accuracy_drop": 100}]
    spec["export"] = {}
    write_spec(tmp_path, spec)
    run = run_engine("run", spec_path, "--run-dir", tmp_path / "run", "--db", tmp_path / "db")
    assert run.returncode == 0, run.stderr
    events = parse_events(run.stdout)
    assert events[0]["labeled"] is False
    assert not [e for e in events if e["event"] == "log" and "could not be measured" in e["message"]]

    # each teacher's accuracy on its classes of the test file, in the events and in the store
    test_metrics = {k: v for e in events if e["event"] == "metric" for k, v in e["values"].items()
                    if k.startswith("test/")}
    names = [t["name"] for t in spec["teachers"]]
    assert {f"test/teacher_acc/{n}" for n in names} <= set(test_metrics) and "test/acc" in test_metrics
    assert all(0.9 < test_metrics[f"test/teacher_acc/{n}"] <= 1.0 for n in names)
    from engine.store import Store

    store = Store(tmp_path / "db")
    stored = {m["name"] for m in store.metrics(events[-1]["run_id"])}
    store.close()
    assert {f"test/teacher_acc/{n}" for n in names} <= stored

    report = events[-1]["export"]
    acc = report["accuracy"]
    assert all(isinstance(acc[k], float) for k in ("pytorch_fp32", "onnx_fp32", "onnx_int8"))
    assert report["evaluated_on"] == "test file digits-test.npz" and report["test_samples"] == len(test_y) == 397
    assert report["accuracy_note"] is None and report["notes"] == [] and report["problems"] == []
    q = report["quantization"]
    assert q["checked"] is True and q["kept"] is True and q["skipped_because"] is None
    assert q["accuracy_drop_points"] == round((acc["onnx_fp32"] - acc["onnx_int8"]) * 100, 3)
    # measured on the test file itself: the exported model, run here on it, gives the same figure
    session = ort.InferenceSession(str(tmp_path / "run" / "export" / "student.onnx"),
                                   providers=["CPUExecutionProvider"])
    assert float((session.run(None, {"x": test_x})[0].argmax(1) == test_y).mean()) == acc["onnx_fp32"]
    assert acc["onnx_fp32"] == pytest.approx(test_metrics["test/acc"], abs=1e-6)
    card = (tmp_path / "run" / "export" / "MODEL_CARD.md").read_text()
    assert "test file digits-test.npz accuracy (397 samples)" in card

    # the latency section: every path warmed up, then timed; speed-ups from the medians
    lat = report["latency"]
    assert lat["threads"] == report["threads"] >= 1 and lat["warmup_batches"] == export.LATENCY_WARMUP
    assert set(lat["ms_per_batch"]) == {"pytorch_fp32", "onnx_fp32", "onnx_int8"}
    for name, s in lat["ms_per_batch"].items():
        assert s["timed_batches"] >= export.LATENCY_TIMED[0]
        assert s["min"] <= s["p10"] <= s["median"] <= s["p90"] <= s["max"]
        assert report["latency_ms_per_batch"][name] == s["median"]
    torch_median = lat["ms_per_batch"]["pytorch_fp32"]["median"]
    assert lat["speedup_vs_pytorch"] == {k: round(torch_median / lat["ms_per_batch"][k]["median"], 2)
                                         for k in ("onnx_fp32", "onnx_int8")}
    assert lat["load"]["cpu_count"] and isinstance(lat["indicative"], bool)
    assert (lat["indicative_because"] is None) == (not lat["indicative"])


def test_without_any_labels_the_accuracy_is_not_measured_and_int8_not_checked(tmp_path):
    spec_path, spec, _ = unlabelled_spec(tmp_path, test_file=False)
    spec["training"]["epochs"] = 2
    write_spec(tmp_path, spec)
    run = run_engine("run", spec_path, "--run-dir", tmp_path / "run", "--db", tmp_path / "db")
    assert run.returncode == 0, run.stderr
    events = parse_events(run.stdout)
    warned = [e["message"] for e in events if e["event"] == "log" and e["level"] == "warning"
              and "test accuracy could not be measured" in e["message"]]
    assert warned == ["test accuracy could not be measured: the data has no labels and no test file, "
                      "set data.test_file to a labelled file"]
    assert not [k for e in events if e["event"] == "metric" for k in e["values"] if k.startswith("test/")]

    out = tmp_path / "out"
    proc = run_engine("export", tmp_path / "run", "--out", out, "--quantize", "int8")
    assert proc.returncode == 0, proc.stderr  # a note, not a failure
    assert ("test accuracy: not measured (the data has no labels and no test file; set data.test_file to a "
            "labelled file)") in proc.stdout
    assert "test accuracy: ;" not in proc.stdout and "int8: kept unchecked" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["accuracy"] == {"pytorch_fp32": None, "onnx_fp32": None, "onnx_int8": None}
    assert report["accuracy_note"].startswith("not measured: the data has no labels and no test file")
    assert "data.test_file" in report["accuracy_note"] and report["problems"] == []
    q = report["quantization"]
    assert q["checked"] is False and q["kept"] is True and "no labelled samples" in q["skipped_because"]
    assert q["accuracy_drop_points"] is None and 0.5 < q["agreement_with_fp32"] <= 1.0
    assert [n["kind"] for n in report["notes"]] == ["not_measured", "int8_not_checked"]
    card = (out / "MODEL_CARD.md").read_text()
    assert "| not measured |" in card and "kept without its accuracy check" in card

    events = parse_events(run_engine("export", tmp_path / "run", "--out", tmp_path / "o2", "--quantize", "int8",
                                     "--events").stdout)
    assert events[-1]["event"] == "finished" and events[-1]["status"] == "completed" and events[-1]["exit_code"] == 0
    assert not [e for e in events if e["event"] == "error"]
    assert any(e["event"] == "log" and "test accuracy was not measured" in e["message"] for e in events)


def test_export_into_the_run_folder_is_refused_and_the_run_keeps_its_files(trained_run):
    before = {p: p.read_bytes() for p in trained_run.rglob("*") if p.is_file()}
    proc = run_engine("export", trained_run, "--out", trained_run, "--no-safetensors")
    assert proc.returncode == 2 and "is a run folder" in proc.stderr and "Traceback" not in proc.stderr
    assert f"{trained_run / 'export'}" in proc.stderr  # where to export instead
    assert {p: p.read_bytes() for p in trained_run.rglob("*") if p.is_file()} == before


def test_export_never_overwrites_or_deletes_files_it_did_not_write(trained_run, tmp_path):
    out = tmp_path / "shared"
    out.mkdir()
    (out / "student.int8.onnx").write_text("the user's own int8 model")
    (out / "report.json").write_text("the user's report")
    (out / "notes.txt").write_text("other files are fine")
    proc = run_engine("export", trained_run, "--out", out)
    assert proc.returncode == 2 and "student.int8.onnx, report.json, which no export wrote" in proc.stderr
    assert (out / "student.int8.onnx").read_text() == "the user's own int8 model"
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "report.json", "student.int8.onnx"]

    (out / "student.int8.onnx").unlink()
    (out / "report.json").unlink()
    assert run_engine("export", trained_run, "--out", out).returncode == 0
    manifest = json.loads((out / "export-manifest.json").read_text())["files"]
    pictures = {"amalgamation.png", "confusion.png", "agreement.png", "calibration.png"}  # the card's
    assert set(manifest) == {"student.onnx", "student.safetensors", "report.json", "MODEL_CARD.md", *pictures}
    assert (out / "notes.txt").read_text() == "other files are fine"

    (out / "MODEL_CARD.md").write_text("edited by the user after the export")
    proc = run_engine("export", trained_run, "--out", out, "--no-safetensors")
    assert proc.returncode == 2 and "MODEL_CARD.md, which were changed after an export wrote them" in proc.stderr
    assert (out / "student.safetensors").is_file()  # nothing removed by the refused export


def test_cli_export_times_a_warm_pytorch_and_sane_speedups(trained_run, tmp_path):
    """`distill-engine export` in a fresh process (the Export panel's path): PyTorch fp32 timed
    warm, near what the same model takes here once warm, and speed-ups of a few times, not the
    1000× a cold (or thread-starved) PyTorch gave."""
    from engine.data import load_dataset
    from engine.model_files import load_safetensors, pruned_widths
    from engine.models import fit_weights
    from engine.spec import load_spec

    proc = run_engine("export", trained_run, "--out", tmp_path / "o", "--quantize", "int8", "--events")
    assert proc.returncode == 0, proc.stderr
    report = parse_events(proc.stdout)[-1]["report"]
    latency = report["latency"]
    speedups = latency["speedup_vs_pytorch"]
    assert set(speedups) == {"onnx_fp32", "onnx_int8"}
    assert all(0.05 <= v <= 50 for v in speedups.values()), latency
    reported = report["latency_ms_per_batch"]["pytorch_fp32"]

    spec = load_spec(trained_run / "spec.distill.json")
    data = load_dataset(spec, None)
    weights = trained_run / "student.safetensors"
    model = fit_weights(spec.student.architecture, data.sample_shape, len(spec.classes), "RUN_DIR",
                        load_safetensors(weights, "RUN_DIR"), weights.name,
                        widths=pruned_widths(weights, "RUN_DIR"))
    batch = torch.from_numpy(export._batch(data.test.x))
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: no pool to wake, the steady reference on any machine
    try:
        with torch.inference_mode():
            for _ in range(20):
                model(batch)
            took = []
            for _ in range(50):
                start = time.perf_counter()
                model(batch)
                took.append((time.perf_counter() - start) * 1000)
    finally:
        torch.set_num_threads(before)
    mine = float(np.median(took))
    assert mine / 5 <= reported <= mine * 5, (reported, mine, latency)
