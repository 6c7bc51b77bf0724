"""A vision transformer for images [C, H, W] (spec: `VitArch`).

Dosovitskiy et al., "An Image is Worth 16x16 Words" (ICLR 2021): the image is cut into
patch × patch squares, each embedded as one token (a convolution with kernel = stride =
patch); a class token is put in front when `pooling` is cls; learned position embeddings are
added; pre-norm transformer blocks (engine/models/attention.py), a final LayerNorm, and the
class token (or the mean of the tokens) goes to the head.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.arch_sizes import mlp_width
from engine.errors import InputError
from engine.models.attention import Block, BlockStudent, split_widths
from engine.models.normalize import Normalize
from engine.models.registry import register
from engine.spec import VitArch


def patch_grid(sample_shape: tuple[int, ...], patch: int, where: str = "student.architecture") -> tuple[int, int]:
    """(rows, columns) of patches; InputError when the patch does not divide the image."""
    _, h, w = sample_shape
    if h % patch or w % patch:
        fits = sorted(p for p in range(1, min(h, w) + 1) if h % p == 0 and w % p == 0)
        raise InputError.one(f"{where}.patch", f"the patch side {patch} does not divide the "
                             f"images' {h}×{w} pixels", f"set patch to one that divides both sides: "
                             f"{', '.join(map(str, fits[:12]))}")
    return h // patch, w // patch


class PatchEmbed(nn.Module):
    """Patches → tokens, the class token in front (`cls`, when pooling is cls), plus `pos`."""

    def __init__(self, channels: int, dim: int, patch: int, tokens: int, cls: bool, dropout: float):
        super().__init__()
        self.proj = nn.Conv2d(channels, dim, patch, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim)) if cls else None
        self.pos = nn.Parameter(torch.randn(1, tokens + int(cls), dim) * 0.02)
        self.drop = nn.Dropout(dropout) if dropout else nn.Identity()

    def forward(self, x: torch.Tensor, hidden: torch.Tensor | None = None,
                mask_token: torch.Tensor | None = None) -> torch.Tensor:
        """With `hidden` [N, tokens] (bool), those patches' embeddings are replaced by
        `mask_token` [dim] before the positions are added (SimMIM, engine/pretrain/masked.py)."""
        x = self.proj(x).flatten(2).transpose(1, 2)  # [N, tokens, dim]
        if hidden is not None:
            x = torch.where(hidden[..., None], mask_token.to(x.dtype), x)
        if self.cls is not None:
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
        return self.drop(x + self.pos)


class VitBody(nn.Module):
    """`embed`, `blocks` (`body.blocks.0` …), `norm`; the output: the pooled features [N, dim]."""

    def __init__(self, embed: PatchEmbed, blocks: list[Block], dim: int, pooling: str):
        super().__init__()
        self.embed = embed
        self.blocks = nn.ModuleList(blocks)
        self.norm = nn.LayerNorm(dim)
        self.pooling = pooling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.token_states(x)
        return x[:, 0] if self.pooling == "cls" else x.mean(dim=1)

    def token_states(self, x: torch.Tensor, hidden: torch.Tensor | None = None,
                     mask_token: torch.Tensor | None = None) -> torch.Tensor:
        """Every token's final state [N, T, dim], the class token first when pooling is cls;
        `hidden`, `mask_token`: as PatchEmbed's."""
        x = self.embed(x, hidden, mask_token)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


@register("vit")
class ViT(BlockStudent):
    """`widths` (after structured pruning): the heads kept in each block, then each block's
    MLP width — the order of `hidden_widths()`."""

    growable = VitArch.growable

    def __init__(self, sample_shape: tuple[int, ...], n_classes: int, arch: VitArch,
                 widths: list[int] | None = None):
        super().__init__(sample_shape, n_classes, arch)
        rows, cols = patch_grid(sample_shape, arch.patch)
        self.normalize = Normalize(sample_shape)
        head_dim = arch.dim // arch.heads
        heads, hidden = split_widths(widths, arch.depth, arch.heads, mlp_width(arch.dim, arch.mlp_ratio))
        embed = PatchEmbed(sample_shape[0], arch.dim, arch.patch, rows * cols, arch.pooling == "cls", arch.dropout)
        blocks = [Block(arch.dim, h, head_dim, m, arch.dropout) for h, m in zip(heads, hidden)]
        self.body = VitBody(embed, blocks, arch.dim, arch.pooling)
        self.head = nn.Linear(arch.dim, n_classes)

    def hint_layers(self) -> list[str]:
        return ["body.embed"] + [f"body.blocks.{i}" for i in range(len(self.body.blocks))] + ["body.norm", "body"]
