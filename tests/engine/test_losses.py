import torch

from engine.losses import distillation_loss, hinton_kd, multi_teacher_kd, soft_targets, teacher_targets


def test_kd_is_zero_when_the_student_matches_the_teacher_and_positive_otherwise():
    z = torch.randn(8, 5)
    p, lp = soft_targets(z, 3.0)
    everything = torch.arange(5)
    assert hinton_kd(z, p, lp, everything, 3.0).abs() < 1e-6
    assert hinton_kd(torch.randn(8, 5), p, lp, everything, 3.0) > 0


def test_kd_matches_the_formula_with_t_squared():
    zs, zt, T = torch.randn(4, 3), torch.randn(4, 3), 2.0
    p, lp = soft_targets(zt, T)
    q = torch.softmax(zs / T, 1)
    expected = (p * (p.log() - q.log())).sum(1).mean() * T * T
    assert torch.allclose(hinton_kd(zs, p, lp, torch.arange(3), T), expected, atol=1e-6)


def test_partial_teacher_only_touches_the_classes_it_knows():
    zs = torch.randn(6, 10, requires_grad=True)
    index = torch.tensor([7, 8, 9, 0])
    p, lp = soft_targets(torch.randn(6, 4), 4.0)
    hinton_kd(zs, p, lp, index, 4.0).backward()
    untouched = [c for c in range(10) if c not in index.tolist()]
    assert torch.all(zs.grad[:, untouched] == 0)
    assert torch.all(zs.grad[:, index].abs().sum(1) > 0)


def test_partial_teacher_compares_renormalised_student_distribution():
    # student logits over 10 classes; teacher knows classes 2 and 5 only
    zs = torch.randn(3, 10)
    index = torch.tensor([2, 5])
    p, lp = soft_targets(zs[:, index], 1.0)  # teacher agrees with the student on its subset
    assert hinton_kd(zs, p, lp, index, 1.0).abs() < 1e-6


def test_multi_teacher_weights_and_the_stacked_terms_equal_each_teachers_kd():
    zs = torch.randn(5, 4)
    za, zb = torch.randn(5, 4), torch.randn(5, 2)
    idx = [torch.arange(4), torch.tensor([3, 1])]  # teacher b knows classes 3 and 1, in that order
    p, lp, mask = teacher_targets([za, zb], idx, 4, 2.0)
    assert mask.tolist() == [[True] * 4, [False, True, False, True]]
    total, (ta, tb) = multi_teacher_kd(zs, p, lp, mask, torch.tensor([3.0, 1.0]), 2.0)
    a, b = soft_targets(za, 2.0), soft_targets(zb, 2.0)
    assert torch.allclose(ta, hinton_kd(zs, *a, idx[0], 2.0), atol=1e-6)  # the one-teacher formula
    assert torch.allclose(tb, hinton_kd(zs, *b, idx[1], 2.0), atol=1e-6)
    assert torch.allclose(total, (3 * ta + tb) / 4)
    uniform, _ = multi_teacher_kd(zs, p, lp, mask, torch.tensor([1.0, 1.0]), 2.0)
    assert torch.allclose(uniform, (ta + tb) / 2)


def test_stacked_kd_gradients_match_the_per_teacher_sum():
    zs = torch.randn(6, 5, requires_grad=True)
    outs = [torch.randn(6, 3), torch.randn(6, 5), torch.randn(6, 2)]
    idx = [torch.tensor([0, 2, 4]), torch.arange(5), torch.tensor([1, 3])]
    p, lp, mask = teacher_targets(outs, idx, 5, 3.0)
    multi_teacher_kd(zs, p, lp, mask, torch.ones(3), 3.0)[0].backward()
    stacked = zs.grad.clone()
    zs.grad = None
    (sum(hinton_kd(zs, *soft_targets(o, 3.0), i, 3.0) for o, i in zip(outs, idx, strict=True)) / 3).backward()
    assert torch.allclose(stacked, zs.grad, atol=1e-6)


def test_hard_label_weight_mixes_cross_entropy():
    zs, y = torch.randn(5, 3), torch.tensor([0, 1, 2, 0, 1])
    kd = torch.tensor(2.0)
    loss, ce = distillation_loss(kd, zs, y, 0.25)
    assert torch.allclose(ce, torch.nn.functional.cross_entropy(zs, y))
    assert torch.allclose(loss, 0.25 * ce + 0.75 * kd)
    loss, ce = distillation_loss(kd, zs, None, 0.25)
    assert ce is None and loss == kd
