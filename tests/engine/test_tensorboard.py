"""Runs in TensorBoard: RUN_DIR/tensorboard holds the metric events' values as scalars; a
resumed run shows each step once; `distill-engine tensorboard` writes them for an older run."""

import re
import shutil
import sqlite3
import struct
from pathlib import Path

import pytest
from tensorboardX.proto.event_pb2 import Event, SessionLog

from engine.checkpoint import checkpoint_dirs
from tests.helpers import parse_events, run_engine, start_engine, write_spec

pytestmark = pytest.mark.slow  # every test trains through the engine subprocess


def records(path: Path):
    """The records of one TFRecord file (u64 length, u32 crc, data, u32 crc); a last record
    cut short (a killed writer) is left out, as TensorBoard does."""
    data = path.read_bytes()
    at = 0
    while at + 12 <= len(data):
        (length,) = struct.unpack("<Q", data[at:at + 8])
        if at + 12 + length + 4 > len(data):
            return
        yield data[at + 12:at + 12 + length]
        at += 12 + length + 4


def shown_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """What TensorBoard shows of a folder's event files: read in name order, and a session
    START marker drops the steps at or after its own from what was read before (TensorBoard's
    event_accumulator with purge_orphaned_data, the default)."""
    shown: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for raw in records(path):
            event = Event.FromString(raw)
            if event.HasField("session_log") and event.session_log.status == SessionLog.START:
                shown = {tag: [(s, v) for s, v in points if s < event.step] for tag, points in shown.items()}
            for value in event.summary.value:
                shown.setdefault(value.tag, []).append((event.step, value.simple_value))
    return shown


def emitted(events: list[dict], before: int | None = None) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    for e in events:
        if e["event"] == "metric" and (before is None or e["step"] < before):
            for tag, value in e["values"].items():  # TensorBoard's tags: "_" for a space (teacher names)
                out.setdefault(re.sub(r"[^-/\w.]", "_", tag), []).append((e["step"], value))
    return out


def assert_same(shown: dict, expected: dict) -> None:
    assert shown.keys() == expected.keys()
    for tag, points in expected.items():
        got = shown[tag]
        assert [s for s, _ in got] == [s for s, _ in points], tag
        assert [v for _, v in got] == pytest.approx([v for _, v in points], rel=1e-6, abs=1e-7), tag


def test_a_run_writes_its_metrics_as_tensorboard_scalars_and_the_command_rewrites_them(tmp_path, demo_dict):
    demo_dict["training"].update(epochs=2, gradient_norms=True)
    db, run_dir = tmp_path / "db.sqlite", tmp_path / "run"
    proc = run_engine("run", write_spec(tmp_path, demo_dict), "--run-dir", run_dir, "--db", db)
    assert proc.returncode == 0, proc.stderr
    events = parse_events(proc.stdout)
    expected = emitted(events)
    assert {"loss/total", "val/acc", "test/acc", "lr", "loss/kd/low_digits"} <= expected.keys()
    assert any(tag.startswith("grad/") for tag in expected)
    shown = shown_scalars(run_dir / "tensorboard")
    assert_same(shown, expected)

    # an older run, from before the folder existed: the command writes it from the store
    shutil.rmtree(run_dir / "tensorboard")
    out = run_engine("tensorboard", run_dir, "--db", db)
    assert out.returncode == 0, out.stderr
    assert f"tensorboard --logdir {run_dir / 'tensorboard'}" in out.stdout
    assert_same(shown_scalars(run_dir / "tensorboard"), expected)
    again = run_engine("tensorboard", run_dir)  # the store is remembered in the run folder
    assert again.returncode == 0 and "already has event files" in again.stdout
    assert len(list((run_dir / "tensorboard").glob("events.out.tfevents.*"))) == 1


def test_the_command_refuses_a_folder_that_is_not_a_run(tmp_path):
    out = run_engine("tensorboard", tmp_path, "--db", tmp_path / "db.sqlite")
    assert out.returncode == 2
    assert "not a run folder" in out.stderr and "hint:" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "tensorboard").exists()


def test_a_resumed_run_shows_each_step_once(tmp_path, demo_dict):
    """Resumed from an earlier checkpoint than where it stopped (as after a kill): the steps
    the first session wrote after that checkpoint are trained again, and shown once."""
    demo_dict["training"].update(epochs=6, cpu_threads=1)
    db, run_dir = tmp_path / "db.sqlite", tmp_path / "run"
    proc = start_engine(write_spec(tmp_path, demo_dict), run_dir, db)
    first, saved = [], []
    for line in proc.stdout:  # stop once a metric comes after the second checkpoint
        first += parse_events(line)
        if first[-1]["event"] == "checkpoint":
            saved.append(first[-1]["step"])
        elif first[-1]["event"] == "metric" and len(saved) >= 2 and first[-1]["step"] > saved[-1]:
            break
    proc.stdin.write("stop\n")
    proc.stdin.flush()
    first += parse_events(proc.stdout.read())
    assert proc.wait(timeout=60) == 3
    shutil.rmtree(checkpoint_dirs(run_dir / "checkpoints")[0])  # the stop's checkpoint gone: as after a kill
    resumed = run_engine("resume", run_dir, "--db", db)
    assert resumed.returncode == 0, resumed.stderr
    second = parse_events(resumed.stdout)
    from_step = int(next(e["message"] for e in second if e["event"] == "log" and "resumed at" in e["message"])
                    .rsplit("step ", 1)[1])
    checkpoints = sorted({e["step"] for e in first if e["event"] == "checkpoint"})  # one folder per step
    assert from_step == checkpoints[-2]  # the newest one (the stop's) was removed
    assert max(e["step"] for e in first if e["event"] == "metric") > from_step  # trained again now

    shown = shown_scalars(run_dir / "tensorboard")
    for tag, points in shown.items():
        steps = [s for s, _ in points]
        assert steps == sorted(set(steps)), tag  # once each, in order
    expected = emitted(first, before=from_step + 1)
    for tag, points in emitted(second).items():
        expected.setdefault(tag, []).extend(points)
    assert_same(shown, expected)
    assert len(list((run_dir / "tensorboard").glob("events.out.tfevents.*"))) == 2
    assert sqlite3.connect(db).execute("select status from runs").fetchone()[0] == "completed"
