"""The one interface every data source fulfils, and the registry of sources by format.

A source is a set of samples of one shape: its length, any samples read by index (so a
source may stream them from disk), its labels if it has any (indices into the spec's
classes; small, so held in memory) and the bytes that identify it (for a fingerprint).

Adding a data format: its settings class in engine/spec.py (in the `DataSource` union) and one
module in engine/data/ with a function decorated `@register("format")` that opens the source,
imported in engine/data/__init__.py.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from engine.errors import InputError


class Source(ABC):
    """Samples float32 [N, *sample_shape] as the source holds them (models normalise
    themselves), labels int64 [N] or None."""

    sample_shape: tuple[int, ...]
    labels: np.ndarray | None  # -1 where a sample has none (an unlabelled folder beside a labelled one)
    notes: tuple[str, ...] = ()  # how the samples were read, said in the run log
    table: object | None = None  # a table's columns and encoding (engine/data/table.py), or None
    streamed: bool = False  # read from disk batch by batch (Samples), never held whole in memory
    dtype: np.dtype = np.dtype(np.float32)  # the type `read_native` gives (uint8 images stay uint8)

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def read(self, idx: np.ndarray) -> np.ndarray:
        """The samples at `idx`, in that order, float32 [len(idx), *sample_shape]."""

    @abstractmethod
    def digest(self, h) -> None:
        """Feed the bytes that identify the samples into the hash `h` (hashlib)."""

    def read_native(self, idx: np.ndarray) -> np.ndarray:
        """The samples at `idx` in the source's own type (`dtype`): what a streamed batch carries
        to the device, where it becomes float32."""
        return self.read(idx)

    def raw_inputs(self, idx: np.ndarray) -> dict[str, np.ndarray] | None:
        """The exported model's inputs for the samples at `idx` where they differ from the
        samples (a table's raw cells before its encoding, engine/data/table.py), else None."""
        return None

    text: object | None = None  # texts: the student's tokenizer (engine/tokenizer.py), else None

    def texts(self, idx: np.ndarray) -> np.ndarray | None:
        """The raw texts of the samples at `idx` (object array of str), what text teachers read
        through their own tokenizers; None for samples that are not texts."""
        return None


class Samples:
    """The samples of a streamed source at positions `idx`: indexed like a float32 array
    (`x[:8]`, `x[rows]`), each read from disk when asked for; never loaded whole (converting it
    to an array is refused, so code that would is found, not slow)."""

    def __init__(self, source: Source, idx: np.ndarray, fingerprint: str):
        self.source, self.idx, self.fingerprint = source, np.asarray(idx, dtype=np.int64), fingerprint
        self.shape = (len(self.idx), *source.sample_shape)
        self.dtype = np.dtype(np.float32)
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return len(self.idx)

    def positions(self, key) -> np.ndarray:
        """The source's sample numbers for `key` (an int, a slice or an array of positions)."""
        if isinstance(key, (int, np.integer)):
            return self.idx[[key]]
        return np.asarray(self.idx[key], dtype=np.int64).reshape(-1)

    def __getitem__(self, key) -> np.ndarray:
        out = self.source.read(self.positions(key))
        return out[0] if isinstance(key, (int, np.integer)) else out

    def native(self, key) -> np.ndarray:
        return self.source.read_native(self.positions(key))

    def spread(self, n: int) -> np.ndarray:
        """Up to n samples spread evenly over the part (for statistics), float32."""
        pick = np.unique(np.linspace(0, len(self) - 1, num=min(n, len(self))).astype(np.int64))
        return self[pick]

    def __array__(self, dtype=None, copy=None):
        raise TypeError(f"{len(self)} streamed samples are read in batches, not as one array")


class ArraySource(Source):
    """Samples held in memory (or memory-mapped) as one array."""

    def __init__(self, x: np.ndarray, y: np.ndarray | None, notes: tuple[str, ...] = (),
                 table: object | None = None, raw: dict[str, np.ndarray] | None = None):
        self.x, self.labels, self.notes, self.table, self.raw = x, y, notes, table, raw
        self.sample_shape = tuple(x.shape[1:])

    def __len__(self) -> int:
        return len(self.x)

    def read(self, idx: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self.x[idx], dtype=np.float32)

    def digest(self, h) -> None:
        h.update(repr((self.x.shape, str(self.x.dtype))).encode())
        h.update(np.ascontiguousarray(self.x).data)

    def raw_inputs(self, idx: np.ndarray) -> dict[str, np.ndarray] | None:
        return None if self.raw is None else {k: v[idx] for k, v in self.raw.items()}


Opener = Callable[..., Source]  # (settings of one DataSource class, the spec's classes, **options) -> Source
SOURCES: dict[str, Opener] = {}


def register(fmt: str):
    """Function decorator: open data of `data.format == fmt` with it."""
    def add(opener: Opener) -> Opener:
        if fmt in SOURCES:
            raise ValueError(f"data format '{fmt}' is registered twice")
        SOURCES[fmt] = opener
        return opener
    return add


def open_source(settings, classes: list[str], table: object | None = None, cache_dir=None,
                text: object | None = None) -> Source:
    """`table`: a test file of a table is read with the training file's columns and encoding;
    `text`: a test file of texts, with the training texts' tokenizer. `cache_dir`: where a source
    may keep what it learnt about its files (given to openers that take it)."""
    import inspect

    opener = SOURCES.get(settings.format)
    if opener is None:
        raise InputError.one("data.format", f"no data format '{settings.format}' in this build",
                             f"use one of: {', '.join(SOURCES)}")
    takes = inspect.signature(opener).parameters
    options = {k: v for k, v in (("table", table), ("cache_dir", cache_dir), ("text", text))
               if v is not None and k in takes}
    return opener(settings, classes, **options)


def require_file(path, where: str) -> None:
    if not path.is_file():
        raise InputError.one(where, f"no data file at {path}", "check the path in the spec")


def memory_available() -> int:
    """Bytes of memory this process can still get: the machine's MemAvailable, and no more than
    its address-space limit (`ulimit -v`) leaves."""
    import resource

    free = _machine_available()
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    if limit != resource.RLIM_INFINITY:
        try:
            with open("/proc/self/status") as f:
                used = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
        except (OSError, ValueError, StopIteration):
            used = 0
        free = min(free, max(limit - used, 0))
    return free


def _machine_available() -> int:
    import os

    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def check_declared_size(where: str, name: str, what: str, shape, nbytes: int) -> None:
    """Refuse a file whose header declares data larger than this machine's free memory, before
    anything is allocated: a few bytes of header (or a small compressed file) must not take
    gigabytes. `nbytes`: what loading it would take, in Python integers (no overflow)."""
    available = memory_available()
    if nbytes > available:
        raise InputError.one(where, f"{name}: {what} declares shape {list(shape)}, which would take "
                             f"{_gib(nbytes)} in memory, more than the {_gib(available)} this machine "
                             "has free (a damaged or forged header, or data too large to load)",
                             "check the file; split a genuinely large data set into smaller files",
                             "data_too_large")
