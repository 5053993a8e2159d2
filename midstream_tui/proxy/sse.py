"""Server-sent events read from bytes as they arrive, for analysis beside an unchanged byte stream.

WHATWG rules: a line ends in LF, CRLF or CR (also split across chunks); ``field: value`` lines, the first space
after the colon dropped; lines starting with ``:`` are comments (keep-alives); a blank line ends an event. Only
``event`` and ``data`` matter here. A line longer than ``max_line`` is dropped and counted, never buffered without
bound.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SSEvent:
    name: str
    """The ``event:`` field, ``message`` when there was none."""
    data: str


class SSEParser:
    def __init__(self, max_line: int = 1 << 20) -> None:
        self.max_line = max_line
        self._buf = b""
        self._held_cr = False
        self._name = ""
        self._data: list[str] = []
        self.comments = 0
        """Comment lines seen (``: keep-alive``): not chunks of the answer."""
        self.oversized = 0
        """Lines dropped for being longer than ``max_line``."""

    @property
    def at_boundary(self) -> bool:
        """Nothing of an unfinished event is pending: what was fed ended where an event ends (or before any)."""
        return not self._buf and not self._data and not self._name and not self._held_cr

    def feed(self, chunk: bytes) -> list[SSEvent]:
        # a CR held back (it may have been the first half of a CRLF) ends the line under way: it goes after it
        buf = self._buf + b"\r" + chunk if self._held_cr else self._buf + chunk
        self._held_cr = buf.endswith(b"\r")  # a CR at the end may be the first half of a CRLF
        if self._held_cr:
            buf = buf[:-1]
        lines = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        self._buf = lines.pop()
        if len(self._buf) > self.max_line:
            self._buf, self.oversized = b"", self.oversized + 1
        events: list[SSEvent] = []
        for raw in lines:
            if len(raw) > self.max_line:
                self.oversized += 1
                continue
            line = raw.decode("utf-8", "replace")
            if not line:
                if self._data or self._name:
                    events.append(SSEvent(self._name or "message", "\n".join(self._data)))
                self._name, self._data = "", []
                continue
            if line.startswith(":"):
                self.comments += 1
                continue
            field, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if field == "data":
                self._data.append(value)
            elif field == "event":
                self._name = value
        return events
