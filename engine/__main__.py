"""`python -m engine ...` is `distill-engine ...`.

The app and the tests start it by absolute path instead, `python -P /…/engine/__main__.py ...`,
so that nothing is imported from the working directory (`-m` would put it first on sys.path,
and a folder named `engine`, `torch` or `numpy` there would run in its place): then this file
puts the folder that holds this `engine` package first on sys.path, and the engine imported is
the one beside it. Only `sys` and `os` (already loaded by the interpreter) run before that.
"""

import os
import sys

if not __package__:  # started as a file, not with -m
    _package = os.path.dirname(os.path.abspath(__file__))
    # without -P (torchrun's workers get PYTHONSAFEPATH instead) Python put this file's own folder first
    sys.path[:] = [p for p in sys.path if not p or os.path.abspath(p) != _package]
    sys.path.insert(0, os.path.dirname(_package))

if __name__ == "__main__":  # not when multiprocessing's spawn re-runs this file as __mp_main__
    from engine.cli import main

    sys.exit(main())
