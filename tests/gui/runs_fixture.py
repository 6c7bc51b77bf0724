"""A run store to compare: three finished runs of the demo pipeline written through the store's
own API into a real SQLite file. Runs 1 and 2 share one spec (run 2 was stopped, left idle an
hour, resumed); run 3 has a wider student, another learning rate, more epochs and another seed.
Run 1 was exported (a report in its folder's export/)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import engine.store
from engine.run import spec_hash
from engine.spec import load_spec
from engine.store import Store
from tests.helpers import Clock

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "assets" / "examples" / "digits-experts.distill.json"
START = 1_780_000_000.0  # a fixed start (2026-05-28), so the times shown are known
TEACHERS = ("low digits", "middle digits", "high digits")


@contextlib.contextmanager
def store_clock(now: float):
    real = engine.store.time
    engine.store.time = clock = Clock(now)
    try:
        yield clock
    finally:
        engine.store.time = real


def demo_spec_json(**changes) -> str:
    """The demo's spec as the engine stores it, with `changes` ({"training.lr": 0.005}) made."""
    spec = json.loads(load_spec(DEMO).to_json())
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = spec
        for key in parents:
            node = node[key]
        node[last] = value
    return json.dumps(spec, indent=2)


def write_runs(db: Path, work: Path) -> list[int]:
    """The three runs; their ids, oldest first."""
    same = demo_spec_json()
    other = demo_spec_json(**{"student.architecture.width": 512, "training.lr": 0.005,
                              "training.epochs": 30, "training.seed": 7})
    store = Store(db)
    ids = []
    with store_clock(START) as clock:
        for n, (spec, seconds, val, test, params) in enumerate((
                (same, 41, 0.9519, 0.9444, 85_002), (same, 40, 0.9481, 0.9407, 85_002),
                (other, 77, 0.9630, 0.9593, 302_602))):
            run_dir = work / f"run-{n + 1}"
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "spec.distill.json").write_text(spec)  # as the engine keeps it (Open on Canvas)
            run = store.create_run("digits experts", spec, spec_hash(spec), run_dir, "cpu (8 threads)")
            ids.append(run)
            if n == 1:  # stopped after 15 s, idle an hour, resumed
                clock.now += 15
                store.finish_run(run, "stopped", {"val/acc": 0.90})
                clock.now += 3600
                store.reopen_run(run)
                seconds -= 15
            for epoch in (1, 2):
                store.add_metrics(run, epoch * 20, float(epoch), {"loss/total": 1.0 / epoch,
                                                                  "val/acc": val - 0.05 / epoch})
            store.add_metrics(run, 40, 2.0, {"test/acc": test, **{
                f"test/teacher_acc/{t}": 0.97 - 0.01 * i for i, t in enumerate(TEACHERS)}})
            clock.now += seconds
            store.finish_run(run, "completed", {"val/acc": val, "val/loss": 0.2}, parameters=params)
            clock.now += 120
    store.close()
    export = work / "run-1" / "export"
    export.mkdir()
    (export / "report.json").write_text(json.dumps({"accuracy": {
        "pytorch_fp32": 0.9444, "onnx_fp32": 0.9444, "onnx_int8": 0.9407}}))
    return ids
