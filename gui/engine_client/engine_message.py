"""What an engine child said on stderr when it refused or failed, as one clean line for a node or
the status bar: its message with its hint, never a Python traceback. Qt-free."""

from __future__ import annotations

TRACEBACK = "Traceback (most recent call last):"
MAX_CHARS = 300


def clean_engine_message(stderr: str, code: int, prefix: str = "cannot inspect: ") -> str:
    """The engine's own message (`PREFIX…` and the `hint:` line after it); failing that, the
    exception a traceback ended with, named as such; failing that, the exit code."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if line.startswith(prefix):
            hint = lines[i + 1] if i + 1 < len(lines) and lines[i + 1].startswith("hint:") else ""
            return _short(" ".join(x for x in (line.removeprefix(prefix), hint) if x))
    if any(line.startswith(TRACEBACK) for line in lines):
        raw = stderr.strip().splitlines()
        last = next((x.strip() for x in reversed(raw) if x.strip() and not x.startswith((" ", "\t"))
                     and not x.startswith(TRACEBACK)), "")
        what = f" ({last})" if last else ""
        return _short(f"the engine failed reading the file{what}; the file may be damaged or of "
                      "another format")
    if lines:
        return _short(" ".join(lines[:2]))
    return f"the engine exited with code {code}"


def _short(text: str) -> str:
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS - 1] + "…"
