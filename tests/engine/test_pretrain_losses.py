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


# ── masked prediction (engine/pretrain/masked.py) ────────────────────────────────────────


def test_masked_patch_loss_is_the_mean_l1_over_hidden_patches_only():
    from engine.pretrain.masked import masked_patch_loss

    predicted = torch.tensor([[[1.0, 2.0], [5.0, 5.0]], [[0.0, 0.0], [3.0, -1.0]]])
    target = torch.tensor([[[0.0, 0.0], [0.0, 0.0]], [[9.0, 9.0], [1.0, 1.0]]])
    hidden = torch.tensor([[True, False], [False, True]])
    # hidden: (1 + 2) from the first image's first patch, (2 + 2) from the second's second; 4 values
    assert masked_patch_loss(predicted, target, hidden).item() == pytest.approx((3 + 4) / 4)


def test_masked_patch_loss_counts_in_float32_under_half_precision():
    from engine.pretrain.masked import masked_patch_loss

    g = torch.Generator().manual_seed(0)  # 256 images × 64 patches × 48 values: a count past fp16's 65,504
    predicted, target = torch.randn(256, 64, 48, generator=g), torch.randn(256, 64, 48, generator=g)
    hidden = torch.rand(256, 64, generator=g) < 0.6
    full = masked_patch_loss(predicted, target, hidden).item()
    assert masked_patch_loss(predicted.half(), target.half(), hidden).item() == pytest.approx(full, rel=1e-2)


def test_masked_token_loss_is_cross_entropy_on_the_chosen_tokens():
    from engine.pretrain.masked import masked_token_loss

    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    targets = torch.tensor([0, 1])
    by_hand_loss = -(math.log(math.exp(2) / (math.exp(2) + 2)) + math.log(1 / (2 + math.e))) / 2
    assert masked_token_loss(logits, targets).item() == pytest.approx(by_hand_loss, rel=1e-6)


def test_patches_come_in_the_vits_token_order():
    from engine.models import build_model
    from engine.pretrain.masked import patches
    from engine.spec import VitArch

    vit = build_model(VitArch(patch=2, dim=8, depth=1, heads=2, pooling="mean"), (1, 4, 6), 3)
    x = torch.arange(24.0).reshape(1, 1, 4, 6)
    cut = patches(x, 2)  # [1, 6 patches, 4 values]
    assert cut.shape == (1, 6, 4)
    assert cut[0, 1].tolist() == [2.0, 3.0, 8.0, 9.0]  # the second patch of the first row
    with torch.no_grad():  # the patch embedding's token k is a linear function of patch k alone
        proj = vit.body.embed.proj
        tokens = proj(x).flatten(2).transpose(1, 2)
        by_patch = cut @ proj.weight.reshape(proj.out_channels, -1).T + proj.bias
    assert torch.allclose(tokens, by_patch, atol=1e-5)


def masked_model(kind: str, ratio: float | None = None):
    from engine.models import build_model
    from engine.pretrain.masked import MaskedPrediction
    from engine.spec import TransformerArch, VitArch

    torch.manual_seed(0)
    if kind == "text":
        student = build_model(TransformerArch(vocab_size=50, max_length=40, dim=16, depth=1, heads=2), (40,), 3)
    else:
        student = build_model(VitArch(patch=2, dim=16, depth=1, heads=2), (1, 8, 8), 3)
    return MaskedPrediction(student, SelfSupervisedSpec(method="masked", mask_ratio=ratio), seed=3)


def test_masked_prediction_trains_the_trunk_and_repeats_its_masks_for_the_same_batch():
    text = masked_model("text")
    ids = torch.randint(1, 50, (8, 40)).float()
    ids[:, 30:] = 0  # padding, never chosen
    loss = text(ids, torch.arange(8), epoch=0, batch=0)
    assert loss.item() == pytest.approx(math.log(50), rel=0.2)  # untrained: about uniform over the vocabulary
    loss.backward()
    assert text.student.body.blocks[0].attn.qkv.weight.grad.abs().sum() > 0 if hasattr(
        text.student.body.blocks[0], "attn") else True
    assert text.student.body.tokens.weight.grad.abs().sum() > 0 and text.mask_token.grad.abs().sum() > 0
    assert text.student.head.weight.grad is None  # the head is not pretrained
    with torch.no_grad():
        same = text(ids, torch.arange(8), epoch=0, batch=0)
        other = text(ids, torch.arange(8), epoch=1, batch=0)
    assert same.item() == pytest.approx(loss.item(), rel=1e-6) and other.item() != pytest.approx(loss.item())
    image = masked_model("image", ratio=0.5)
    loss = image(torch.rand(4, 1, 8, 8), torch.arange(4), epoch=0, batch=0)
    loss.backward()
    assert loss.item() > 0 and image.decoder.weight.grad.abs().sum() > 0
    assert image.student.body.embed.proj.weight.grad.abs().sum() > 0


def test_bert_chooses_its_share_of_real_tokens_and_hides_most_of_them():
    text = masked_model("text", ratio=0.3)
    ids = torch.randint(1, 50, (64, 40)).float()
    ids[:, 20:] = 0
    seen = {}

    def spy(corrupted, hidden, mask_token):
        seen.update(corrupted=corrupted, hidden=hidden)
        return torch.zeros(*corrupted.shape, 16, requires_grad=True), corrupted != 0

    text.student.body.token_states = spy
    text(ids, torch.arange(64), epoch=0, batch=0)
    hidden, corrupted = seen["hidden"], seen["corrupted"]
    assert not hidden[:, 20:].any()  # padding is never hidden
    share_hidden = hidden[:, :20].float().mean().item()
    assert 0.3 * 0.8 - 0.04 < share_hidden < 0.3 * 0.8 + 0.04  # 80 % of the 30 % chosen
    changed = (corrupted != ids.long())[:, :20].float().mean().item()
    assert 0.0 < changed < 0.3 * 0.1 + 0.02  # about 10 % of the chosen get a random token
    assert (corrupted[:, :20] != 0).all()  # a random token is never padding's id


def test_a_class_token_is_never_hidden_and_a_batch_of_padding_gives_no_loss():
    from engine.models import build_model
    from engine.pretrain.masked import MaskedPrediction
    from engine.spec import TransformerArch

    student = build_model(TransformerArch(vocab_size=50, max_length=12, dim=16, depth=1, heads=2, pooling="cls"),
                          (12,), 3)
    text = MaskedPrediction(student, SelfSupervisedSpec(method="masked", mask_ratio=0.9), seed=0)
    hidden_first = []
    real_states = student.body.token_states
    student.body.token_states = lambda c, h, m: (hidden_first.append(bool(h[:, 0].any())), real_states(c, h, m))[1]
    for batch in range(5):
        text(torch.randint(1, 50, (16, 12)).float(), torch.arange(16), epoch=0, batch=batch)
    assert hidden_first == [False] * 5
    loss = text(torch.zeros(4, 12), torch.arange(4), epoch=0, batch=0)  # nothing but padding
    assert loss.item() == 0.0
    loss.backward()  # every parameter in the graph (DDP waits for each one's gradient)
    assert text.decoder_bias.grad is not None and text.mask_token.grad is not None
