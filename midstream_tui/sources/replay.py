"""Replaying recorded text sessions (JSONL) and reading text from standard input.

JSONL session format, one JSON object per line, in time order:

    {"t": 0.0,   "stream": "llm", "type": "open", "kind": "text"}
    {"t": 0.0,   "stream": "llm", "type": "request"}
    {"t": 0.412, "stream": "llm", "type": "text", "text": "Hello", "tokens": 1}
    {"t": 0.43,  "stream": "llm", "type": "text", "text": " world"}
    {"t": 0.5,   "stream": "llm", "type": "chunk", "part": "tool", "tokens": 1}
    {"t": 0.9,   "stream": "llm", "type": "usage", "prompt_tokens": 12, "completion_tokens": 2}
    {"t": 0.9,   "stream": "llm", "type": "request_end", "reason": "stop"}
    {"t": 0.9,   "stream": "llm", "type": "error", "message": "..."}
    {"t": 1.0,   "stream": "llm", "type": "close", "reason": "finished"}

A ``chunk`` is output that is not text (``part``: ``reasoning``, ``tool``, a tool call's name or arguments, or
``text``, output that is not the stream's text: a later choice's): timed and counted as a chunk, not read as text.
A ``choice`` is a later choice's content (``{"type": "choice", "choice": 2, "text": "..."}``, ``"ended": true`` when
its answer ended), a ``reasoning`` the answer's thinking (``{"type": "reasoning", "text": "..."}``): each read for a
repetition loop apart from the text (its chunk, a ``chunk``, times it).
An ``open`` may name the ``source`` the stream came from and its ``identity`` (what the meta-learner learns per; an
export keeps it). An ``error`` with ``"fatal": true`` ended its stream, as it does in the replay; a replayed
recording of a request that failed is not a failed run (only a file in which nothing could be read is).
``t`` is seconds from the start of the session; ``stream`` defaults to the file's name; ``tokens`` to 1. A file may
hold several streams: each becomes its own source. Replay keeps the recorded gaps, divided by ``speed``. A line that
is not valid JSON (or nests deeper than ``jsonsafe.MAX_DEPTH``) or lacks a field becomes a recorded stream error
(with its line number) and replay goes on. """

from __future__ import annotations

import asyncio
import math
import re
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from .. import jsonsafe
from ..clock import Clock
from ..events import (
    REASONING,
    ChoiceText,
    Event,
    OutputChunk,
    RequestFinished,
    RequestStarted,
    StreamClosed,
    StreamError,
    StreamOpened,
    TextDelta,
    Usage,
)
from .base import ScheduledSource, Source, SourceError
from .params import identity_of, param, reject_unknown


MAX_TIME_S = 1e7
"""The latest time (seconds from the session's start) a line may have."""


MAX_LINE_CHARS = 4 << 20
"""The longest session line read (4 MB: a text delta is a few characters, a whole answer at most a few hundred kB)."""
MAX_COUNT = 2**53
"""The largest token count or request id a line may give (a double holds every whole number up to it)."""


def _count(obj: dict, key: str, default: int) -> int:
    """A whole number from 0 to ``MAX_COUNT`` (1e300 tokens would become a 300-digit integer that no table or
    exporter can hold)."""
    value = obj.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_COUNT \
            or value != int(value):
        raise ValueError(f"{key!r} must be a whole number from 0 to 2^53, got {value!r}")
    return int(value)


def _text(obj: dict, required: bool = False) -> str:
    """A line's ``text`` (a string; ``required``: there, else empty when left out)."""
    text = obj["text"] if required else obj.get("text", "")
    if not isinstance(text, str):
        raise ValueError("'text' must be a string")
    return text


UNREADABLE = ("not a MidStream JSONL session", "not a captured SSE stream")
"""How a replay says that nothing in its file could be replayed: its own failure (a replayed recording of a request
that failed is not one: ``headless.failed_exit_code``)."""


