"""Reading an engine's stdout: bytes in, typed events (engine.events) and protocol problems out.

Every reader of engine events goes through `EventReader` (the run client, the export client, the
headless runner). A line that does not fit the protocol becomes a `ProtocolProblem` with a
message for the log — never an exception — and an engine that speaks a newer protocol than
this app is named as such. Qt-free.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.events import PROTOCOL_VERSION, Event, ProtocolError, Started, parse_event

SHOWN_PROBLEMS = 5  # then one line saying that more are not shown: a bad engine cannot flood the log
MAX_LINE_BYTES = 4 << 20  # the longest event line kept (a real one is under 64 KiB); the rest is dropped
EXCERPT_CHARS = 200  # of an overlong line, what a problem quotes


@dataclass(frozen=True)
class ProtocolProblem:
    message: str  # for the log; empty once SHOWN_PROBLEMS have been shown
    line: str  # what the engine wrote


class EventReader:
    """One per engine process: splits its stdout into lines and parses each."""

    def __init__(self) -> None:
        self.engine_protocol: int | None = None  # what its `started` declared
        self._parts: list[bytes] = []  # the line so far (no newline yet), in the pieces it came in
        self._size = 0  # their length together: never more than MAX_LINE_BYTES
        self._dropping = False  # inside a line already reported as too long, until its newline
        self._problems = 0

    @property
    def buffered(self) -> int:
        """Bytes kept of a line still waiting for its newline."""
        return self._size

    def feed(self, data: bytes) -> list[Event | ProtocolProblem]:
        """The complete lines in `data` (and what came before it), parsed; a partial last
        line waits for the rest, up to MAX_LINE_BYTES: a longer line is one protocol problem
        and the rest of it, up to its newline, is dropped (memory and time stay bounded)."""
        out: list[Event | ProtocolProblem] = []
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            piece, start = data[start:end], end + 1
            if self._dropping:
                self._dropping = False  # the end of the overlong line
                continue
            line = b"".join([*self._parts, piece]) if self._parts else piece
            self._parts, self._size = [], 0
            out += self._too_long(line) if len(line) > MAX_LINE_BYTES else self.read_line(line)
        rest = data[start:]
        if rest and not self._dropping:
            self._parts.append(rest)
            self._size += len(rest)
            if self._size > MAX_LINE_BYTES:
                out += self._too_long(b"".join(self._parts))
                self._parts, self._size, self._dropping = [], 0, True
        return out

    def flush(self) -> list[Event | ProtocolProblem]:
        """At the end of the stream: a last line without a newline."""
        rest, self._parts, self._size, self._dropping = b"".join(self._parts), [], 0, False
        return self.read_line(rest)

    def _too_long(self, line: bytes) -> list[ProtocolProblem]:
        excerpt = line[:EXCERPT_CHARS].decode("utf-8", "replace") + "…"
        return [self._problem(f"an engine line longer than {MAX_LINE_BYTES:,} bytes (it begins "
                              f"{excerpt!r}); the rest of that line is dropped", excerpt)]

    def read_line(self, line: str | bytes) -> list[Event | ProtocolProblem]:
        text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
        if not text.strip():
            return []
        try:
            event = parse_event(text)
        except ProtocolError as exc:
            if exc.protocol is not None:
                self.engine_protocol = exc.protocol
            return [self._problem(str(exc), exc.line)]
        if isinstance(event, Started):
            self.engine_protocol = event.protocol
            if event.protocol > PROTOCOL_VERSION:
                return [self._problem("", text), event]
        return [event]

    def _problem(self, what: str, line: str) -> ProtocolProblem:
        self._problems += 1
        if self._problems > SHOWN_PROBLEMS + 1:
            return ProtocolProblem("", line)
        if self._problems == SHOWN_PROBLEMS + 1:
            return ProtocolProblem("protocol problem: more engine lines do not fit the event "
                                   "protocol; they are not shown", line)
        newer = self.engine_protocol is not None and self.engine_protocol > PROTOCOL_VERSION
        newer_text = (f"the engine speaks event protocol {self.engine_protocol}, newer than this app's "
                      f"{PROTOCOL_VERSION} (update the app to see everything it reports)") if newer else ""
        return ProtocolProblem("protocol problem: " + ": ".join(p for p in (newer_text, what) if p), line)
