"""The app's side of the event protocol: typed events in, a line that does not fit said in the
log (never an exception), a newer engine named; the run controller reads the typed fields."""

import json
import sys
import time

import pytest

from engine.events import PROTOCOL_VERSION, Log, Progress, ProtocolError, Started, TeacherOutputs, parse_event
from gui.document.chain import chain_after
from gui.engine_client.engine_command import ENGINE_ENVIRONMENT
from gui.engine_client.events import SHOWN_PROBLEMS, EventReader, ProtocolProblem
from tests.helpers import COMPRESSED

NOW = time.time()


def line(**fields) -> str:
    return json.dumps({"time": NOW, **fields})


def started(protocol: int = PROTOCOL_VERSION, **extra) -> str:
    return line(event="started", protocol=protocol, run_id=1, resumed=False, name="demo", run_dir="/tmp/r",
                db="/tmp/db", device="cpu", threads=2, precision="fp32", processes=1, torch="2.5",
                split={"train": 10, "val": 2, "test": 2}, labeled=True,
                teachers=[{"name": "low digits", "classes": ["0", "1"], "sha256": "ab"}], epochs=3, **extra)


def test_lines_become_typed_events_and_bad_lines_problems():
    reader = EventReader()
    items = reader.feed((started() + "\n" + line(event="log", level="info", message="hi") + "\n" +
                         line(event="log", level="info", message="half")[:20]).encode())
    assert [type(i) for i in items] == [Started, Log]  # the half line waits for its end
    items = reader.feed(b'", "x": 1}\nnot json\n'
                        b'{"event": "progress", "time": 1, "phase": "prune 3", "fraction": 0.5}\n\n')
    assert [type(i) for i in items] == [ProtocolProblem] * 3
    assert "not JSON: 'not json'" in items[1].message
    assert "'progress' event that does not fit protocol" in items[2].message and "phase" in items[2].message
    assert reader.flush() == []


def test_a_newer_engine_is_named():
    reader = EventReader()
    problem, event = reader.read_line(started(protocol=PROTOCOL_VERSION + 1))  # fits, but newer
    assert isinstance(event, Started)
    assert f"the engine speaks event protocol {PROTOCOL_VERSION + 1}, newer than this app's {PROTOCOL_VERSION}" \
        in problem.message
    [later] = reader.read_line(line(event="shiny_new_kind"))
    assert "newer than this app's" in later.message and "unknown kind 'shiny_new_kind'" in later.message

    reader = EventReader()  # a started this app cannot read at all still names the protocol
    [problem] = reader.read_line(started(protocol=PROTOCOL_VERSION + 1, gpus=[0, 1]))
    assert "newer than this app's" in problem.message and "gpus: Extra inputs" in problem.message


def test_a_stream_of_bad_lines_cannot_flood_the_log():
    reader = EventReader()
    messages = [p.message for p in reader.feed(b"garbage\n" * 50)]
    assert len(messages) == 50 and all(messages[:SHOWN_PROBLEMS + 1]) and not any(messages[SHOWN_PROBLEMS + 1:])
    assert "not shown" in messages[SHOWN_PROBLEMS]


def stand_in_engine(tmp_path, monkeypatch, *lines: str, code: int = 0) -> None:
    """A program in place of the engine that prints these lines and exits with `code` (the app
    starts the engine as `sys.executable -m engine …`)."""
    out = tmp_path / "events.jsonl"
    out.write_text("".join(f"{x}\n" for x in lines), encoding="utf-8")
    fake = tmp_path / "engine-stand-in"
    fake.write_text(f'#!/bin/sh\nenv > "{tmp_path / "env.txt"}"\ncat "{out}"\nexit {code}\n')
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))


@pytest.mark.slow
def test_a_malformed_stream_reaches_the_window_as_log_lines(window, qtbot, tmp_path, monkeypatch):
    stand_in_engine(tmp_path, monkeypatch, started(protocol=PROTOCOL_VERSION + 1), "Traceback? not an event",
                    line(event="progress", phase="prune 3", fraction=0.5),
                    line(event="finished", status="completed", exit_code=0, run_id=1))
    runner, ended = window.runner, []
    runner.runEnded.connect(lambda status, message: ended.append(status))
    runner._start(lambda: runner.engine.start_run(tmp_path / "p.distill.json", tmp_path / "run"))
    qtbot.waitUntil(lambda: bool(ended), timeout=30000)
    assert ended == ["completed"]  # the events that fit still count
    log = window.dashboard.log.toPlainText()
    assert f"the engine speaks event protocol {PROTOCOL_VERSION + 1}, newer than this app's" in log
    assert "a line that is not JSON: 'Traceback? not an event'" in log
    assert "a 'progress' event that does not fit protocol" in log
    env = dict(x.split("=", 1) for x in (tmp_path / "env.txt").read_text().splitlines() if "=" in x)
    assert all(env.get(k) == v for k, v in ENGINE_ENVIRONMENT.items())  # started by the one helper


