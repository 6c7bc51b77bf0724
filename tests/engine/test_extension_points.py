"""The extension points: architectures, data sources and loss terms are each one registered
class, found by the engine without any other change; a missing capability is named."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
from torch import nn

from engine import compress
from engine.data import SOURCES, ArraySource, load_dataset
from engine.data import register as register_source
from engine.errors import InputError, RunFailed
from engine.events import Control, Emitter
from engine.meter import Meter
from engine.models import ARCHITECTURES, Normalize, Student, build_model, require
from engine.spec import CnnArch, MlpArch, ResNetArch, TransformerArch, VitArch, parse_spec
from engine.strategies import TERMS, Batch, LossTerm, Setup, build_criterion
from engine.strategies import register as register_term
from engine.strategies.targets import build_targets
from engine.teachers import load_teachers
from engine.train import Job, train


def test_every_architecture_of_the_spec_is_registered_and_fulfils_the_contract():
    from typing import get_args

    from engine.spec import Architecture

    kinds = {cls.model_fields["kind"].default for cls in get_args(get_args(Architecture)[0])}
    assert kinds == set(ARCHITECTURES)
    examples = {"mlp": (MlpArch(width=8, depth=2), (1, 8, 8)), "cnn": (CnnArch(channels=4, depth=2), (1, 8, 8)),
                "resnet": (ResNetArch(width=0.125), (1, 8, 8)),
                "vit": (VitArch(patch=4, dim=8, depth=1, heads=2), (1, 8, 8)),
                "transformer": (TransformerArch(vocab_size=16, max_length=8, dim=8, depth=1, heads=2), (6,))}
    for kind in ARCHITECTURES:
        arch, shape = examples[kind]
        model = build_model(arch, shape, 10)
        assert isinstance(model, Student) and model.kind == kind
        assert isinstance(model.normalize, Normalize) and isinstance(model.head, nn.Linear)
        assert model.head.out_features == 10 and "body" in dict(model.named_modules())
        assert model(torch.zeros(3, *shape)).shape == (3, 10)
        assert arch.size(shape, 10).parameters == sum(p.numel() for p in model.parameters())
        if model.structured_pruning:
            assert model.hidden_widths() and model.with_widths([2] * len(model.hidden_widths())).hidden_widths() == \
                [2] * len(model.hidden_widths())


def test_a_cnn_on_tabular_samples_is_named_not_a_crash():
    with pytest.raises(InputError) as err:
        build_model(CnnArch(), (12,), 3)
    assert err.value.problems[0].path == "student.architecture" and "image data [C, H, W]" in str(err.value)


class Residual(Student):
    """A student with a skip connection: structured pruning cannot cut it as a chain."""

    def __init__(self, sample_shape, n_classes, arch=None, widths=None):
        super().__init__(sample_shape, n_classes, arch)
        self.normalize = Normalize(sample_shape)
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(sample_shape), 8))
        self.head = nn.Linear(8, n_classes)


def test_a_missing_capability_is_a_clear_message_naming_the_field():
    model = Residual((4,), 3)
    with pytest.raises(InputError) as err:
        compress.apply_structured(model, 0.5, "compression[0]")
    problem = err.value.problems[0]
    assert problem.path == "compression[0]" and "structured pruning" in problem.message
    assert "cnn" in problem.hint and "mlp" in problem.hint  # the architectures that can
    require(build_model(MlpArch(), (4,), 3), "growable", "student.init")  # an mlp can grow
    require(build_model(CnnArch(), (1, 8, 8), 3), "growable", "student.init")  # so can a cnn
    with pytest.raises(InputError, match="growing") as err:
        require(model, "growable", "student.init")
    assert "cnn, mlp, resnet" in err.value.problems[0].hint


class Counting(ArraySource):
    """A source that records which samples were read: a new format is one registered opener."""

    reads: list[np.ndarray] = []

    def read(self, idx):
        Counting.reads.append(np.array(idx))
        return super().read(idx)


class _Settings:
    format = "counting-test"
    use_labels = True

    class split:  # noqa: N801 — stands in for the spec's Split
        val, test, seed = 0.2, 0.2, 3


def test_a_registered_source_is_opened_by_format_and_read_only_by_index(demo_dict):
    x = np.arange(50 * 3, dtype=np.float32).reshape(50, 3)
    register_source("counting-test")(lambda settings, classes: Counting(x, np.arange(50) % 3))
    try:
        spec = parse_spec(demo_dict).model_copy(update={"data": _Settings(), "classes": ["a", "b", "c"]})
        Counting.reads.clear()
        data = load_dataset(spec)
        assert (len(data.train), len(data.val), len(data.test)) == (30, 10, 10)
        read = np.concatenate(Counting.reads)
        assert sorted(read.tolist()) == list(range(50))  # each sample read once, through read()
        assert np.array_equal((data.train.x[:, 0] // 3) % 3, data.train.y)  # labels stay with their samples
    finally:
        del SOURCES["counting-test"]
    with pytest.raises(InputError, match="no data format 'counting-test'"):
        load_dataset(spec)


def _setup(spec, data, teachers, model, alpha):
    x = torch.from_numpy(data.train.x)
    return Setup(spec, model, teachers, data.labeled, alpha, data.train.x, x[:2], torch.device("cpu"))


def test_the_criterion_sums_the_terms_with_their_weights(demo_dict):
    """α·CE + (1 − α)·KD, then the confidence loss mixed in: (1 − a)·L + a·L_conf."""
    demo_dict["strategy"].update({"hard_label_weight": 0.3, "confidence_weight": 0.4, "confidence_warmup": 0.5})
    spec = parse_spec(demo_dict)
    data = load_dataset(spec)
    teachers = load_teachers(spec, data.train.x[:8], 1)
    torch.manual_seed(0)
    model = build_model(spec.student.architecture, data.sample_shape, 10)
    criterion = build_criterion(_setup(spec, data, teachers, model, 0.3))
    assert criterion.names[:4] == ["loss/total", "loss/kd", "loss/kd/low digits", "loss/kd/middle digits"]
    assert criterion.names[-2:] == ["loss/ce", "loss/confidence"]
    idx = torch.arange(16)
    x, y = torch.from_numpy(data.train.x[:16]), torch.from_numpy(data.train.y[:16])
    indices = [torch.from_numpy(t.student_index) for t in teachers]
    targets = build_targets(spec.strategy, teachers, [torch.from_numpy(t.predict(data.train.x[:16])) for t in teachers],
                            indices, 10, y)
    loss, values = criterion(Batch(x, idx, y, targets, step=5, progress=0.1, student=model))
    logits = model(x)
    kd, per = targets.kd(logits, spec.strategy)
    ce = torch.nn.functional.cross_entropy(logits, y)
    conf = torch.nn.functional.cross_entropy(logits, logits.argmax(1))
    a = 0.4 * (0.1 / 0.5)
    expected = (1 - a) * (0.3 * ce + 0.7 * kd) + a * conf
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(values, torch.cat([expected.reshape(1), kd.reshape(1), per, ce.reshape(1),
                                                  conf.reshape(1)]).detach())


class LogitNorm(LossTerm):
    """A test term: mean ‖z_s‖² (a logit penalty), weight `share`."""

    key = "logit_norm_test"
    order = 60
    share = 0.01

    def __init__(self):
        super().__init__()
        self.names = ["loss/logit_norm"]

    @classmethod
    def build(cls, setup):
        return cls()

    def forward(self, batch):
        return {"loss/logit_norm": batch.logits.float().square().sum(dim=1).mean()}

    def weight(self, key, batch):
        return self.share


@pytest.mark.slow
def test_a_registered_loss_term_is_trained_and_reported_without_other_changes(demo_dict, tmp_path):
    demo_dict["training"].update({"epochs": 2, "cpu_threads": 1})
    spec = parse_spec(demo_dict)
    data = load_dataset(spec)
    teachers = load_teachers(spec, data.train.x[:8], 1)
    last_norm = {}
    register_term(LogitNorm)
    try:
        for share in (0.0, 0.5):  # without it, then weighted in: the student learns small logits
            LogitNorm.share = share
            metrics = []
            emitter = Emitter(open(os.devnull, "w"))
            job = Job(spec, data, teachers, torch.device("cpu"), None, tmp_path / str(share), emitter,
                      Control(emitter), on_metrics=lambda step, epoch, values, m=metrics: m.append(values))
            result = train(job)
            train_values = [m for m in metrics if "loss/total" in m]
            assert train_values and all(m["loss/logit_norm"] > 0 for m in train_values)  # reported
            assert result.student_path.is_file() and result.final["val/acc"] > 0.5
            last_norm[share] = train_values[-1]["loss/logit_norm"]
    finally:
        del TERMS["logit_norm_test"]
        LogitNorm.share = 0.01
    assert last_norm[0.5] < 0.5 * last_norm[0.0]


class Miscounted(LogitNorm):
    key = "miscounted_test"

    def __init__(self):
        super().__init__()
        self.names = ["loss/a", "loss/b"]  # two names, one value


def test_a_term_whose_values_do_not_match_its_names_is_named(demo_dict):
    spec = parse_spec(demo_dict)
    data = load_dataset(spec)
    model = build_model(spec.student.architecture, data.sample_shape, 10)
    register_term(Miscounted)
    try:
        criterion = build_criterion(_setup(spec, data, [], model, 1.0))
    finally:
        del TERMS["miscounted_test"]
    x, y = torch.from_numpy(data.train.x[:4]), torch.from_numpy(data.train.y[:4])
    with pytest.raises(RunFailed) as err:
        criterion(Batch(x, torch.arange(4), y, None, step=0, progress=0.0, student=model))
    assert err.value.kind == "loss_term" and "miscounted_test" in err.value.message


def test_the_meter_averages_by_samples_and_stops_a_non_finite_loss():
    meter = Meter(["loss/total", "loss/kd"], torch.device("cpu"))
    assert meter.read(0) is None
    meter.add(torch.tensor([1.0, 2.0]), 10)
    meter.add(torch.tensor([4.0, 8.0]), 30)
    values, rate = meter.read(2)
    assert values == pytest.approx({"loss/total": 3.25, "loss/kd": 6.5}) and rate > 0
    meter.add(torch.tensor([float("nan"), 1.0]), 4)
    with pytest.raises(RunFailed) as err:
        meter.read(7)
    assert err.value.kind == "non_finite_loss" and "step 7" in err.value.message
