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


@dataclass(frozen=True)
class ProtocolProblem:
    message: str  # for the log; empty once SHOWN_PROBLEMS have been shown
    line: str  # what the engine wrote


class EventReader:
    """One per engine process: splits its stdout into lines and parses each."""

    def __init__(self) -> None:
        self.engine_protocol: int | None = None  # what its `started` declared
        self._buffer = b""
        self._problems = 0

    def feed(self, data: bytes) -> list[Event | ProtocolProblem]:
        """The complete lines in `data` (and what came before it), parsed; a partial last
        line waits for the rest."""
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        return [item for line in lines for item in self.read_line(line)]

    def flush(self) -> list[Event | ProtocolProblem]:
        """At the end of the stream: a last line without a newline."""
        rest, self._buffer = self._buffer, b""
        return self.read_line(rest)

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