def test_the_prune_node_being_fine_tuned_is_found_by_its_prune_step(window, qtbot, tmp_path):
    spec = json.loads(COMPRESSED.read_text())
    for t in spec["teachers"]:
        t["path"] = str((COMPRESSED.parent / t["path"]).resolve())
    spec["compression"] = [{"kind": "prune", "method": "magnitude", "sparsity": 0.3, "finetune_epochs": 2},
                           {"kind": "prune", "method": "structured", "sparsity": 0.5, "finetune_epochs": 2}]
    path = tmp_path / "two-prunes.distill.json"
    path.write_text(json.dumps(spec))
    assert window.open_project(path, ask=False)
    chain = chain_after(window.doc, window.doc.student())
    prunes = [window.scene.node_items[n.id] for n in chain if n.kind == "prune"]
    assert len(prunes) == 2
    engine = window.runner.engine
    engine.event.emit(Progress(time=NOW, phase="prune", prune_step=1, fraction=0.9, step=90, total_steps=100,
                               epoch=23.5, epochs=24, samples_per_s=1000.0, eta_s=2.0))
    assert prunes[1].live == "fine-tuning · epoch 23.5/24" and prunes[0].live == ""
    assert "prune 2: fine-tune" in window.runner.run_label.text()
    engine.event.emit(TeacherOutputs(time=NOW, teacher="low digits", cache="hit", message="read from the cache"))
    teacher = next(window.scene.node_items[n.id] for n in window.doc.of_kind("teacher")
                   if n.props.get("name") == "low digits")
    assert teacher.live == "outputs cached: reused"


