"""The self-supervised pretraining's parts: SimCLR's loss against a hand computation, the views
of images and tables, the linear probe."""

import math

import numpy as np
import pytest
import torch

from engine.models.normalize import Normalize
from engine.pretrain.contrastive import Projector, nt_xent
from engine.pretrain.probe import linear_probe
from engine.pretrain.views import Views
from engine.spec import SelfSupervisedSpec


def by_hand(z1: np.ndarray, z2: np.ndarray, tau: float) -> float:
    """NT-Xent written out term by term (Chen et al. 2020, eq. 1): ℓ(i, j) for each of the 2B views."""
    z = np.concatenate([z1, z2]).astype(np.float64)
    u = z / np.linalg.norm(z, axis=1, keepdims=True)
    n, b = len(z), len(z1)
    total = 0.0
    for i in range(n):
        j = (i + b) % n
        sims = [math.exp(u[i] @ u[k] / tau) for k in range(n) if k != i]
        total += -math.log(math.exp(u[i] @ u[j] / tau) / sum(sims))
    return total / n


def test_nt_xent_matches_the_formula_by_hand():
    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    got = nt_xent(torch.tensor(z1, dtype=torch.float32), torch.tensor(z2, dtype=torch.float32), 0.5)
    assert got.item() == pytest.approx(by_hand(z1, z2, 0.5), rel=1e-5)


def test_identical_views_give_the_lowest_loss_and_shuffled_ones_a_higher():
    tau, b = 0.2, 8
    z = torch.eye(b, 16) * 3.0  # identical views, every other sample orthogonal
    low = nt_xent(z, z.clone(), tau)
    floor = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + 2 * b - 2))
    assert low.item() == pytest.approx(floor, rel=1e-5)
    shuffled = nt_xent(z, z[torch.randperm(b, generator=torch.Generator().manual_seed(1))], tau)
    random = nt_xent(torch.randn(b, 16), torch.randn(b, 16), tau)
    assert shuffled.item() > low.item() + 3 and random.item() > low.item() + 2


def test_nt_xent_refuses_views_of_different_shapes():
    with pytest.raises(ValueError, match="one shape"):
        nt_xent(torch.zeros(4, 3), torch.zeros(5, 3), 0.1)


def test_the_projector_maps_features_to_its_width():
    assert Projector(32, 8)(torch.randn(5, 32)).shape == (5, 8)


def test_image_views_differ_from_each_other_and_repeat_for_the_same_draw():
    norm = Normalize((1, 8, 8))
    views = Views(SelfSupervisedSpec(), (1, 8, 8), 0, norm)
    x, idx = torch.rand(6, 1, 8, 8) * 16, torch.arange(6)
    a, b = views(x, idx, 0, 0, 0), views(x, idx, 0, 0, 1)
    assert a.shape == x.shape and not torch.equal(a, b)
    assert torch.equal(a, views(x, idx, 0, 0, 0))  # a resumed run makes the same views
    assert not torch.equal(a, views(x, idx, 1, 0, 0))  # another epoch, another draw


def test_table_views_mask_features_to_their_mean_and_add_noise():
    norm = Normalize((20,))
    norm.fit(np.random.default_rng(0).normal(5.0, 2.0, size=(500, 20)).astype(np.float32))
    cfg = SelfSupervisedSpec(feature_mask=0.5, feature_noise=0.0)
    x = torch.full((200, 20), 100.0)
    out = Views(cfg, (20,), 0, norm)(x, torch.arange(200), 0, 0, 0)
    masked = out != 100.0
    assert 0.4 < masked.float().mean().item() < 0.6  # about half the features
    assert torch.allclose(out[masked], norm.mean.expand_as(x)[masked])
    noisy = Views(SelfSupervisedSpec(feature_mask=0.0, feature_noise=1.0), (20,), 0, norm)(
        x, torch.arange(200), 0, 0, 0)
    assert (noisy - x).std().item() == pytest.approx(norm.std.mean().item(), rel=0.2)  # σ in standardised units


def test_the_linear_probe_separates_separable_features_and_not_noise():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (300,), generator=g)
    centres = torch.randn(3, 10, generator=g) * 4
    x = centres[y] + torch.randn(300, 10, generator=g)
    assert linear_probe(x[:200], y[:200], x[200:], y[200:], 3) > 0.95
    noise = torch.randn(300, 10, generator=g)
    assert linear_probe(noise[:200], y[:200], noise[200:], y[200:], 3) < 0.6
