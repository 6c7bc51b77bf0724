"""How the app starts its engine process: the one place that knows.

From a source checkout or a pip install the engine is the same Python as the app running the
`engine/__main__.py` beside the app's own packages, by absolute path and with `-P`: never
`python -m engine`, which puts the working directory first on sys.path and so runs whatever
`engine` (or `torch`, `numpy`, …) folder sits where the app was started. PYTHONSAFEPATH does the
same for torchrun's workers, which inherit the environment. (Not `-I`: it would also ignore
PYTHONPATH and the user's site-packages, where a `pip install --user` puts the app and torch.)

In the installed app (a PyInstaller folder, `sys.frozen` set; its imports come only from the
bundle, never from the working directory) there is no Python beside it: the app's own
executable is the engine too, when its first argument is `--engine` (see
installer/entry_point.py), and it starts PyTorch's launcher (torchrun) with `--torchrun`. On
Windows the bundle has a second, console program for this, distill-engine.exe (the app itself
is windowed: no console, and no stdout for the events).
"""

from __future__ import annotations

import sys
from pathlib import Path

ENGINE_FLAG = "--engine"  # frozen app: `distill-studio --engine run SPEC` is `distill-engine run SPEC`
TORCHRUN_FLAG = "--torchrun"  # frozen app: `distill-studio --torchrun …` is `torchrun …`
# set for every engine child: its streams unbuffered (stderr arrives as written) and UTF-8 (the
# app decodes UTF-8; on Windows Python's default would be the console's code page), and no
# folder of the working directory on sys.path (torchrun's workers: see the module's docstring)
ENGINE_ENVIRONMENT = {"PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8", "PYTHONSAFEPATH": "1"}


def frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def engine_program() -> tuple[str, list[str]]:
    """The program that is the engine and the arguments that come before the engine's own."""
    if frozen():
        if sys.platform == "win32":
            return str(Path(sys.executable).with_name("distill-engine.exe")), [ENGINE_FLAG]
        return sys.executable, [ENGINE_FLAG]
    return sys.executable, ["-P", str(engine_main())]


def engine_main() -> Path:
    """The absolute path of the engine's `__main__.py`: the `engine` package installed beside
    this app's `gui` (one distribution ships both), never one looked up from the working directory."""
    return Path(__file__).resolve().parents[2] / "engine" / "__main__.py"


def engine_command(args: list[str], processes: int = 1) -> tuple[str, list[str]]:
    """Program and arguments that run `distill-engine ARGS`: itself, or under torchrun with one
    process per GPU (rank 0 writes the events the app reads)."""
    program, lead = engine_program()
    if processes <= 1:
        return program, [*lead, *args]
    launcher = ["--standalone", f"--nproc_per_node={processes}"]
    if frozen():  # torchrun from the bundle; each worker is the bundle's executable in engine mode
        return program, [TORCHRUN_FLAG, *launcher, "--no-python", program, *lead, *args]
    # torchrun runs each worker as `python -u SCRIPT …`: the script by absolute path, and -P by
    # the PYTHONSAFEPATH the workers inherit
    return program, ["-P", "-m", "torch.distributed.run", *launcher, str(engine_main()), *args]


def describe_program() -> str:
    """For messages: what could not be started."""
    program, lead = engine_program()
    return " ".join([program, *lead])
