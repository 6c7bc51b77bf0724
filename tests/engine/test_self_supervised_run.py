"""A student pretrained self-supervised before distillation (student.init kind
'self_supervised'): a real engine subprocess on scikit-learn's digits, its pretraining metrics,
its linear probe, its checkpoints, and a run stopped during pretraining that resumes there."""

import json
import sqlite3
import subprocess

import pytest

from engine.checkpoint import checkpoint_dirs, latest_checkpoint, load_checkpoint
from tests.helpers import ROOT, engine_cmd, parse_events, run_engine, write_spec

pytestmark = pytest.mark.slow  # the engine as a subprocess


def digits_spec(pretraining: dict, epochs: int = 1, use_labels: bool = True) -> dict:
    return {"schema_version": 1, "name": "ssl digits",
            "data": {"format": "builtin", "name": "digits", "use_labels": use_labels},
            "classes": [str(d) for d in range(10)], "teachers": [],
            "student": {"architecture": {"kind": "mlp", "width": 32, "depth": 1},
                        "init": {"kind": "self_supervised", "pretraining": pretraining}},
            "strategy": {"hard_label_weight": 1.0},
            "training": {"epochs": epochs, "batch_size": 64, "cpu_threads": 1, "checkpoint_every_epochs": 1}}


def metrics(events: list[dict], name: str) -> list[tuple[int, float]]:
    return [(e["step"], e["values"][name]) for e in events if e["event"] == "metric" and name in e["values"]]


def test_pretraining_runs_before_distillation_with_its_metrics_probe_and_checkpoints(tmp_path):
    spec = write_spec(tmp_path, digits_spec({"epochs": 3, "batch_size": 128, "flip": False}, epochs=2))
    db, run_dir = tmp_path / "runs.sqlite", tmp_path / "run"
    proc = run_engine("run", spec, "--run-dir", run_dir, "--db", db)
    assert proc.returncode == 0, proc.stderr
    events = parse_events(proc.stdout)
    losses = metrics(events, "pretrain/loss")
    assert len(losses) >= 3 and losses[-1][1] < losses[0][1]  # it learns
    (probe_step, probe), = metrics(events, "pretrain/probe_acc")
    assert probe > 0.5  # ten classes: chance is 0.1
    assert probe_step == 3 * 10  # 1,257 training samples in batches of 128: 10 steps an epoch
    first_distill = min(step for step, _ in metrics(events, "loss/total"))
    assert first_distill > probe_step  # distillation goes on after the pretraining, one step counter
    phases = [e["phase"] for e in events if e["event"] == "progress"]
    assert phases[0] == "pretrain" and phases[-1] == "distill"
    logs = " ".join(e["message"] for e in events if e["event"] == "log")
    assert "linear probe of the pretrained features" in logs and "labelled training samples" in logs
    pretrain_checkpoints = [e for e in events if e["event"] == "checkpoint" and e["step"] <= probe_step]
    assert pretrain_checkpoints, "a checkpoint in pretraining"
    assert events[-1]["status"] == "completed" and (run_dir / "student.safetensors").is_file()
    stored = {name for (name,) in sqlite3.connect(db).execute("select distinct name from metrics")}
    assert {"pretrain/loss", "pretrain/probe_acc", "val/acc"} <= stored


def test_the_probe_without_training_labels_uses_the_validation_split_and_says_so(tmp_path, demo_dict):
    demo_dict["data"]["use_labels"] = False  # the demo's teachers supply the targets
    demo_dict["student"]["init"] = {"kind": "self_supervised", "pretraining": {"epochs": 1, "flip": False}}
    demo_dict["training"].update(epochs=1, cpu_threads=1)
    proc = run_engine("run", write_spec(tmp_path, demo_dict), "--run-dir", tmp_path / "run", "--db", tmp_path / "db")
    assert proc.returncode == 0, proc.stderr
    events = parse_events(proc.stdout)
    assert metrics(events, "pretrain/probe_acc")
    logs = " ".join(e["message"] for e in events if e["event"] == "log")
    assert "the training data has no labels, so fitted on" in logs


