"""The vision transformer: shapes, the patch check, its size worked out without torch, exact
structured pruning of whole heads and MLP units, and a real engine run exported to int8."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine.errors import InputError
from engine.models import build_model, count_parameters, fit_weights
from engine.spec import VitArch
from tests.engine.arch_sizes import measured_activations as kept_per_sample
from tests.helpers import parse_events, run_engine, write_spec

SMALL = VitArch(patch=2, dim=16, depth=2, heads=2, mlp_ratio=2.0)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_forward_shapes_and_named_parts(pooling):
    model = build_model(SMALL.model_copy(update={"pooling": pooling}), (3, 8, 12), 5)
    assert model(torch.rand(4, 3, 8, 12)).shape == (4, 5)
    assert model.body(model.normalize(torch.rand(4, 3, 8, 12))).shape == (4, 16)  # the pooled features
    names = dict(model.named_modules())
    assert {"body.embed", "body.blocks.0", "body.blocks.1", "body.norm", "head"} <= set(names)
    assert model.blocks() == [names["body.blocks.0"], names["body.blocks.1"]]
    assert model.body.embed.pos.shape == (1, 4 * 6 + (pooling == "cls"), 16)


def test_a_patch_that_does_not_divide_the_image_names_the_field_and_the_sizes_that_do():
    with pytest.raises(InputError) as err:
        build_model(VitArch(patch=3), (1, 8, 8), 10)
    problem = err.value.problems[0]
    assert problem.path == "student.architecture.patch" and "8×8" in problem.message
    assert problem.hint.endswith("1, 2, 4, 8")
    with pytest.raises(ValueError, match="does not divide the images' 8×8 pixels"):  # the app's size line
        VitArch(patch=3).size((1, 8, 8), 10)
    with pytest.raises(ValueError, match=r"image data \[C, H, W\]"):
        VitArch().size((12,), 10)


@pytest.mark.parametrize("arch,shape", [
    (SMALL, (1, 8, 8)),
    (VitArch(patch=4, dim=64, depth=3, heads=4, pooling="mean"), (3, 32, 32)),
    (VitArch(patch=4, dim=96, depth=2, heads=3, mlp_ratio=3.0), (3, 48, 32)),
    (VitArch(patch=2, dim=32, depth=2, heads=4, dropout=0.1), (1, 16, 16)),
])
def test_size_counts_the_parameters_exactly_and_the_kept_activations_closely(arch, shape):
    torch.manual_seed(0)
    model = build_model(arch, shape, 7)
    size = arch.size(shape, 7)
    assert size.parameters == count_parameters(model)
    measured = kept_per_sample(model, torch.rand(2, *shape))
    assert 0.65 * measured <= size.activations <= 1.35 * measured, (size.activations, measured)


def _with_dead_units(model):
    """Head 1 of block 0 and MLP units 0, 3 of block 1 contribute nothing (zeroed outputs)."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # not the initial zeros: every unit counts
        blk0, blk1 = model.body.blocks
        hd = blk0.attn.head_dim
        blk0.attn.proj.weight[:, hd:2 * hd] = 0
        blk1.fc2.weight[:, [0, 3]] = 0
    return model


def test_pruning_dead_heads_and_units_keeps_the_outputs_and_rebuilds_from_the_widths():
    torch.manual_seed(0)
    model = _with_dead_units(build_model(SMALL, (1, 8, 8), 10)).eval()
    model.normalize.fit(np.random.default_rng(0).random((20, 1, 8, 8), dtype=np.float32) * 16)
    scores = model.unit_scores()
    assert [len(s) for s in scores] == model.hidden_widths() == [2, 2, 32, 32]
    assert int(scores[0].argmin()) == 1  # the dead head scores lowest
    keep = [torch.tensor([0]), torch.arange(2), torch.arange(32),
            torch.tensor([i for i in range(32) if i not in (0, 3)])]
    small = model.keep_units(keep).eval()
    assert small.hidden_widths() == [1, 2, 32, 30] and count_parameters(small) < count_parameters(model)
    assert torch.equal(small.normalize.mean, model.normalize.mean)
    x = torch.rand(6, 1, 8, 8) * 16
    with torch.no_grad():
        torch.testing.assert_close(small(x), model(x), atol=1e-5, rtol=1e-5)
    rebuilt = fit_weights(SMALL, (1, 8, 8), 10, "RUN_DIR", small.state_dict(), "student.safetensors",
                          widths=small.hidden_widths())
    with torch.no_grad():
        assert torch.equal(rebuilt(x), small(x))


