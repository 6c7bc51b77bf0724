"""SIGKILL the engine at random moments, during checkpoint saves too; `resume` always finishes
the run, with exactly the weights of a run that was never interrupted.

The number of kills is `DISTILL_KILL_TEST_KILLS` (default 8; the figure in the closing note
comes from 50).
"""

import json
import os
import random
import signal
import sqlite3
import subprocess
import time

import pytest
import torch
from safetensors.torch import load_file

from engine.checkpoint import FAULT_DELAY_ENV, has_checkpoint
from tests.helpers import ROOT, engine_cmd, run_engine, write_spec

pytestmark = pytest.mark.slow  # trains, kills and resumes the engine subprocess

KILLS = int(os.environ.get("DISTILL_KILL_TEST_KILLS", "8"))


def popen(*args, delay: float = 0.02) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", FAULT_DELAY_ENV: str(delay)}  # widen each save
    return subprocess.Popen(engine_cmd(*args), cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def kill_after(proc: subprocess.Popen, events: int, pause: float) -> bool:
    """Kill after `events` events and `pause` seconds; False if the run finished first."""
    for _ in range(events):
        line = proc.stdout.readline()
        if not line:
            break
        if json.loads(line)["event"] == "finished":
            proc.wait(timeout=60)
            return False
    time.sleep(pause)
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return True


def test_random_sigkills_then_resume_completes_with_the_same_weights(tmp_path, demo_dict):
    demo_dict["training"].update(epochs=max(30, 3 * KILLS), cpu_threads=1)
    demo_dict["student"]["architecture"]["dropout"] = 0.1
    spec = write_spec(tmp_path, demo_dict)
    db = tmp_path / "db.sqlite"
    whole = run_engine("run", spec, "--run-dir", tmp_path / "whole", "--db", db, timeout=600)
    assert whole.returncode == 0, whole.stderr

    rng = random.Random(1234)
    folder = tmp_path / "killed"
    kills = during_save = 0
    finished = False
    while kills < KILLS and not finished:
        args = ("resume", folder) if has_checkpoint(folder) else ("run", spec, "--run-dir", folder, "--db", db)
        proc = popen(*args)
        if not kill_after(proc, rng.randint(0, 30), rng.uniform(0.0, 0.12)):
            finished = proc.returncode == 0
            assert proc.returncode == 0
            continue
        kills += 1
        during_save += any(p.name.startswith(".tmp-step-") for p in (folder / "checkpoints").glob(".*")) \
            if (folder / "checkpoints").is_dir() else 0

    # one more kill, certainly in the middle of a checkpoint save (a slow save to aim at)
    if not finished and has_checkpoint(folder):
        proc = popen("resume", folder, delay=3.0)
        deadline = time.monotonic() + 60
        while not list((folder / "checkpoints").glob(".tmp-step-*")) and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        during_save += 1

    if not finished:
        resumed = run_engine("resume", folder, timeout=600)
        assert resumed.returncode == 0, resumed.stderr
    print(f"\n{kills} random kills ({during_save} during a checkpoint save); the run completed")

    a = load_file(str(tmp_path / "whole" / "student.safetensors"))
    b = load_file(str(folder / "student.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    statuses = [s for (s,) in sqlite3.connect(db).execute("select status from runs order by id")]
    assert statuses[0] == "completed" and statuses[-1] == "completed"
    assert not list((folder / "checkpoints").glob(".tmp-step-*"))
