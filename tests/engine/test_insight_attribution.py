"""Attribution (engine/insight/attribution.py) on models whose answer is known by construction:
a logit that reads one pixel or one feature, a token embedding that alone carries the class, a
real ONNX teacher loaded the engine's way; the attention rollout's shapes and the weights it
recomputes checked against the model's own attention; IG's completeness."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from engine.insight.attribution import (
    attention_map,
    attention_weights,
    display_image,
    occlusion_window,
    student_attribution,
    teacher_attribution,
)
from engine.models import ARCHITECTURES, build_model
from engine.spec import CnnArch, MlpArch, ResNetArch, TransformerArch, VitArch, parse_spec
from engine.teachers import load_teachers

PIXEL = (3, 5)  # the one pixel the toy models read (row, column): not symmetric, so a transpose shows
METHODS = ["integrated gradients", "saliency"]


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is the fastest, and steady on a shared machine
    try:
        yield
    finally:
        torch.set_num_threads(before)


class OnePixel(nn.Module):
    """Logits [2·tanh(w·x[c, 3, 5]), −x[c, 3, 5]]: only one pixel of one channel matters."""

    def __init__(self, shape: tuple[int, int, int], channel: int = 1):
        super().__init__()
        self.normalize = nn.Identity()
        self.read = nn.Linear(int(np.prod(shape)), 1)
        with torch.no_grad():
            self.read.weight.zero_()
            self.read.bias.zero_()
            self.read.weight.view(shape)[channel, PIXEL[0], PIXEL[1]] = 0.7

    def forward(self, x):
        v = self.read(x.flatten(1))
        return torch.cat([2 * torch.tanh(v), -v], dim=1)


@pytest.mark.parametrize("method", METHODS)
def test_an_image_model_reading_one_pixel_is_attributed_to_that_pixel(method):
    shape = (3, 8, 10)
    model = OnePixel(shape).train()
    x = torch.rand(4, *shape) * 0.5 + 0.5
    maps = student_attribution(model, x, torch.tensor([0, 1, 0, 1]), "image", method=method)
    assert maps.shape == (4, 8, 10) and maps.dtype == np.float32
    for m in maps:
        assert np.unravel_index(m.argmax(), m.shape) == PIXEL
        assert m[PIXEL] > 0.05
        rest = m.copy()
        rest[PIXEL] = 0
        assert np.abs(rest).max() < 1e-6
    assert model.training  # left as it was
    assert all(p.grad is None for p in model.parameters())


class OneFeature(nn.Module):
    def __init__(self, features: int, which: int):
        super().__init__()
        self.read = nn.Linear(features, 3)
        with torch.no_grad():
            self.read.weight.zero_()
            self.read.weight[:, which] = torch.tensor([1.5, -0.5, 0.0])

    def forward(self, x):
        return torch.relu(self.read(x)) + self.read(x) ** 2


@pytest.mark.parametrize("method", METHODS)
def test_a_table_model_reading_one_feature_is_attributed_to_that_feature(method):
    model = OneFeature(6, which=2)
    x = torch.rand(5, 6) + 0.5
    attr = student_attribution(model, x, torch.zeros(5, dtype=torch.long), "table", method=method)
    assert attr.shape == (5, 6)
    assert (attr.argmax(axis=1) == 2).all()
    assert np.abs(np.delete(attr, 2, axis=1)).max() < 1e-6
    # a vector sample of another shape is flattened to its features: [N, F]
    flat = student_attribution(nn.Sequential(nn.Flatten(), model), x.reshape(5, 2, 3),
                               torch.zeros(5, dtype=torch.long), "vector", method=method)
    assert np.allclose(flat, attr, atol=1e-6)


def test_integrated_gradients_are_complete_on_an_mlp_student():
    """Σ_i IG_i = f(x) − f(0) (Sundararajan et al., 2017), up to the quadrature's error."""
    torch.manual_seed(0)
    model = build_model(MlpArch(width=16, depth=2), (6,), 3)
    model.normalize.fit(np.random.default_rng(0).normal(2, 3, (50, 6)).astype(np.float32))
    with torch.no_grad():
        model.head.weight.mul_(10)
    x = torch.randn(6, 6) * 3 + 2
    target = torch.tensor([0, 1, 2, 0, 1, 2])
    attr = student_attribution(model, x, target, "table", steps=64)
    with torch.no_grad():
        gap = (model(x) - model(torch.zeros_like(x))).gather(1, target[:, None]).ravel().numpy()
    assert np.abs(gap).max() > 0.5  # a gap worth checking
    assert np.allclose(attr.sum(axis=1), gap, rtol=0.02, atol=0.01 * np.abs(gap).max())


