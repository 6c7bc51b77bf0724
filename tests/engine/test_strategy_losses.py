"""Each strategy's formula on values worked out by hand (see the docstrings in engine/losses.py,
engine/strategies/ and engine/growth.py)."""

import math

import pytest
import torch

from engine import growth
from engine.losses import average_logits, confidence_loss, hint_loss, multi_teacher_kd, teacher_targets
from engine.models import build_model
from engine.spec import MlpArch, PipelineSpec
from engine.strategies.calibration import Calibrator
from engine.strategies.weightings import sample_weights

LN3 = math.log(3.0)
# teacher a knows classes 0, 1 with p = (0.25, 0.75); teacher b knows 1, 2, 3 with p uniform
A, B = torch.tensor([[0.0, LN3]]), torch.tensor([[0.0, 0.0, 0.0]])
IDX = [torch.tensor([0, 1]), torch.tensor([1, 2, 3])]


def test_confidence_weights_are_each_teachers_top_probability():
    w = sample_weights("confidence", [A, B], IDX)
    assert w.flatten().tolist() == pytest.approx([0.75, 1 / 3])


def test_entropy_weights_are_one_minus_the_scaled_entropy():
    h_a = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75)) / math.log(2)  # 0.8113
    w = sample_weights("entropy", [A, B], IDX)
    assert w.flatten().tolist() == pytest.approx([1 - h_a + 1e-3, 1e-3], abs=1e-6)


def test_selective_learning_keeps_only_the_least_ambiguous_teacher():
    assert sample_weights("selective", [A, B], IDX).tolist() == [[1.0, 0.0]]
    assert sample_weights("selective", [B[:, :2] + 0, A], [IDX[0], IDX[0]]).tolist() == [[0.0, 1.0]]


def test_label_aware_weights_follow_ca_mkd():
    # label 1, known to both: L_a = -ln 0.75 = 0.2877, L_b = ln 3 = 1.0986;
    # softmax(L) = (1.3333, 3) / 4.3333 = (0.3077, 0.6923); w = (1 - softmax) / (K - 1)
    w = sample_weights("label_aware", [A, B], IDX, torch.tensor([1]))
    assert w.flatten().tolist() == pytest.approx([0.6923, 0.3077], abs=1e-4)
    # label 0: only a knows it, so it alone teaches; label 3: only b
    w = sample_weights("label_aware", [A.repeat(2, 1), B.repeat(2, 1)], IDX, torch.tensor([0, 3]))
    assert w.tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_uhc_renormalises_where_zero_fill_penalises_unknown_classes():
    student = torch.zeros(1, 4)  # uniform over 4 classes
    p, lp, mask = teacher_targets([torch.zeros(1, 2)], [torch.tensor([0, 1])], 4, 1.0)  # (0.5, 0.5)
    uhc, _ = multi_teacher_kd(student, p, lp, mask, torch.ones(1), 1.0, renormalize=True)
    naive, _ = multi_teacher_kd(student, p, lp, mask, torch.ones(1), 1.0, renormalize=False)
    assert uhc.item() == pytest.approx(0.0, abs=1e-6)  # renormalised over {0, 1}: (0.5, 0.5)
    assert naive.item() == pytest.approx(math.log(2.0), abs=1e-6)  # Σ 0.5 ln(0.5 / 0.25)


def test_per_sample_weights_mix_each_samples_terms():
    student = torch.zeros(2, 2)
    p, lp, mask = teacher_targets([torch.tensor([[0.0, LN3]] * 2), torch.zeros(2, 2)],
                                  [torch.tensor([0, 1])] * 2, 2, 1.0)
    kl_a = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)  # 0.1308; teacher b: 0
    total, terms = multi_teacher_kd(student, p, lp, mask, torch.tensor([[1.0, 0.0], [1.0, 3.0]]), 1.0)
    assert terms.tolist() == pytest.approx([kl_a, 0.0], abs=1e-6)
    assert total.item() == pytest.approx((kl_a + kl_a / 4) / 2, abs=1e-6)


def test_task_head_logits_are_matched_per_teacher():
    p, lp, mask = teacher_targets([torch.zeros(1, 2), torch.zeros(1, 2)], [torch.tensor([0, 1])] * 2, 2, 1.0)
    heads = torch.tensor([[[0.0, 0.0], [0.0, LN3]]])  # [B, K, C]: head b is off
    _, terms = multi_teacher_kd(heads, p, lp, mask, torch.ones(2), 1.0)
    kl_b = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)  # 0.1438
    assert terms.tolist() == pytest.approx([0.0, kl_b], abs=1e-6)


