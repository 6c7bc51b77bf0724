"""Net2Net growth of convolutional students (engine/growth_conv.py): a grown CNN or ResNet
computes, in eval mode, exactly what its smaller teacher computes."""

import json
from types import SimpleNamespace

import pytest
import torch
from safetensors import safe_open
from torch import nn

from engine import growth
from engine.errors import InputError
from engine.models import build_model
from engine.spec import CnnArch, ResNetArch, parse_spec
from engine.student_init import init_student
from tests.helpers import demo_spec, parse_events, run_engine, write_spec

ROWS = {0: 0, 1: 1, 3: 2}  # student class 2 is unknown to the teacher


def randomised(model: nn.Module) -> nn.Module:
    """Random weights and BN running stats, so growth must copy every one of them."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
        model.normalize.mean.fill_(0.3)
        model.normalize.std.fill_(1.7)
    return model.eval()


def grown(teacher_arch, student_arch, shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    teacher = randomised(build_model(teacher_arch, shape, 3))
    student = build_model(student_arch, shape, 4)
    growth.grow(student, teacher, ROWS, seed=5)
    return teacher, student.eval()


def assert_same_function(teacher, student, shape):
    x = torch.randn(16, *shape)
    with torch.no_grad():
        assert torch.allclose(student(x)[:, [0, 1, 3]], teacher(x), atol=1e-4)


def test_a_cnn_grows_wider_and_deeper_where_no_pooling_is_added():
    # on 8×8 images a CNN pools twice (8 → 4 → 2); from depth 3 on, extra blocks add no pooling
    shape = (1, 8, 8)
    teacher, student = grown(CnnArch(channels=8, depth=3), CnnArch(channels=16, depth=4), shape)
    assert_same_function(teacher, student, shape)
    convs = [m for m in student.body if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64, 64]
    extra = convs[-1].weight  # the identity block, widened: only the centre, each row's shares sum to 1
    assert extra.sum(dim=(2, 3)).equal(extra[:, :, 1, 1])
    assert torch.allclose(extra[:, :, 1, 1].sum(1), torch.ones(64))
    # on 4×4 images a depth-2 CNN already pools as often as any deeper one
    teacher, student = grown(CnnArch(channels=8, depth=2), CnnArch(channels=16, depth=3), (3, 4, 4))
    assert_same_function(teacher, student, (3, 4, 4))


def test_copies_of_a_channel_split_what_they_send_on():
    teacher, student = grown(CnnArch(channels=8, depth=2), CnnArch(channels=16, depth=2), (1, 8, 8))
    first, nxt = student.body[0].weight, student.body[4].weight
    bn = student.body[1]
    for j in range(8, 16):
        u = next(u for u in range(8) if torch.equal(first[j], first[u]))
        assert bn.running_var[j] == bn.running_var[u] and bn.running_mean[j] == bn.running_mean[u]
        assert not torch.allclose(nxt[:, u], nxt[:, j])
        copies = [k for k in range(16) if torch.equal(first[k], first[u])]
        assert torch.allclose(nxt[:16, copies].sum(1), teacher.body[4].weight[:, u], atol=1e-6)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_a_resnet_18_grows_into_a_wider_resnet_34(shape):
    teacher, student = grown(ResNetArch(depth=18, width=0.125), ResNetArch(depth=34, width=0.25), shape)
    assert_same_function(teacher, student, shape)
    assert len(student.body.stage3) == 6 and student.body.stage3[0].conv1.out_channels == 64
    assert torch.count_nonzero(student.body.stage3[5].bn2.weight) == 0  # an extra block: F(x) = 0


def test_a_resnet_50_grows_wider():
    shape = (3, 32, 32)
    teacher, student = grown(ResNetArch(depth=50, width=0.125), ResNetArch(depth=50, width=0.25), shape)
    assert_same_function(teacher, student, shape)


def test_a_resnet_with_the_imagenet_stem_grows_too():
    shape = (3, 72, 72)
    teacher, student = grown(ResNetArch(depth=18, width=0.125, stem="imagenet"),
                             ResNetArch(depth=18, width=0.25, stem="imagenet"), shape)
    assert_same_function(teacher, student, shape)


@pytest.mark.parametrize("teacher_arch, student_arch, shape, words", [
    (CnnArch(channels=16, depth=2), CnnArch(channels=8, depth=2), (1, 8, 8), "conv block 1 has 8 channels, fewer"),
    (CnnArch(channels=8, depth=3), CnnArch(channels=8, depth=2), (1, 8, 8), "2 conv blocks, fewer than the teacher's"),
    (CnnArch(channels=8, depth=2), CnnArch(channels=16, depth=3), (1, 8, 8), "halves the map twice, the 2-block"),
    (ResNetArch(depth=18, width=0.25), ResNetArch(depth=34, width=0.125), (1, 28, 28), "body.stem.0 has 8 channels"),
    (ResNetArch(depth=34, width=0.125), ResNetArch(depth=18, width=0.125), (1, 28, 28), "body.stage1 has 2 blocks"),
    (ResNetArch(depth=50, width=0.125), ResNetArch(depth=18, width=0.25), (1, 28, 28), "bottleneck"),
    (ResNetArch(depth=18, width=0.125), ResNetArch(depth=50, width=0.25), (1, 28, 28), "bottleneck"),
    (ResNetArch(depth=18, width=0.125, stem="small"), ResNetArch(depth=18, width=0.25, stem="imagenet"),
     (1, 28, 28), "stem differs"),
    (CnnArch(channels=8, depth=2), ResNetArch(depth=18, width=0.25), (1, 28, 28), "cnn teacher cannot grow"),
])
def test_a_student_that_cannot_start_as_its_teacher_is_refused_with_a_fix(teacher_arch, student_arch, shape, words):
    teacher, student = build_model(teacher_arch, shape, 3), build_model(student_arch, shape, 3)
    with pytest.raises(ValueError, match=words) as err:
        growth.grow(student, teacher, {0: 0})
    assert err.value.hint


@pytest.mark.slow
def test_a_resnet_grown_through_the_engine_starts_as_good_as_its_teacher(tmp_path):
    """A ResNet-18 teacher trained by the engine on digits, given as zoo weights: a ResNet-34
    twice as wide grown from it is, before it learns anything (lr 1e-7), as accurate."""
    small = {"kind": "resnet", "depth": 18, "width": 0.125}
    spec = demo_spec()
    spec.update(name="resnet teacher", teachers=[], student={"architecture": small},
                strategy={"hard_label_weight": 1.0})
    spec["training"].update(epochs=2, checkpoint_every_epochs=2, lr=0.01, compile=False, device="cpu")
    (tmp_path / "t").mkdir()
    proc = run_engine("run", write_spec(tmp_path / "t", spec), "--run-dir", tmp_path / "t" / "run",
                      "--db", tmp_path / "runs.sqlite", timeout=600)
    assert proc.returncode == 0, proc.stderr
    taught = [e["values"] for e in parse_events(proc.stdout) if e["event"] == "metric"]
    teacher_val = [v["val/acc"] for v in taught if "val/acc" in v][-1]
    assert teacher_val > 0.8  # a teacher worth growing from
    path = tmp_path / "t" / "run" / "student.safetensors"
    assert json.loads(safe_open(str(path), "pt").metadata()["architecture"])["kind"] == "resnet"

    spec.update(name="grown", teachers=[{"name": "small", "path": str(path), "architecture": small,
                                         "classes": [str(d) for d in range(10)]}],
                student={"architecture": {"kind": "resnet", "depth": 34, "width": 0.25},
                         "init": {"kind": "grow", "teacher": "small"}})
    spec["training"].update(epochs=1, checkpoint_every_epochs=1, lr=1e-7)
    (tmp_path / "g").mkdir()
    proc = run_engine("run", write_spec(tmp_path / "g", spec), "--run-dir", tmp_path / "g" / "run",
                      "--db", tmp_path / "runs.sqlite", timeout=600)
    assert proc.returncode == 0, proc.stderr
    events = parse_events(proc.stdout)
    assert any("grown from teacher 'small'" in e["message"] for e in events if e["event"] == "log")
    values = [e["values"] for e in events if e["event"] == "metric"]
    first_val = next(v["val/acc"] for v in values if "val/acc" in v)
    assert first_val == pytest.approx(teacher_val, abs=0.02)
    test = next(v for v in values if "test/acc" in v)
    assert test["test/acc"] == pytest.approx(test["test/teacher_acc/small"], abs=0.02)


def test_the_engine_refuses_a_cnn_deepening_that_adds_pooling_naming_the_field_and_the_fix():
    cnn = {"kind": "cnn", "channels": 8, "depth": 2}
    spec = demo_spec()
    spec["teachers"] = [{"name": "small", "path": "small.safetensors", "architecture": cnn,
                         "classes": [str(d) for d in range(10)]}]
    spec["student"] = {"architecture": dict(cnn, channels=16, depth=3),
                       "init": {"kind": "grow", "teacher": "small"}}
    parsed = parse_spec(spec)  # a cnn teacher may grow a cnn student
    teacher = SimpleNamespace(name="small", student_index=list(range(10)),
                              model=build_model(CnnArch(channels=8, depth=2), (1, 8, 8), 10))
    with pytest.raises(InputError) as err:
        init_student(build_model(parsed.student.architecture, (1, 8, 8), 10), parsed, [teacher])
    problem = err.value.problems[0]
    assert problem.path == "student.architecture"
    assert "halves the map twice, the 2-block teacher once" in problem.message
    assert "give the student the teacher's depth (2), or grow from a teacher of depth 3 or more" in problem.hint