def tiny(kind: str):
    return {"mlp": MlpArch(width=8, depth=1), "cnn": CnnArch(channels=4, depth=2),
            "resnet": ResNetArch(depth=18, width=0.125), "vit": VitArch(patch=4, dim=16, depth=1, heads=2),
            "transformer": TransformerArch(vocab_size=20, max_length=10, dim=16, depth=1, heads=2)}[kind]


@pytest.mark.parametrize("kind", sorted(ARCHITECTURES))
def test_every_architecture_is_attributed_in_eval_mode_and_left_as_it_was(kind):
    torch.manual_seed(0)
    text = kind == "transformer"
    model = build_model(tiny(kind), (10,) if text else (3, 8, 8), 4).train()
    x = torch.randint(1, 20, (3, 10)).float() if text else torch.rand(3, 3, 8, 8)
    if text:
        x[0, 6:] = 0
    with torch.no_grad():
        expected = model.eval()(x)
    model.train()
    buffers = {k: v.clone() for k, v in model.state_dict().items()}
    for method in METHODS:
        out = student_attribution(model, x, expected.argmax(1), "text" if text else "image", method=method)
        assert out.shape == ((3, 10) if text else (3, 8, 8)) and np.isfinite(out).all()
        assert np.abs(out).max() > 0
    assert model.training and all(p.grad is None and p.requires_grad for p in model.parameters())
    # eval mode throughout: BatchNorm's running statistics were not updated by the passes
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in buffers.items())


def token_model(seed: int, dominant: int = 7):
    """A real transformer student whose class-0 logit reads one direction d of the residual
    stream that only token `dominant`'s embedding holds (every other embedding, the position
    embeddings and what the block writes are orthogonal to d, and d to the LayerNorm's mean)."""
    torch.manual_seed(seed)
    model = build_model(tiny("transformer"), (10,), 3).eval()
    d = torch.randn(16)
    d -= d.mean()
    d /= d.norm()
    off = torch.eye(16) - torch.outer(d, d)
    block = model.body.blocks[0]
    with torch.no_grad():
        model.body.tokens.weight.copy_(torch.randn(20, 16) @ off)
        model.body.tokens.weight[dominant] = 3 * d
        model.body.pos.weight.copy_(model.body.pos.weight @ off)
        for layer in (block.attn.proj, block.fc2):
            layer.weight.copy_(off @ layer.weight)
            layer.bias.copy_(off @ layer.bias)
        model.head.weight.zero_()
        model.head.bias.zero_()
        model.head.weight[0] = d
        model.head.weight[1] = -d
    return model


@pytest.mark.parametrize("seed", [0, 1])
def test_the_token_that_carries_the_class_gets_the_top_score_and_padding_none(seed):
    model = token_model(seed)
    ids = torch.tensor([[3, 5, 7, 2, 9, 4, 0, 0, 0, 0],
                        [1, 2, 3, 4, 5, 6, 8, 7, 0, 0]], dtype=torch.float32)
    scores = student_attribution(model, ids, torch.tensor([0, 0]), "text")
    assert scores.shape == (2, 10)
    assert scores.argmax(axis=1).tolist() == [2, 7]
    for row, top in zip(scores, [2, 7]):
        assert row[top] > 5 * np.abs(np.delete(row, top)).max()
    assert (scores[0, 6:] == 0).all() and (scores[1, 8:] == 0).all()
    # a padding id given: the positions holding it count as padding
    other = student_attribution(model, ids, torch.tensor([0, 0]), "text", pad_id=3)
    assert other[0, 0] == 0 and other[1, 2] == 0 and other.argmax(axis=1).tolist() == [2, 7]
    saliency = student_attribution(model, ids, torch.tensor([0, 0]), "text", method="saliency")
    assert (saliency[0, 6:] == 0).all() and (saliency[:, :6] > 0).all()


