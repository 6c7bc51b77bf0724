"""The scenario specs in bench/scenarios are the files the benchmark trains and the app opens."""

import json
from pathlib import Path

import pytest

from engine.spec import load_spec
from gui.document.convert import project_to_nodes

SPECS = sorted((Path(__file__).resolve().parents[1] / "bench" / "scenarios").glob("*/*.distill.json"))


def test_every_scenario_has_its_specs():
    names = {p.parent.name for p in SPECS}
    assert names == {"s1-overlap", "s1-disjoint-calibrated", "s2-weak-to-strong", "s3-federated", "classic",
                     "text-experts"}


@pytest.mark.parametrize("path", SPECS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_scenario_spec_is_valid_and_opens_on_the_canvas(path):
    spec = load_spec(path)  # the engine's own checks, strategy settings included
    assert all(Path(t.path).parent == path.parent / "teachers" for t in spec.teachers)
    _, nodes, _ = project_to_nodes(json.loads(path.read_text()), path.parent)
    kinds = sorted(n.kind for n in nodes)
    assert kinds.count("student") == 1 and kinds.count("teacher") == len(spec.teachers)
