"""Augmented images per second on the CPU (engine/augment.py, the default AugmentSpec: random
resized crop, flip, colour jitter); one JSON object on the last line.

    .venv/bin/python bench/augment.py [--batch 256] [--size 64] [--threads 2] [--rounds 20]

A batch of 3×size×size float images in 0-255, a new key each round (new draws); the median
round time after two warm-up rounds. Key `images_per_s`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from engine.augment import Augmenter  # noqa: E402
from engine.spec import AugmentSpec  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    aug = Augmenter(AugmentSpec(), seed=0)
    x = torch.rand(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(0)) * 255
    idx = torch.arange(args.batch)
    times = []
    for key in range(args.rounds + 2):
        start = time.perf_counter()
        aug(x, idx, key)
        times.append(time.perf_counter() - start)
    median = statistics.median(times[2:])
    print(json.dumps({"bench": "augment", "device": "cpu", "threads": args.threads, "batch": args.batch,
                      "shape": [3, args.size, args.size], "rounds": args.rounds,
                      "median_batch_ms": round(median * 1000, 2),
                      "images_per_s": round(args.batch / median)}))


if __name__ == "__main__":
    main()
