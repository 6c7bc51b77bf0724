"""A ResNet student through the real engine: its layers listed by `validate`, structured pruning
in a run (and a resume in the fine-tune after it), a FitNets hint between 4-D feature maps and
task heads on its features."""

import copy
import json

import pytest
import torch
from safetensors.torch import load_file

from engine.checkpoint import latest_checkpoint, load_checkpoint
from tests.helpers import parse_events, run_engine, start_engine, wait_for, write_spec

RESNET = {"kind": "resnet", "depth": 18, "width": 0.125}
PRUNE = {"kind": "prune", "method": "structured", "sparsity": 0.5, "finetune_epochs": 2, "finetune_lr": 0.002}


def resnet_spec(demo: dict, **training) -> dict:
    spec = copy.deepcopy(demo)
    spec["student"] = {"architecture": dict(RESNET)}
    spec["training"].update({"epochs": 1, "checkpoint_every_epochs": 1, "cpu_threads": 1, **training})
    return spec


def metrics(events: list[dict]) -> dict[str, float]:
    out: dict[str, float] = {}
    for e in events:
        if e["event"] == "metric":
            out.update(e["values"])
    return out


def test_validate_lists_the_student_layers_a_hint_may_read(tmp_path, demo_dict):
    proc = run_engine("validate", write_spec(tmp_path, resnet_spec(demo_dict)), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    layers = {entry["name"]: entry["shape"] for entry in summary["student_layers"]}
    # digits are [1, 8, 8]; width 0.125: stages of 8, 16, 32, 64 channels, the map halving from stage 2
    assert layers["body.stem"] == [8, 8, 8] and layers["body.stage1.1"] == [8, 8, 8]
    assert layers["body.stage3"] == [32, 2, 2] and layers["body.stage4.0"] == [64, 1, 1]
    assert layers["body"] == [64] and len(layers) < 40
    assert not any(name.endswith(("relu", "pool", "dropout")) for name in layers)
    assert [e["name"] for e in summary["student_layers"]][:3] == ["body.stem", "body.stage1", "body.stage1.0"]


@pytest.fixture(scope="module")
def pruned_run(tmp_path_factory):
    """A ResNet student distilled for one epoch, pruned to half its inner channels, fine-tuned."""
    from tests.helpers import demo_spec

    tmp = tmp_path_factory.mktemp("resnet")
    spec = resnet_spec(demo_spec())
    spec["compression"] = [PRUNE]
    path = write_spec(tmp, spec)
    proc = run_engine("run", path, "--run-dir", tmp / "whole", "--db", tmp / "db.sqlite", timeout=600)
    assert proc.returncode == 0, proc.stderr
    return tmp, path, parse_events(proc.stdout)


@pytest.mark.slow
def test_a_resnet_student_is_pruned_in_a_run(pruned_run):
    tmp, _, events = pruned_run
    logs = "\n".join(e["message"] for e in events if e["event"] == "log")
    assert "structured pruning: hidden widths now [4, 4, 8, 8, 16, 16, 32, 32]" in logs
    finished = events[-1]
    assert finished["status"] == "completed"
    weights = load_file(str(tmp / "whole" / "student.safetensors"))
    assert weights["body.stage1.0.conv1.weight"].shape == (4, 8, 3, 3)
    assert weights["body.stage1.0.conv2.weight"].shape == (8, 4, 3, 3)  # the residual stream keeps 8
    assert metrics(events)["test/acc"] > 0.3  # one epoch and a short fine-tune of a tiny ResNet


@pytest.mark.slow
def test_stopped_in_the_fine_tune_after_pruning_resumes_to_the_same_weights(pruned_run):
    tmp, path, _ = pruned_run
    folder = tmp / "parts"
    proc = start_engine(path, folder, tmp / "db.sqlite")
    wait_for(proc, "checkpoint", 2)  # the first fine-tune epoch's end
    proc.stdin.write("stop\n")
    proc.stdin.flush()
    proc.stdout.read()
    assert proc.wait(timeout=120) == 3
    assert load_checkpoint(latest_checkpoint(folder / "checkpoints"))["phase"] == 1
    resumed = run_engine("resume", folder, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    a = load_file(str(tmp / "whole" / "student.safetensors"))
    b = load_file(str(folder / "student.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.slow
def test_a_resnet_student_takes_a_feature_map_hint_and_task_heads(tmp_path, demo_dict, pruned_run):
    """The pruned ResNet of the run above, a zoo teacher, gives its stage-2 maps [16, 4, 4];
    the student's stage 3 ([32, 2, 2]) matches them through a 1×1 conv and resizing."""
    tmp, _, _ = pruned_run
    spec = resnet_spec(demo_dict, epochs=2)
    spec["teachers"].append({"name": "pruned resnet", "path": str(tmp / "whole" / "student.safetensors"),
                             "classes": [str(d) for d in range(10)], "architecture": dict(RESNET)})
    spec["strategy"].update(hints=[{"teacher": "pruned resnet", "teacher_layer": "body.stage2",
                                    "student_layer": "body.stage3"}], task_heads=True)
    proc = run_engine("run", write_spec(tmp_path, spec), "--run-dir", tmp_path / "run", "--db",
                      tmp_path / "db.sqlite", timeout=600)
    assert proc.returncode == 0, proc.stderr
    events = parse_events(proc.stdout)
    values, hint = metrics(events), "loss/hint/pruned resnet/body.stage2"
    assert values[hint] > 0 and values["loss/heads"] > 0
    train = [e["values"][hint] for e in events if e["event"] == "metric" and hint in e["values"]]
    assert train[-1] < train[0]  # the adapter and the student's stage 3 learn the teacher's maps
    assert events[-1]["status"] == "completed"


def test_a_hint_on_a_missing_student_layer_suggests_the_useful_layers():
    from engine.errors import InputError
    from engine.models import build_model
    from engine.spec import ResNetArch
    from engine.strategies.taps import Taps

    taps = Taps(build_model(ResNetArch(depth=18, width=0.125), (1, 8, 8), 10))
    with pytest.raises(InputError) as err:
        taps.tap("body.stage5", "strategy.hints[0].student_layer")
    problem = err.value.problems[0]
    assert problem.path == "strategy.hints[0].student_layer" and "no layer 'body.stage5'" in problem.message
    assert "body.stage3.1, body.stage4" in problem.hint and "relu" not in problem.hint and "bn1" not in problem.hint
    taps.tap("body.stage2.0.bn1", "strategy.hints[0].student_layer")  # any module may still be read