def proj_inputs(model, x):
    """What each block's attention computed before its output projection, [N, T, heads·head_dim]."""
    seen = []
    hooks = [b.attn.proj.register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0]))
             for b in model.body.blocks]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return seen


def values_of(model, x):
    seen = []
    hooks = [b.attn.qkv.register_forward_hook(lambda _m, _i, out: seen.append(out)) for b in model.body.blocks]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return seen


def check_weights_reproduce_attention(model, x):
    weights = attention_weights(model, x)
    assert len(weights) == len(model.body.blocks)
    for block, w, qkv, out in zip(model.body.blocks, weights, values_of(model, x), proj_inputs(model, x)):
        a = block.attn
        n, t = qkv.shape[:2]
        v = qkv.reshape(n, t, 3, a.heads, a.head_dim).permute(2, 0, 3, 1, 4)[2]
        mine = (w @ v).transpose(1, 2).reshape(n, t, -1)
        assert torch.allclose(mine, out, atol=1e-5)
        assert torch.allclose(w.sum(-1), torch.ones(()), atol=1e-5)
    return weights


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_vit_attention_rollout_covers_the_image_patch_by_patch(pooling):
    torch.manual_seed(0)
    model = build_model(VitArch(patch=4, dim=16, depth=2, heads=2, pooling=pooling), (3, 8, 12), 3).eval()
    x = torch.rand(2, 3, 8, 12)
    check_weights_reproduce_attention(model, x)
    maps = attention_map(model, x)
    assert maps.shape == (2, 8, 12) and np.isfinite(maps).all() and (maps > 0).all()
    patches = maps[:, ::4, ::4]  # one value per patch, the same over its 4×4 pixels
    assert np.array_equal(np.repeat(np.repeat(patches, 4, axis=1), 4, axis=2), maps)
    flow = patches.sum(axis=(1, 2))  # the rollout's rows sum to 1
    if pooling == "mean":
        assert np.allclose(flow, 1, atol=1e-5)
    else:
        assert (flow < 1).all() and (flow > 0).all()  # the class token keeps some of the flow


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_transformer_attention_rollout_is_per_token_and_zero_at_padding(pooling):
    torch.manual_seed(0)
    arch = TransformerArch(vocab_size=20, max_length=10, dim=16, depth=2, heads=2, pooling=pooling)
    model = build_model(arch, (10,), 3).eval()
    ids = torch.randint(1, 20, (3, 10)).float()
    ids[0, 4:] = 0
    ids[1, 9:] = 0
    weights = check_weights_reproduce_attention(model, ids)
    assert (weights[0][0, :, :, 4:] == 0).all()  # padding keys get no attention
    maps = attention_map(model, ids)
    assert maps.shape == (3, 10) and np.isfinite(maps).all()
    assert (maps[0, 4:] == 0).all() and maps[1, 9] == 0
    assert (maps[0, :4] > 0).all() and (maps[2] > 0).all()
    assert np.allclose(maps.sum(axis=1), 1, atol=1e-5)  # each sample's flow, all to its real tokens


def test_no_attention_map_for_architectures_without_attention():
    assert attention_map(build_model(tiny("cnn"), (3, 8, 8), 2), torch.rand(1, 3, 8, 8)) is None
    assert attention_map(build_model(tiny("mlp"), (6,), 2), torch.rand(1, 6)) is None


# ── teachers ─────────────────────────────────────────────────────────────────────────────────


class OnePixelGrey(nn.Module):
    """An 8×8 grey-digit teacher of two classes whose logits read pixel (3, 5) alone."""

    def forward(self, x):
        p = x[:, 0, PIXEL[0], PIXEL[1]]
        return torch.stack([0.5 * p, -0.25 * p], dim=1)


