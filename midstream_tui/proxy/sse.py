"""Server-sent events read from bytes as they arrive, for analysis beside an unchanged byte stream.

WHATWG rules: a byte-order mark at the start is dropped; a line ends in LF, CRLF or CR (also split across chunks);
``field: value`` lines, the first space after the colon dropped; lines starting with ``:`` are comments
(keep-alives); a blank line ends an event. Only ``event`` and ``data`` matter here. A line longer than ``max_line``
is dropped and counted, never buffered without bound; the event it was part of is still under way until its blank
line (a cut waits for it).
"""

from __future__ import annotations

from dataclasses import dataclass


BOM = b"\xef\xbb\xbf"


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
        self._skipping = False  # (inside a line being dropped: what comes up to its end is not kept)
        self._dropped = False  # (the event under way lost a line: it has not ended for all that)
        self._started = False  # (past the stream's first bytes, where a byte-order mark is dropped)

    def copy(self) -> SSEParser:
        """A parser standing where this one stands (to look ahead without moving it)."""
        probe = SSEParser(self.max_line)
        probe._buf, probe._held_cr, probe._name, probe._data = self._buf, self._held_cr, self._name, list(self._data)
        probe._skipping, probe._dropped, probe._started = self._skipping, self._dropped, self._started
        return probe

    def passed_start(self) -> None:
        """The stream's first bytes were read without ``feed`` (a reader's fast path): a byte-order mark later on is
        part of the stream."""
        self._started = True

    @property
    def at_boundary(self) -> bool:
        """Nothing of an unfinished event is pending: what was fed ended where an event ends (or before any). An
        event whose line was too long to keep is pending too (a cut that took it for ended wrote its own ending
        into the middle of it)."""
        return not (self._buf or self._data or self._name or self._held_cr or self._skipping or self._dropped)

    @property
    def held_cr(self) -> bool:
        """What was fed ends with a CR whose line end may yet be a CRLF."""
        return self._held_cr

    @property
    def cut_safe(self) -> bool:
        """What was fed can be followed by another event: it ends where an event ends, or with a CR after which it
        would (CR-only line ends: the line has ended whatever follows; an event of the proxy's own that follows
        begins with the LF a CRLF stream would have sent next, see ``protocols.cut_ending``)."""
        if self.at_boundary:
            return True
        if not self._held_cr or self._skipping:
            return False
        probe = self.copy()
        probe.feed(b"\n")
        return probe.at_boundary

    def feed(self, chunk: bytes) -> list[SSEvent]:
        # a CR held back (it may have been the first half of a CRLF) ends the line under way: it goes after it
        buf = self._buf + b"\r" + chunk if self._held_cr else self._buf + chunk
        if not self._started:  # one byte-order mark at the very start is not part of the stream (WHATWG)
            if len(buf) < 3 and BOM.startswith(buf):
                self._buf = buf  # (a mark split across chunks: wait for the rest)
                return []
            self._started = True
            if buf.startswith(BOM):
                buf = buf[3:]
        self._held_cr = buf.endswith(b"\r")  # a CR at the end may be the first half of a CRLF
        if self._held_cr:
            buf = buf[:-1]
        lines = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        self._buf = lines.pop()
        if self._skipping:
            if not lines:  # the long line goes on
                self._buf = b""
                return []
            lines[0] = None  # its end: not a line of its own
            self._skipping = False
        events: list[SSEvent] = []
        for raw in lines:
            if raw is None:
                continue
            if len(raw) > self.max_line:
                self.oversized += 1
                self._dropped = True
                continue
            line = raw.decode("utf-8", "replace")
            if not line:
                if self._data or self._name:
                    events.append(SSEvent(self._name or "message", "\n".join(self._data)))
                self._name, self._data, self._dropped = "", [], False
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
        if len(self._buf) > self.max_line:  # (after the lines before it: a blank one among them ended an event)
            self._buf, self.oversized, self._skipping, self._dropped = b"", self.oversized + 1, True, True
        return events
