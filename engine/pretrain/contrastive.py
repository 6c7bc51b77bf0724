"""SimCLR's contrastive loss (NT-Xent) and the projection head it is computed through."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """The normalised temperature-scaled cross-entropy of two views' projections [B, D]:

        u_i = z_i / ‖z_i‖,   s_ij = u_i·u_j / τ   over the 2B views (z1 then z2),
        ℓ(i, j) = −log( exp(s_ij) / Σ_{k ≠ i} exp(s_ik) ),   j the other view of i's sample,
        L = (1 / 2B) Σ_{pairs (i, j)} [ ℓ(i, j) + ℓ(j, i) ]

    Each view must pick out its sample's other view among the 2B − 1 others (the rest of the
    batch are the negatives). Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for
    Contrastive Learning of Visual Representations", ICML 2020 (arXiv:2002.05709), eq. 1.
    Its lowest value, both views identical and every other view orthogonal, is
    −log(e^{1/τ} / (e^{1/τ} + 2B − 2)).
    """
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(f"two views' projections of one shape [B, D], got {tuple(z1.shape)} and {tuple(z2.shape)}")
    b = z1.shape[0]
    u = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    s = u @ u.T / temperature
    s = s.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=s.device), float("-inf"))  # k ≠ i
    other = torch.cat([torch.arange(b, 2 * b), torch.arange(b)]).to(s.device)
    return F.cross_entropy(s, other)


class Projector(nn.Module):
    """SimCLR's projection head g(h) = W₂ ReLU(BN(W₁ h)): the loss sees g of the trunk's
    features h, and g is dropped after pretraining (the features before it transfer better,
    Chen et al. 2020, sec. 4.2)."""

    def __init__(self, width_in: int, width_out: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or max(width_in, width_out)
        self.net = nn.Sequential(nn.Linear(width_in, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                                 nn.Linear(hidden, width_out))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h.flatten(1))
