"""A text pipeline as users start it: `distill-engine run` as a subprocess on texts, two ONNX text
teachers (TF-IDF strings and token ids of their own tokenizer), a transformer student, its
export with the tokenizer beside it; and `validate` on a file that is not UTF-8."""

import json

import numpy as np
import pytest

from tests.helpers import (
    TEXT_CLASSES,
    labelled_texts,
    parse_events,
    run_engine,
    start_engine,
    tfidf_teacher,
    token_ids_teacher,
    wait_for,
    write_jsonl,
    write_spec,
)

pytestmark = pytest.mark.slow  # every test starts the engine as a subprocess

STUDENT = {"kind": "transformer", "vocab_size": 1024, "max_length": 32, "dim": 32, "depth": 1, "heads": 2}


def text_spec(tmp_path, **data) -> dict:
    rows = labelled_texts(24)
    path = write_jsonl(tmp_path / "texts.jsonl", rows)
    tfidf_teacher(tmp_path / "tfidf.onnx", rows, ["food", "tech"])
    token_ids_teacher(tmp_path / "bag", rows, ["sport", "food"])
    return {"schema_version": 1, "name": "text run", "classes": TEXT_CLASSES,
            "data": {"format": "text", "path": str(path), "label_column": "label", "vocab_size": 1000,
                     "max_length": 32, "split": {"val": 0.2, "test": 0.2, "seed": 1}, **data},
            "teachers": [{"name": "tfidf", "path": str(tmp_path / "tfidf.onnx"), "classes": ["food", "tech"]},
                         {"name": "bag", "path": str(tmp_path / "bag" / "model.onnx"), "classes": ["sport", "food"]}],
            "student": {"architecture": dict(STUDENT)},
            "training": {"epochs": 2, "batch_size": 8, "lr": 0.003, "device": "cpu"},
            # a few test texts: one changed answer is 7 points, so the int8 file is always kept here
            "compression": [{"kind": "quantize", "max_accuracy_drop": 100}]}


