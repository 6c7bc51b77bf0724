"""The architectures' `size` (engine/spec.py, worked out without torch) against the built models:
the parameters exactly, the activations within a third of what autograd really saves."""

import pytest
import torch

from engine.models import build_model, count_parameters
from engine.spec import CnnArch, MlpArch, ResNetArch
from tests.engine.arch_sizes import measured_activations

CASES = [
    (MlpArch(width=64, depth=3), (1, 8, 8)),
    (MlpArch(width=16, depth=0), (5,)),
    (MlpArch(width=32, depth=2, dropout=0.2), (3, 4, 4)),
    (CnnArch(channels=8, depth=3), (1, 8, 8)),
    (CnnArch(channels=4, depth=4), (3, 32, 32)),
    (CnnArch(channels=4, depth=2, dropout=0.1), (1, 3, 5)),
    (CnnArch(channels=6, depth=5), (2, 9, 7)),
    (ResNetArch(depth=18, width=0.25), (3, 32, 32)),
    (ResNetArch(depth=34, width=0.25), (1, 28, 28)),
    (ResNetArch(depth=50, width=0.25), (3, 32, 32)),
    (ResNetArch(depth=18, width=0.25, stem="imagenet"), (3, 96, 96)),
    (ResNetArch(depth=50, width=0.125, dropout=0.2), (3, 96, 96)),
    (ResNetArch(depth=18, width=1.0, stem="small"), (3, 96, 96)),
    (ResNetArch(depth=18, width=0.125), (1, 8, 8)),
]


@pytest.mark.parametrize("arch,shape", CASES + [
    (ResNetArch(depth=18, width=1.0), (3, 224, 224)), (ResNetArch(depth=34, width=1.0), (3, 32, 32)),
    (ResNetArch(depth=50, width=1.0), (3, 224, 224)), (ResNetArch(depth=50, width=1.0, stem="small"), (3, 96, 96)),
    (ResNetArch(depth=50, width=2.0), (3, 33, 31))], ids=str)
def test_parameters_are_exact(arch, shape):
    with torch.device("meta"):
        model = build_model(arch, shape, 10)
    assert arch.size(shape, 10).parameters == count_parameters(model)


def test_resnet50_has_its_published_size():
    assert ResNetArch(depth=50).size((3, 224, 224), 1000).parameters == 25_557_032  # torchvision's


@pytest.mark.parametrize("arch,shape", CASES, ids=str)
def test_activations_are_within_a_third_of_what_autograd_saves(arch, shape):
    torch.manual_seed(0)
    model = build_model(arch, shape, 10)
    measured = measured_activations(model, torch.randn(2, *shape))
    assert arch.size(shape, 10).activations == pytest.approx(measured, rel=0.35)


def test_the_measurement_counts_what_autograd_keeps():
    """A linear layer saves its input (8 values a sample), a ReLU its output (4): 12, weights not counted."""
    model = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU())
    assert measured_activations(model, torch.randn(3, 8)) == 12
