"""`torchrun --nproc_per_node=2 …/engine/__main__.py run SPEC` (as the app starts it) on the CPU
(gloo): the same training as one process with the same global batch, with rank 0 alone writing
events, store and checkpoints; with gradient accumulation under DDP (no_sync) too."""

import os
import sqlite3
import subprocess

import pytest
import torch
from safetensors.torch import load_file

from engine.checkpoint import checkpoint_dirs
from tests.helpers import ROOT, SAFE_PATH, parse_events, run_engine, torchrun_cmd, write_spec

pytestmark = pytest.mark.slow  # trains under torchrun


def test_two_processes_match_one_with_the_same_global_batch(tmp_path, demo_dict):
    demo_dict["training"].update(epochs=4, cpu_threads=1, device="cpu")  # gloo, even on a one-GPU machine
    spec = write_spec(tmp_path, demo_dict)
    db = tmp_path / "db.sqlite"
    one = run_engine("run", spec, "--run-dir", tmp_path / "one", "--db", db)
    assert one.returncode == 0, one.stderr
    demo_dict["training"]["accumulate"] = 2  # each rank's share in two parts, gradients averaged after the second
    demo_dict["training"]["gradient_norms"] = True  # of the averaged gradients, reported by rank 0
    accumulated = write_spec(tmp_path, demo_dict, "accumulated.distill.json")
    two = subprocess.run(torchrun_cmd(2, "run", accumulated, "--run-dir", tmp_path / "two", "--db", db),
                         cwd=ROOT, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
                         env={**os.environ, **SAFE_PATH})
    assert two.returncode == 0, two.stderr[-3000:]
    events = parse_events(two.stdout)  # one stream: rank 0's
    assert [e["event"] for e in events].count("started") == 1 and events[0]["processes"] == 2
    assert events[-1]["status"] == "completed"
    best_one = parse_events(one.stdout)[-1]["best"]
    assert abs(events[-1]["best"]["val/acc"] - best_one["val/acc"]) <= 0.01
    assert abs(events[-1]["best"]["val/loss"] - best_one["val/loss"]) <= 0.01
    grads = [e["values"] for e in events if e["event"] == "metric" and "loss/total" in e["values"]]
    assert grads and all({"grad/body.1", "grad/body.3", "grad/head"} <= v.keys() for v in grads)
    assert all(v[k] > 0 for v in grads for k in v if k.startswith("grad/"))

    a = load_file(str(tmp_path / "one" / "student.safetensors"))
    b = load_file(str(tmp_path / "two" / "student.safetensors"))
    for k in a:  # the last batch of an epoch splits unevenly (41 = 21 + 20): nearly, not exactly, equal
        assert torch.allclose(a[k], b[k], atol=5e-3, rtol=1e-2), k
    rows = sqlite3.connect(db).execute("select status from runs").fetchall()
    assert rows == [("completed",), ("completed",)]  # one row per run, not per process
    assert len(checkpoint_dirs(tmp_path / "two" / "checkpoints")) == 2


def test_self_supervised_pretraining_runs_under_two_processes(tmp_path, demo_dict):
    """The student's head takes no part in pretraining: DDP must not wait for its gradients
    (it stopped the second step: 'Expected to have finished reduction in the prior iteration')."""
    demo_dict["training"].update(epochs=1, cpu_threads=1, device="cpu")
    demo_dict["student"]["init"] = {"kind": "self_supervised", "pretraining": {"epochs": 1, "batch_size": 64,
                                                                             "flip": False}}
    spec = write_spec(tmp_path, demo_dict)
    two = subprocess.run(torchrun_cmd(2, "run", spec, "--run-dir", tmp_path / "two", "--db", tmp_path / "db.sqlite"),
                         cwd=ROOT, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
                         env={**os.environ, **SAFE_PATH})
    assert two.returncode == 0, two.stderr[-3000:]
    events = parse_events(two.stdout)
    assert events[-1]["status"] == "completed"
    assert events[0]["epochs"] == 2  # pretraining's epoch and distillation's
    losses = [e["values"]["pretrain/loss"] for e in events if e["event"] == "metric" and "pretrain/loss" in e["values"]]
    assert losses and all(v > 0 for v in losses)
