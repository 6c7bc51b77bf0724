"""Text from files and from users, made safe to print: control characters (a terminal's escape
sequences, carriage returns, NUL) and bidirectional overrides (which reorder what a reader sees)
are written as escapes, and a file's content is quoted only as a short excerpt. Torch-free and
Qt-free: the engine's messages and the CLI use it, and the app may.
"""

from __future__ import annotations

import unicodedata

EXCERPT_CHARS = 40  # the most of a file's content one message quotes
LISTED = 8  # the most names from a file one message lists
# the Unicode bidirectional controls (embeddings, overrides, isolates, marks)
BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _unsafe(ch: str) -> bool:
    return ch in BIDI or unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp")


def escape(text: object) -> str:
    """`text` on one line with every control, format and bidi character written as an escape
    (\\x1b, \\u202e): printed, it shows what the file holds and cannot move the cursor, colour the
    terminal or reverse the line."""
    text = str(text)
    if not any(_unsafe(ch) for ch in text):
        return text
    out = []
    for ch in text:
        if not _unsafe(ch):
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "".join(out)


def excerpt(text: object, limit: int = EXCERPT_CHARS) -> str:
    """At most `limit` characters of `text`, escaped; '…' where it was cut."""
    text = str(text)
    cut = len(text) > limit
    return escape(text[:limit]) + ("…" if cut else "")


def quoted(text: object, limit: int = EXCERPT_CHARS) -> str:
    """An excerpt in single quotes, for a name or a cell inside a message."""
    return f"'{excerpt(text, limit)}'"


def listed(names, limit: int = LISTED) -> str:
    """Names from a file, comma-separated: at most `limit` of them, each an excerpt."""
    names = list(names)
    shown = ", ".join(excerpt(n) for n in names[:limit])
    return shown + (f", … ({len(names)} in all)" if len(names) > limit else "")


def escape_lines(text: object) -> str:
    """Several lines for a terminal: each line escaped, the line breaks kept."""
    return "\n".join(escape(line) for line in str(text).split("\n"))


def say(*parts: object, file=None) -> None:
    """print(), with control and bidi characters in what a file or a user named (run, class and
    file names, messages quoting a file) written as escapes: nothing printed can drive the
    terminal or reverse a line. JSON output is ASCII already."""
    print(*(escape_lines(p) for p in parts), file=file)
