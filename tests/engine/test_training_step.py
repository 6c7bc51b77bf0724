"""The training step on large students: one GPU per torchrun process, the fused optimiser,
compile (and its fallback), gradient accumulation and activation checkpointing."""

from __future__ import annotations

import copy
import io

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from engine import dist
from engine.data import load_dataset
from engine.errors import InputError
from engine.events import Control, Emitter
from engine.models import build_model
from engine.spec import MlpArch, ResNetArch, TrainingSpec, parse_spec
from engine.teachers import load_teachers
from engine.train import Job, checkpointed_blocks, compile_wanted, require_blocks, train
from engine.train_state import make_optimizer
from tests.helpers import parse_events


def test_more_processes_than_gpus_is_named_with_both_fixes():
    dist.check_gpus(processes=2, gpus=2)  # one GPU each: fine
    with pytest.raises(InputError) as err:
        dist.check_gpus(processes=4, gpus=1)
    problem = err.value.problems[0]
    assert problem.path == "training.device"
    assert "4 processes" in problem.message and "1 CUDA GPU" in problem.message
    assert "--nproc_per_node=1" in problem.hint and '"device": "cpu"' in problem.hint


def test_adam_is_fused_exactly_when_every_parameter_is_on_a_gpu():
    cfg = TrainingSpec()
    opt, _ = make_optimizer([torch.nn.Parameter(torch.zeros(3))], cfg, 1e-3, 10)
    assert not opt.defaults.get("fused")
    if torch.cuda.is_available():
        opt, _ = make_optimizer([torch.nn.Parameter(torch.zeros(3, device="cuda"))], cfg, 1e-3, 10)
        assert opt.defaults["fused"]


def test_compile_is_on_by_default_for_large_students_on_a_gpu_only(demo_dict):
    mlp = parse_spec(demo_dict)
    demo_dict["student"]["architecture"] = {"kind": "resnet"}
    resnet = parse_spec(demo_dict)
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert compile_wanted(resnet, cuda) and not compile_wanted(resnet, cpu) and not compile_wanted(mlp, cuda)
    demo_dict["training"]["compile"] = False
    assert not compile_wanted(parse_spec(demo_dict), cuda)


def _train(spec, data, teachers, folder, stream=None):
    emitter = Emitter(stream or io.StringIO())
    return train(Job(spec, data, teachers, torch.device("cpu"), None, folder, emitter, Control(emitter)))


