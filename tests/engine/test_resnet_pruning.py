"""Structured pruning of a ResNet cuts only the inside of its blocks: the residual stream keeps
its channels, the function is kept when the cut channels were dead, and the small model is
rebuilt from its hidden widths (what checkpoints and student.safetensors save)."""

import pytest
import torch

from engine import compress
from engine.models import build_model, count_parameters, fit_weights, hidden_widths
from engine.spec import ResNetArch


def _randomise_norms(model):
    """BatchNorm with non-trivial statistics, so copying the wrong channels shows."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)


def _kill_inner_channels(model):
    """Every other inner channel of every block outputs exactly zero (filter and BN affine zero)."""
    dead = []
    with torch.no_grad():
        for block, conv, bn, _ in model.inner_layers():
            units = list(range(1, model.get_submodule(f"{block}.{conv}").out_channels, 2))
            model.get_submodule(f"{block}.{conv}").weight[units] = 0
            model.get_submodule(f"{block}.{bn}").weight[units] = 0
            model.get_submodule(f"{block}.{bn}").bias[units] = 0
            dead.append(units)
    return dead


@pytest.mark.parametrize("depth,width,shape", [(18, 0.125, (1, 28, 28)), (50, 0.125, (3, 32, 32)),
                                               (34, 0.25, (3, 32, 32))])
def test_pruning_dead_inner_channels_keeps_the_function(depth, width, shape):
    torch.manual_seed(0)
    model = build_model(ResNetArch(depth=depth, width=width), shape, 10).eval()
    _randomise_norms(model)
    _kill_inner_channels(model)
    before = hidden_widths(model)
    x = torch.randn(4, *shape)
    small, widths = compress.apply_structured(model, 0.5)
    small.eval()
    assert widths == [w // 2 for w in before] == hidden_widths(small)
    torch.testing.assert_close(small(x), model(x), rtol=1e-5, atol=1e-5)
    # the residual stream keeps its channels: stem, block outputs, shortcuts, head
    for name in ("body.stem.0", "body.stage2.0.shortcut.0", "head"):
        assert small.get_submodule(name).weight.shape == model.get_submodule(name).weight.shape
    last = "conv3" if depth == 50 else "conv2"
    assert small.body.stage4[-1].get_submodule(last).out_channels == \
        model.body.stage4[-1].get_submodule(last).out_channels


def test_pruning_removes_the_weakest_inner_channels_and_shrinks_the_model():
    torch.manual_seed(0)
    model = build_model(ResNetArch(depth=18, width=0.25), (3, 32, 32), 10)
    with torch.no_grad():
        model.body.stage1[0].conv1.weight[[0, 3, 5]] *= 0.01  # the three weakest filters of block 1
    small, widths = compress.apply_structured(model, 0.25)
    assert widths == [round(w * 0.75) for w in hidden_widths(model)] == hidden_widths(small)
    assert widths[0] == 12 == small.body.stage1[0].conv1.weight.shape[0]
    # the kept filters are the strong ones, in their order, and conv2 reads just those
    strong = model.body.stage1[0].conv1.weight.flatten(1).abs().sum(1)
    expected = torch.topk(strong, 12).indices.sort().values
    assert not {0, 3, 5} & set(expected.tolist())
    torch.testing.assert_close(small.body.stage1[0].conv1.weight, model.body.stage1[0].conv1.weight[expected])
    torch.testing.assert_close(small.body.stage1[0].conv2.weight, model.body.stage1[0].conv2.weight[:, expected])
    torch.testing.assert_close(small.normalize.std, model.normalize.std)
    assert count_parameters(small) < 0.8 * count_parameters(model)
    assert small.training == model.training


def test_a_pruned_resnet_is_rebuilt_from_its_widths_and_loads():
    torch.manual_seed(0)
    arch = ResNetArch(depth=50, width=0.125)
    model = build_model(arch, (3, 32, 32), 7).eval()
    _randomise_norms(model)
    with torch.no_grad():
        model.normalize.mean.fill_(0.3)
    small, widths = compress.apply_structured(model, 0.6)
    assert min(widths) >= 1 and widths != hidden_widths(model)
    loaded = fit_weights(arch, (3, 32, 32), 7, "student", small.state_dict(), "student.safetensors", widths=widths)
    x = torch.randn(3, 3, 32, 32)
    torch.testing.assert_close(loaded(x), small.eval()(x))
    assert hidden_widths(loaded) == widths and float(loaded.normalize.mean.mean()) == pytest.approx(0.3)
    # at full width the state does not fit: the file's widths are what rebuild it
    with pytest.raises(Exception, match="do not fit"):
        fit_weights(arch, (3, 32, 32), 7, "student", small.state_dict(), "student.safetensors")


def test_keep_units_refuses_indices_that_do_not_fit():
    model = build_model(ResNetArch(depth=18, width=0.125), (1, 28, 28), 10)
    keep = [torch.arange(w) for w in hidden_widths(model)]
    with pytest.raises(ValueError, match="index tensors"):
        model.keep_units(keep[:-1])
    keep[2] = torch.tensor([0, 99])
    with pytest.raises(ValueError, match="below the width"):
        model.keep_units(keep)