@pytest.fixture
def onnx_teacher(tmp_path, demo_dict):
    path = tmp_path / "one-pixel.onnx"
    with warnings.catch_warnings():  # the TorchScript exporter (as tests/engine/contract_models.py) is deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(OnePixelGrey(), (torch.rand(1, 1, 8, 8),), str(path), input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                          opset_version=17, dynamo=False)
    demo_dict["teachers"] = [{"name": "one pixel", "path": str(path), "classes": ["three", "5"],
                              "mapping": {"three": "3"}, "outputs": "logits"}]
    [teacher] = load_teachers(parse_spec(demo_dict), np.zeros((2, 1, 8, 8), np.float32), threads=1)
    return teacher


def test_occlusion_of_an_onnx_teacher_finds_the_pixel_it_reads(onnx_teacher):
    x = np.random.default_rng(0).uniform(1, 16, (3, 1, 8, 8)).astype(np.float32)  # the digits' 0-16 scale
    for student_class in (3, 5):  # its outputs 0 and 1
        maps = teacher_attribution(onnx_teacher, x, student_class, "image")
        assert maps.shape == (3, 8, 8)
        for m, sample in zip(maps, x):
            assert np.unravel_index(m.argmax(), m.shape) == PIXEL
            weight = 0.5 if student_class == 3 else 0.25
            assert m[PIXEL] == pytest.approx(weight * sample[0][PIXEL], rel=1e-5)
            assert np.count_nonzero(m) == 1
    # a larger window spreads the pixel's effect over the windows covering it
    wide = teacher_attribution(onnx_teacher, x, 3, "image", window=3)
    assert wide[0][PIXEL] > 0 and np.count_nonzero(wide[0]) > 1 and wide[0][0, 0] == 0
    # the same teacher seen as a vector of 64 features: feature ablation
    flat = teacher_attribution(onnx_teacher, x, 3, "vector")
    assert flat.shape == (3, 64) and (flat.argmax(axis=1) == PIXEL[0] * 8 + PIXEL[1]).all()
    assert np.count_nonzero(flat) == 3


def test_a_teacher_that_does_not_know_the_class_or_text_gets_no_attribution(onnx_teacher):
    x = np.ones((1, 1, 8, 8), np.float32)
    assert teacher_attribution(onnx_teacher, x, 7, "image") is None
    assert teacher_attribution(onnx_teacher, x, 3, "text") is None


def test_the_occlusion_window_fits_the_image():
    assert [occlusion_window(s, s) for s in (8, 28, 32, 224)] == [1, 4, 4, 28]
    assert occlusion_window(4, 300) == 1


# ── showing ──────────────────────────────────────────────────────────────────────────────────


def test_display_image_gives_rgb_in_zero_to_one():
    grey = np.arange(12, dtype=np.float32).reshape(1, 3, 4) * 20  # 0…220: pixels of 0-255
    shown = display_image(grey)
    assert shown.shape == (3, 4, 3) and shown.dtype == np.float32
    assert np.allclose(shown[..., 0], grey[0] / 255) and np.array_equal(shown[..., 0], shown[..., 2])
    rgb = np.random.default_rng(0).random((3, 2, 5)).astype(np.float32)
    assert np.allclose(display_image(rgb), rgb.transpose(1, 2, 0))
    odd = np.array([[[-2.0, 0.0], [1.0, 2.0]]])  # neither 0-1 nor 0-255: min–max per image
    assert np.allclose(display_image(odd)[..., 1], [[0, 0.5], [0.75, 1]])
    assert np.allclose(display_image(np.full((1, 2, 2), 300.0)), 0)


def test_display_image_maps_the_datas_range_to_black_and_white():
    """scikit-learn's digits hold 0…16: read as 0…255 they would all look black."""
    digit = np.array([[[0.0, 4.0], [8.0, 16.0]]])
    assert np.allclose(display_image(digit, (0.0, 16.0))[..., 0], [[0, 0.25], [0.5, 1]])
    assert display_image(digit)[..., 0].max() < 0.1  # without the range: taken for 0…255