def test_a_step_that_fails_to_compile_runs_uncompiled_and_says_so(demo_dict, tmp_path, monkeypatch):
    demo_dict["training"].update(epochs=1, cpu_threads=1, compile=True)
    demo_dict["student"]["architecture"]["dropout"] = 0.2  # the RNG state matters too
    spec = parse_spec(demo_dict)
    data = load_dataset(spec)
    teachers = load_teachers(spec, data.train.x[:8], 1)
    real_compile = torch.compile

    def broken_backend(gm, example_inputs):
        raise RuntimeError("no C++ compiler found (test backend)\nmore detail")

    # the real torch.compile (dynamo traces the student), with a backend that fails as inductor does without g++
    monkeypatch.setattr(torch, "compile", lambda model, **kw: real_compile(model, backend=broken_backend))
    events = io.StringIO()
    result = _train(spec, data, teachers, tmp_path / "run", events)
    assert result.final["val/acc"] > 0.5
    warnings = [e["message"] for e in parse_events(events.getvalue())
                if e["event"] == "log" and e.get("level") == "warning"]
    assert any("torch.compile failed" in w and "no C++ compiler found" in w and "more detail" not in w
               for w in warnings), warnings
    # the failed try is undone: the run is the one that never tried to compile, bit for bit
    demo_dict["training"]["compile"] = False
    _train(parse_spec(demo_dict), data, teachers, tmp_path / "plain")
    a, b = (load_file(str(tmp_path / r / "student.safetensors")) for r in ("run", "plain"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_an_error_of_the_model_is_not_taken_for_a_compile_failure(demo_dict, tmp_path, monkeypatch):
    demo_dict["training"].update(epochs=1, cpu_threads=1, compile=True)
    spec = parse_spec(demo_dict)
    data = load_dataset(spec)
    teachers = load_teachers(spec, data.train.x[:8], 1)

    def compiled(model, **kw):
        def run(x):
            raise ValueError("a shape mismatch in the student")
        return run

    monkeypatch.setattr(torch, "compile", compiled)
    with pytest.raises(ValueError, match="shape mismatch"):
        _train(spec, data, teachers, tmp_path / "run", io.StringIO())


@pytest.mark.slow
def test_accumulated_parts_take_the_step_of_the_whole_batch(demo_dict, tmp_path):
    demo_dict["student"]["architecture"] = {"kind": "mlp", "width": 64, "depth": 2}
    demo_dict["training"].update(epochs=1, cpu_threads=1, precision="fp32", batch_size=64)
    data = teachers = None
    weights = {}
    for k in (1, 4):
        demo_dict["training"]["accumulate"] = k
        spec = parse_spec(demo_dict)
        if data is None:
            data = load_dataset(spec)
            teachers = load_teachers(spec, data.train.x[:8], 1)
        _train(spec, data, teachers, tmp_path / f"k{k}")
        weights[k] = load_file(str(tmp_path / f"k{k}" / "student.safetensors"))
    moved = False
    for name, w in weights[1].items():
        assert torch.allclose(w, weights[4][name], atol=1e-5, rtol=1e-4), name
        moved |= name.endswith("weight") and not torch.equal(w, weights[4][name])  # really another path
    assert moved


def test_more_parts_than_samples_in_a_batch_is_named(demo_dict):
    demo_dict["training"].update(batch_size=8, accumulate=16)
    with pytest.raises(InputError) as err:
        parse_spec(demo_dict)
    assert [p.path for p in err.value.problems] == ["training.accumulate"]
    assert "at most 8" in err.value.problems[0].hint


def _loss_grads_saved(model, x, y):
    saved = [0]

    def pack(t):
        saved[0] += 1
        return t

    model.zero_grad(set_to_none=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(model(x), y)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}, saved[0]


def test_activation_checkpointing_keeps_loss_and_gradients_and_saves_fewer_tensors():
    torch.manual_seed(0)
    model = build_model(ResNetArch(depth=18, width=0.125), (3, 16, 16), 5)
    model.train()
    plain = copy.deepcopy(model)
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 5, (8,))
    plain_loss, plain_grads, plain_saved = _loss_grads_saved(plain, x, y)
    checkpointed_blocks(model, True)
    loss, grads, saved = _loss_grads_saved(model, x, y)
    assert torch.allclose(loss, plain_loss, atol=1e-5)
    for name, g in plain_grads.items():
        assert torch.allclose(grads[name], g, atol=1e-5), name
    assert saved < plain_saved / 2, (saved, plain_saved)
    for name, b in plain.named_buffers():  # the recompute does not move BatchNorm's statistics again
        assert torch.equal(dict(model.named_buffers())[name], b), name
    assert int(model.body.stage1[0].bn1.num_batches_tracked) == 1
    model.eval()  # evaluation and export run the blocks as they are
    plain.eval()
    with torch.no_grad():
        assert torch.equal(model(x), plain(x))
    checkpointed_blocks(model, False)
    assert all("forward" not in b.__dict__ for b in model.blocks())


def test_activation_checkpointing_needs_a_student_with_blocks():
    mlp = build_model(MlpArch(), (8,), 2)
    with pytest.raises(InputError) as err:
        require_blocks(mlp)
    problem = err.value.problems[0]
    assert problem.path == "training.activation_checkpointing" and "resnet" in problem.hint


def test_a_run_asking_activation_checkpointing_of_an_mlp_is_refused_before_training(demo_dict):
    from engine.preflight import training_problems

    demo_dict["training"]["activation_checkpointing"] = True
    spec = parse_spec(demo_dict)
    data = load_dataset(spec)
    problems = training_problems(spec, data, load_teachers(spec, data.train.x[:8], 1))
    assert [p.path for p in problems] == ["training.activation_checkpointing"]
    assert "'mlp'" in problems[0].message and "resnet" in problems[0].hint


def test_accumulated_parts_weigh_the_cross_entropy_over_the_whole_batchs_labels():
    """Partly labelled batches (an unlabelled transfer set beside labelled images, label -1):
    the parts' weighted cross-entropies add up to the whole batch's mean over its labels."""
    from engine.strategies.hard_labels import HardLabels
    from engine.strategies.term import Batch

    torch.manual_seed(0)
    logits, labels = torch.randn(8, 3), torch.tensor([0, -1, -1, -1, 1, 2, 0, 1])
    term = HardLabels(1.0)

    def batch(sl, share=1.0, labelled=None):
        b = Batch(None, torch.arange(8)[sl], labels[sl], None, 0, 0.0, None, share=share, labelled=labelled)
        b.logits = logits[sl]
        return b

    whole = term(batch(slice(None)))["loss/ce"]
    assert torch.isclose(whole, F.cross_entropy(logits, labels, ignore_index=-1))
    total = labels.ge(0).sum()
    parts = sum(0.5 * term(batch(sl, 0.5, total))["loss/ce"] for sl in (slice(0, 4), slice(4, 8)))
    assert torch.isclose(parts, whole), (parts, whole)
