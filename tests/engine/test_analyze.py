"""`distill-engine analyze` on real runs (engine subprocesses): the files of docs/INSIGHTS.md,
figures that agree with what the run itself measured, cancelling, bad input, and the export's
model card with the pictures."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from PIL import Image

from tests.helpers import ROOT, demo_spec, engine_cmd, parse_events, run_engine, write_spec

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The demo trained briefly, once for this module: (run folder, its finished event)."""
    base = tmp_path_factory.mktemp("analyze")
    spec = demo_spec()
    spec["training"]["epochs"] = 3
    path = write_spec(base, spec)
    done = run_engine("run", path, "--run-dir", base / "run", "--db", base / "runs.sqlite")
    assert done.returncode == 0, done.stderr[-2000:]
    finished = parse_events(done.stdout)[-1]
    return base / "run", finished


def test_analyze_writes_the_figures_the_run_measured(demo_run):
    run_dir, finished = demo_run
    done = run_engine("analyze", run_dir, "--events", "--mistakes", "5", "--attributions", "3")
    assert done.returncode == 0, done.stderr[-2000:]
    events = parse_events(done.stdout)
    stages = [e["stage"] for e in events if e["event"] == "progress"]
    assert stages[0] == "load" and stages[-1] == "done" and "predict" in stages and "attribution" in stages
    last = events[-1]
    assert last["event"] == "finished" and last["status"] == "completed"
    folder = run_dir / "insights"
    assert last["out"] == str(folder.resolve())
    insights = json.loads((folder / "insights.json").read_text())
    assert insights == last["report"]
    assert insights["format"] == 1 and insights["kind"] == "image" and insights["split"] == "test"
    n = insights["samples"]
    assert n == insights["labelled"] == 270  # digits: 1,797 samples, 15 % test

    # the student's and each teacher's accuracy are those the run reported at its end
    final = finished["final"]
    student, *teachers = insights["models"]
    assert student["accuracy"] == pytest.approx(final["test/acc"], abs=1e-6)
    for t in teachers:
        assert t["accuracy"] == pytest.approx(final[f"test/teacher_acc/{t['name']}"], abs=1e-6)
    assert [t["name"] for t in teachers] == ["low digits", "middle digits", "high digits"]
    assert teachers[2]["classes"] == [7, 8, 9, 0]  # its own output order, mapped to the student's

    # the arrays agree with the figures
    arrays = np.load(folder / "arrays.npz", allow_pickle=False)
    y, probs = arrays["y"], arrays["student_probs"]
    assert probs.shape == (n, 10) and np.allclose(probs.sum(1), 1, atol=1e-5)
    counts = np.array(insights["confusion"]["counts"])
    assert counts.sum() == n and np.trace(counts) == (probs.argmax(1) == y).sum()
    assert sorted(insights["confusion"]["order"]) == list(range(10))
    for k, t in enumerate(teachers):
        tp = arrays[f"teacher_{k}_probs"]
        own = np.isin(y, t["classes"])
        said = np.array(t["classes"])[tp[own].argmax(1)]
        assert (said == y[own]).mean() == pytest.approx(t["accuracy"])
    rows = insights["amalgamation"]
    assert [r["class"] for r in rows] == list(range(10))
    assert rows[0]["teachers"].keys() == {"low digits", "high digits"}  # both know "0"
    for r in rows:
        mine = y == r["class"]
        assert r["support"] == mine.sum()
        assert r["student"] == pytest.approx((probs[mine].argmax(1) == r["class"]).mean())

    # mistakes: wrong answers, most confident first, each teacher's say
    wrong = (probs.argmax(1) != y).sum()
    mistakes = insights["mistakes"]
    assert len(mistakes) == min(5, wrong)
    conf = [m["confidence"] for m in mistakes]
    assert conf == sorted(conf, reverse=True)
    for m in mistakes:
        assert m["predicted"] != m["label"] and m["row"] is None and m["text"] is None
        with Image.open(folder / m["thumbnail"]) as thumb:  # the 8×8 digit, enlarged
            assert thumb.size == (64, 64)
        for t, said in zip(teachers, m["teachers"]):
            assert (said["says"] is None) == (m["label"] not in t["classes"])

    # attribution: one 8×8 map per explained sample, for the predicted class
    explained = insights["attribution"]["samples"]
    assert len(explained) == 3
    for e in explained:
        assert arrays[e["student"]].shape == (8, 8) and np.isfinite(arrays[e["student"]]).all()
        assert arrays[e["input"]].shape == (8, 8, 3) and e["attention"] is None  # an MLP has none
        for name, key in e["teachers"].items():
            known = next(t for t in teachers if t["name"] == name)["classes"]
            assert e["target"] in known and arrays[key].shape == (8, 8)

    for name in insights["pictures"].values():
        with Image.open(folder / name) as pic:
            assert pic.format == "PNG" and pic.width > 200 and pic.height > 150


