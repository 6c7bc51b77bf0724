"""The pre-norm transformer block the ViT and the token transformer share, and its pruning.

Block (Vaswani et al., 2017, with the norm before each sublayer as in ViT / GPT-2):
x = x + proj(attention(LayerNorm(x))); x = x + fc2(GELU(fc1(LayerNorm(x)))). Attention runs
through `torch.nn.functional.scaled_dot_product_attention`. A block's head count and MLP
width are its own, so structured pruning can remove whole heads and hidden units of each
block: q/k/v are one Linear dim → 3·heads·head_dim (rows ordered q, k, v, then head, then
the head's values), the projection heads·head_dim → dim.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from engine.arch_sizes import mlp_width
from engine.errors import InputError
from engine.models.contract import Student
from engine.models.pruning import Cut, check_keep

__all__ = ["Attention", "Block", "block_widths", "block_cuts", "mlp_width", "split_widths", "unit_scores"]


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, head_dim: int, dropout: float):
        super().__init__()
        self.heads, self.head_dim, self.dropout = heads, head_dim, dropout
        self.qkv = nn.Linear(dim, 3 * heads * head_dim)
        self.proj = nn.Linear(heads * head_dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x [N, T, dim]; mask: boolean [N, 1, 1, T], True where a key may be attended to."""
        n, t = x.shape[0], x.shape[1]
        qkv = self.qkv(x).reshape(n, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=mask,
                                             dropout_p=self.dropout if self.training else 0.0)
        return self.proj(out.transpose(1, 2).reshape(n, t, self.heads * self.head_dim))


class Block(nn.Module):
    """One pre-norm transformer block (`norm1`, `attn`, `norm2`, `fc1`, `fc2`)."""

    def __init__(self, dim: int, heads: int, head_dim: int, hidden: int, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, head_dim, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout) if dropout else nn.Identity()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x), mask))
        return x + self.drop(self.fc2(self.drop(self.act(self.fc1(self.norm2(x))))))


def split_widths(widths: list[int] | None, depth: int, heads: int, hidden: int,
                 ) -> tuple[list[int], list[int]]:
    """(heads per block, MLP width per block) from `hidden_widths`' order: the heads kept in
    every block, then the MLP width of every block."""
    if widths is None:
        return [heads] * depth, [hidden] * depth
    if len(widths) != 2 * depth or min(widths) < 1:
        shown = f"{widths[:8]}{' …' if len(widths) > 8 else ''}"
        raise InputError.one("student.architecture", f"the hidden widths {shown} do not fit {depth} "
                             f"transformer blocks: they take {2 * depth} widths (the heads kept in each "
                             "block, then each block's MLP width), each at least 1",
                             "give weights a run saved with this architecture (its depth), or remove "
                             "'widths' from the file's metadata", "corrupt_model")
    return list(widths[:depth]), list(widths[depth:])


def block_widths(blocks) -> list[int]:
    return [b.attn.heads for b in blocks] + [b.fc1.out_features for b in blocks]


def unit_scores(blocks) -> list[torch.Tensor]:
    """L1 norm of each unit's weights, in `hidden_widths` order: per head, its q/k/v rows and
    its projection columns; per MLP unit, its fc1 row and fc2 column."""
    heads, mlp = [], []
    for b in blocks:
        a = b.attn
        qkv = a.qkv.weight.detach().abs().reshape(3, a.heads, a.head_dim, -1).sum(dim=(0, 2, 3))
        proj = a.proj.weight.detach().abs().reshape(-1, a.heads, a.head_dim).sum(dim=(0, 2))
        heads.append(qkv + proj)
        mlp.append(b.fc1.weight.detach().abs().sum(1) + b.fc2.weight.detach().abs().sum(0))
    return heads + mlp


def block_cuts(blocks, prefix: str, keep: list[torch.Tensor]) -> dict[str, Cut]:
    """The cuts (engine/models/pruning.py) that keep, in each block (named `prefix` + index),
    the heads `keep[:depth]` names (their q/k/v rows, their projection columns) and the MLP
    units `keep[depth:]` names (fc1 rows, fc2 columns); the residual stream keeps its width."""
    depth = len(blocks)
    cuts: dict[str, Cut] = {}
    for i, b in enumerate(blocks):
        p, a = f"{prefix}{i}.", b.attn
        heads, units = keep[i].to(torch.long).cpu(), keep[depth + i].to(torch.long).cpu()
        values = torch.arange(a.head_dim)
        rows = ((torch.arange(3)[:, None, None] * a.heads + heads[None, :, None]) * a.head_dim
                + values[None, None, :]).flatten()
        cols = (heads[:, None] * a.head_dim + values[None, :]).flatten()
        cuts[p + "attn.qkv"] = (rows, None)
        cuts[p + "attn.proj"] = (None, cols)
        cuts[p + "fc1"] = (units, None)
        cuts[p + "fc2"] = (None, units)
    return cuts


class BlockStudent(Student):
    """What the ViT and the transformer share: their blocks (`body.blocks`) are what activation
    checkpointing recomputes and structured pruning cuts (heads and MLP units)."""

    structured_pruning = True
    body: nn.Module

    def blocks(self) -> list[nn.Module]:
        return list(self.body.blocks)

    def hidden_widths(self) -> list[int]:
        """The heads kept in each block, then the MLP hidden width of each block."""
        return block_widths(self.body.blocks)

    def unit_scores(self) -> list[torch.Tensor]:
        return unit_scores(self.body.blocks)

    @torch.no_grad()
    def keep_units(self, keep: list[torch.Tensor]) -> BlockStudent:
        """A smaller copy holding the heads and MLP units `keep` names (`hidden_widths` order)."""
        check_keep(keep, self.hidden_widths())
        return self._cut(keep, block_cuts(self.body.blocks, "body.blocks.", keep))