def _event(stream: str, t: float, obj: dict) -> Event:
    kind = obj.get("type", "text")
    if kind == "text":
        return TextDelta(stream, t, text=_text(obj, required=True), tokens=_count(obj, "tokens", 1))
    if kind == "reasoning":
        return ChoiceText(stream, t, _text(obj), REASONING)
    if kind == "choice":
        text = _text(obj)
        choice, ended = _count(obj, "choice", 0), obj.get("ended") is True
        if choice < 1 and not (ended and not text):  # (0: only the first answer's end, its text being the text)
            raise ValueError("'choice' must be a later choice's index, 1 or more (0: only to end the first)")
        return ChoiceText(stream, t, text, choice, ended=ended)
    if kind == "chunk":
        part = obj.get("part", "reasoning")
        if part not in ("reasoning", "tool", "text"):
            raise ValueError(f"'part' must be \"reasoning\", \"tool\" or \"text\", got {part!r}")
        return OutputChunk(stream, t, part=part, tokens=_count(obj, "tokens", 1),
                           request_id=_count(obj, "request_id", 0))
    if kind == "open":
        source = str(obj.get("source", ""))  # a recording of a stream comes from what that stream came from
        return StreamOpened(stream, t, kind="text", source=source,
                            identity=str(obj.get("identity", "")) or (identity_of(source, "text") if source else ""))
    if kind == "request":
        return RequestStarted(stream, t, request_id=_count(obj, "request_id", 0))
    if kind == "request_end":
        return RequestFinished(stream, t, request_id=_count(obj, "request_id", 0),
                               reason=str(obj.get("reason", "stop")), streamed=obj.get("streamed") is not False)
    if kind == "usage":
        return Usage(stream, t, prompt_tokens=_count(obj, "prompt_tokens", 0),
                     completion_tokens=_count(obj, "completion_tokens", 0))
    if kind == "error":
        # (fatal as recorded: the stream ends in it as it did; a replay of it is no failed run all the same, see
        # UNREADABLE)
        return StreamError(stream, t, str(obj.get("message", "recorded error")), fatal=obj.get("fatal") is True,
                           transient=obj.get("transient") is True)
    if kind == "close":
        return StreamClosed(stream, t, reason=str(obj.get("reason", "finished")))
    raise ValueError(f"unknown type {kind!r}")


