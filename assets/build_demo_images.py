"""Rebuild the image-folder example's photos: scikit-learn's digits as small RGB pictures.

    python assets/build_demo_images.py

Writes assets/examples/digit-photos/: `labelled/<digit>/` (one subfolder per class), `unlabelled/`
(a flat transfer set the teachers label) and `test/<digit>/` (a labelled test folder). Each 8×8
digit is scaled to 24×24, given a faint colour tint and a little noise, and saved as JPEG or PNG,
so the folder exercises decoding, colour conversion and resizing. Deterministic (fixed seed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

HERE = Path(__file__).resolve().parent
OUT = HERE / "examples" / "digit-photos"
LABELLED, UNLABELLED = 500, 800  # the rest (497) is the test folder


def picture(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    grey = Image.fromarray((digit / 16 * 255).astype(np.uint8)).resize((24, 24), Image.Resampling.BILINEAR)
    g = np.asarray(grey, dtype=np.float32)[..., None]
    tint = rng.uniform(0.85, 1.0, size=3)
    rgb = g * tint + rng.normal(0, 4, size=(24, 24, 3))
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def main() -> None:
    d = load_digits()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(d.target))
    for rank, i in enumerate(order):
        y = int(d.target[i])
        folder = (OUT / "labelled" / str(y) if rank < LABELLED else OUT / "unlabelled" if rank < LABELLED + UNLABELLED
                  else OUT / "test" / str(y))
        folder.mkdir(parents=True, exist_ok=True)
        image = picture(d.images[i], rng)
        if rank % 3:
            image.save(folder / f"digit-{i:04d}.jpg", quality=92)
        else:
            image.save(folder / f"digit-{i:04d}.png", optimize=True)
    print(f"wrote {len(order)} pictures under {OUT}")


if __name__ == "__main__":
    main()
