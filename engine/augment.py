"""Data augmentation of the student's training images: random resized crop, horizontal flip,
colour jitter (settings: engine.spec.AugmentSpec).

Every random number comes from a counter-based generator (SplitMix64: Steele, Lea, Flood,
"Fast Splittable Pseudorandom Number Generators", OOPSLA 2014) keyed by (seed, sample
position, key), never from a global RNG state. So a sample's augmentation is the same whichever
other samples share its batch, in whatever order, on whatever device: under targets 'views' the
teachers label view v of sample i (once, on the CPU, in their own batches) and the student sees
exactly that image when epoch e % K == v comes round (on the GPU, in shuffled batches).

The draws are made on the CPU in float64 (a few numbers per sample) and only the image work
runs on the images' device. Every image op is linear in the pixel values, so it works in the
data's own value range (0-255, 0-1 or any float): augment(a·x) = a·augment(x) for a > 0, and
nothing is clamped unless the caller gives the data's value range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from engine.spec import AugmentSpec

CROP_ATTEMPTS = 10  # Inception's crop tries this many draws before falling back to the centre
# Counter slots of each draw (fixed, so turning one op off never changes another's draws)
_CROP_SLOT, _FLIP_SLOT, _JITTER_SLOT = 0, 4 * CROP_ATTEMPTS, 4 * CROP_ATTEMPTS + 1
_N_DRAWS = _JITTER_SLOT + 3

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_MASK64 = (1 << 64) - 1


def _splitmix64(z: np.ndarray) -> np.ndarray:
    """One SplitMix64 step on uint64 arrays (wrapping arithmetic): z + γ, then its finaliser."""
    z = z + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def uniforms(seed: int, idx: torch.Tensor, key: int, n: int) -> np.ndarray:
    """[B, n] float64 numbers uniform in [0, 1): draw j of sample i is a function of
    (seed, idx[i], key, j) only (53 bits of a SplitMix64 hash chain)."""
    positions = idx.detach().to("cpu", torch.int64).numpy().astype(np.uint64)
    state = _splitmix64(np.full(positions.shape, seed & _MASK64, dtype=np.uint64))
    state = _splitmix64(state ^ positions)
    state = _splitmix64(state ^ np.uint64(key & _MASK64))
    counters = np.arange(n, dtype=np.uint64) * _GOLDEN
    bits = _splitmix64(state[:, None] + counters[None, :])
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53


@dataclass(frozen=True)
class AugmentParams:
    """Each sample's draw, on the CPU. boxes: [B, 4] float64 (x0, y0, width, height) in pixels,
    or None when cropping is off; flip: [B] bool; brightness, contrast, saturation: [B] float64
    factors (1: unchanged)."""

    boxes: torch.Tensor | None
    flip: torch.Tensor
    brightness: torch.Tensor
    contrast: torch.Tensor
    saturation: torch.Tensor


def random_resized_crop_boxes(u: np.ndarray, height: int, width: int, scale: tuple[float, float],
                              ratio: tuple[float, float]) -> np.ndarray:
    """Inception's random resized crop (Szegedy et al., "Going Deeper with Convolutions",
    CVPR 2015, §6; as in torchvision's RandomResizedCrop): a box of area share ~ U(scale) and
    aspect w/h ~ exp U(log ratio), placed uniformly; the first of CROP_ATTEMPTS draws that fits
    the image, else the largest centred box with the aspect clipped to `ratio`. Sizes are
    continuous (not rounded to pixels), so small images keep the full range of crops.
    `u` is [B, 4·CROP_ATTEMPTS] uniforms; returns [B, 4] (x0, y0, w, h)."""
    u = u.reshape(len(u), CROP_ATTEMPTS, 4)
    area = height * width * (scale[0] + (scale[1] - scale[0]) * u[..., 0])
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = np.exp(log_lo + (log_hi - log_lo) * u[..., 1])
    w, h = np.sqrt(area * aspect), np.sqrt(area / aspect)
    fits = (w >= 1) & (w <= width) & (h >= 1) & (h <= height)
    x0, y0 = u[..., 2] * (width - w), u[..., 3] * (height - h)
    first = fits.argmax(axis=1)
    rows = np.arange(len(u))
    boxes = np.stack([x0[rows, first], y0[rows, first], w[rows, first], h[rows, first]], axis=1)
    in_ratio = width / height  # the fallback: the whole image, cut to the nearest allowed aspect
    fw, fh = float(width), float(height)
    if in_ratio < ratio[0]:
        fh = fw / ratio[0]
    elif in_ratio > ratio[1]:
        fw = fh * ratio[1]
    fallback = np.array([(width - fw) / 2, (height - fh) / 2, fw, fh])
    return np.where(fits.any(axis=1)[:, None], boxes, fallback[None, :])


BT601 = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma weights of R, G, B (sum 1)


def _grey(x: torch.Tensor) -> torch.Tensor:
    """[B, 1, H, W] luma: the BT.601 weights for RGB, the channel mean otherwise."""
    if x.shape[1] == 3:
        return torch.einsum("bchw,c->bhw", x, x.new_tensor(BT601)).unsqueeze(1)
    return x.mean(dim=1, keepdim=True)


def color_jitter(x: torch.Tensor, brightness: torch.Tensor, contrast: torch.Tensor,
                 saturation: torch.Tensor) -> torch.Tensor:
    """Colour jitter (Krizhevsky, Sutskever, Hinton, "ImageNet Classification with Deep
    Convolutional Neural Networks", NeurIPS 2012, §4.1; Howard, "Some Improvements on Deep
    Convolutional Neural Network Based Image Classification", 2013, §2.1), in the blend form of
    torchvision's ColorJitter, with per-sample factors [B], in this order:

        brightness   x ← b·x
        contrast     x ← c·x + (1 − c)·mean(grey(x))       (the image's mean luma)
        saturation   x ← s·x + (1 − s)·grey(x)             (per pixel; a no-op for one channel)

    Each is linear in x, so it works in any value range and clamps nothing. (kornia's
    enhance.adjust_* ops do not fit: they assume [0, 1] and clamp to it, and their brightness
    is additive.) As grey weights sum to 1, the three fold into one pass, with g = grey(x) and
    m = mean(g):

        x ← b·s·c·x + b·(1 − s)·c·g + b·(1 − c)·m
    """
    shape = (-1, 1, 1, 1)
    b, c, s = brightness.view(shape), contrast.view(shape), saturation.view(shape)
    if x.shape[1] == 1:
        s = torch.ones_like(s)  # one channel: its grey is itself
    g = _grey(x)
    m = g.mean(dim=(2, 3), keepdim=True)
    return torch.addcmul(torch.addcmul((b * (1 - c)) * m, g, b * (1 - s) * c), x, b * s * c)


class Augmenter:
    """The training images' augmentation: `augmenter(x, idx, key)`.

    x: float images [B, C, H, W] on any device; idx: int64 [B], each sample's position in the
    training part (best left on the CPU, where the sampler made it: a GPU idx is copied back);
    key: the epoch (targets 'live') or the view number e % K (targets 'views').
    Returns images of the same shape, dtype and device: random resized crop, then flip, then
    colour jitter, each sample's draw a function of (seed, idx[i], key) only.

    value_range: (low, high) of the data's values, e.g. (0, 255) for 8-bit images; when given,
    the results are clamped to it (brightening can pass the top); none: no clamping.
    """

    def __init__(self, spec: AugmentSpec, seed: int, value_range: tuple[float, float] | None = None):
        self.spec = spec
        self.seed = int(seed)
        self.value_range = value_range

    def key(self, epoch: int) -> int:
        """The draw of an epoch: its own under targets 'live'; view epoch % K under 'views'
        (the teachers labelled views 0..K-1 before training)."""
        return epoch % self.spec.views if self.spec.targets == "views" else epoch

    def params(self, idx: torch.Tensor, key: int, height: int, width: int) -> AugmentParams:
        """The draws for samples `idx` under `key`, for images of height × width (CPU tensors)."""
        if idx.dim() != 1:
            raise ValueError(f"idx must be one sample position per image [B], got shape {tuple(idx.shape)}")
        spec = self.spec
        u = uniforms(self.seed, idx, key, _N_DRAWS)
        boxes = None
        if spec.crop:
            boxes = torch.from_numpy(random_resized_crop_boxes(
                u[:, _CROP_SLOT:_FLIP_SLOT], height, width, tuple(spec.crop_scale), tuple(spec.crop_ratio)))
        flip = torch.from_numpy(u[:, _FLIP_SLOT] < 0.5) if spec.flip else torch.zeros(len(u), dtype=torch.bool)
        s = spec.color_jitter
        factors = torch.from_numpy(1.0 - s + 2.0 * s * u[:, _JITTER_SLOT:_JITTER_SLOT + 3])
        return AugmentParams(boxes, flip, factors[:, 0], factors[:, 1], factors[:, 2])

    def __call__(self, x: torch.Tensor, idx: torch.Tensor, key: int) -> torch.Tensor:
        if x.dim() != 4 or not x.is_floating_point():
            raise ValueError(f"augmentation takes float images [B, C, H, W], got {x.dtype} of shape "
                             f"{tuple(x.shape)}")
        if len(idx) != len(x):
            raise ValueError(f"{len(x)} images but {len(idx)} sample positions")
        height, width = x.shape[-2:]
        p = self.params(idx, key, height, width)
        work = torch.float64 if x.dtype == torch.float64 else torch.float32
        out = x.to(work)
        if p.boxes is not None:  # the flip rides along in the crop's sampling grid
            out = crop_resize_flip(out, p.boxes, p.flip)
        elif self.spec.flip:
            out = torch.where(p.flip.to(x.device).view(-1, 1, 1, 1), out.flip(-1), out)
        if self.spec.color_jitter > 0:
            out = color_jitter(out, *(f.to(x.device, work) for f in (p.brightness, p.contrast, p.saturation)))
        if self.value_range is not None:
            out = out.clamp(*self.value_range)
        return out.to(x.dtype)


def crop_resize_flip(x: torch.Tensor, boxes: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Each image's box (x0, y0, w, h) [B, 4] cut out and scaled back to the full size by
    bilinear sampling, mirrored left-right where `flip` [B] says so. Output pixel (i, j) samples
    (x0 + j·(w − 1)/(W − 1), y0 + i·(h − 1)/(H − 1)): the box corners as inclusive pixel
    positions, as kornia.geometry.transform.crop_and_resize takes them. The box is axis-aligned,
    so the sampling grid is one row of x and one column of y per image (computed on the CPU in
    float64, the same on every device) fed to torch's grid_sample; kornia's perspective warp
    gives the same images about five times slower on the CPU."""
    n, _, height, width = x.shape
    x0, y0, w, h = boxes.to(torch.float64).unbind(1)
    u = torch.linspace(0.0, 1.0, width, dtype=torch.float64) if width > 1 else torch.zeros(1, dtype=torch.float64)
    v = torch.linspace(0.0, 1.0, height, dtype=torch.float64) if height > 1 else torch.zeros(1, dtype=torch.float64)
    u = torch.where(flip[:, None], 1.0 - u, u)  # the flip rides along in the grid
    px = x0[:, None] + u * (w[:, None] - 1)  # source pixel positions [B, W] and [B, H]
    py = y0[:, None] + v * (h[:, None] - 1)
    gx = (2 * px / max(width - 1, 1) - 1).to(x.device, x.dtype)  # grid_sample's [-1, 1]
    gy = (2 * py / max(height - 1, 1) - 1).to(x.device, x.dtype)
    grid = torch.stack([gx[:, None, :].expand(n, height, width), gy[:, :, None].expand(n, height, width)], -1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)


def _bytes_words(n: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def cost_note(spec_augment: AugmentSpec | None, n_samples: int, n_teachers: int, n_classes: int,
              epochs: int) -> str:
    """What the chosen targets mode costs, in words for the run log: teacher passes and cache
    bytes (an upper bound: a teacher that knows fewer classes stores fewer)."""
    if spec_augment is None:
        return "no augmentation: the student sees the training images as they are"
    if n_teachers == 0:
        return "augmentation on; no teachers, so it costs only the image work per batch"
    if spec_augment.targets == "live":
        passes = n_teachers * epochs
        return (f"augmentation, targets live: the {n_teachers} teacher(s) run on every augmented "
                f"batch, {passes} teacher pass(es) over {n_samples} samples in all ({epochs} "
                f"epoch(s)); nothing is cached")
    k = spec_augment.views
    passes = n_teachers * k
    cache = n_samples * k * n_classes * 4 * n_teachers
    note = (f"augmentation, targets views: {k} augmented view(s) of each of {n_samples} samples, "
            f"labelled once by the {n_teachers} teacher(s): {passes} teacher pass(es) before "
            f"training, none per epoch (epoch e uses view e % {k}); cache up to "
            f"{_bytes_words(cache)} ({n_samples} × {k} × {n_classes} classes × 4 bytes × "
            f"{n_teachers} teacher(s))")
    if epochs < k:
        note += (f"; with {epochs} epoch(s) only {epochs} of the {k} views are used: "
                 "targets live would cost fewer teacher passes")
    return note