def read_session(path: Path) -> dict[str, list[tuple[int, dict | str]]]:
    """Lines of a session grouped by stream: (line number, object or the error text)."""
    streams: dict[str, list[tuple[int, dict | str]]] = {}
    default = current = path.stem
    with path.open(encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            if len(line) > MAX_LINE_CHARS:  # (one text delta of 99 MB took 94 s and 2.7 GB to analyse)
                streams.setdefault(current, []).append(
                    (number, f"line {number}: {len(line) / 2**20:.0f} MB, more than a session line may hold "
                             f"({MAX_LINE_CHARS >> 20} MB): skipped"))
                continue
            try:
                obj = jsonsafe.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:  # recorded on the stream of the line before it
                streams.setdefault(current, []).append((number, f"line {number}: {exc}"))
                continue
            current = str(obj.get("stream", default))
            streams.setdefault(current, []).append((number, obj))
    return streams


class ReplaySource(ScheduledSource):
    kind = "text"

    def __init__(self, stream_id: str, uri: str, clock: Clock | None, lines: list[tuple[int, dict | str]],
                 speed: float = 1.0, must_read: bool = True) -> None:
        super().__init__(stream_id, uri, clock)
        self.lines, self.speed = lines, speed
        self.must_read = must_read
        """Whether a stream none of whose lines could be read is a failed one (not: the lines before the first
        that names a stream, in a session whose named streams were read — a byte-order mark, say)."""

    def schedule(self, t0: float = 0.0) -> Iterator[Event]:
        sid = self.stream_id
        last = 0.0
        opened = False
        read = 0  # lines that were events (not errors)
        for number, obj in self.lines:
            parsed = False
            if isinstance(obj, str):
                event: Event = StreamError(sid, t0 + last / self.speed, obj)
            else:
                try:
                    t = float(obj.get("t", last))
                    if not math.isfinite(t) or t < 0:
                        raise ValueError(f"bad time {obj.get('t')!r}")
                    if t > MAX_TIME_S:  # waiting for it would hold every later line back for ever
                        raise ValueError(f"time {obj.get('t')!r} is more than {MAX_TIME_S:g} s (about four months) "
                                         "after the session's start: session times count from 0, not from 1970")
                    event = _event(sid, t0 + max(last, t) / self.speed, obj)
                    parsed = True
                    last = max(last, t)  # never go back in time
                    if isinstance(event, StreamOpened) and not event.source:
                        event = StreamOpened(sid, event.t, kind=event.kind, source=self.uri,
                                             identity=event.identity or self.identity(event.kind))
                except (KeyError, ValueError, TypeError, OverflowError) as exc:
                    event = StreamError(sid, t0 + last / self.speed, f"line {number}: {exc}")
            if not opened and not isinstance(event, StreamOpened):  # whatever comes first, the stream opens
                yield StreamOpened(sid, event.t, kind="text", source=self.uri, identity=self.identity("text"))
            opened = True
            read += parsed
            yield event
            if isinstance(event, StreamClosed):
                return
        if not opened:
            yield StreamOpened(sid, t0, kind="text", source=self.uri, identity=self.identity("text"))
        if not read and self.must_read:  # every line of it was malformed: nothing was replayed, and it says so
            yield StreamError(sid, t0 + last / self.speed, f"no line of {len(self.lines)} could be read: "
                              f"{UNREADABLE[0]}", fatal=True)
            yield StreamClosed(sid, t0 + last / self.speed, reason="error")
            return
        yield StreamClosed(sid, t0 + last / self.speed, reason="finished")


def open_replay(uri: str, path_text: str, params: dict[str, str], clock: Clock | None) -> list[Source]:
    speed = param(params, "speed", float, 1.0, lambda v: v > 0, "a speed factor > 0")
    reject_unknown(params, uri)
    path = Path(path_text)
    if not path.is_file():
        raise SourceError(f"{path_text}: no such file")
    streams = read_session(path)
    if not streams:
        raise SourceError(f"{path_text}: empty session")
    return [ReplaySource(name, uri, clock, lines, speed, must_read=len(streams) == 1 or name != path.stem)
            for name, lines in streams.items()]


class StdinSource(Source):
    """Text piped in (``some-cli | midstream run - --headless``): each read is one chunk.

    Tokens are estimated as whitespace-separated words (approximate).
    """

    kind = "text"

    def __init__(self, stream_id: str = "stdin", uri: str = "-", clock: Clock | None = None, stream=None) -> None:
        super().__init__(stream_id, uri, clock)
        self._stream = stream or sys.stdin.buffer

    async def events(self) -> AsyncIterator[Event]:
        sid = self.stream_id
        loop = asyncio.get_running_loop()
        yield StreamOpened(sid, self.clock.now(), kind="text", source="stdin", identity="stdin:text")
        yield RequestStarted(sid, self.clock.now())
        read = getattr(self._stream, "read1", self._stream.read)
        while not self.cancelled:
            data = await loop.run_in_executor(None, read, 4096)
            if not data:
                break
            text = data.decode("utf-8", errors="replace")
            yield TextDelta(sid, self.clock.now(), text=text, tokens=max(1, len(text.split())))
        yield RequestFinished(sid, self.clock.now(), reason="cancelled" if self.cancelled else "stop")
        yield StreamClosed(sid, self.clock.now(), reason="cancelled" if self.cancelled else "finished")


class SseReplaySource(ScheduledSource):
    """A captured Server-Sent Events stream (``FILE.sse``): Chat Completions, legacy Completions, the Responses API
    or Anthropic Messages, told apart by each event's shape.

    Raw SSE holds no timing, so chunks are paced at ``rate`` per second after a ``ttft`` (ms). The events are read
    as the proxy reads a live answer (``proxy.protocols.Reader``, the same definitions): content becomes text;
    reasoning, tool calls (their name first) and later choices' output are timed and counted as chunks, not text;
    usage becomes exact token counts; error payloads become recorded errors; a malformed event is recorded with its
    line number and the replay goes on.
    """

    kind = "text"

    def __init__(self, stream_id: str, uri: str, clock: Clock | None, path: Path, rate: float, ttft_ms: float):
        super().__init__(stream_id, uri, clock)
        self.path, self.rate, self.ttft = path, rate, ttft_ms / 1000.0

    def _blocks(self) -> Iterator[tuple[int, str, str]]:
        """(line number, event name, data) for each event in the file."""
        name, data, start = "", [], 0
        # (SSE ends lines with CRLF, LF or CR only: ``splitlines`` also splits at U+2028 and the like, which an
        # answer's text may hold)
        lines = _SSE_LINE.split(self.path.read_text("utf-8", errors="replace"))
        for number, line in enumerate(lines + [""], start=1):
            if not line.strip():
                if data:
                    yield start, name, "\n".join(data)
                name, data = "", []
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if not data and not name:
                start = number
            if field == "data":
                data.append(value)
            elif field == "event":
                name = value

    def schedule(self, t0: float = 0.0) -> Iterator[Event]:
        # the wire formats' reader, the proxy's (imported only when replayed)
        from ..proxy.protocols import OUTPUT_PART, Reader, api_of, output_part

        sid = self.stream_id
        yield StreamOpened(sid, t0, kind="text", source=self.uri, identity=self.identity("text"))
        yield RequestStarted(sid, t0)
        t = t0 + self.ttft
        n = 0
        blocks = 0
        readers: dict[str, Reader] = {}
        for number, name, data in self._blocks():
            blocks += 1
            if data.strip() == "[DONE]":
                break
            try:
                obj = jsonsafe.loads(data)
                if not isinstance(obj, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                yield StreamError(sid, t, f"line {number}: malformed SSE data ({exc})")
                continue
            kind = obj.get("type") if isinstance(obj.get("type"), str) and obj["type"] else name
            if isinstance(obj.get("error"), dict) or kind == "error":
                err = obj.get("error") if isinstance(obj.get("error"), dict) else obj
                yield StreamError(sid, t, f"line {number}: {str(err.get('message', 'error event'))[:200]}")
                continue
            api = api_of(kind, obj)
            reader = readers.get(api) or readers.setdefault(api, Reader(api, streamed=True))
            parts = reader.read(kind, obj)
            timed = False  # the chunk under way was handed to the analysis as one (its text, or an OutputChunk)
            for i, part in enumerate(parts):
                if part.kind == "chunk":
                    timed = False
                    if n:
                        t += 1.0 / self.rate
                    n += 1
                elif part.kind == "text":
                    yield TextDelta(sid, t, text=part.text)
                    timed = True
                elif part.kind in OUTPUT_PART:
                    if not timed:  # one timed unit a chunk (its text comes first), as the proxy counts it
                        timed = True
                        yield OutputChunk(sid, t, output_part(parts, i))
                    if part.choice:  # a later choice's content: read for a loop, apart from the stream's text
                        yield ChoiceText(sid, t, part.text, part.choice)
                    elif part.kind == "reasoning":  # (the answer's thinking: read for a loop too)
                        yield ChoiceText(sid, t, part.text, REASONING)
                elif part.kind == "ended":  # a choice of a request for several ended (a loop there is over)
                    yield ChoiceText(sid, t, choice=part.choice, ended=True)
                elif part.kind == "usage":
                    yield Usage(sid, t, prompt_tokens=part.prompt_tokens, completion_tokens=part.completion_tokens)
                elif part.kind == "error":
                    yield StreamError(sid, t, f"line {number}: {part.text}")
        if not blocks:  # no "data:" field in the whole file (a binary file, a wrong one): nothing was replayed
            yield StreamError(sid, t, f"{self.path.name}: no SSE event in it (no 'data:' line): {UNREADABLE[1]}",
                              fatal=True)
            yield StreamClosed(sid, t, reason="error")
            return
        yield RequestFinished(sid, t)
        yield StreamClosed(sid, t, reason="finished")


_SSE_LINE = re.compile(r"\r\n|\r|\n")


def open_sse(uri: str, path_text: str, params: dict[str, str], clock: Clock | None) -> Source:
    rate = param(params, "rate", float, 50.0, lambda v: v > 0, "chunks per second > 0")
    ttft = param(params, "ttft", float, 0.0, lambda v: v >= 0, "milliseconds >= 0")
    name = params.pop("name", None)
    reject_unknown(params, uri)
    path = Path(path_text)
    if not path.is_file():
        raise SourceError(f"{path_text}: no such file")
    return SseReplaySource(name or path.stem, uri, clock, path, rate, ttft)
