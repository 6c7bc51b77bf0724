"""The event protocol: every line a real engine prints fits the typed models of engine.events;
the Emitter refuses an event that does not; parse_event says what is wrong with a line."""

import io
import json

import pytest

from engine.events import (
    PROTOCOL_VERSION,
    Emitter,
    Finished,
    Log,
    Progress,
    ProtocolError,
    Started,
    TeacherOutputs,
    parse_event,
)
from tests.helpers import ROOT, run_engine, write_spec

COMPRESSED = ROOT / "assets" / "examples" / "digits-compressed.distill.json"


def typed_events(stdout: str) -> list:
    lines = stdout.splitlines()
    assert lines, "the engine printed no events"
    return [parse_event(line) for line in lines]  # ProtocolError on any line that does not fit


@pytest.mark.slow
def test_every_line_of_a_real_run_fits_and_teacher_outputs_say_hit_or_miss(tmp_path, demo_dict):
    demo_dict["training"]["epochs"] = 2
    spec, db = write_spec(tmp_path, demo_dict), tmp_path / "db.sqlite"
    runs = [run_engine("run", spec, "--run-dir", tmp_path / f"run{i}", "--db", db) for i in range(2)]
    teachers = [t["name"] for t in demo_dict["teachers"]]
    for proc, cache in zip(runs, ("miss", "hit")):  # the second run reads the first run's cache
        assert proc.returncode == 0, proc.stderr
        events = typed_events(proc.stdout)
        assert isinstance(events[0], Started) and events[0].protocol == PROTOCOL_VERSION
        assert [t.name for t in events[0].teachers] == teachers
        assert isinstance(events[-1], Finished) and events[-1].status == "completed"
        outputs = [e for e in events if isinstance(e, TeacherOutputs)]
        assert [e.teacher for e in outputs] == teachers and {e.cache for e in outputs} == {cache}
        assert not any("cache" in e.message for e in events if isinstance(e, Log))  # not a log any more
        progress = [e for e in events if isinstance(e, Progress)]
        assert progress and all(p.phase == "distill" and p.prune_step is None for p in progress)
        assert progress[-1].fraction == 1.0 and progress[-1].epochs == 2


@pytest.mark.slow
def test_a_prune_and_export_run_says_its_phase_and_prune_step(tmp_path):
    spec = json.loads(COMPRESSED.read_text())
    for t in spec["teachers"]:
        t["path"] = str((COMPRESSED.parent / t["path"]).resolve())
    spec["training"]["epochs"] = 1
    spec["compression"] = [
        {"kind": "prune", "method": "magnitude", "sparsity": 0.3, "finetune_epochs": 1},
        {"kind": "prune", "method": "structured", "sparsity": 0.5, "finetune_epochs": 1},
        {"kind": "quantize", "mode": "dynamic"}]
    proc = run_engine("run", write_spec(tmp_path, spec), "--run-dir", tmp_path / "run",
                      "--db", tmp_path / "db.sqlite", timeout=300)
    assert proc.returncode == 0, proc.stderr
    events = typed_events(proc.stdout)
    phases = [(e.phase, e.prune_step) for e in events if isinstance(e, Progress)]
    assert [p for i, p in enumerate(phases) if p[0] != "export" and (i == 0 or phases[i - 1] != p)] == [
        ("distill", None), ("prune", 0), ("prune", 1)]  # in that order, each once
    stages = [e.stage for e in events if isinstance(e, Progress) and e.phase == "export"]
    assert stages[0] == "load" and stages[-1] == "done" and "quantize" in stages
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.export is not None
    assert "onnx_int8" in finished.export["files"]


@pytest.mark.slow
def test_engine_export_events_fit_the_models(tmp_path, demo_dict):
    demo_dict["training"]["epochs"] = 1
    run = run_engine("run", write_spec(tmp_path, demo_dict), "--run-dir", tmp_path / "run",
                     "--db", tmp_path / "db.sqlite")
    assert run.returncode == 0, run.stderr
    proc = run_engine("export", tmp_path / "run", "--out", tmp_path / "out", "--events", timeout=300)
    assert proc.returncode == 0, proc.stderr
    events = typed_events(proc.stdout)
    assert all(e.phase == "export" and e.stage for e in events if isinstance(e, Progress))
    assert isinstance(events[-1], Finished) and events[-1].report["files"]


@pytest.mark.slow
def test_invalid_input_is_an_error_event_that_fits(tmp_path, demo_dict):
    demo_dict["classes"] = "0123456789"
    proc = run_engine("run", write_spec(tmp_path, demo_dict), "--db", tmp_path / "db.sqlite")
    assert proc.returncode == 2
    error, finished = typed_events(proc.stdout)
    assert error.event == "error" and error.kind == "invalid_input" and error.problems
    assert finished.status == "failed" and finished.exit_code == 2


def test_the_emitter_writes_only_events_that_fit():
    out = io.StringIO()
    emitter = Emitter(out)
    emitter.emit("progress", phase="export", stage="onnx", fraction=0.15)
    emitter.log("ready")
    emitter.emit("started", run_id=1, resumed=False, name="n", run_dir="/r", db="/db", device="cpu",
                 threads=2, precision="fp32", processes=1, torch="2.0", split={"train": 1, "val": 1, "test": 1},
                 labeled=True, teachers=[], epochs=3)
    started = parse_event(out.getvalue().splitlines()[-1])
    assert started.protocol == PROTOCOL_VERSION  # the emitter stamps it
    written = out.getvalue()
    for bad in [dict(event="progress", phase="prune 3", fraction=0.5),  # the old string phase
                dict(event="progress", phase="prune", fraction=0.5),  # a prune phase needs its step
                dict(event="log", level="info", message="m", cache="hit"),  # cache state is its own event
                dict(event="teacher_outputs", teacher="t", cache="maybe", message="m"),
                dict(event="finished", status="done", exit_code=0),
                dict(event="no_such_kind")]:
        with pytest.raises(ProtocolError):
            emitter.emit(**bad)
    assert out.getvalue() == written  # nothing of them was written


def test_parse_event_names_what_is_wrong():
    cases = {"hello": "not JSON", "[1, 2]": "no 'event' kind",
             '{"event": "gossip", "time": 1}': "unknown kind 'gossip'",
             '{"event": "metric", "time": 1, "step": "3", "epoch": 1, "values": {}}':
                 "'metric' event that does not fit",
             '{"event": "log", "time": 1, "level": "info", "message": "m", "extra": 1}': "extra: Extra inputs",
             "[" * 100_000: "not JSON", "9" * 10_000: "not JSON"}  # hostile: too deep, too long a number
    for line, said in cases.items():
        with pytest.raises(ProtocolError, match=said):
            parse_event(line)
    with pytest.raises(ProtocolError) as caught:
        parse_event('{"event": "started", "time": 1, "protocol": 7}')
    assert caught.value.protocol == 7  # what a newer engine declared, for the reader to name

