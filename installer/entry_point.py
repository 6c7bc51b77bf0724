"""The installed app's one executable, `distill-studio`, is three programs by its first argument:

    distill-studio [PROJECT] [options]   the desktop app (gui.app)
    distill-studio --engine COMMAND …    the engine, as `distill-engine COMMAND …` (engine.cli)
    distill-studio --torchrun …          PyTorch's launcher, as `torchrun …` (several GPUs)

The app starts its engine processes as `distill-studio --engine …` (gui/engine_client/
engine_command.py), so the bundle needs no Python of its own. PyInstaller freezes this file.
"""

import multiprocessing
import sys


def main() -> int:
    multiprocessing.freeze_support()  # a multiprocessing child of the frozen app runs its task, not the app
    argv = sys.argv[1:]
    if argv[:1] == ["--engine"]:
        from engine.cli import main as engine_main

        sys.argv[0] = "distill-engine"  # for the engine's usage and error messages
        return engine_main(argv[1:])
    if argv[:1] == ["--torchrun"]:
        from torch.distributed.run import main as torchrun_main

        sys.argv[0] = "torchrun"
        torchrun_main(argv[1:])
        return 0
    from gui.app import main as app_main

    return app_main(argv)


if __name__ == "__main__":
    sys.exit(main())
