"""Helpers the tests share: where the bundled files are, writing specs, and running the real
engine as a subprocess (one-shot, or started and read event by event)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "assets" / "examples" / "digits-experts.distill.json"
COMPRESSED = ROOT / "assets" / "examples" / "digits-compressed.distill.json"
TEACHERS = ROOT / "assets" / "teachers"


def demo_spec() -> dict:
    """The demo spec with absolute teacher paths, so a copy can live anywhere."""
    spec = json.loads(DEMO.read_text())
    for t in spec["teachers"]:
        t["path"] = str((DEMO.parent / t["path"]).resolve())
    return spec


def write_spec(folder: Path, spec: dict, name: str = "spec.distill.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(spec, indent=2))
    return path


ENGINE_MAIN = ROOT / "engine" / "__main__.py"


def engine_cmd(*args: str) -> list[str]:
    """`distill-engine ARGS` as the app starts it: this checkout's engine by absolute path, with
    `-P` (nothing imported from the working directory; never `python -m engine`)."""
    return [sys.executable, "-P", str(ENGINE_MAIN), *map(str, args)]


def torchrun_cmd(processes: int, *args: str) -> list[str]:
    """`distill-engine ARGS` under torchrun, as the app starts it; run it with PYTHONSAFEPATH=1 in
    the environment (SAFE_PATH), which torchrun's workers inherit."""
    return [sys.executable, "-P", "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={processes}", str(ENGINE_MAIN), *map(str, args)]


SAFE_PATH = {"PYTHONSAFEPATH": "1"}


def run_engine(*args, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **SAFE_PATH}
    return subprocess.run(engine_cmd(*args), capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env=env, stdin=subprocess.DEVNULL, **kw)


def parse_events(stdout: str) -> list[dict]:
    """Every stdout line must be one JSON event that fits its model in engine.events (the
    models raise ProtocolError otherwise); returned as plain dicts."""
    from engine.events import parse_event

    return [json.loads(line) for line in stdout.splitlines() if parse_event(line)]


def start_engine(spec, run_dir, db):
    """`engine run` in the background, with pipes to send commands and read events."""
    return subprocess.Popen(engine_cmd("run", spec, "--run-dir", run_dir, "--db", db), cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(proc, kind, count=1):
    """Read events until the count-th one of this kind."""
    seen = 0
    for line in proc.stdout:
        if json.loads(line)["event"] == kind:
            seen += 1
            if seen == count:
                return


def image_onnx(path: Path, shape: list, meta: dict, softmax: bool = False, classes: int = 3) -> Path:
    """A small ONNX image model built by hand: flatten, one linear layer (zeros), optionally a
    softmax; `meta` goes into its metadata as an export script would write it."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    width = int(np.prod([d for d in shape[1:] if isinstance(d, int)]))
    nodes = [helper.make_node("Flatten", ["x"], ["flat"]),
             helper.make_node("Gemm", ["flat", "w", "b"], ["z" if softmax else "y"])]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["z"], ["y"], axis=1))
    graph = helper.make_graph(
        nodes, "image", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", classes])],
        [helper.make_tensor("w", TensorProto.FLOAT, [width, classes], np.zeros(width * classes)),
         helper.make_tensor("b", TensorProto.FLOAT, [classes], np.zeros(classes))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path