def test_export_puts_the_insights_in_the_model_card(demo_run, tmp_path):
    run_dir, _ = demo_run
    out = tmp_path / "export"
    done = run_engine("export", run_dir, "--out", out)
    assert done.returncode == 0, done.stderr[-2000:]
    card = (out / "MODEL_CARD.md").read_text()
    assert "## What the student learned, and from whom" in card
    for name in ("amalgamation.png", "confusion.png", "calibration.png", "agreement.png"):
        assert f"]({name})" in card
        assert (out / name).read_bytes() == (run_dir / "insights" / name).read_bytes()
    manifest = json.loads((out / "export-manifest.json").read_text())
    assert "confusion.png" in json.dumps(manifest)
    again = run_engine("export", run_dir, "--out", out)  # its own pictures: replaced, not refused
    assert again.returncode == 0, again.stderr[-2000:]


def test_analyze_refuses_what_is_not_a_finished_run(tmp_path):
    done = run_engine("analyze", tmp_path)
    assert done.returncode == 2
    assert "holds no trained student" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "insights").exists()


def test_analyze_stops_when_asked(demo_run):
    """`stop` on stdin before the first batch: finished 'stopped', exit 3, nothing new written."""
    run_dir, _ = demo_run
    before = sorted(p.name for p in run_dir.iterdir())
    proc = subprocess.run(engine_cmd("analyze", run_dir, "--events", "--split", "train"), input="stop\n",
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    last = parse_events(proc.stdout)[-1]
    if last["status"] == "completed":  # the whole split went by before the command was read
        pytest.skip("the analysis finished before 'stop' was read")
    assert proc.returncode == 3 and last["status"] == "stopped"
    assert sorted(p.name for p in run_dir.iterdir()) == before


def test_an_export_whose_analysis_fails_says_so_and_keeps_no_pictures(tmp_path):
    """A teacher file moved away after the run: the model still exports (exit 0); the report's
    notes say why the card has no pictures, and an earlier export's pictures are not left behind."""
    import shutil

    spec = demo_spec()
    spec["training"]["epochs"] = 1
    for t in spec["teachers"]:
        t["path"] = str(shutil.copy(t["path"], tmp_path))
    run_dir, out = tmp_path / "run", tmp_path / "export"
    done = run_engine("run", write_spec(tmp_path, spec), "--run-dir", run_dir, "--db", tmp_path / "runs.sqlite")
    assert done.returncode == 0, done.stderr[-2000:]
    assert run_engine("export", run_dir, "--out", out).returncode == 0
    assert (out / "confusion.png").is_file()
    shutil.rmtree(run_dir / "insights")
    (tmp_path / "digits-4-7.onnx").unlink()
    done = run_engine("export", run_dir, "--out", out, "--events")
    assert done.returncode == 0, done.stderr[-2000:]
    report = parse_events(done.stdout)[-1]["report"]
    note = next(n for n in report["notes"] if n["kind"] == "no_insights")
    assert "the model card has no insight pictures" in note["message"] and "digits-4-7.onnx" in note["message"]
    assert not list(out.glob("*.png"))
    assert "What the student learned" not in (out / "MODEL_CARD.md").read_text()


def test_an_export_beside_a_users_own_picture_keeps_it_and_leaves_the_pictures_out(demo_run, tmp_path):
    run_dir, _ = demo_run
    out = tmp_path / "shared"
    out.mkdir()
    (out / "confusion.png").write_text("the user's own picture")
    done = run_engine("export", run_dir, "--out", out, "--events")
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "confusion.png").read_text() == "the user's own picture"
    assert not (out / "amalgamation.png").exists() and (out / "student.onnx").is_file()
    note = next(n for n in parse_events(done.stdout)[-1]["report"]["notes"] if n["kind"] == "no_insights")
    assert "confusion.png, which no export wrote (it is kept)" in note["message"]


def test_a_cancelled_analysis_leaves_the_previous_one_whole(demo_run):
    """Cancelled after its thumbnails were written: the earlier analysis's files are all as they were."""
    from engine.insight.analyze import Cancelled, analyze_run

    run_dir, _ = demo_run
    folder = run_dir / "insights"
    analyze_run(run_dir, "test", mistakes=3, attributions=1)
    before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 7  # checks: 1 loaded, 2–6 the training split's 5 batches, 7 the thumbnails written

    with pytest.raises(Cancelled):
        analyze_run(run_dir, "train", mistakes=20, attributions=3, cancelled=cancelled)
    assert len(calls) == 8
    assert {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


def test_a_folder_the_analysis_did_not_write_is_refused(demo_run, tmp_path):
    import shutil

    run_dir, _ = demo_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("insights", "checkpoints"))
    (copy / "insights").write_text("a file, not a folder")
    done = run_engine("analyze", copy)
    assert done.returncode == 2 and "which no analysis wrote" in done.stderr and "Traceback" not in done.stderr
    (copy / "insights").unlink()
    (copy / "insights").mkdir()
    (copy / "mine").mkdir()
    (copy / "mine" / "000.png").write_text("precious")
    (copy / "insights" / "mistakes").symlink_to(copy / "mine")
    done = run_engine("analyze", copy)
    assert done.returncode == 2 and "mistakes" in done.stderr
    assert (copy / "mine" / "000.png").read_text() == "precious"
