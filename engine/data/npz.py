"""A NumPy .npz file with an array `x` (samples first) and optionally `y` (labels). A sample
whose label is the empty string (names) or −1 (indices) has none: with some labelled samples
it is an unlabelled one, which goes to training only (a few labels beside a transfer set)."""

from __future__ import annotations

import numpy as np

from engine.data.labels import labels_to_indices
from engine.data.source import ArraySource, check_declared_size, register, require_file
from engine.errors import InputError
from engine.spec import NpzData
from engine.text_safety import listed


@register("npz")
def open_npz(src: NpzData, classes: list[str]) -> ArraySource:
    path = src.path
    require_file(path, "data.path")
    check_members(path, "data.path")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            if "x" not in arrays.files:
                raise InputError.one("data.path", f"{path.name} has no array named 'x' "
                                     f"(it has: {listed(arrays.files) or 'nothing'})",
                                     "save the inputs as x, e.g. np.savez(file, x=inputs, y=labels)")
            x = arrays["x"]
            y = arrays["y"] if "y" in arrays.files else None
    except InputError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise InputError.one("data.path", f"{path.name} is not a readable .npz file ({exc})",
                             "save it with numpy.savez from numeric arrays (no objects)") from None
    if not np.issubdtype(x.dtype, np.number) and x.dtype != np.bool_:
        raise InputError.one("data.path", f"x in {path.name} holds {x.dtype}, not numbers",
                             "store numeric inputs in x")
    x, notes = _channels_first(x.astype(np.float32), src.layout, path.name)
    if y is not None:
        if len(y) != len(x):
            raise InputError.one("data.path", f"{len(y)} labels in y for {len(x)} samples in x",
                                 "give y one label per sample of x")
        y = labels_with_unlabelled(y.reshape(-1), classes, path.name)
    return ArraySource(x, y, notes)


def labels_with_unlabelled(y: np.ndarray, classes: list[str], name: str) -> np.ndarray:
    """Class indices, −1 where a sample has no label ('' or −1)."""
    none = (y == "") if y.dtype.kind in "US" else (y == -1) if np.issubdtype(y.dtype, np.number) else \
        np.zeros(len(y), bool)
    out = np.full(len(y), -1, dtype=np.int64)
    out[~none] = labels_to_indices(y[~none], classes, "data.path")
    if len(y) and none.all():
        raise InputError.one("data.path", f"y in {name} marks every sample unlabelled ('' or −1)",
                             "leave y out of a file without labels, or label some samples")
    return out


def check_members(path, where: str) -> None:
    """Each array's declared shape and type, read from its .npy header inside the zip without
    decompressing its data, against the member's declared size and this machine's free memory:
    a small .npz must not unpack to gigabytes (a zip bomb)."""
    import math
    import zipfile

    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        return  # np.load says what is wrong with it
    with archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue
            try:
                with archive.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                        np.lib.format.read_array_header_2_0
                    shape, _, dtype = read(f)
                    start = f.tell()
            except (ValueError, OSError, EOFError, zipfile.BadZipFile, NotImplementedError) as exc:
                raise InputError.one(where, f"{path.name}: {info.filename} is not a readable array "
                                     f"({str(exc)[:160]})", "save it with numpy.savez from numeric "
                                     "arrays (no objects)") from None
            count = math.prod(shape)
            stored = count * dtype.itemsize
            if start + stored > info.file_size:
                raise InputError.one(where, f"{path.name}: {info.filename} declares shape {list(shape)} "
                                     f"({stored} bytes) but holds {max(info.file_size - start, 0)} bytes "
                                     "(damaged or forged header)", "save the arrays again with numpy.savez")
            # as stored, plus the float32 copy the samples are turned into
            check_declared_size(where, path.name, info.filename, shape, stored + count * 4)


CHANNELS = (1, 3, 4)  # grey, RGB, RGBA


def _channels_first(x: np.ndarray, layout: str, name: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Images as [N, C, H, W]: NHWC arrays are transposed, never reshaped."""
    if x.ndim != 4:
        if layout != "auto":
            raise InputError.one("data.layout", f"layout '{layout}' is for images, and x in {name} "
                                 f"is shaped {list(x.shape)}", "set layout to auto for other data")
        return x, ()
    if layout == "auto":
        nhwc = x.shape[3] in CHANNELS and x.shape[1] not in CHANNELS
        if not nhwc:
            return x, ()
        note = (f"{name}: x is shaped {list(x.shape)}, read as [N, H, W, C] images (NHWC) and "
                "transposed to [N, C, H, W]; set data.layout to nchw if that is wrong")
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2)), (note,)
    if layout == "nhwc":
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2)), ()
    return x, ()