def test_average_logits_hint_and_confidence_losses():
    assert average_logits([torch.tensor([[1.0, 3.0]]), torch.tensor([[3.0, 1.0]])]).tolist() == [[2.0, 2.0]]
    target = torch.tensor([[0.0, 0.0], [2.0, 4.0]])  # variance (0 + 0 + 4 + 16)/4 - 1.5² ... unbiased: 11/3
    adapted = target + 1.0
    assert hint_loss(adapted, target).item() == pytest.approx(1.0 / (11 / 3), rel=1e-5)
    assert confidence_loss(torch.tensor([[2.0, 0.0]])).item() == pytest.approx(math.log(1 + math.exp(-2)), rel=1e-5)


def test_calibrator_is_a_mixture_of_the_teachers_with_a_fitted_gate():
    cal = Calibrator([torch.tensor([0, 1]), torch.tensor([2])], 3)
    merged = cal([torch.tensor([[1.0, 2.0]]), torch.tensor([[5.0]])])
    # before fitting, the gate is uniform: log(½ · σ(1, 2)) and log(½ · 1)
    pa = torch.softmax(torch.tensor([1.0, 2.0]), 0)
    assert merged.exp().flatten().tolist() == pytest.approx([pa[0].item() / 2, pa[1].item() / 2, 0.5], abs=1e-6)
    # overlapping: class 1 is known by both: log(½ p_a(1) + ½ p_b(1))
    both = Calibrator([torch.tensor([0, 1]), torch.tensor([1, 2])], 3)
    m = both([torch.tensor([[1.0, 2.0]]), torch.tensor([[4.0, 0.0]])])
    pb = torch.softmax(torch.tensor([4.0, 0.0]), 0)
    assert m[0, 1].exp().item() == pytest.approx((pa[1] / 2 + pb[0] / 2).item(), rel=1e-5)
    # the classes no teacher knows have their own expert, uniform over them: here 2 and 3
    assert Calibrator([torch.tensor([0, 1])], 4)([torch.tensor([[0.0, LN3]])]).exp().flatten().tolist() == \
        pytest.approx([0.125, 0.375, 0.25, 0.25], abs=1e-6)
    # teacher a is sure on its classes 0, 1 and unsure on class 2, which it never learned; teacher
    # b knows only class 2, so it always says "2": the gate learns whose classes a sample holds
    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (300,), generator=gen)
    one_hot = torch.nn.functional.one_hot(y.clamp(max=1), 2)
    za = 0.5 * torch.randn(300, 2, generator=gen) + 4.0 * one_hot * (y < 2)[:, None]
    zb = torch.zeros(300, 1)
    assert (cal([za, zb]).argmax(1) == y).float().mean() < 0.5  # the uniform gate: class 2 ties or wins
    assert cal.fit([za, zb], y) > 0.9


def test_net2net_grows_a_student_that_computes_what_the_teacher_computes():
    torch.manual_seed(0)
    teacher = build_model(MlpArch(width=8, depth=1), (6,), 3)
    student = build_model(MlpArch(width=20, depth=3), (6,), 4)
    teacher.normalize.mean.fill_(0.5)
    growth.grow(student, teacher, {0: 0, 1: 1, 3: 2})  # student class 2 is unknown to the teacher
    x = torch.randn(32, 6)
    assert torch.allclose(student(x)[:, [0, 1, 3]], teacher(x), atol=1e-5)
    # each new unit copies an old one's inputs, yet the two send on different shares
    first, nxt = student.body[1].weight, student.body[3].weight
    for j in range(8, 20):
        u = next(u for u in range(8) if torch.equal(first[j], first[u]))
        assert not torch.allclose(nxt[:, u], nxt[:, j])
    with pytest.raises(ValueError, match="at least as wide"):
        growth.grow(build_model(MlpArch(width=4, depth=1), (6,), 3), teacher, {})


def test_fedavg_is_the_mean_of_the_weights():
    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(2)}
    b = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(4)}
    out = growth.average_states([a, b])
    assert out["w"].tolist() == [2.0, 4.0] and out["n"].item() == 3


def test_class_groups_name_the_subsets_that_share_no_class(demo_dict):
    from engine.spec import class_groups

    spec = dict(demo_dict, classes=list("abcde"), teachers=[
        dict(demo_dict["teachers"][0], name="t1", classes=["a", "b"], mapping={}),
        dict(demo_dict["teachers"][0], name="t2", classes=["b", "c"], mapping={}),
        dict(demo_dict["teachers"][0], name="t3", classes=["d"], mapping={})])
    assert class_groups(PipelineSpec.model_validate(spec)) == [["a", "b", "c"], ["d"]]
