"""The token transformer: ids in float32, padding that changes nothing, its size worked out
without torch, exact pruning, data that are not token ids refused before training, and a real
engine run on a token rule, learned from labels alone and exported to int8."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine.errors import InputError
from engine.models import build_model, count_parameters, fit_weights
from engine.spec import TransformerArch
from tests.engine.arch_sizes import measured_activations as kept_per_sample
from tests.helpers import parse_events, run_engine, write_spec

SMALL = TransformerArch(vocab_size=40, max_length=24, dim=16, depth=2, heads=2, mlp_ratio=2.0)


def _ids(rng, n, length, vocab=40):
    x = rng.integers(1, vocab, (n, length))
    for row in x:
        row[rng.integers(2, length + 1):] = 0  # padded with pad_id 0
    return x.astype(np.float32)


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_forward_shapes_and_padding_changes_nothing(pooling):
    torch.manual_seed(0)
    model = build_model(SMALL.model_copy(update={"pooling": pooling}), (10,), 3).eval()
    text = torch.tensor([[5.0, 17, 3, 39, 8, 1]])
    short = torch.cat([text, torch.zeros(1, 4)], 1)
    long = torch.cat([text, torch.zeros(1, 18)], 1)  # the longest sequence the embedding holds
    with torch.no_grad():
        assert model(short).shape == (1, 3) and model(_t(_ids(np.random.default_rng(0), 5, 10))).shape == (5, 3)
        torch.testing.assert_close(model(long), model(short), atol=1e-5, rtol=0)
        assert torch.isfinite(model(torch.zeros(2, 10))).all()  # all padding: no NaN
    names = dict(model.named_modules())
    assert {"body.tokens", "body.pos", "body.blocks.0", "body.blocks.1", "body.norm", "head"} <= set(names)
    assert model.blocks() == [names["body.blocks.0"], names["body.blocks.1"]]


def _t(x):
    return torch.from_numpy(x)


def test_sequences_longer_than_max_length_name_the_field():
    with pytest.raises(InputError) as err:
        build_model(SMALL, (30,), 3)
    problem = err.value.problems[0]
    assert problem.path == "student.architecture.max_length" and "30 tokens" in problem.message
    assert "at least 30" in problem.hint
    with pytest.raises(ValueError, match="30 tokens long and max_length is 24"):  # the app's size line
        SMALL.size((30,), 3)
    with pytest.raises(ValueError, match=r"token ids \[L\]"):
        SMALL.size((1, 8, 8), 3)


@pytest.mark.parametrize("values,path,words", [
    ([[1.0, 2.5, 0]], "data", "not whole numbers"),
    ([[1.0, -3, 0]], "data", "negative"),
    ([[1.0, 57, 0]], "student.architecture.vocab_size", "token id 57"),
    ([[1.0, np.nan, 0]], "data", "not numbers"),
])
def test_samples_that_are_not_token_ids_are_refused_by_the_fit(values, path, words):
    model = build_model(SMALL, (3,), 3)
    with pytest.raises(InputError) as err:
        model.normalize.fit(np.array(values, np.float32))
    problem = err.value.problems[0]
    assert problem.path == path and words in problem.message
    model.normalize.fit(np.array([[1.0, 39, 0]], np.float32))  # ids below vocab_size: fine


@pytest.mark.parametrize("arch,length", [
    (SMALL, 12),
    (TransformerArch(vocab_size=500, max_length=128, dim=64, depth=3, heads=4), 128),
    (TransformerArch(vocab_size=100, max_length=64, dim=48, depth=2, heads=3, pooling="cls", mlp_ratio=1.5), 40),
])
def test_size_counts_the_parameters_exactly_and_the_kept_activations_closely(arch, length):
    torch.manual_seed(0)
    model = build_model(arch, (length,), 4)
    size = arch.size((length,), 4)
    assert size.parameters == count_parameters(model)
    measured = kept_per_sample(model, _t(_ids(np.random.default_rng(1), 2, length, arch.vocab_size)))
    assert 0.65 * measured <= size.activations <= 1.35 * measured, (size.activations, measured)


def test_pruning_dead_heads_and_units_keeps_the_outputs_and_rebuilds_from_the_widths():
    torch.manual_seed(0)
    model = build_model(SMALL, (12,), 3).eval()
    with torch.no_grad():
        blk0, blk1 = model.body.blocks
        blk1.attn.proj.weight[:, :blk1.attn.head_dim] = 0  # head 0 of block 1 is dead
        blk0.fc2.weight[:, [1, 2, 30]] = 0
    scores = model.unit_scores()
    assert [len(s) for s in scores] == model.hidden_widths() == [2, 2, 32, 32]
    assert int(scores[1].argmin()) == 0
    keep = [torch.arange(2), torch.tensor([1]), torch.tensor([i for i in range(32) if i not in (1, 2, 30)]),
            torch.arange(32)]
    small = model.keep_units(keep).eval()
    assert small.hidden_widths() == [2, 1, 29, 32]
    x = _t(_ids(np.random.default_rng(2), 8, 12))
    with torch.no_grad():
        torch.testing.assert_close(small(x), model(x), atol=1e-5, rtol=1e-5)
    rebuilt = fit_weights(SMALL, (12,), 3, "RUN_DIR", small.state_dict(), "student.safetensors",
                          widths=small.hidden_widths())
    with torch.no_grad():
        assert torch.equal(rebuilt(x), small(x))


GROUPS = [(1, 10), (10, 20), (20, 30)]  # token ids of each class's group


def _token_rule(n: int, length: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sequences of 4..length ids from 1..29, padded with 0; the class is the group whose
    tokens occur most (ties drawn again)."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    while len(xs) < n:
        k = int(rng.integers(4, length + 1))
        seq = rng.integers(1, 30, k)
        counts = [int(((seq >= a) & (seq < b)).sum()) for a, b in GROUPS]
        if sorted(counts)[-1] == sorted(counts)[-2]:
            continue
        xs.append(np.pad(seq, (0, length - k)))
        ys.append(int(np.argmax(counts)))
    return np.array(xs, np.int64), np.array(ys, np.int64)


def _token_spec(path) -> dict:
    return {"schema_version": 1, "name": "token groups",
            "data": {"format": "npz", "path": str(path), "split": {"val": 0.15, "test": 0.15, "seed": 0}},
            "classes": ["0", "1", "2"], "teachers": [],
            "student": {"architecture": {"kind": "transformer", "vocab_size": 32, "max_length": 16,
                                         "dim": 32, "depth": 1, "heads": 2, "mlp_ratio": 2.0}},
            "strategy": {"kind": "hinton_kd", "hard_label_weight": 1.0},
            "training": {"epochs": 6, "batch_size": 64, "optimizer": "adamw", "lr": 0.003,
                         "schedule": "cosine", "seed": 0, "device": "cpu"}}


def test_a_transformer_learns_a_token_rule_from_labels_and_exports_int8_with_parity(tmp_path):
    x, y = _token_rule(2000)
    np.savez(tmp_path / "tokens.npz", x=x, y=y)
    spec = _token_spec(tmp_path / "tokens.npz")
    spec["compression"] = [{"kind": "quantize", "mode": "static", "calibration_samples": 256,
                            "max_accuracy_drop": 5.0}]
    spec["export"] = {"folder": "exported"}
    proc = run_engine("run", write_spec(tmp_path, spec), "--run-dir", tmp_path / "run",
                      "--db", tmp_path / "db", timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert parse_events(proc.stdout)[-1]["status"] == "completed"
    report = json.loads((tmp_path / "exported" / "report.json").read_text())
    assert report["parity_max_abs_diff"] <= report["parity_tolerance"]
    assert report["accuracy"]["onnx_fp32"] > 0.75  # chance: about 0.33
    assert report["quantization"]["kept"], report["problems"]
    assert report["accuracy"]["onnx_int8"] >= report["accuracy"]["onnx_fp32"] - 0.05
    dynamic = run_engine("export", tmp_path / "run", "--out", tmp_path / "dynamic", "--quantize", "int8",
                         "--max-drop", "5", timeout=600)  # the other int8 mode, same weights
    assert dynamic.returncode == 0, dynamic.stderr
    again = json.loads((tmp_path / "dynamic" / "report.json").read_text())
    assert again["quantization"]["mode"] == "dynamic" and again["quantization"]["kept"], again["problems"]
    assert again["accuracy"]["onnx_int8"] >= report["accuracy"]["onnx_fp32"] - 0.05
    print(json.dumps({"transformer": {"static": [report["accuracy"], report["latency_ms_per_batch"]],
                      "dynamic": [again["accuracy"], again["latency_ms_per_batch"]]}}))


@pytest.mark.parametrize("change,words", [("too_large", "vocab_size"), ("fractional", "not whole numbers")])
def test_data_that_are_not_token_ids_stop_the_run_before_training(tmp_path, change, words):
    x, y = _token_rule(300)
    x = x.astype(np.float64)
    if change == "too_large":
        x[-1, 0] = 45  # in the test split or the training one, the run refuses it
    else:
        x[7, 1] = 3.5
    np.savez(tmp_path / "tokens.npz", x=x, y=y)
    proc = run_engine("run", write_spec(tmp_path, _token_spec(tmp_path / "tokens.npz")),
                      "--run-dir", tmp_path / "run", "--db", tmp_path / "db")
    assert proc.returncode == 2, proc.stderr
    out = proc.stdout + proc.stderr
    assert words in out and "Traceback" not in out
    if change == "too_large":
        assert "token id 45" in out and "student.architecture.vocab_size" in out and "at least 46" in out
    assert not any(e["event"] == "progress" and "epoch" in e for e in parse_events(proc.stdout))
