"""How the app starts its engine process: the one place that knows.

From a source checkout or a pip install the engine is `python -m engine …` run by the same
Python as the app. In the installed app (a PyInstaller folder, `sys.frozen` set) there is no
Python beside it: the app's own executable is the engine too, when its first argument is
`--engine` (see installer/entry_point.py), and it starts PyTorch's launcher (torchrun) with
`--torchrun`. On Windows the bundle has a second, console program for this, distill-engine.exe
(the app itself is windowed: no console, and no stdout for the events).
"""

from __future__ import annotations

import sys
from pathlib import Path

ENGINE_FLAG = "--engine"  # frozen app: `distill-studio --engine run SPEC` is `distill-engine run SPEC`
TORCHRUN_FLAG = "--torchrun"  # frozen app: `distill-studio --torchrun …` is `torchrun …`
# set for every engine child: its streams unbuffered (stderr arrives as written) and UTF-8 (the
# app decodes UTF-8; on Windows Python's default would be the console's code page)
ENGINE_ENVIRONMENT = {"PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"}


def frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def engine_program() -> tuple[str, list[str]]:
    """The program that is the engine and the arguments that come before the engine's own."""
    if frozen():
        if sys.platform == "win32":
            return str(Path(sys.executable).with_name("distill-engine.exe")), [ENGINE_FLAG]
        return sys.executable, [ENGINE_FLAG]
    return sys.executable, ["-m", "engine"]


def engine_command(args: list[str], processes: int = 1) -> tuple[str, list[str]]:
    """Program and arguments that run `distill-engine ARGS`: itself, or under torchrun with one
    process per GPU (rank 0 writes the events the app reads)."""
    program, lead = engine_program()
    if processes <= 1:
        return program, [*lead, *args]
    launcher = ["--standalone", f"--nproc_per_node={processes}"]
    if frozen():  # torchrun from the bundle; each worker is the bundle's executable in engine mode
        return program, [TORCHRUN_FLAG, *launcher, "--no-python", program, *lead, *args]
    return program, ["-m", "torch.distributed.run", *launcher, *lead, *args]


def describe_program() -> str:
    """For messages: what could not be started."""
    program, lead = engine_program()
    return " ".join([program, *lead])
