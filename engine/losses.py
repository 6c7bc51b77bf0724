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


def multi_teacher_kd(student_logits: torch.Tensor, targets: list[tuple[torch.Tensor, torch.Tensor]],
                     student_indices: list[torch.Tensor], weights: list[float],
                     temperature: float) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Weighted mean of each teacher's KD term:  L_KD = Σ_t w_t L_KD(t) / Σ_t w_t.

    Uniform weights give the plain average of teachers (as in Hinton et al. 2015, §2 on
    ensembles); fixed weights let the user trust some experts more
    (You et al., "Learning from Multiple Teacher Networks", KDD 2017).
    Returns the total and each teacher's term (for the dashboard).
    """
    terms = [hinton_kd(student_logits, p, log_p, idx, temperature)
             for (p, log_p), idx in zip(targets, student_indices)]
    total = sum(w * term for w, term in zip(weights, terms)) / sum(weights)
    return total, terms


def distillation_loss(kd: torch.Tensor, student_logits: torch.Tensor, labels: torch.Tensor | None,
                      hard_label_weight: float) -> tuple[torch.Tensor, torch.Tensor | None]:
    """L = α · CE(z_s, y) + (1 − α) · L_KD  with labels;  L = L_KD  without (Hinton et al. 2015)."""
    if labels is None or hard_label_weight == 0.0:
        return kd, None
    ce = F.cross_entropy(student_logits.float(), labels)
    return hard_label_weight * ce + (1.0 - hard_label_weight) * kd, ce
