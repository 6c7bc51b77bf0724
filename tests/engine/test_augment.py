"""engine/augment.py: per-sample draws that depend on (seed, sample, key) only, and ops that do
what they say (crop, flip, scale-free colour jitter)."""

import pytest
import torch
from pydantic import ValidationError

from engine.augment import Augmenter, cost_note
from engine.errors import InputError
from engine.spec import AugmentSpec, parse_spec

OFF = {"crop": False, "flip": False, "color_jitter": 0.0}


def images(n=32, c=3, h=24, w=20, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed)) * 255


def test_each_sample_is_the_same_in_any_batch_and_order():
    aug = Augmenter(AugmentSpec(), seed=7)
    x, idx = images(), torch.arange(32) + 1000
    whole = aug(x, idx, key=3)
    perm = torch.randperm(32, generator=torch.Generator().manual_seed(1))
    shuffled = Augmenter(AugmentSpec(), seed=7)(x[perm], idx[perm], key=3)  # a fresh instance too
    torch.testing.assert_close(shuffled, whole[perm], rtol=0, atol=1e-4)
    halves = torch.cat([aug(x[:5], idx[:5], 3), aug(x[5:], idx[5:], 3)])
    torch.testing.assert_close(halves, whole, rtol=0, atol=1e-4)
    alone = aug(x[9:10], idx[9:10], 3)
    torch.testing.assert_close(alone, whole[9:10], rtol=0, atol=1e-4)
    assert not torch.allclose(whole, x)  # it did change the images


def test_the_draw_depends_on_sample_key_and_seed():
    aug = Augmenter(AugmentSpec(), seed=7)
    x, idx = images(), torch.arange(32)
    view0, view1 = aug(x, idx, key=0), aug(x, idx, key=1)
    differs = (view0 - view1).flatten(1).abs().amax(1) > 1e-3
    assert differs.all()
    p0, p1 = aug.params(idx, 0, 24, 20), aug.params(idx, 1, 24, 20)
    assert not torch.equal(p0.boxes, p1.boxes) and not torch.equal(p0.brightness, p1.brightness)
    other_seed = Augmenter(AugmentSpec(), seed=8).params(idx, 0, 24, 20)
    assert not torch.equal(p0.boxes, other_seed.boxes)
    same_image_other_sample = aug(x[:1].expand(2, -1, -1, -1), torch.tensor([0, 1]), key=0)
    assert not torch.allclose(same_image_other_sample[0], same_image_other_sample[1])


def test_flip_mirrors_exactly_the_samples_whose_draw_says_so():
    aug = Augmenter(AugmentSpec(**{**OFF, "flip": True}), seed=1)
    x, idx = images(), torch.arange(32)
    out = aug(x, idx, key=0)
    flip = aug.params(idx, 0, 24, 20).flip
    assert 0 < int(flip.sum()) < 32
    assert torch.equal(out[flip], torch.flip(x[flip], dims=[-1]))
    assert torch.equal(out[~flip], x[~flip])
    share = Augmenter(AugmentSpec(), seed=1).params(torch.arange(20000), 0, 8, 8).flip.float().mean()
    assert abs(float(share) - 0.5) < 0.02


@pytest.mark.parametrize("h,w", [(8, 8), (17, 31), (64, 40)])
def test_crop_boxes_stay_inside_within_scale_and_ratio(h, w):
    spec = AugmentSpec(crop_scale=[0.08, 1.0], crop_ratio=[0.5, 2.0])
    boxes = Augmenter(spec, seed=3).params(torch.arange(5000), 2, h, w).boxes
    x0, y0, bw, bh = boxes.unbind(1)
    eps = 1e-9
    assert (x0 >= -eps).all() and (y0 >= -eps).all()
    assert (x0 + bw <= w + eps).all() and (y0 + bh <= h + eps).all()
    assert (bw >= 1).all() and (bh >= 1).all()
    share, aspect = bw * bh / (h * w), bw / bh
    drawn = (share >= 0.08 - 1e-9) & (share <= 1 + 1e-9) & (aspect >= 0.5 - 1e-9) & (aspect <= 2 + 1e-9)
    assert drawn.float().mean() > 0.9  # the rest: the centred fallback, still inside


def test_crop_cuts_the_drawn_box_and_keeps_the_size():
    spec = AugmentSpec(**{**OFF, "crop": True})
    aug = Augmenter(spec, seed=5)
    n, h, w = 16, 24, 20
    ramp = torch.arange(w, dtype=torch.float32).expand(n, 3, h, w).clone()  # value = x coordinate
    idx = torch.arange(n)
    out = aug(ramp, idx, key=4)
    assert out.shape == ramp.shape and out.dtype == ramp.dtype
    x0, _, bw, _ = aug.params(idx, 4, h, w).boxes.float().unbind(1)
    torch.testing.assert_close(out[:, :, :, 0], x0.view(-1, 1, 1).expand(n, 3, h), atol=1e-3, rtol=0)
    torch.testing.assert_close(out[:, :, :, -1], (x0 + bw - 1).view(-1, 1, 1).expand(n, 3, h), atol=1e-3, rtol=0)
    flat = aug(torch.full((n, 1, h, w), 7.0), idx, key=4)  # nothing from outside the image leaks in
    torch.testing.assert_close(flat, torch.full_like(flat, 7.0), atol=1e-4, rtol=0)


