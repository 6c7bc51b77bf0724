"""Two random views of each training sample for contrastive pretraining.

Images [B, C, H, W]: a random resized crop, a flip and a brightness/contrast/saturation change
(engine/augment.py's Augmenter: each sample's draw a function of the seed, the sample and the
key alone). Tables and other flat samples [B, F]: each view sets a random share of the
features to their mean and adds Gaussian noise, both in the standardised units of the
student's own normalisation (SCARF-style corruption: Bahri et al., "SCARF", ICLR 2022, with
VIME's masking: Yoon et al., NeurIPS 2020). Draws depend on (seed, epoch, batch, view) only, so
a resumed run makes the same views."""

from __future__ import annotations

import torch

from engine.augment import Augmenter
from engine.models.normalize import Normalize
from engine.spec import AugmentSpec, SelfSupervisedSpec

SEED_OFFSET = 7_919  # the pretraining's draws differ from those of training's augmentation


class Views:
    def __init__(self, cfg: SelfSupervisedSpec, sample_shape: tuple[int, ...], seed: int,
                 normalize: Normalize, value_range: tuple[float, float] | None = None):
        self.cfg, self.seed, self.normalize = cfg, int(seed), normalize
        self.images = len(sample_shape) == 3
        self.augment = Augmenter(AugmentSpec(crop=True, crop_scale=list(cfg.crop_scale), flip=cfg.flip,
                                             color_jitter=cfg.color_jitter), self.seed + SEED_OFFSET,
                                 value_range) if self.images else None

    def __call__(self, x: torch.Tensor, idx: torch.Tensor, epoch: int, batch: int, view: int) -> torch.Tensor:
        if self.augment is not None:
            return self.augment(x, idx, 2 * epoch + view)
        g = torch.Generator().manual_seed(hash((self.seed + SEED_OFFSET, epoch, batch, view)) & (2**63 - 1))
        masked = torch.rand(x.shape, generator=g) < self.cfg.feature_mask
        noise = torch.randn(x.shape, generator=g) * self.cfg.feature_noise
        mean, std = self.normalize.mean, self.normalize.std
        out = torch.where(masked.to(x.device), mean.expand_as(x), x)
        return out + noise.to(x.device, x.dtype) * std
