"""IDX files, the MNIST format (gzipped or not), e.g. Debian's dataset-fashion-mnist."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from engine.data.labels import check_indices
from engine.data.source import ArraySource, register, require_file
from engine.errors import InputError
from engine.spec import IdxData

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@register("idx")
def open_idx(src: IdxData, classes: list[str]) -> ArraySource:
    require_file(src.images, "data.images")
    x = read_idx(src.images, "data.images").astype(np.float32)
    if x.ndim == 3:
        x = x[:, None, :, :]  # [N, H, W] images get their one channel
    y = None
    if src.labels is not None:
        if not src.labels.is_file():
            raise InputError.one("data.labels", f"no label file at {src.labels}",
                                 "check the path, or remove `labels` for unlabeled data")
        y = read_idx(src.labels, "data.labels").astype(np.int64).reshape(-1)
        if len(y) != len(x):
            raise InputError.one("data.labels", f"{len(y)} labels for {len(x)} images",
                                 "use the label file that belongs to these images")
        y = check_indices(y, classes, "data.labels")
    return ArraySource(x, y)


def read_idx(path: Path, where: str) -> np.ndarray:
    """The IDX format: 2 zero bytes, a type byte, a rank byte, big-endian int32 sizes, data."""
    with path.open("rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise InputError.one(where, f"{path.name} is a damaged gzip file ({exc})",
                                 "download or copy the file again") from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_TYPES:
        raise InputError.one(where, f"{path.name} is not an IDX file",
                             "use MNIST-format files such as train-images-idx3-ubyte(.gz)")
    rank = raw[3]
    if not 1 <= rank <= 4 or len(raw) < 4 + 4 * rank:
        raise InputError.one(where, f"{path.name} has a damaged IDX header (rank {rank})",
                             "use MNIST-format files such as train-images-idx3-ubyte(.gz)")
    dims = np.frombuffer(raw, dtype=">i4", count=rank, offset=4).astype(int)
    if np.any(dims < 0):
        raise InputError.one(where, f"{path.name} has a damaged IDX header (sizes {list(dims)})",
                             "copy the file again")
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    need = int(np.prod(dims)) * dtype.itemsize
    start = 4 + 4 * rank
    if len(raw) - start < need:
        raise InputError.one(where, f"{path.name} is truncated: {len(raw) - start} bytes "
                             f"of data for shape {list(dims)}", "copy the complete file")
    return np.frombuffer(raw, dtype=dtype, count=int(np.prod(dims)), offset=start).reshape(dims)
