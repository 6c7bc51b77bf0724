"""IDX files, the MNIST format (gzipped or not), e.g. Debian's dataset-fashion-mnist."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np

from engine.data.labels import check_indices
from engine.data.source import ArraySource, check_declared_size, register, require_file
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
    """The IDX format: 2 zero bytes, a type byte, a rank byte, big-endian int32 sizes, data. The
    sizes are checked (against the file, and against free memory with the float32 copy the
    samples become) before the data is read or decompressed: a small .gz must not unpack to
    gigabytes."""
    with path.open("rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    try:
        with (gzip.open(path, "rb") if gzipped else path.open("rb")) as f:
            head = f.read(4)
            if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in _IDX_TYPES:
                raise InputError.one(where, f"{path.name} is not an IDX file",
                                     "use MNIST-format files such as train-images-idx3-ubyte(.gz)")
            rank = head[3]
            sizes = f.read(4 * rank)
            if not 1 <= rank <= 4 or len(sizes) < 4 * rank:
                raise InputError.one(where, f"{path.name} has a damaged IDX header (rank {rank})",
                                     "use MNIST-format files such as train-images-idx3-ubyte(.gz)")
            dims = [int(d) for d in np.frombuffer(sizes, dtype=">i4")]
            if any(d < 0 for d in dims):
                raise InputError.one(where, f"{path.name} has a damaged IDX header (sizes {dims})",
                                     "copy the file again")
            dtype = np.dtype(_IDX_TYPES[head[2]])
            count = math.prod(dims)  # Python integers: a product past int64 is still seen as huge
            need = count * dtype.itemsize
            start = 4 + 4 * rank
            if not gzipped and path.stat().st_size - start < need:
                raise InputError.one(where, f"{path.name} is truncated: {path.stat().st_size - start} "
                                     f"bytes of data for shape {dims}", "copy the complete file")
            check_declared_size(where, path.name, "its IDX header", dims, need + count * 4)
            raw = f.read(need)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError.one(where, f"{path.name} is a damaged gzip file ({exc})",
                             "download or copy the file again") from None
    if len(raw) < need:
        raise InputError.one(where, f"{path.name} is truncated: {len(raw)} bytes "
                             f"of data for shape {dims}", "copy the complete file")
    return np.frombuffer(raw, dtype=dtype, count=count).reshape(dims)
