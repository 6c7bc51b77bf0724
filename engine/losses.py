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
                     mask: torch.Tensor, weights: torch.Tensor, temperature: float,
                     renormalize: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted mean of each teacher's KD term, per sample n:

        L_KD = mean_n Σ_t w_nt KL_nt / Σ_t w_nt,    KL_nt = T² · KL( σ(z_t/T) ‖ σ(z_s[S_t]/T) )

    computed for all K teachers at once on [B, K, C] tensors (the student's distribution
    renormalised over each S_t by a masked log-sum-exp), so the cost of a step hardly grows
    with the number of teachers. `weights` is [K] (the same for every sample) or [B, K].
    Uniform weights give the plain average of teachers (Hinton et al. 2015, §2 on ensembles);
    fixed weights let the user trust some experts more (You et al., "Learning from Multiple
    Teacher Networks", KDD 2017); per-sample weights come from engine/strategies/weightings.py.

    renormalize=True is the UHC loss for teachers with class subsets (Vongkulbhisal et al.,
    "Unifying Heterogeneous Classifiers with Distillation", CVPR 2019, the cross-entropy
    method): the teacher's distribution is matched with the student's renormalised to S_t.
    renormalize=False is the naive baseline: classes outside S_t count as probability 0, so the
    student is pushed away from every class a teacher does not know.
    `student_logits` may be [B, C], or [B, K, C] with one set of logits per teacher (task heads).
    Returns the total and each teacher's term [K] (for the dashboard).
    """
    s = student_logits.float() / temperature
    if s.dim() == 2:
        s = s.unsqueeze(1)  # [B, 1, C]: the same logits for every teacher
    lse = torch.logsumexp(s.masked_fill(~mask, float("-inf")) if renormalize else s, dim=2, keepdim=True)
    kl = (p * (log_p - (s - lse))).masked_fill(~mask, 0.0).sum(dim=2) * temperature**2  # [B, K]
    terms = kl.mean(dim=0)
    if weights.dim() == 1:  # the same weights for every sample: the mean of the weighted terms
        return (weights * terms).sum() / weights.sum(), terms
    return ((weights * kl).sum(dim=1) / weights.sum(dim=1).clamp_min(1e-12)).mean(), terms


def average_logits(logits: list[torch.Tensor]) -> torch.Tensor:
    """Ensemble distillation's target: z̄ = (1/K) Σ_t z_t, one teacher standing for all; its KD
    term is T² · KL(σ(z̄/T) ‖ σ(z_s/T)) (Lin, Kong, Stich, Jaggi, "Ensemble Distillation for
    Robust Model Fusion in Federated Learning" (FedDF), NeurIPS 2020). Teachers must output
    the student's classes in the student's order."""
    return torch.stack([z.float() for z in logits]).mean(dim=0)


def hint_loss(adapted: torch.Tensor, teacher_features: torch.Tensor) -> torch.Tensor:
    """FitNets' hint loss (Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015):

        L_HT = mean ‖ r(f_s(x)) − f_t(x) ‖² / Var(f_t)

    with r the learned adapter. Dividing by the teacher features' variance (a constant) keeps
    the term's scale the same whatever the layer's activation range."""
    target = teacher_features.float()
    return F.mse_loss(adapted.float(), target) / target.var().clamp_min(1e-8)


def confidence_loss(student_logits: torch.Tensor) -> torch.Tensor:
    """The auxiliary confidence loss of weak-to-strong generalisation (Burns et al., "Weak-to-
    Strong Generalization", OpenAI 2023, multi-class form): cross-entropy of the student on its
    own hardened predictions, CE(z_s, argmax z_s), which lets a strong student disagree with
    its weak teachers where it is confident. Mixed in as (1 − α)·L + α·L_conf."""
    return F.cross_entropy(student_logits.float(), student_logits.detach().argmax(dim=1))


def distillation_loss(kd: torch.Tensor | None, student_logits: torch.Tensor, labels: torch.Tensor | None,
                      hard_label_weight: float) -> tuple[torch.Tensor, torch.Tensor | None]:
    """L = α · CE(z_s, y) + (1 − α) · L_KD  with labels;  L = L_KD  without (Hinton et al. 2015);
    L = CE(z_s, y) with no teachers (kd None)."""
    if labels is None or hard_label_weight == 0.0:
        return kd, None
    ce = F.cross_entropy(student_logits.float(), labels)
    if kd is None:
        return ce, ce
    return hard_label_weight * ce + (1.0 - hard_label_weight) * kd, ce
