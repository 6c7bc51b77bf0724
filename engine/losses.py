"""Distillation losses. Each documents its formula and cites its paper.

Notation: z_s student logits over the student's C classes; z_t logits of teacher t over its own
k_t classes; S_t ⊆ {1..C} the student classes teacher t's outputs map to (in output order);
T the temperature; σ the softmax.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_targets(teacher_logits: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """σ(z_t / T) and its log, computed once per sample: teachers are frozen."""
    log_p = F.log_softmax(teacher_logits.float() / temperature, dim=1)
    return log_p.exp(), log_p


def hinton_kd(student_logits: torch.Tensor, p_teacher: torch.Tensor, log_p_teacher: torch.Tensor,
              student_index: torch.Tensor, temperature: float) -> torch.Tensor:
    """Knowledge distillation from one teacher, restricted to the classes it knows.

        L_KD(t) = T² · mean_batch KL( σ(z_t/T) ‖ σ(z_s[S_t]/T) )

    Hinton, Vinyals, Dean, "Distilling the Knowledge in a Neural Network", 2015
    (arXiv:1503.02531); T² keeps gradient magnitudes comparable across temperatures.
    A teacher that knows only a subset S_t of the classes is matched against the student's
    distribution renormalised over S_t (the simple rule for partial label spaces; for the
    full treatment see Vongkulbhisal et al., "Unifying Heterogeneous Classifiers with
    Distillation", CVPR 2019). When S_t is all classes this is exactly Hinton KD.
    """
    log_q = F.log_softmax(student_logits.index_select(1, student_index).float() / temperature, dim=1)
    kl = (p_teacher * (log_p_teacher - log_q)).sum(dim=1)
    return kl.mean() * temperature**2


def teacher_targets(outputs: list[torch.Tensor], student_indices: list[torch.Tensor], n_classes: int,
                    temperature: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All teachers' soft targets in the student's class space, stacked: p and log p shaped
    [N, K, C] (zero outside each teacher's classes S_t) and the masks of S_t, [K, C]."""
    n, k = outputs[0].shape[0], len(outputs)
    device = outputs[0].device
    p = torch.zeros(n, k, n_classes, device=device)
    log_p = torch.zeros(n, k, n_classes, device=device)
    mask = torch.zeros(k, n_classes, dtype=torch.bool, device=device)
    for t, (z, idx) in enumerate(zip(outputs, student_indices)):
        pt, lpt = soft_targets(z, temperature)
        p[:, t].index_copy_(1, idx, pt)
        log_p[:, t].index_copy_(1, idx, lpt)
        mask[t, idx] = True
    return p, log_p, mask


def multi_teacher_kd(student_logits: torch.Tensor, p: torch.Tensor, log_p: torch.Tensor,
                     mask: torch.Tensor, weights: torch.Tensor,
                     temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted mean of each teacher's KD term:  L_KD = Σ_t w_t L_KD(t) / Σ_t w_t,

        L_KD(t) = T² · mean_batch KL( σ(z_t/T) ‖ σ(z_s[S_t]/T) )   (see `hinton_kd`)

    computed for all K teachers at once on [B, K, C] tensors (the student's distribution
    renormalised over each S_t by a masked log-sum-exp), so the cost of a step hardly grows
    with the number of teachers. Uniform weights give the plain average of teachers (Hinton
    et al. 2015, §2 on ensembles); fixed weights let the user trust some experts more
    (You et al., "Learning from Multiple Teacher Networks", KDD 2017).
    Returns the total and each teacher's term [K] (for the dashboard).
    """
    s = student_logits.float().unsqueeze(1) / temperature  # [B, 1, C]
    lse = torch.logsumexp(s.masked_fill(~mask, float("-inf")), dim=2, keepdim=True)  # [B, K, 1]
    kl = (p * (log_p - (s - lse))).masked_fill(~mask, 0.0).sum(dim=2)  # [B, K]
    terms = kl.mean(dim=0) * temperature**2
    return (weights * terms).sum() / weights.sum(), terms


def distillation_loss(kd: torch.Tensor, student_logits: torch.Tensor, labels: torch.Tensor | None,
                      hard_label_weight: float) -> tuple[torch.Tensor, torch.Tensor | None]:
    """L = α · CE(z_s, y) + (1 − α) · L_KD  with labels;  L = L_KD  without (Hinton et al. 2015)."""
    if labels is None or hard_label_weight == 0.0:
        return kd, None
    ce = F.cross_entropy(student_logits.float(), labels)
    return hard_label_weight * ce + (1.0 - hard_label_weight) * kd, ce
