"""training.gradient_norms: each layer group's gradient norm, as `grad/<group>` metrics, read
without changing training."""

import math
import sqlite3

import pytest
import torch
from safetensors.torch import load_file

from engine.grad_norms import MAX_GROUPS, GradNorms, layer_groups
from engine.models import build_model
from engine.spec import MlpArch, ResNetArch, TransformerArch, VitArch
from tests.helpers import parse_events, run_engine, write_spec


def group_names(arch, shape) -> list[str]:
    model = build_model(arch, shape, 10)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    groups = layer_groups(names)
    assert sorted(i for _, members in groups for i in members) == list(range(len(names)))  # each once
    return [name for name, _ in groups]


def test_layer_groups_are_the_students_blocks_with_short_stable_names():
    assert group_names(MlpArch(width=8, depth=2), (64,)) == ["body.1", "body.3", "head"]
    assert group_names(VitArch(dim=16, heads=2, depth=3), (3, 8, 8)) == [
        "body.embed", "body.blocks.0", "body.blocks.1", "body.blocks.2", "body.norm", "head"]
    assert group_names(TransformerArch(dim=16, heads=2, depth=2, vocab_size=50, max_length=8), (8,)) == [
        "body.tokens", "body.pos", "body.blocks.0", "body.blocks.1", "body.norm", "head"]
    # ResNet-50: 16 blocks, merged in pairs, the longest run of blocks first, down to 12 groups
    assert group_names(ResNetArch(depth=50, width=0.125), (3, 32, 32)) == [
        "body.stem.0", "body.stem.1", "body.stage1.0-1", "body.stage1.2", "body.stage2.0-1", "body.stage2.2-3",
        "body.stage3.0-3", "body.stage3.4-5", "body.stage4.0", "body.stage4.1", "body.stage4.2", "head"]
    deep = group_names(MlpArch(width=4, depth=30), (8,))
    assert len(deep) <= MAX_GROUPS and deep[0] == "body.1-7" and deep[-1] == "head"
    # many unnumbered modules: coarser paths, then the last ones together
    assert [n for n, _ in layer_groups([f"m{i}.weight" for i in range(20)])][-2:] == ["m10", "rest"]
    assert [n for n, _ in layer_groups(["scale", "a.b.c.weight", "a.b.d.weight"])] == ["scale", "a.b"]


def test_the_norms_are_each_groups_l2_norm_averaged_over_the_steps_read():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    norms = GradNorms(model, torch.device("cpu"))
    assert norms.names == ["grad/0", "grad/2"]
    seen = {"grad/0": [], "grad/2": []}
    for _ in range(3):
        model.zero_grad()
        model(torch.randn(5, 4)).square().sum().backward()
        for name, layer in (("grad/0", model[0]), ("grad/2", model[2])):
            seen[name].append(math.sqrt(layer.weight.grad.square().sum() + layer.bias.grad.square().sum()))
        norms.add()
    read = norms.read()
    for name, values in seen.items():
        assert read[name] == pytest.approx(sum(values) / 3, rel=1e-5)
    model[2].weight.grad.fill_(float("inf"))  # an fp16 overflow: the step counts for no group
    norms.add()
    assert "grad/2" not in norms.read()
    assert norms.read() == {}  # nothing since the last read

    unused = torch.nn.ModuleDict({"used": torch.nn.Linear(2, 1), "unused": torch.nn.Linear(2, 1)})
    norms = GradNorms(unused, torch.device("cpu"))
    unused["used"](torch.ones(1, 2)).sum().backward()  # no gradient reaches "unused"
    norms.add()
    assert norms.read() == {"grad/used": pytest.approx(math.sqrt(3)), "grad/unused": 0.0}


@pytest.mark.slow  # two runs through the engine subprocess
def test_a_run_with_gradient_norms_reports_them_and_trains_the_same_weights(tmp_path, demo_dict):
    demo_dict["training"].update(epochs=3, cpu_threads=1)
    demo_dict["student"]["architecture"].update(width=32, dropout=0.2)  # the RNG state matters too
    runs = {}
    for on in (False, True):
        demo_dict["training"]["gradient_norms"] = on
        spec = write_spec(tmp_path, demo_dict, f"{on}.distill.json")
        proc = run_engine("run", spec, "--run-dir", tmp_path / str(on), "--db", tmp_path / "db.sqlite")
        assert proc.returncode == 0, proc.stderr
        runs[on] = parse_events(proc.stdout)

    grads = [{k: v for k, v in e["values"].items() if k.startswith("grad/")}
             for e in runs[True] if e["event"] == "metric" and "loss/total" in e["values"]]
    assert grads and all(g.keys() == {"grad/body.1", "grad/body.4", "grad/head"} for g in grads)  # dropout between
    assert all(math.isfinite(v) and v > 0 for g in grads for v in g.values())
    assert not any(k.startswith("grad/") for e in runs[False] if e["event"] == "metric" for k in e["values"])

    a = load_file(str(tmp_path / "False" / "student.safetensors"))
    b = load_file(str(tmp_path / "True" / "student.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # only read, never changed

    run_id = runs[True][0]["run_id"]
    stored = sqlite3.connect(tmp_path / "db.sqlite").execute(
        "select count(*) from metrics where run_id = ? and name = 'grad/head'", (run_id,)).fetchone()[0]
    assert stored == len(grads)  # kept by name with the run's other metrics
