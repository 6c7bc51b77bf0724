"""Each teacher's input contract (`teachers[i].input` in the spec), applied to the raw samples.

The data holds samples one way (images as [C, H, W] floats as the file stores them, tables as
encoded columns); a teacher made elsewhere may expect another: its own columns, another size,
BGR, pixels scaled to 0-1, ImageNet mean/std, channels last, float64 or uint8. `InputAdapter`
turns a batch of raw samples into exactly what one teacher takes, in the order the spec
documents (columns; resize, crop; channel order; scale; mean/std; layout; number type). The
student and the data are never changed by it.

A layout left at `auto` is read from the model's input shape: an ONNX input [N, H, W, C] is
channels-last, so the images are transposed for it — never reshaped because the counts match.
"""

from __future__ import annotations

import json
import math

import numpy as np

from engine.errors import InputError
from engine.spec import TeacherInput

CHANNELS = (1, 3, 4)  # grey, RGB, RGBA

Dims = tuple[int | None, ...]  # a model's input shape per sample; None: any size


def _fits(dims: Dims, shape: tuple[int, ...]) -> bool:
    return len(dims) == len(shape) and all(d is None or d == s for d, s in zip(dims, shape))


class InputAdapter:
    """What one teacher sees of a batch of raw samples."""

    fields = "layout, size, columns"  # the contract's settings a failing model most likely needs

    def __init__(self, contract: TeacherInput, sample_shape: tuple[int, ...], dims: Dims | None,
                 dtype: np.dtype, table, where: str, name: str):
        self.contract, self.dtype, self.where, self.name = contract, np.dtype(dtype), where, name
        self.sample_shape, self.dims, self.table = tuple(sample_shape), dims, table  # to build variants
        self.notes: list[str] = []  # what was decided for the user, said in the log
        c = contract
        self.columns = None
        if c.columns is not None:
            if table is None:
                raise InputError.one(f"{where}.columns", "input.columns picks columns of a table, and "
                                     "the data is not a table", "remove input.columns")
            self.columns = np.asarray(table.columns_for(c.columns, f"{where}.columns"), dtype=np.int64)
            sample_shape = (len(self.columns),)
        self.image = len(sample_shape) == 3
        if not self.image:
            used = [k for k in ("size", "crop") if getattr(c, k) is not None] + \
                (["channel_order"] if c.channel_order != "rgb" else []) + \
                (["layout"] if c.layout != "auto" else [])
            if used:
                raise InputError.one(f"{where}.{used[0]}", f"input.{used[0]} is for images [C, H, W]; "
                                     f"the samples are shaped {list(sample_shape)}",
                                     f"remove input.{used[0]}")
        channels = sample_shape[0] if self.image else (sample_shape[-1] if sample_shape else 1)
        for key in ("mean", "std"):
            values = getattr(c, key)
            if values is not None and len(values) not in (1, channels):
                raise InputError.one(f"{where}.{key}", f"input.{key} has {len(values)} values; the "
                                     f"samples have {channels} {'channels' if self.image else 'values'}",
                                     f"give one value, or one per {'channel' if self.image else 'value'}")
        if c.channel_order == "bgr" and channels != 3:
            raise InputError.one(f"{where}.channel_order", f"bgr swaps the 3 colour channels; the "
                                 f"images have {channels}", "set channel_order to rgb")
        shape = tuple(sample_shape)
        if self.image:
            h, w = c.size or shape[1:]
            if c.crop is not None:
                if c.crop[0] > h or c.crop[1] > w:
                    raise InputError.one(f"{where}.crop", f"a {c.crop[0]}×{c.crop[1]} crop does not fit "
                                         f"in {h}×{w} images", "crop at most the (resized) image size")
                h, w = c.crop
            shape = (shape[0], h, w)
        self.layout = self._layout(c.layout, shape, dims)
        self.out_shape = (shape[1], shape[2], shape[0]) if self.layout == "nhwc" else shape
        self.reshape_to: tuple[int, ...] | None = None
        if dims is not None and not _fits(dims, self.out_shape):
            if any(d is None for d in dims) or math.prod(dims) != math.prod(self.out_shape):
                shown = [d if d is not None else "?" for d in dims]
                count = f" ({math.prod(dims)} values)" if None not in dims else ""
                raise InputError.one(
                    f"{where.removesuffix('.input')}.path", f"teacher '{name}' expects samples shaped "
                    f"{shown}{count}; the data gives {list(self.out_shape)} ({math.prod(self.out_shape)} "
                    "values)", self._size_hint(dims, shape) or "use a teacher trained on this kind of "
                    "data, or set its input contract (input.columns for tables)", "shape_mismatch")
            if self.image and len(dims) == 3:  # the same rank and count, another order: never reshape
                raise InputError.one(f"{where}.layout", f"teacher '{name}' takes {list(dims)} and the "
                                     f"images are {list(self.out_shape)}: the same values in another "
                                     "order", "set input.layout (nchw or nhwc), or input.size", "shape_mismatch")
            self.reshape_to = tuple(int(d) for d in dims)  # a flat vector of the same values

    def _layout(self, declared: str, shape: tuple[int, ...], dims: Dims | None) -> str:
        """nchw or nhwc: as declared, or read from the model's input shape."""
        if not self.image:
            return "flat"
        if declared != "auto":
            return declared
        if dims is None or len(dims) != 3:
            return "nchw"
        nchw, nhwc = _fits(dims, shape), _fits(dims, (shape[1], shape[2], shape[0]))
        if nhwc and (not nchw or (dims[2] in CHANNELS and dims[0] not in CHANNELS)):
            self.notes.append(f"teacher '{self.name}' takes [{', '.join(str(d or '?') for d in dims)}] "
                              "images (channels last): the samples are transposed for it, not reshaped")
            return "nhwc"
        return "nchw"

    def _size_hint(self, dims: Dims, shape: tuple[int, ...]) -> str | None:
        """Images of another fixed size: say which size to set."""
        if not self.image or len(dims) != 3:
            return None
        flipped = "nchw" if self.layout == "nhwc" else "nhwc"
        if _fits(dims, (shape[1], shape[2], shape[0]) if flipped == "nhwc" else shape):
            return f"the teacher takes {flipped} images: set its input.layout to {flipped}"
        nhwc = dims[2] == shape[0] and dims[0] != shape[0]
        spatial = dims[:2] if nhwc else dims[1:]
        if None in spatial or (dims[2] if nhwc else dims[0]) != shape[0]:
            return None
        return (f"if the teacher takes these images at {spatial[0]}×{spatial[1]}, set its input.size to "
                f"[{spatial[0]}, {spatial[1]}] (or a larger size and input.crop); otherwise use a teacher "
                "trained on this kind of data")

    @property
    def bytes_per_sample(self) -> int:
        """The most one sample takes at any stage (the resize before a crop too), twice over for
        the copies between stages."""
        stages = [math.prod(self.sample_shape), math.prod(self.out_shape)]
        if self.image and self.contract.size is not None:
            stages.append(self.sample_shape[0] * self.contract.size[0] * self.contract.size[1])
        return 2 * max(stages) * max(4, self.dtype.itemsize)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        c = self.contract
        if self.columns is not None:
            x = x[:, self.columns]
        if self.image and (c.size is not None and tuple(c.size) != x.shape[2:]):
            x = _resize(x, tuple(c.size))
        if self.image and c.crop is not None:
            top, left = (x.shape[2] - c.crop[0]) // 2, (x.shape[3] - c.crop[1]) // 2
            x = x[:, :, top:top + c.crop[0], left:left + c.crop[1]]
        if c.channel_order == "bgr":
            x = x[:, ::-1]
        if c.scale != 1.0:
            x = x * np.float32(c.scale)
        if c.mean is not None or c.std is not None:
            x = (x - self._per_channel(c.mean, 0.0, x.ndim)) / self._per_channel(c.std, 1.0, x.ndim)
        if self.layout == "nhwc":
            x = x.transpose(0, 2, 3, 1)
        if self.reshape_to is not None:
            x = x.reshape((len(x),) + self.reshape_to)
        if self.dtype == np.uint8:
            x = np.clip(np.rint(x), 0, 255)
        return np.ascontiguousarray(x, dtype=self.dtype)

    def _per_channel(self, values: list[float] | None, default: float, ndim: int) -> np.ndarray:
        v = np.asarray(values if values is not None else [default], dtype=np.float32)
        return v.reshape((1, -1, 1, 1)) if self.image and ndim == 4 else v.reshape((1, -1))

    def describe(self) -> str:
        """The contract in a few words, e.g. 'NHWC · 224×224 · ×0.00392 · mean/std'."""
        c, parts = self.contract, []
        if self.columns is not None:
            parts.append(f"{len(c.columns)} columns")
        if self.layout == "nhwc":
            parts.append("NHWC")
        if c.size:
            parts.append(f"{c.size[0]}×{c.size[1]}")
        if c.crop:
            parts.append(f"crop {c.crop[0]}×{c.crop[1]}")
        if c.channel_order == "bgr":
            parts.append("BGR")
        if c.scale != 1.0:
            parts.append(f"×{c.scale:.4g}")
        if c.mean is not None or c.std is not None:
            parts.append("mean/std")
        if self.dtype != np.float32:
            parts.append(str(self.dtype))
        return " · ".join(parts) or "as the data holds it"

    @property
    def key(self) -> str:
        """What decides the teacher's outputs besides its file and the data (the cache key)."""
        return json.dumps([self.contract.model_dump(mode="json"), self.layout, str(self.dtype)])


def _resize(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize with antialiasing (as Pillow and torchvision do when shrinking)."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    return F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=True).numpy()
