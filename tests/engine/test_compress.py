"""Pruning: what torch.nn.utils.prune removes, and that structured pruning really shrinks."""

import pytest
import torch
from torch import nn

from engine import compress
from engine.errors import InputError
from engine.models import build_model, count_parameters, hidden_widths
from engine.spec import CnnArch, MlpArch, parse_spec


def _kill_units(model, layer_index, units):
    """Make some hidden units/channels output exactly zero, as if they were not there."""
    layers = [m for m in model.body if isinstance(m, (nn.Linear, nn.Conv2d))]
    with torch.no_grad():
        layers[layer_index].weight[units] = 0
        if isinstance(layers[layer_index], nn.Linear):
            layers[layer_index].bias[units] = 0
        else:  # the BatchNorm after the conv: zero in, zero out
            bn = [m for m in model.body if isinstance(m, nn.BatchNorm2d)][layer_index]
            bn.bias[units] = 0
            bn.running_mean[units] = 0


@pytest.mark.parametrize("arch", [MlpArch(width=16, depth=2), CnnArch(channels=4, depth=3)])
def test_structured_pruning_removes_the_weakest_units_and_keeps_the_function(arch):
    torch.manual_seed(0)
    model = build_model(arch, (1, 8, 8), 10).eval()
    n = hidden_widths(model)
    dead = [list(range(0, w, 2)) for w in n]  # every other unit: exactly half of each layer
    for i, units in enumerate(dead):
        _kill_units(model, i, units)
    x = torch.randn(7, 1, 8, 8)
    small, widths = compress.apply_structured(model, 0.5)
    small.eval()
    assert widths == [w // 2 for w in n] == hidden_widths(small)
    assert count_parameters(small) < count_parameters(model) * 0.5
    torch.testing.assert_close(small(x), model(x), rtol=1e-5, atol=1e-5)


def test_magnitude_pruning_per_layer_and_global():
    torch.manual_seed(0)
    model = build_model(MlpArch(width=32, depth=2), (1, 8, 8), 10)
    with torch.no_grad():
        model.head.weight.mul_(100)  # the head's weights are the largest
    compress.apply_magnitude(model, 0.5, "layer")
    for module, _ in compress.prunable(model):
        assert (module.weight == 0).float().mean().item() == pytest.approx(0.5, abs=0.01)
    assert compress.is_masked(model)

    # the masks hold during fine-tuning: pruned weights stay zero after optimiser steps
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(8, 1, 8, 8)).sum().backward()
        opt.step()
    assert compress.sparsity(model) == pytest.approx(0.5, abs=0.01)
    compress.make_permanent(model)
    assert not compress.is_masked(model) and set(dict(model.named_parameters())) >= {"head.weight"}

    glob = build_model(MlpArch(width=32, depth=2), (1, 8, 8), 10)
    with torch.no_grad():
        glob.head.weight.mul_(100)
    compress.apply_magnitude(glob, 0.5, "global")
    assert compress.sparsity(glob) == pytest.approx(0.5, abs=0.01)
    assert (glob.head.weight == 0).float().mean() < 0.05  # global spares the large layer


def test_masked_state_loads_into_a_fresh_model():
    model = build_model(MlpArch(width=8, depth=1), (4,), 3)
    compress.apply_magnitude(model, 0.25, "layer")
    fresh = build_model(MlpArch(width=8, depth=1), (4,), 3)
    compress.restore_masks(fresh)
    fresh.load_state_dict(model.state_dict())
    assert compress.sparsity(fresh) == compress.sparsity(model) > 0


def test_quantize_comes_last_and_once(demo_dict):
    demo_dict["compression"] = [{"kind": "quantize"}, {"kind": "prune"}]
    with pytest.raises(InputError) as err:
        parse_spec(demo_dict)
    assert "quantize step" in str(err.value) and "comes last" in str(err.value)
    demo_dict["compression"] = [{"kind": "prune", "sparsity": 1.5}]
    with pytest.raises(InputError) as err:
        parse_spec(demo_dict)
    assert err.value.problems[0].path == "compression[0].prune.sparsity" or \
        "compression[0]" in err.value.problems[0].path
    demo_dict["compression"] = [{"kind": "prune", "method": "structured"}, {"kind": "quantize", "mode": "static"}]
    spec = parse_spec(demo_dict)
    assert spec.quantize.mode == "static" and spec.prune_steps[0].finetune_epochs == 3 and spec.exports
