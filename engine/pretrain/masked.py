"""Masked prediction, the self-supervised method of students made of tokens (init.pretraining
method 'masked'): a share of each sample's tokens is hidden behind a learned mask embedding and
the trunk predicts what was there.

Text (transformer): BERT's masked language model (Devlin, Chang, Lee, Toutanova, "BERT",
NAACL 2019, §3.1): of the non-padding tokens, a share (15 %) is chosen; of those 80 % are
hidden (here: their embedding replaced by the mask embedding, as no tokenizer need have a
[MASK] id), 10 % replaced by a random token, 10 % left as they are; a linear decoder tied to
the input embedding predicts every chosen token's id.

Images (ViT): SimMIM (Xie et al., "SimMIM: A Simple Framework for Masked Image Modeling",
CVPR 2022): a share (60 %) of the patches' embeddings replaced by the mask embedding; a linear
decoder predicts each hidden patch's pixels (in the student's normalised units) from its final
token state.

The mask embedding and the decoder are dropped after the phase; only the student's trunk
(normalize, body) keeps what it learnt. Every draw depends on (seed, epoch, batch) alone, so a
resumed run (on as many ranks) hides the same tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine import dist
from engine.spec import SelfSupervisedSpec

TEXT_RATIO, PATCH_RATIO = 0.15, 0.6  # the papers' shares, when mask_ratio is not set
SEED_OFFSET = 104_729  # the masks' draws differ from every other draw of the run


def masked_token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the predicted ids at the chosen positions, L = −(1/M) Σ_m log p(t_m | x̃),
    over the M chosen tokens t_m of the corrupted text x̃ (BERT, Devlin et al. 2019, §3.1).
    logits [M, V], targets [M]."""
    return F.cross_entropy(logits.float(), targets)


def masked_patch_loss(predicted: torch.Tensor, target: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """SimMIM's reconstruction loss, the L1 distance on the hidden patches only,
    L = ‖y_M − x_M‖₁ / Ω(x_M), with Ω the number of pixel values hidden (Xie et al. 2022, eq. 1).
    predicted, target [N, P, D] (P patches of D pixel values); hidden [N, P] bool."""
    weight = hidden[..., None].float()  # float32 sums: in fp16 the count passes 65,504 at once
    values = hidden.sum().float() * predicted.shape[-1]
    return ((predicted.float() - target.float()).abs() * weight).sum() / values.clamp_min(1.0)


def patches(x: torch.Tensor, side: int) -> torch.Tensor:
    """Images [N, C, H, W] → their patches [N, P, C·side·side], rows first (the ViT's token order)."""
    n, c, _, _ = x.shape
    return F.unfold(x, side, stride=side).transpose(1, 2).reshape(n, -1, c * side * side)


class MaskedPrediction(nn.Module):
    """The student and what masked prediction adds to it (`mask_token`, the decoder); forward(x,
    positions, epoch, batch) gives the batch's loss (positions unused: the masks are drawn per
    batch)."""

    def __init__(self, student: nn.Module, cfg: SelfSupervisedSpec, seed: int):
        super().__init__()
        self.student, self.seed = student, int(seed)
        body = student.body
        self.text = hasattr(body, "tokens")
        dim = body.norm.normalized_shape[0]
        self.mask_token = nn.Parameter(torch.randn(dim) * 0.02)
        if self.text:
            self.ratio = cfg.mask_ratio or TEXT_RATIO
            self.decoder_bias = nn.Parameter(torch.zeros(body.tokens.num_embeddings))
        else:
            self.ratio = cfg.mask_ratio or PATCH_RATIO
            proj = body.embed.proj
            self.side = proj.kernel_size[0]
            self.decoder = nn.Linear(dim, proj.in_channels * self.side * self.side)

    def generator(self, epoch: int, batch: int) -> torch.Generator:
        """The batch's draws: another stream on each rank of a torchrun (each holds other samples)."""
        key = (self.seed + SEED_OFFSET, epoch, batch, dist.rank())
        return torch.Generator().manual_seed(hash(key) & (2**63 - 1))

    def forward(self, x: torch.Tensor, positions: torch.Tensor, epoch: int, batch: int) -> torch.Tensor:
        g = self.generator(epoch, batch)
        return self._text_loss(x, g) if self.text else self._image_loss(x, g)

    def _text_loss(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        body = self.student.body
        ids = self.student.normalize(x)
        real = ids != body.pad_id
        if body.pooling == "cls":  # the first token is the one the head reads: never hidden
            real[:, 0] = False
        draw = torch.rand(ids.shape, generator=g).to(ids.device)
        chosen = (draw < self.ratio) & real
        if not chosen.any():  # a batch of very short texts: hide one real token of each
            chosen = real & (torch.cumsum(real.long(), dim=1) == 1)
        how = torch.rand(ids.shape, generator=g).to(ids.device)  # 80 % hidden, 10 % random, 10 % kept
        vocab = body.tokens.num_embeddings
        random_ids = torch.randint(vocab - 1, ids.shape, generator=g).to(ids.device)
        random_ids = random_ids + (random_ids >= body.pad_id).long()  # any id but padding's
        corrupted = torch.where(chosen & (how >= 0.8) & (how < 0.9), random_ids, ids)
        states, _ = body.token_states(corrupted, chosen & (how < 0.8), self.mask_token)
        if not chosen.any():  # nothing but padding (or class tokens): no loss, every parameter in the graph
            return (states.sum() + self.decoder_bias.sum()) * 0.0
        logits = states[chosen] @ body.tokens.weight.T + self.decoder_bias  # tied to the input embedding
        return masked_token_loss(logits, ids[chosen])

    def _image_loss(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        body = self.student.body
        images = self.student.normalize(x)
        target = patches(images, self.side)
        n, p = target.shape[:2]
        order = torch.rand(n, p, generator=g).argsort(dim=1)  # a random share of each image's patches
        hidden = torch.zeros(n, p, dtype=torch.bool)
        hidden.scatter_(1, order[:, :max(1, round(self.ratio * p))], True)
        hidden = hidden.to(images.device)
        states = body.token_states(images, hidden, self.mask_token)
        states = states[:, states.shape[1] - p:]  # the patches' tokens (after the class token)
        return masked_patch_loss(self.decoder(states), target, hidden)
