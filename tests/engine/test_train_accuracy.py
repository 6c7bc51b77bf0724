"""train/acc: the student's accuracy on the labelled training samples it saw, measured on the
device beside the losses (engine/meter.py); a real engine subprocess, the digits demo."""

import pytest
import torch

from engine.meter import Meter, hits
from tests.helpers import demo_spec, parse_events, run_engine, write_spec

pytestmark = pytest.mark.slow  # the engine as a subprocess


def _metric_values(tmp_path, use_labels: bool) -> list[dict]:
    spec = demo_spec()
    spec["training"]["epochs"] = 2
    spec["data"]["use_labels"] = use_labels
    path = write_spec(tmp_path, spec)
    proc = run_engine("run", path, "--run-dir", tmp_path / "run", "--db", tmp_path / "runs.sqlite")
    assert proc.returncode == 0, proc.stderr
    return [e["values"] for e in parse_events(proc.stdout) if e["event"] == "metric"]


def test_a_run_with_labels_reports_its_training_accuracy(tmp_path):
    metrics = _metric_values(tmp_path, use_labels=True)
    accs = [v["train/acc"] for v in metrics if "train/acc" in v]
    assert accs and all(0.0 <= a <= 1.0 for a in accs)
    assert all("train/acc" in v for v in metrics if "loss/total" in v)  # beside every training read
    assert accs[-1] > 0.5  # the demo's student learns the digits within 2 epochs


def test_a_run_without_labels_reports_no_training_accuracy(tmp_path):
    metrics = _metric_values(tmp_path, use_labels=False)
    assert any("loss/total" in v for v in metrics)
    assert not any("train/acc" in v for v in metrics)
    assert any("val/acc" in v for v in metrics)  # validation still measures with its labels


def test_the_meter_counts_only_labelled_samples():
    meter = Meter(["loss/total"], torch.device("cpu"))
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 2.0]])
    meter.add(torch.tensor([1.0]), 4, hits(logits, torch.tensor([0, 0, -1, 1]), False))  # 2 of 3 labelled right
    meter.add(torch.tensor([1.0]), 4, hits(logits, torch.tensor([-1, -1, -1, -1]), False))  # none labelled
    values, _ = meter.read(1)
    assert values["train/acc"] == pytest.approx(2 / 3)
    meter.add(torch.tensor([1.0]), 4, hits(logits, torch.tensor([0, 1, 1, 1]), True))  # all labelled: 3 of 4
    meter.add(torch.tensor([1.0]), 4, hits(logits, torch.tensor([0, 0, -1, 1]), False))  # and 2 of 3
    values, _ = meter.read(2)
    assert values["train/acc"] == pytest.approx(5 / 7)
    meter.add(torch.tensor([1.0]), 4, hits(logits, None, True))
    meter.add(torch.tensor([1.0]), 4, hits(logits, torch.full((4,), -1), False))
    values, _ = meter.read(2)
    assert "train/acc" not in values and values["loss/total"] == 1.0
