"""A linear probe: how well a linear classifier on frozen features separates the classes, the
standard measure of self-supervised features (Chen et al. 2020, sec. 4; Alain & Bengio,
"Understanding intermediate layers using linear classifier probes", 2016)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def linear_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                 n_classes: int, steps: int = 300, weight_decay: float = 1e-4) -> float:
    """Multinomial logistic regression on standardised features (full batch, L-BFGS), fitted on
    (train_x, train_y); its accuracy on (test_x, test_y)."""
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    a, b = (train_x - mean) / std, (test_x - mean) / std
    w = torch.zeros(a.shape[1], n_classes, requires_grad=True)
    bias = torch.zeros(n_classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, bias], lr=1.0, max_iter=steps, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(a @ w + bias, train_y) + weight_decay * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        return float(((b @ w + bias).argmax(1) == test_y).float().mean())