def test_a_line_without_end_is_bounded_reported_once_and_dropped_to_its_newline():
    """Issue 22: a 1 GB event line without a newline grew the buffer without bound (and
    re-split it on every read: quadratic)."""
    from gui.engine_client.events import MAX_LINE_BYTES

    reader = EventReader()
    chunk = b"x" * (1 << 20)
    items = []
    for _ in range(3 * MAX_LINE_BYTES // len(chunk)):  # three times the bound, in 1 MiB reads
        items += reader.feed(chunk)
        assert reader.buffered <= MAX_LINE_BYTES
    assert len(items) == 1 and isinstance(items[0], ProtocolProblem)
    assert f"an engine line longer than {MAX_LINE_BYTES:,} bytes" in items[0].message
    assert "the rest of that line is dropped" in items[0].message and len(items[0].line) < 300
    items = reader.feed(b"xxx\n" + (line(event="log", level="info", message="after") + "\n").encode())
    assert [type(i) for i in items] == [Log] and items[0].message == "after"  # the next line reads
    [problem] = reader.feed(b"y" * (MAX_LINE_BYTES + 1) + b"\n")  # one read, newline and all
    assert "longer than" in problem.message and reader.buffered == 0 and reader.flush() == []


@pytest.mark.slow
def test_an_engine_that_writes_an_endless_line_is_a_protocol_problem_and_its_run_still_ends(
        qapp, qtbot, tmp_path, monkeypatch):
    from gui.engine_client.run import EngineRun

    fake = tmp_path / "engine-stand-in"
    events = tmp_path / "events.jsonl"
    events.write_text(line(event="finished", status="completed", exit_code=0, run_id=1) + "\n")
    fake.write_text(f'#!/bin/sh\nhead -c 50000000 /dev/zero | tr "\\\\0" x\necho\ncat "{events}"\n')
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    run, problems, ended = EngineRun(db=tmp_path / "db.sqlite"), [], []
    run.protocolProblem.connect(problems.append)
    run.ended.connect(lambda status, message: ended.append(status))
    run.start_run(tmp_path / "p.distill.json", tmp_path / "run")
    qtbot.waitUntil(lambda: bool(ended), timeout=60000)
    assert ended == ["completed"] and len(problems) == 1 and "longer than" in problems[0]


WRONG_SHAPES = ["[1, 2, 3]", '"finished"', "null", line(event="metric", step="7", epoch=1.0, values={}),
                started().replace('"run_dir": "/tmp/r"', '"run_dir": null'),
                "\ufeff" + line(event="log", level="info", message="behind a byte order mark"),
                line(event="finished", status="done", exit_code=0),
                line(event="finished", status="completed", exit_code="0", run_id=1)]


def test_every_line_of_the_wrong_shape_is_a_problem_and_the_rest_is_read():
    reader = EventReader()
    data = "\n".join([started(), *WRONG_SHAPES, line(event="log", level="info", message="still read")]) + "\n"
    items = reader.feed(data.encode())
    assert isinstance(items[0], Started) and isinstance(items[-1], Log) and items[-1].message == "still read"
    problems = items[1:-1]
    assert len(problems) == len(WRONG_SHAPES) and all(isinstance(p, ProtocolProblem) for p in problems)
    assert "run_dir" in problems[4].message and problems[5].line.startswith("\ufeff")
    assert [p.line for p in problems[6:]] == WRONG_SHAPES[6:]  # past the flood limit: kept, not shown
    assert "'finished' event that does not fit" in str(pytest.raises(ProtocolError, parse_event, WRONG_SHAPES[6]).value)


def run_stand_in(window, qtbot, tmp_path, monkeypatch, *lines, code=0):
    stand_in_engine(tmp_path, monkeypatch, *lines, code=code)
    runner, ended = window.runner, []
    runner.runEnded.connect(lambda status, message: ended.append((status, message)))
    runner._start(lambda: runner.engine.start_run(tmp_path / "p.distill.json", tmp_path / "run"))
    qtbot.waitUntil(lambda: bool(ended), timeout=30000)
    return ended, window.dashboard.log.toPlainText()


def test_wrong_shapes_from_a_real_child_are_logged_and_the_rest_still_counts(window, qtbot, tmp_path, monkeypatch):
    metric = line(event="metric", step=5, epoch=1.0, values={"val/acc": 0.5})
    ended, log = run_stand_in(window, qtbot, tmp_path, monkeypatch, started(), *WRONG_SHAPES, metric,
                              line(event="finished", status="completed", exit_code=0, run_id=1))
    assert [s for s, _ in ended] == ["completed"]
    assert log.count("protocol problem") >= SHOWN_PROBLEMS
    assert "val/acc" in window.dashboard.series  # the metric after the bad lines arrived


def test_a_malformed_finished_does_not_leave_the_app_running(window, qtbot, tmp_path, monkeypatch):
    ended, log = run_stand_in(window, qtbot, tmp_path, monkeypatch, started(),
                              line(event="finished", status="done", exit_code=0, run_id=1), code=0)
    assert [s for s, _ in ended] == ["failed"] and not window.runner.running
    assert "without finishing" in ended[0][1]
    assert window.runner.run_label.text() == "run failed"


def test_completed_then_exit_1_is_a_failed_run(window, qtbot, tmp_path, monkeypatch):
    ended, _ = run_stand_in(window, qtbot, tmp_path, monkeypatch, started(),
                            line(event="finished", status="completed", exit_code=0, run_id=1), code=1)
    assert [s for s, _ in ended] == ["failed"]
    assert "reported it completed, then exited with code 1" in ended[0][1]


def test_an_export_report_of_the_wrong_shape_is_said_not_raised(window, qtbot, tmp_path, monkeypatch):
    ended, log = run_stand_in(window, qtbot, tmp_path, monkeypatch, started(),
                              line(event="finished", status="completed", exit_code=0, run_id=1,
                                   export={"files": {"onnx_int8": 5}, "accuracy": []}))
    assert [s for s, _ in ended] == ["completed"]
    assert "export report" in log and "does not fit" in log


def test_an_export_whose_engine_exits_1_after_a_clean_report_failed(qapp, qtbot, tmp_path, monkeypatch):
    from gui.engine_client.export import EngineExport

    stand_in_engine(tmp_path, monkeypatch, line(event="finished", status="completed", exit_code=0,
                                                out=str(tmp_path), report={"files": {}, "problems": []}), code=1)
    export, said = EngineExport(), []
    export.done.connect(lambda report, problems: said.append(("done", problems)))
    export.failed.connect(lambda message: said.append(("failed", message)))
    export.start(tmp_path / "run", tmp_path / "out", None)
    qtbot.waitUntil(lambda: bool(said), timeout=30000)
    assert said[0][0] == "failed" and "exited with code 1 after its report" in said[0][1]


def test_the_headless_run_trusts_the_exit_code_and_escapes_names(tmp_path, monkeypatch, capsys):
    from gui.app import run_headless

    evil = "demo\x1b[2J\u202e"
    stand_in_engine(tmp_path, monkeypatch, started().replace('"name": "demo"', '"name": ' + json.dumps(evil)),
                    line(event="finished", status="completed", exit_code=0, run_id=1), code=1)
    assert run_headless(tmp_path / "p.distill.json", None, None) == 1
    out, err = capsys.readouterr()
    assert "\x1b" not in out and "\u202e" not in out and "demo\\x1b[2J\\u202e" in out
    assert "reported the run completed, then exited with code 1" in err