def test_a_text_run_trains_and_exports_a_student_that_reads_its_tokenizer(tmp_path):
    import onnxruntime as ort
    from tokenizers import Tokenizer

    from engine.data import load_dataset
    from engine.model_files import load_safetensors
    from engine.models import fit_weights
    from engine.spec import load_spec
    from engine.text_export import run_tokenizer

    run_dir, db = tmp_path / "run", tmp_path / "runs.sqlite"
    proc = run_engine("run", write_spec(tmp_path, text_spec(tmp_path)), "--run-dir", run_dir, "--db", db,
                      timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = parse_events(proc.stdout)
    finished = events[-1]
    assert finished["event"] == "finished" and finished["status"] == "completed", finished
    assert [t["name"] for t in events[0]["teachers"]] == ["tfidf", "bag"]
    logs = " ".join(e["message"] for e in events if e["event"] == "log")
    assert "student tokenizer: trained on" in logs

    saved = run_dir / "tokenizer.json"
    assert saved.is_file()
    out = run_dir / "export"
    for name in ("student.onnx", "student.int8.onnx", "tokenizer.json", "MODEL_CARD.md", "report.json"):
        assert (out / name).is_file(), name
    assert (out / "tokenizer.json").read_text(encoding="utf-8") == saved.read_text(encoding="utf-8")
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "## Using it on text" in card and 'Tokenizer.from_file("tokenizer.json")' in card
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["input"]["name"] == "input_ids" and report["input"]["dtype"] == "int64"
    assert report["input"]["pad_id"] == 0 and report["input"]["max_length"] == 32

    # the test texts of the run (the same split), through the exported tokenizer as the card says
    spec = load_spec(run_dir / "spec.distill.json")
    data = load_dataset(run_tokenizer(spec, run_dir))
    texts, y = list(data.test.texts), data.test.y
    assert len(texts) == report["test_samples"]
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    tok.enable_truncation(32)
    tok.enable_padding(pad_id=0)
    ids = np.array([e.ids for e in tok.encode_batch(texts)], dtype=np.int64)
    assert ids.shape[1] < 32  # padded to the longest text, not to max_length
    assert np.array_equal(ids, data.test.x[:, :ids.shape[1]].astype(np.int64))  # the run's own ids
    session = ort.InferenceSession(str(out / "student.onnx"), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == "input_ids" and inp.type == "tensor(int64)"
    logits = session.run(None, {"input_ids": ids})[0]
    full = session.run(None, {"input_ids": data.test.x.astype(np.int64)})[0]  # padded to max_length
    np.testing.assert_allclose(logits, full, atol=1e-4)  # padding is masked inside the model

    import torch

    state = load_safetensors(run_dir / "student.safetensors", "student")
    model = fit_weights(spec.student.architecture, data.sample_shape, len(spec.classes), "student", state,
                        "student.safetensors").eval()
    with torch.inference_mode():
        torch_logits = model(torch.from_numpy(data.test.x.astype(np.float32))).numpy()
    np.testing.assert_allclose(logits, torch_logits, atol=1e-3)
    margin = np.sort(torch_logits, axis=1)
    clear = margin[:, -1] - margin[:, -2] > 1e-3  # not a near tie
    assert (logits.argmax(1) == torch_logits.argmax(1))[clear].all()
    accuracy = float((logits.argmax(1) == y).mean())
    assert abs(accuracy - report["accuracy"]["onnx_fp32"]) <= 1 / len(y) + 1e-9

    int8 = ort.InferenceSession(str(out / "student.int8.onnx"), providers=["CPUExecutionProvider"])
    assert int8.run(None, {"input_ids": ids})[0].shape == (len(texts), len(TEXT_CLASSES))

    # the insights (made for the model card): mistakes as texts, attribution per token, attention
    insights = json.loads((run_dir / "insights" / "insights.json").read_text(encoding="utf-8"))
    assert insights["kind"] == "text" and "![Confusion matrix](confusion.png)" in card
    assert insights["models"][0]["accuracy"] == pytest.approx(float((torch_logits.argmax(1) == y).mean()))
    for m in insights["mistakes"]:
        assert m["text"] == texts[m["sample"]] and m["thumbnail"] is None
    arrays = np.load(run_dir / "insights" / "arrays.npz", allow_pickle=False)
    for e in insights["attribution"]["samples"]:
        real = tok.encode(texts[e["sample"]]).ids  # the student's tokens of that text, unpadded
        assert e["tokens"] == [tok.id_to_token(i) for i in real]
        assert arrays[e["student"]].shape == arrays[e["attention"]].shape == (len(real),)
        assert e["teachers"] == {}  # text teachers are not explained by occlusion


def test_validate_refuses_a_text_file_that_is_not_utf8(tmp_path):
    spec = text_spec(tmp_path)
    bad = tmp_path / "menu.csv"
    bad.write_bytes("text,label\nplain,food\ncaf\u00e9 cr\u00e8me,food\n".encode("latin-1"))
    spec["data"]["path"] = str(bad)
    proc = run_engine("validate", write_spec(tmp_path, spec), timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "menu.csv is not UTF-8" in proc.stderr and "line 3" in proc.stderr
    assert "iconv -f WINDOWS-1252 -t UTF-8 menu.csv" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "data.path" in proc.stderr


def test_validate_accepts_the_text_spec_and_names_its_teachers(tmp_path):
    proc = run_engine("validate", "--json", write_spec(tmp_path, text_spec(tmp_path)), timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["valid"] and summary["teachers"] == ["tfidf", "bag"] and summary["sample_shape"] == [32]
    assert any("student tokenizer" in n for n in summary["notes"])


def test_a_stopped_text_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path):
    """Length-bucketed batches, resumed in the middle of an epoch, with the run's own tokenizer:
    the same steps as a run never stopped, to the bit."""
    import shutil

    import torch
    from safetensors.torch import load_file

    spec_dict = text_spec(tmp_path)
    spec_dict["compression"] = []
    spec_dict["training"].update(epochs=30, batch_size=4, cpu_threads=1)
    spec_dict["student"]["architecture"]["dropout"] = 0.2  # the RNG state matters too
    spec = write_spec(tmp_path, spec_dict)
    db = tmp_path / "db.sqlite"
    whole = run_engine("run", spec, "--run-dir", tmp_path / "whole", "--db", db, timeout=600)
    assert whole.returncode == 0, whole.stderr[-3000:]

    proc = start_engine(spec, tmp_path / "parts", db)
    wait_for(proc, "checkpoint", 3)
    proc.stdin.write("stop\n")
    proc.stdin.flush()
    rest = parse_events(proc.stdout.read())
    assert proc.wait(timeout=120) == 3 and rest[-1]["status"] == "stopped"
    shutil.rmtree(tmp_path / "cache" / "tokenizers")  # the resumed run reads the run's own tokenizer.json

    resumed = run_engine("resume", tmp_path / "parts", timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    events = parse_events(resumed.stdout)
    assert events[0]["resumed"] is True and events[-1]["status"] == "completed"
    logs = " ".join(e["message"] for e in events if e["event"] == "log")
    assert f"student tokenizer: {tmp_path / 'parts' / 'tokenizer.json'}" in logs
    a = load_file(str(tmp_path / "whole" / "student.safetensors"))
    b = load_file(str(tmp_path / "parts" / "student.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
