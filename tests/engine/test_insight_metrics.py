"""engine/insight/metrics.py against small sets worked out by hand (docs/INSIGHTS.md)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.insight.metrics import (
    accuracy,
    agreement,
    amalgamation,
    cluster_order,
    confusion,
    mistakes,
    normalized,
    reliability,
    verdict,
)

# Four student classes 0…3. Teacher A knows {0, 1}, teacher B knows {1, 2}; nobody knows 3 and
# no sample is of class 3. Each teacher's answer is its argmax over its own classes, already in
# student ids (A only ever says 0 or 1, B only 1 or 2). Sample 8 has no label.
#
#   sample   y  student  A  B
#     0      0     0     0  1
#     1      0     0     0  2
#     2      0     1     1  1
#     3      1     1     1  1
#     4      1     2     1  2
#     5      2     2     0  2
#     6      2     2     1  1
#     7      2     0     0  1
#     8     -1     1     0  2
Y = np.array([0, 0, 0, 1, 1, 2, 2, 2, -1])
STUDENT = np.array([0, 0, 1, 1, 2, 2, 2, 0, 1])
A = np.array([0, 0, 1, 1, 1, 0, 1, 0, 0])
B = np.array([1, 2, 1, 1, 2, 2, 1, 1, 2])
A_CLASSES, B_CLASSES, STUDENT_CLASSES = [0, 1], [1, 2], [0, 1, 2, 3]


def test_confusion_counts_rows_are_true_classes_and_unlabelled_samples_are_left_out():
    # class 0 (samples 0, 1, 2): student says 0, 0, 1   → [2, 1, 0, 0]
    # class 1 (samples 3, 4):    student says 1, 2      → [0, 1, 1, 0]
    # class 2 (samples 5, 6, 7): student says 2, 2, 0   → [1, 0, 2, 0]
    # class 3: no samples                               → [0, 0, 0, 0]; sample 8 (y = −1) nowhere
    counts = confusion(Y, STUDENT, 4)
    assert counts.dtype == np.int64 and counts.shape == (4, 4)
    assert counts.tolist() == [[2, 1, 0, 0], [0, 1, 1, 0], [1, 0, 2, 0], [0, 0, 0, 0]]
    assert counts.sum() == 8


def test_confusion_refuses_class_ids_out_of_range():
    with pytest.raises(ValueError):
        confusion([0, 1], [0, 3], 3)
    with pytest.raises(ValueError):
        confusion([0, 1, 2], [0, 1], 3)


def test_normalized_divides_each_row_by_its_sum_and_keeps_a_zero_row_zero():
    n = normalized(confusion(Y, STUDENT, 4))
    # [2, 1, 0, 0]/3, [0, 1, 1, 0]/2, [1, 0, 2, 0]/3, zeros
    expected = [[2 / 3, 1 / 3, 0, 0], [0, 0.5, 0.5, 0], [1 / 3, 0, 2 / 3, 0], [0, 0, 0, 0]]
    assert np.allclose(n, expected)
    assert not np.isnan(n).any()
    assert normalized(np.zeros((2, 2), dtype=np.int64)).tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_accuracy_counts_labelled_samples_only():
    # student right on samples 0, 1, 3, 5, 6 of the 8 labelled ones
    assert accuracy(Y, STUDENT) == pytest.approx(5 / 8)
    assert accuracy([-1, -1], [0, 1]) is None


def test_amalgamation_rows_recalls_best_teacher_delta_and_verdict():
    rows = amalgamation(Y, STUDENT, [A, B], [A_CLASSES, B_CLASSES], ["A", "B"], 4)
    assert [r["class"] for r in rows] == [0, 1, 2, 3]
    assert [r["support"] for r in rows] == [3, 2, 3, 0]

    # class 0: student 0,0,1 → 2/3; only A knows it: 0,0,1 → 2/3; delta 0 → matches
    r = rows[0]
    assert r["student"] == pytest.approx(2 / 3)
    assert r["teachers"] == {"A": pytest.approx(2 / 3)}
    assert (r["best_teacher"], r["best"], r["delta"], r["verdict"]) == ("A", pytest.approx(2 / 3),
                                                                        pytest.approx(0.0), "matches")
    # class 1 (samples 3, 4): student 1,2 → 1/2; A 1,1 → 1; B 1,2 → 1/2; best A; delta −1/2 → trails
    r = rows[1]
    assert r["student"] == pytest.approx(0.5)
    assert r["teachers"] == {"A": pytest.approx(1.0), "B": pytest.approx(0.5)}
    assert (r["best_teacher"], r["best"], r["delta"], r["verdict"]) == ("A", pytest.approx(1.0),
                                                                        pytest.approx(-0.5), "trails")
    # class 2 (samples 5, 6, 7): student 2,2,0 → 2/3; only B: 2,1,1 → 1/3; delta +1/3 → beats
    r = rows[2]
    assert r["teachers"] == {"B": pytest.approx(1 / 3)}
    assert (r["best_teacher"], r["delta"], r["verdict"]) == ("B", pytest.approx(1 / 3), "beats")
    # class 3: no teacher knows it, no samples
    assert rows[3] == {"class": 3, "support": 0, "student": None, "teachers": {}, "best_teacher": None,
                       "best": None, "delta": None, "verdict": "no teacher"}
    json.dumps(rows)  # plain Python values only
    assert all(type(r["student"]) in (float, type(None)) and type(r["support"]) is int for r in rows)


def test_amalgamation_class_a_teacher_knows_but_without_samples_has_no_figures():
    rows = amalgamation([0, 0], [0, 0], [np.array([0, 0])], [[0, 1]], ["A"], 2)
    assert rows[1] == {"class": 1, "support": 0, "student": None, "teachers": {"A": None},
                       "best_teacher": None, "best": None, "delta": None, "verdict": None}


def test_amalgamation_tie_between_teachers_goes_to_the_first():
    rows = amalgamation([1, 1], [1, 1], [np.array([1, 0]), np.array([0, 1])], [[0, 1], [1]], ["A", "B"], 2)
    assert rows[1]["teachers"] == {"A": 0.5, "B": 0.5} and rows[1]["best_teacher"] == "A"


def test_verdict_margin_is_two_points_either_way():
    assert verdict(0.03) == "beats" and verdict(0.0201) == "beats"
    assert verdict(-0.03) == "trails" and verdict(-0.0201) == "trails"
    assert verdict(0.0) == verdict(0.02) == verdict(-0.02) == "matches"
    assert verdict(0.97 - 0.95) == "matches"  # 0.020000000000000018: float noise, not a win
    assert verdict(0.95 - 0.97) == "matches"
    assert verdict(None) is None


def test_agreement_with_labels_compares_the_samples_of_the_shared_classes():
    # labelled samples 0…7 only; models in file order: teachers then the student
    got = agreement([A[:8], B[:8], STUDENT[:8]], [A_CLASSES, B_CLASSES, STUDENT_CLASSES],
                    ["A", "B", "student"], y=Y[:8])
    assert got["names"] == ["A", "B", "student"]
    # A–B: S = {1}; samples labelled 1: 3, 4; A says 1, 1 and B 1, 2 → 1 of 2
    # A–student: S = {0, 1}; samples 0…4; A 0,0,1,1,1 vs student 0,0,1,1,2 → 4 of 5
    # B–student: S = {1, 2}; samples 3…7; B 1,2,2,1,1 vs student 1,2,2,2,0 → 3 of 5
    # diagonal: 1.0 over each model's own labelled samples: A 5 (classes 0, 1), B 5 (1, 2), student 8
    assert got["samples"] == [[5, 2, 5], [2, 5, 5], [5, 5, 8]]
    assert np.allclose(np.array(got["rate"], dtype=float), [[1.0, 0.5, 0.8], [0.5, 1.0, 0.6], [0.8, 0.6, 1.0]])
    json.dumps(got)


def test_agreement_without_labels_counts_the_samples_a_model_that_knows_more_puts_in_the_shared_classes():
    got = agreement([A, B, STUDENT], [A_CLASSES, B_CLASSES, STUDENT_CLASSES], ["A", "B", "student"])
    # A–B: S = {1}; both know more than S. A says 1 on 2, 3, 4, 6; B on 0, 2, 3, 6, 7 → either:
    #      0, 2, 3, 4, 6, 7 (6); the same answer on 2, 3, 6 → 3 of 6 (sample 0: A 0, B 1 disagree)
    # A–student: S = {0, 1} = A's classes, so A's answer (always in S) tells nothing; the student
    #      puts 0, 1, 2, 3, 7, 8 in S (6); A the same on 0, 1, 2, 3, 7 → 5 of 6
    # B–student: S = {1, 2}; the student puts 2, 3, 4, 5, 6, 8 in S (6); B the same on 2, 3, 4, 5 → 4/6
    # diagonal: a model knows exactly its own classes → every sample (9)
    assert got["samples"] == [[9, 6, 6], [6, 9, 6], [6, 6, 9]]
    assert np.allclose(np.array(got["rate"], dtype=float),
                       [[1.0, 0.5, 5 / 6], [0.5, 1.0, 4 / 6], [5 / 6, 4 / 6, 1.0]])


def test_agreement_of_a_pair_that_shares_no_class_is_none():
    # A knows {0, 1}, C knows {2}: nothing to compare, even though both answer every sample
    got = agreement([np.array([0, 1, 0]), np.array([2, 2, 2])], [[0, 1], [2]], ["A", "C"], y=np.array([0, 1, 2]))
    assert got["rate"] == [[1.0, None], [None, 1.0]]
    assert got["samples"] == [[2, 0], [0, 1]]
    # a shared class without any sample of it: no rate either
    got = agreement([np.array([0, 0]), np.array([1, 1])], [[0, 1], [1]], ["A", "D"], y=np.array([0, 0]))
    assert got["rate"][0][1] is None and got["samples"][0][1] == 0
    assert got["rate"][1][1] is None and got["samples"][1][1] == 0  # D has no sample of its own


def test_reliability_bins_and_ece_by_hand():
    probs = np.array([[0.95, 0.05],   # y 0: conf 0.95 right  → bin 9 (0.9, 1.0]
                      [0.15, 0.85],   # y 1: conf 0.85 right  → bin 8 (0.8, 0.9]
                      [0.80, 0.20],   # y 1: conf 0.80 wrong  → bin 7 (0.7, 0.8]: right-closed
                      [0.45, 0.55],   # y 0: conf 0.55 wrong  → bin 5 (0.5, 0.6]
                      [1.00, 0.00],   # y 0: conf 1.00 right  → bin 9, the last
                      [0.10, 0.90]])  # y −1: left out
    y = np.array([0, 1, 1, 0, 0, -1])
    r = reliability(probs, y, bins=10)
    assert r["edges"] == pytest.approx([k / 10 for k in range(11)])
    assert r["count"] == [0, 0, 0, 0, 0, 1, 0, 1, 1, 2]
    assert r["confidence"][:5] == [None] * 5 and r["confidence"][6] is None
    assert r["confidence"][5] == pytest.approx(0.55) and r["accuracy"][5] == 0.0
    assert r["confidence"][7] == pytest.approx(0.80) and r["accuracy"][7] == 0.0
    assert r["confidence"][8] == pytest.approx(0.85) and r["accuracy"][8] == 1.0
    assert r["confidence"][9] == pytest.approx(0.975) and r["accuracy"][9] == 1.0
    # ECE = (1·|0 − .55| + 1·|0 − .80| + 1·|1 − .85| + 2·|1 − .975|) / 5 = (.55 + .8 + .15 + .05) / 5 = 0.31
    assert r["ece"] == pytest.approx(0.31)
    json.dumps(r)


def test_reliability_bin_edges_and_other_bin_counts():
    # conf 0.5 exactly is in (0.4, 0.5]; 0.3 in (0.2, 0.3] (whatever 0.3 · 10 rounds to)
    r = reliability(np.array([[0.5, 0.5]]), [0], bins=10)
    assert r["count"][4] == 1 and r["ece"] == pytest.approx(0.5)
    r = reliability(np.array([[0.3, 0.3, 0.4], [0.3, 0.35, 0.35]]), [2, 0], bins=10)
    assert r["count"][3] == 2  # 0.4 and 0.35 in (0.3, 0.4]
    r = reliability(np.array([[0.7, 0.3], [0.3, 0.7]]), [0, 0], bins=2)
    # bins (0, .5], (.5, 1]: both 0.7 in the second; accuracy 1/2 → ECE |0.5 − 0.7| = 0.2
    assert r["edges"] == [0.0, 0.5, 1.0] and r["count"] == [0, 2]
    assert r["ece"] == pytest.approx(0.2)


def test_reliability_without_samples_has_no_ece():
    r = reliability(np.zeros((0, 3)), np.zeros(0, dtype=np.int64), bins=5)
    assert r["ece"] is None and r["count"] == [0] * 5
    assert r["confidence"] == [None] * 5 and r["accuracy"] == [None] * 5 and len(r["edges"]) == 6
    assert reliability(np.array([[0.2, 0.8]]), [-1])["ece"] is None


def test_mistakes_most_confident_first_ties_by_index():
    y = np.array([0, 1, 2, 1, -1, 0])
    probs = np.array([[0.2, 0.7, 0.1],    # wrong, conf 0.7
                      [0.1, 0.8, 0.1],    # right
                      [0.9, 0.05, 0.05],  # wrong, conf 0.9
                      [0.7, 0.2, 0.1],    # wrong, conf 0.7 (tie with sample 0: after it)
                      [0.99, 0.0, 0.01],  # no label: never a mistake
                      [0.4, 0.5, 0.1]])   # wrong, conf 0.5
    got = mistakes(y, probs, 10)
    assert got.dtype == np.int64 and got.tolist() == [2, 0, 3, 5]
    assert mistakes(y, probs, 2).tolist() == [2, 0]
    assert mistakes(y, probs, 0).tolist() == []
    assert mistakes(y, probs, None).tolist() == [2, 0, 3, 5]
    assert mistakes(np.array([0]), np.array([[1.0, 0.0]]), 5).tolist() == []


def _adjacent(order, a, b):
    return abs(order.index(a) - order.index(b)) == 1


def test_cluster_order_puts_mutually_confused_classes_side_by_side():
    # 0 ↔ 3 confused with each other, 1 and 2 clean: in class order 0 and 3 are far apart
    counts = np.array([[8, 0, 0, 2],
                       [0, 10, 0, 0],
                       [0, 0, 10, 0],
                       [3, 0, 0, 7]])
    order = cluster_order(counts)
    assert sorted(order) == [0, 1, 2, 3] and _adjacent(order, 0, 3)
    assert cluster_order(counts) == order  # deterministic
    assert all(type(i) is int for i in order)
    # two pairs: 0 ↔ 2 and 1 ↔ 3
    counts = np.array([[6, 0, 4, 0],
                       [0, 7, 0, 3],
                       [2, 0, 8, 0],
                       [0, 5, 0, 5]])
    order = cluster_order(counts)
    assert sorted(order) == [0, 1, 2, 3] and _adjacent(order, 0, 2) and _adjacent(order, 1, 3)


def test_cluster_order_of_small_and_unconfused_matrices():
    assert cluster_order(np.array([[5]])) == [0]
    assert cluster_order(np.zeros((0, 0))) == []
    assert cluster_order(np.diag([3, 4])) == [0, 1]
    assert cluster_order(np.diag([3, 4, 5, 6, 7, 8])) == [0, 1, 2, 3, 4, 5]
    assert cluster_order(np.zeros((5, 5))) == [0, 1, 2, 3, 4]
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 20, (30, 30))
    assert sorted(cluster_order(counts)) == list(range(30))


def test_metrics_module_does_not_import_torch():
    code = ("import sys, engine.insight, engine.insight.metrics, engine.insight.pictures; "
            "print('torch' in sys.modules, engine.insight.metrics.__file__)")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root,
                         env={**os.environ, "PYTHONPATH": str(root)})
    assert out.stdout.split()[1] == str(root / "engine" / "insight" / "metrics.py")
    assert out.stdout.split()[0] == "False"
