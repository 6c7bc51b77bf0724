"""`python -m engine ...` is `distill-engine ...`."""

import sys

from engine.cli import main

sys.exit(main())
