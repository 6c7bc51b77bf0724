"""Strategies: the loss terms a student learns from, one registered class per module, and
what the strategy makes of the teachers (targets, weightings, calibration).

    term.py         what a loss term is; the registry
    criterion.py    the registered terms the spec asks for, summed with their weights
    kd.py           multi-teacher knowledge distillation (Hinton et al. 2015; UHC)
    hard_labels.py  cross-entropy on the labels
    calibration.py  a few labels merge disjoint teachers (mixture of experts) and teach the student
    hints.py        FitNets feature hints with learned adapters
    task_heads.py   a head per teacher on the shared features
    confidence.py   weak-to-strong auxiliary confidence loss (Burns et al. 2023)
    weightings.py   teacher weightings (uniform, fixed, confidence, entropy, selective, CA-MKD)
    targets.py      the teachers' soft targets, cached or live
"""

from engine.strategies import calibration, confidence, hard_labels, hints, kd, task_heads  # noqa: F401
from engine.strategies.criterion import Criterion, build_criterion
from engine.strategies.term import TERMS, Batch, LossTerm, Setup, register

__all__ = ["TERMS", "Batch", "Criterion", "LossTerm", "Setup", "build_criterion", "register"]