def unbroken_then_started(tmp_path, pretraining: dict, architecture: dict | None = None):
    """The spec run once without a break, and the same spec started again (to be stopped or
    killed): (the unbroken run, the started process, its store, its run folder)."""
    data = digits_spec(pretraining, epochs=1)
    if architecture:
        data["student"]["architecture"] = architecture
    spec = write_spec(tmp_path, data)
    whole = run_engine("run", spec, "--run-dir", tmp_path / "whole", "--db", tmp_path / "whole.sqlite")
    assert whole.returncode == 0, whole.stderr
    db, run_dir = tmp_path / "db.sqlite", tmp_path / "run"
    proc = subprocess.Popen(engine_cmd("run", spec, "--run-dir", run_dir, "--db", db), cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return whole, proc, db, run_dir


def kill_at_first_checkpoint(proc: subprocess.Popen) -> None:
    """Kill the engine when it says it saved its first checkpoint (after pretraining's first epoch)."""
    for line in proc.stdout:
        if json.loads(line)["event"] == "checkpoint":
            proc.kill()
            break
    proc.wait(timeout=60)
    proc.stdout.close()
    proc.stderr.close()


def test_a_run_stopped_in_pretraining_resumes_there_and_ends_as_an_unbroken_one(tmp_path):
    whole, proc, db, run_dir = unbroken_then_started(tmp_path, {"epochs": 5, "batch_size": 64, "flip": False})
    for line in proc.stdout:
        event = json.loads(line)
        if event["event"] == "metric" and "pretrain/loss" in event["values"] and event["epoch"] >= 2:
            proc.stdin.write("stop\n")
            proc.stdin.flush()
            break
    proc.stdout.read()
    assert proc.wait(timeout=60) == 3, proc.stderr.read()
    saved = load_checkpoint(latest_checkpoint(run_dir / "checkpoints"))
    assert saved["pretraining"] and "projector.net.0.weight" in saved["pretrain_head"] and saved["step"] < 5 * 20
    resumed = run_engine("resume", run_dir, "--db", db)
    assert resumed.returncode == 0, resumed.stderr
    events = parse_events(resumed.stdout)
    logs = " ".join(e["message"] for e in events if e["event"] == "log")
    assert "resumed at pretraining epoch" in logs
    assert metrics(events, "pretrain/loss")[0][0] > saved["step"]  # it went on, not from the start
    assert metrics(events, "pretrain/probe_acc")
    unbroken = parse_events(whole.stdout)[-1]["final"]
    assert events[-1]["final"]["test/acc"] == pytest.approx(unbroken["test/acc"], abs=1e-6)
    assert checkpoint_dirs(run_dir / "checkpoints")


def test_a_run_killed_in_pretraining_resumes_from_its_last_checkpoint(tmp_path):
    whole, proc, db, run_dir = unbroken_then_started(tmp_path, {"epochs": 4, "batch_size": 64, "flip": False})
    kill_at_first_checkpoint(proc)
    assert load_checkpoint(latest_checkpoint(run_dir / "checkpoints"))["pretraining"]
    resumed = run_engine("resume", run_dir, "--db", db)
    assert resumed.returncode == 0, resumed.stderr
    events = parse_events(resumed.stdout)
    assert "resumed at pretraining epoch" in " ".join(e["message"] for e in events if e["event"] == "log")
    unbroken = parse_events(whole.stdout)[-1]["final"]
    assert events[-1]["final"]["test/acc"] == pytest.approx(unbroken["test/acc"], abs=1e-6)


def test_a_text_transformer_pretrains_with_masked_tokens_then_distils(tmp_path):
    from tests.engine.test_text_run import text_spec

    spec = text_spec(tmp_path)
    spec["student"]["init"] = {"kind": "self_supervised", "pretraining": {"epochs": 3, "batch_size": 8, "lr": 0.003}}
    spec["compression"] = []
    proc = run_engine("run", write_spec(tmp_path, spec), "--run-dir", tmp_path / "run", "--db", tmp_path / "db",
                      timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = parse_events(proc.stdout)
    logs = " ".join(e["message"] for e in events if e["event"] == "log")
    assert "self-supervised (masked prediction)" in logs and "linear probe of the pretrained features" in logs
    losses = [v for _, v in metrics(events, "pretrain/loss")]
    assert losses and losses[0] > 5.0  # BERT's cross-entropy over a vocabulary of about a thousand ids
    assert min(losses[1:] or losses) < losses[0]
    assert metrics(events, "pretrain/probe_acc") and events[-1]["status"] == "completed"


def test_simclr_on_text_is_refused_before_training_with_the_fix(tmp_path):
    from tests.engine.test_text_run import text_spec

    spec = text_spec(tmp_path)  # text takes a transformer student, and SimCLR's views are for pixels
    spec["student"]["init"] = {"kind": "self_supervised", "pretraining": {"method": "simclr", "epochs": 1}}
    proc = run_engine("run", write_spec(tmp_path, spec), "--run-dir", tmp_path / "run", "--db", tmp_path / "db",
                      timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    refusal = parse_events(proc.stdout)[-2]
    assert refusal["event"] == "error" and refusal["field"] == "student"  # the app puts it under Method
    assert "simclr pretraining contrasts augmented views" in refusal["message"]
    assert "set init.pretraining.method to masked" in refusal["message"] + refusal["hint"]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not any(e["event"] == "metric" for e in parse_events(proc.stdout))  # refused before any step


def test_a_vit_pretrains_with_masked_patches_and_a_killed_run_resumes_like_an_unbroken_one(tmp_path):
    vit = {"kind": "vit", "patch": 2, "dim": 16, "depth": 1, "heads": 2}
    whole, proc, db, run_dir = unbroken_then_started(tmp_path, {"epochs": 3, "batch_size": 128}, vit)
    events = parse_events(whole.stdout)
    assert "self-supervised (masked prediction)" in " ".join(e["message"] for e in events if e["event"] == "log")
    losses = [v for _, v in metrics(events, "pretrain/loss")]
    assert losses[-1] < losses[0]  # the pixels of hidden patches are predicted better
    kill_at_first_checkpoint(proc)
    saved = load_checkpoint(latest_checkpoint(run_dir / "checkpoints"))
    assert saved["pretraining"] and {"mask_token", "decoder.weight"} <= set(saved["pretrain_head"])
    resumed = run_engine("resume", run_dir, "--db", db)
    assert resumed.returncode == 0, resumed.stderr
    final = parse_events(resumed.stdout)[-1]["final"]
    assert final["test/acc"] == pytest.approx(events[-1]["final"]["test/acc"], abs=1e-6)  # the same masks again