def test_a_vit_trains_on_digits_is_pruned_and_exports_int8_with_parity(tmp_path, demo_dict):
    demo_dict["student"]["architecture"] = {"kind": "vit", "patch": 4, "dim": 32, "depth": 2, "heads": 2,
                                            "mlp_ratio": 2.0}
    demo_dict["training"].update(epochs=6, lr=0.003)
    demo_dict["compression"] = [{"kind": "prune", "method": "structured", "sparsity": 0.25, "finetune_epochs": 2},
                                {"kind": "quantize", "mode": "static", "calibration_samples": 128,
                                 "max_accuracy_drop": 5.0}]
    demo_dict["export"] = {"folder": "exported"}
    proc = run_engine("run", write_spec(tmp_path, demo_dict), "--run-dir", tmp_path / "run",
                      "--db", tmp_path / "db", timeout=600)
    assert proc.returncode == 0, proc.stderr
    finished = parse_events(proc.stdout)[-1]
    assert finished["status"] == "completed"
    report = json.loads((tmp_path / "exported" / "report.json").read_text())
    assert report["hidden_widths"] == [2, 2, 48, 48]  # a quarter of the MLP units gone; 2 heads each kept
    assert report["parity_max_abs_diff"] <= report["parity_tolerance"]
    assert report["accuracy"]["onnx_fp32"] > 0.6  # 6 + 2 epochs: far above chance (0.1)
    assert report["quantization"]["kept"], report["problems"]
    assert report["accuracy"]["onnx_int8"] >= report["accuracy"]["onnx_fp32"] - 0.05
    dynamic = run_engine("export", tmp_path / "run", "--out", tmp_path / "dynamic", "--quantize", "int8",
                         "--max-drop", "5", timeout=600)  # the other int8 mode, same weights
    assert dynamic.returncode == 0, dynamic.stderr
    again = json.loads((tmp_path / "dynamic" / "report.json").read_text())
    assert again["quantization"]["mode"] == "dynamic" and again["quantization"]["kept"], again["problems"]
    assert again["accuracy"]["onnx_int8"] >= report["accuracy"]["onnx_fp32"] - 0.05
    print(json.dumps({"vit": {"static": [report["accuracy"], report["latency_ms_per_batch"]],
                      "dynamic": [again["accuracy"], again["latency_ms_per_batch"]]}}))


def test_widths_that_do_not_fit_the_blocks_are_a_clear_message():
    with pytest.raises(InputError) as err:
        build_model(SMALL, (1, 8, 8), 10, widths=[2, 2, 32])
    assert err.value.problems[0].path == "student.architecture" and "take 4 widths" in str(err.value)
    assert err.value.kind == "corrupt_model"


def test_compress_cuts_half_the_heads_and_units_of_every_block_and_hints_read_the_blocks():
    from engine.compress import apply_structured

    torch.manual_seed(0)
    model = _with_dead_units(build_model(SMALL, (1, 8, 8), 10))
    small, widths = apply_structured(model, 0.5)
    assert widths == small.hidden_widths() == [1, 1, 16, 16]
    assert 0 not in (small.body.blocks[1].fc2.weight == 0).all(0).nonzero().flatten().tolist()  # dead units went
    assert small(torch.rand(2, 1, 8, 8)).shape == (2, 10)
    shapes = {h["name"]: h["shape"] for h in model.hint_layer_shapes()}
    assert shapes == {"body.embed": [17, 16], "body.blocks.0": [17, 16], "body.blocks.1": [17, 16],
                      "body.norm": [17, 16], "body": [16]}
