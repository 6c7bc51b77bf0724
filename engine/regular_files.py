"""Reading a user's file only when it is a regular file (torch-free; the app uses it too).

A path may name a named pipe (FIFO), a device, a socket or a folder: opening a FIFO for reading
blocks until someone writes to it (the engine hung, deaf to Ctrl-C and SIGTERM; the app's window
froze), and reading /dev/zero never ends. `read_regular_bytes` opens without blocking, checks
what was opened (fstat of the open file, so a swap of the path in between changes nothing), and
refuses anything that is not a regular file, with a message that says what it is. A size limit,
where given, is checked on the file's size and on what is actually read (a /proc file says 0).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


class NotRegularFile(OSError):
    """The path is there but is no regular file; str() says what it is, for a message."""


class FileTooLarge(OSError):
    """The file holds more than the caller's limit; str() says both sizes."""


def kind_of(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_regular_bytes(path: str | Path, max_bytes: int | None = None) -> bytes:
    """The bytes of the regular file at `path`. NotRegularFile for anything else (never blocks
    on a FIFO), FileTooLarge past `max_bytes`, OSError (FileNotFoundError, …) as open raises it."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(f"it is {kind_of(mode)}, not a regular file")
        size = os.fstat(fd).st_size
        if max_bytes is not None and size > max_bytes:
            raise FileTooLarge(f"it holds {size:,} bytes, more than the {max_bytes:,} allowed")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read() if max_bytes is None else f.read(max_bytes + 1)
        if max_bytes is not None and len(data) > max_bytes:
            raise FileTooLarge(f"it holds more than the {max_bytes:,} bytes allowed")
        return data
    finally:
        os.close(fd)


def read_regular_text(path: str | Path, max_bytes: int | None = None, encoding: str = "utf-8") -> str:
    """read_regular_bytes, decoded (UnicodeDecodeError as bytes.decode raises it)."""
    return read_regular_bytes(path, max_bytes).decode(encoding)
