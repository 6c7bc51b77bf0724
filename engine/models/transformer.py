"""A transformer encoder over token ids [L] (spec: `TransformerArch`).

Vaswani et al., 2017; the encoder of BERT (Devlin et al., 2019) with pre-norm blocks: token
and position embeddings, the blocks of engine/models/attention.py, a final LayerNorm, then
the mean of the non-padding tokens (or the first token) goes to the head. Padding (`pad_id`)
is masked out of attention (a boolean mask on the keys) and out of the mean, so the same
text padded more gives the same logits.

The engine feeds every sample as float32; ids are exact below 2^24 (vocab_size is at most
2^22). `normalize` is `TokenIds`: it casts them to integers in the graph, and its `fit`
refuses data that are not token ids, before training.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from engine.arch_sizes import mlp_width
from engine.errors import InputError
from engine.models.attention import Block, BlockStudent, split_widths
from engine.models.normalize import Normalize
from engine.models.registry import register
from engine.spec import TransformerArch

WHERE = "student.architecture"


def token_id_problem(x: np.ndarray, vocab_size: int, where: str = WHERE) -> InputError | None:
    """Why `x` (float samples) are not token ids below `vocab_size`, or None."""
    finite = np.isfinite(x)
    if not finite.all():
        return InputError.one("data", f"the samples hold {int((~finite).sum())} values that are not "
                              "numbers (NaN or infinite); a transformer reads token ids",
                              "give whole-number token ids, padded with pad_id")
    whole = np.equal(np.floor(x), x)
    if not whole.all():
        bad = float(x[~whole].flat[0])
        return InputError.one("data", f"the samples are not token ids: {int((~whole).sum())} values "
                              f"are not whole numbers (e.g. {bad:g}); a transformer reads token ids [L]",
                              "give whole-number token ids (a tokenizer's output), or use another "
                              "architecture (mlp) for real-valued features")
    if x.size and x.min() < 0:
        return InputError.one("data", f"the samples hold negative token ids (smallest {int(x.min())})",
                              "give token ids from 0 to vocab_size − 1")
    if x.size and x.max() >= vocab_size:
        largest = int(x.max())
        return InputError.one(f"{where}.vocab_size", f"the data holds token id {largest}, and the "
                              f"embedding holds ids below vocab_size {vocab_size}",
                              f"set student.architecture.vocab_size to at least {largest + 1}, or "
                              "give data tokenised with a smaller vocabulary")
    return None


class TokenIds(Normalize):
    """The transformer's input step: float32 ids → int64 (no statistics to fit); `fit` checks
    that the training samples are token ids below vocab_size."""

    def __init__(self, vocab_size: int):
        nn.Module.__init__(self)  # no mean/std buffers: nothing to normalise
        self.vocab_size = vocab_size

    def fit(self, x: np.ndarray) -> None:
        problem = token_id_problem(np.asarray(x), self.vocab_size)
        if problem is not None:
            raise problem

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.long()


class TokenBody(nn.Module):
    """`tokens` and `pos` (embeddings), `blocks` (`body.blocks.0` …), `norm`; the output: the
    pooled features [N, dim]."""

    def __init__(self, arch: TransformerArch, blocks: list[Block]):
        super().__init__()
        self.tokens = nn.Embedding(arch.vocab_size, arch.dim)
        self.pos = nn.Embedding(arch.max_length, arch.dim)
        self.drop = nn.Dropout(arch.dropout) if arch.dropout else nn.Identity()
        self.blocks = nn.ModuleList(blocks)
        self.norm = nn.LayerNorm(arch.dim)
        self.pad_id, self.pooling = arch.pad_id, arch.pooling
        nn.init.normal_(self.tokens.weight, std=0.02)
        nn.init.normal_(self.pos.weight, std=0.02)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x, keep = self.token_states(ids)
        if self.pooling == "cls":
            return x[:, 0]
        weight = keep.to(x.dtype)[:, :, None]
        return (x * weight).sum(dim=1) / weight.sum(dim=1)

    def token_states(self, ids: torch.Tensor, hidden: torch.Tensor | None = None,
                     mask_token: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Every token's final state [N, L, dim] and which tokens are not padding [N, L]. With
        `hidden` [N, L] (bool), those tokens' embeddings are replaced by `mask_token` [dim]
        (masked-token pretraining, engine/pretrain/masked.py)."""
        keep = ids != self.pad_id  # [N, L]
        keep = keep | ~keep.any(dim=1, keepdim=True)  # all padding: attend to all (no NaN)
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.tokens(ids)
        if hidden is not None:
            x = torch.where(hidden[..., None], mask_token.to(x.dtype), x)
        x = self.drop(x + self.pos(positions)[None])
        mask = keep[:, None, None, :]  # keys, broadcast over heads and queries
        for block in self.blocks:
            x = block(x, mask)
        return self.norm(x), keep


@register("transformer")
class Transformer(BlockStudent):
    """`widths` (after structured pruning): the heads kept in each block, then each block's
    MLP width — the order of `hidden_widths()`."""

    growable = TransformerArch.growable

    def __init__(self, sample_shape: tuple[int, ...], n_classes: int, arch: TransformerArch,
                 widths: list[int] | None = None):
        super().__init__(sample_shape, n_classes, arch)
        length = sample_shape[0]
        if length > arch.max_length:
            raise InputError.one(f"{WHERE}.max_length", f"the samples are {length} tokens long and "
                                 f"max_length is {arch.max_length}",
                                 f"set student.architecture.max_length to at least {length}, or "
                                 "cut the sequences shorter")
        self.normalize = TokenIds(arch.vocab_size)
        heads, hidden = split_widths(widths, arch.depth, arch.heads, mlp_width(arch.dim, arch.mlp_ratio))
        blocks = [Block(arch.dim, h, arch.dim // arch.heads, m, arch.dropout) for h, m in zip(heads, hidden)]
        self.body = TokenBody(arch, blocks)
        self.head = nn.Linear(arch.dim, n_classes)

    @staticmethod
    def check_samples(arch: TransformerArch, parts: list[np.ndarray]) -> InputError | None:
        """Preflight: every split's samples are token ids below vocab_size."""
        for x in parts:
            problem = token_id_problem(x, arch.vocab_size)
            if problem is not None:
                return problem
        return None

    def hint_layers(self) -> list[str]:
        return [f"body.blocks.{i}" for i in range(len(self.body.blocks))] + ["body.norm", "body"]
