"""Only regular files are read as specs and projects (issue 22): a named pipe (FIFO) given as a
spec hung `run`, deaf to Ctrl-C and SIGTERM, and one given as a project froze the app."""

from __future__ import annotations

import os
import threading

import pytest

from engine.regular_files import FileTooLarge, NotRegularFile, read_regular_bytes, read_regular_text
from tests.helpers import run_engine

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")


def unblock_later(fifo, after_s: float = 10.0) -> threading.Timer:
    """Should a reader hang on the FIFO (the bug), write `[]` into it after a while, so that the
    test fails on its assertions instead of hanging the suite."""
    def write():
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO when nobody reads: nothing hangs
        except OSError:
            return
        os.write(fd, b"[]")
        os.close(fd)
    timer = threading.Timer(after_s, write)
    timer.daemon = True
    timer.start()
    return timer


def test_a_fifo_a_folder_and_a_device_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "spec.distill.json"
    os.mkfifo(fifo)
    timer = unblock_later(fifo)
    with pytest.raises(NotRegularFile, match="named pipe"):
        read_regular_text(fifo)
    timer.cancel()
    with pytest.raises(NotRegularFile, match="folder"):
        read_regular_bytes(tmp_path)
    with pytest.raises(NotRegularFile, match="character device"):
        read_regular_bytes("/dev/zero")  # would never end
    with pytest.raises(FileNotFoundError):
        read_regular_bytes(tmp_path / "none.json")


def test_a_size_limit_holds_for_the_files_size_and_for_what_is_read(tmp_path):
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 101)
    assert read_regular_bytes(big, max_bytes=101) == b" " * 101
    with pytest.raises(FileTooLarge, match="101 bytes, more than the 100 allowed"):
        read_regular_bytes(big, max_bytes=100)
    if os.path.exists("/proc/self/status"):  # says it holds 0 bytes, holds more
        with pytest.raises(FileTooLarge, match="more than the 10 bytes allowed"):
            read_regular_bytes("/proc/self/status", max_bytes=10)


@pytest.mark.slow  # real engine processes
@pytest.mark.parametrize("command", [["run"], ["validate"], ["validate", "--json"]])
def test_the_engine_refuses_a_fifo_as_its_spec_with_exit_2(tmp_path, command):
    fifo = tmp_path / "spec.distill.json"
    os.mkfifo(fifo)
    unblock_later(fifo, after_s=30)
    out = run_engine(*command[:1], fifo, *command[1:], "--db", tmp_path / "db.sqlite", timeout=90) \
        if command == ["run"] else run_engine(*command, fifo, timeout=90)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "named pipe (FIFO), not a regular file" in out.stdout + out.stderr
    assert "Traceback" not in out.stderr