def test_everything_off_is_the_identity():
    x = images()
    out = Augmenter(AugmentSpec(**OFF), seed=0)(x, torch.arange(32), key=9)
    assert torch.equal(out, x)


@pytest.mark.parametrize("channels", [1, 3])
def test_colour_jitter_is_scale_free(channels):
    aug = Augmenter(AugmentSpec(color_jitter=0.5), seed=2)
    x, idx = torch.rand(16, channels, 12, 12), torch.arange(16)
    torch.testing.assert_close(aug(x * 255, idx, 1) / 255, aug(x, idx, 1), atol=1e-5, rtol=1e-5)


def test_colour_jitter_factors_and_what_they_do():
    aug = Augmenter(AugmentSpec(**{**OFF, "color_jitter": 0.3}), seed=4)
    p = aug.params(torch.arange(5000), 0, 8, 8)
    for f in (p.brightness, p.contrast, p.saturation):
        assert f.min() >= 0.7 and f.max() <= 1.3 and f.std() > 0.1
    grey = torch.rand(8, 1, 10, 10).expand(8, 3, 10, 10).contiguous()  # saturation leaves grey alone
    out = aug(grey, torch.arange(8), 0)
    torch.testing.assert_close(out[:, 0], out[:, 1])
    torch.testing.assert_close(out[:, 1], out[:, 2])
    q = aug.params(torch.arange(8), 0, 10, 10)  # the image mean moves by the brightness factor only
    torch.testing.assert_close(out.mean(dim=(1, 2, 3)), grey.mean(dim=(1, 2, 3)) * q.brightness.float(),
                               atol=1e-5, rtol=1e-5)


def test_value_range_clamps_only_when_given():
    x = torch.full((4, 3, 8, 8), 250.0)
    bright = AugmentSpec(**{**OFF, "color_jitter": 1.0})
    idx = torch.arange(4)
    assert Augmenter(bright, seed=0)(x, idx, 0).max() > 255
    assert Augmenter(bright, seed=0, value_range=(0, 255))(x, idx, 0).max() <= 255


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_dtype_is_kept(dtype):
    x = images(n=4).to(dtype)
    out = Augmenter(AugmentSpec(), seed=0)(x, torch.arange(4), 0)
    assert out.dtype == dtype and out.shape == x.shape


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_gives_the_images_the_cpu_gives():
    aug = Augmenter(AugmentSpec(color_jitter=0.4), seed=11)
    x, idx = images(), torch.arange(32) * 3
    cpu = aug(x, idx, 5)
    gpu = aug(x.cuda(), idx.cuda(), 5)
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-2, rtol=1e-4)  # 0-255 values


def test_bad_settings_are_refused_by_name():
    with pytest.raises(ValidationError, match="minimum is above the maximum"):
        AugmentSpec(crop_scale=[0.9, 0.5])
    with pytest.raises(ValidationError, match="crop_ratio"):
        AugmentSpec(crop_ratio=[2.0, 0.5])
    for bad in ({"crop_scale": [0.0, 1.0]}, {"crop_scale": [0.5, 1.5]}, {"crop_scale": [0.5]},
                {"views": 0}, {"views": 65}, {"color_jitter": 1.5}, {"targets": "cached"}):
        with pytest.raises(ValidationError):
            AugmentSpec(**bad)


def test_spec_problems_name_the_augment_field(demo_dict):
    demo_dict["training"]["augment"] = {"crop_scale": [0.9, 0.1], "views": 0}
    with pytest.raises(InputError) as info:
        parse_spec(demo_dict)
    paths = {p.path for p in info.value.problems}
    assert any(p.startswith("training.augment") for p in paths), paths
    demo_dict["training"]["augment"] = {"targets": "views"}
    assert parse_spec(demo_dict).training.augment.views == 4  # digits are images [1, 8, 8]


def test_table_data_cannot_be_augmented(demo_dict):
    demo_dict["data"] = {"format": "csv", "path": "table.csv", "label_column": "y"}
    demo_dict["training"]["augment"] = {}
    with pytest.raises(InputError) as info:
        parse_spec(demo_dict)
    (problem,) = [p for p in info.value.problems if p.path == "training.augment"]
    assert "row of features" in problem.message


def test_cost_note_says_passes_and_bytes():
    assert "no augmentation" in cost_note(None, 1000, 2, 10, 5)
    live = cost_note(AugmentSpec(targets="live"), 1000, 2, 10, 5)
    assert "10 teacher pass" in live and "nothing is cached" in live
    views = cost_note(AugmentSpec(targets="views", views=8), 1000, 2, 10, 5)
    assert "16 teacher pass" in views and "640.0 kB" in views and "only 5 of the 8 views" in views


def test_crop_matches_kornias_crop_and_resize():
    kornia_transform = pytest.importorskip("kornia.geometry.transform")
    from engine.augment import crop_resize_flip

    x, boxes = images(n=8), Augmenter(AugmentSpec(), seed=0).params(torch.arange(8), 0, 24, 20).boxes
    x0, y0, w, h = boxes.float().unbind(1)
    x1, y1 = x0 + w - 1, y0 + h - 1
    corners = torch.stack([torch.stack(p, 1) for p in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))], 1)
    theirs = kornia_transform.crop_and_resize(x, corners, (24, 20), align_corners=True)
    ours = crop_resize_flip(x, boxes, torch.zeros(8, dtype=torch.bool))
    torch.testing.assert_close(ours, theirs, atol=0.05, rtol=0)  # 0-255 values
