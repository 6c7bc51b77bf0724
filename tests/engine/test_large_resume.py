"""A ViT and a token transformer stopped mid-run and resumed end with the same weights, bit
for bit on the CPU, as runs that were never stopped (dropout on: the RNG state matters too)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.engine.test_transformer import _token_rule, _token_spec
from tests.helpers import parse_events, run_engine, start_engine, wait_for, write_spec

pytestmark = pytest.mark.slow  # trains through the engine subprocess


def vit_spec(demo_dict: dict) -> dict:
    demo_dict["student"]["architecture"] = {"kind": "vit", "patch": 4, "dim": 32, "depth": 2, "heads": 2,
                                            "dropout": 0.1}
    demo_dict["training"].update(epochs=4, cpu_threads=1, device="cpu")
    return demo_dict


def transformer_spec(tmp_path) -> dict:
    x, y = _token_rule(600)
    np.savez(tmp_path / "tokens.npz", x=x, y=y)
    spec = _token_spec(tmp_path / "tokens.npz")
    spec["student"]["architecture"]["dropout"] = 0.1
    spec["training"].update(epochs=4, cpu_threads=1, batch_size=32)
    return spec


@pytest.mark.parametrize("kind", ["vit", "transformer"])
def test_a_stopped_large_student_resumes_to_the_same_weights(tmp_path, demo_dict, kind):
    spec = write_spec(tmp_path, vit_spec(demo_dict) if kind == "vit" else transformer_spec(tmp_path))
    db = tmp_path / "db.sqlite"
    whole = run_engine("run", spec, "--run-dir", tmp_path / "whole", "--db", db, timeout=600)
    assert whole.returncode == 0, whole.stderr

    proc = start_engine(spec, tmp_path / "parts", db)
    wait_for(proc, "checkpoint", 2)  # stop somewhere in epoch 3
    proc.stdin.write("stop\n")
    proc.stdin.flush()
    rest = parse_events(proc.stdout.read())
    assert proc.wait(timeout=120) == 3 and rest[-1]["status"] == "stopped"
    resumed = run_engine("resume", tmp_path / "parts", timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert parse_events(resumed.stdout)[-1]["status"] == "completed"

    a = load_file(str(tmp_path / "whole" / "student.safetensors"))
    b = load_file(str(tmp_path / "parts" / "student.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
