"""``midstream proxy``: an HTTP gateway between applications and their LLM APIs.

An application points its base URL here (``OPENAI_BASE_URL=http://127.0.0.1:8080/v1`` or
``ANTHROPIC_BASE_URL=http://127.0.0.1:8080``) and changes nothing else. Every request goes to its upstream
with its headers (keys included) and body; the upstream's status, headers and body bytes come back to the client
as they arrive: no buffering, no re-serialisation. Chat Completions, Completions, Responses and Anthropic
Messages answers are read from a copy of those bytes (``protocols.Reader``) and become a text stream in the hub,
one per request, analyzed like any other; every other path passes through unread.

A rule's ``cancel`` (or ``c`` in the dashboard) cuts a stream: at the next event boundary the upstream
connection is closed (vLLM and SGLang stop generating on a disconnect) and the client gets the protocol's own
ending for a stopped stream (``protocols.cut_ending``). A client that leaves closes its upstream at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hmac
import itertools
import json
import math
import re
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
from aiohttp import web
from aiohttp.web_urldispatcher import _default_expect_handler as _continue
from multidict import CIMultiDict
from yarl import URL

from ..clock import Clock, MonotonicClock
from ..events import (REASONING, AudioChunk, ChoiceText, Event, Flag, OutputChunk, RequestFinished, RequestStarted,
                      StreamClosed, StreamError, StreamOpened, TextDelta, Usage)
from ..jsonsafe import loads
from ..redact import credentials, redact, remember
from ..servers.base import LocalServer, is_loopback, same_origin, weak_token
from ..sources.base import Source
from .protocols import (MAX_CHOICES, Part, Reader, _int, cut_ending, decode_realtime_audio, output_part,
                        realtime_audio_format)
from .sse import SSEParser

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "trailers", "transfer-encoding", "upgrade", "host", "content-length", "expect"})
"""Not passed on. ``expect`` too: the proxy has the whole body before it asks the upstream, and an upstream that
does not answer ``100-continue`` (HTTP allows it) held the request for ever."""
TOKEN_HEADER = "x-midstream-token"
"""The header a client shows the proxy's own token in (bound beyond loopback); stripped before the upstream."""
ON_CUT = ("stop", "error")
MIN_UPSTREAM_TIMEOUT_S = 0.001
SLO_NAMES = ("ttft", "ttfo", "tpot", "e2e")
"""What ``--slo`` can bound, per request (the metrics of the same names: ``ttft_req_ms`` and so on)."""


def parse_slo(text: str) -> dict[str, float]:
    """``ttft=500ms,tpot=50ms,e2e=20s`` -> {name: seconds}; a one-line ProxyError when it is not that."""
    slo: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = item.partition("=")
        name, value = name.strip().lower(), value.strip().lower()
        if name not in SLO_NAMES:
            raise ProxyError(f"--slo {item!r}: expected one of {', '.join(SLO_NAMES)} = a time (500ms, 2s)")
        scale = 1e-3 if value.endswith("ms") else 1.0
        number = value[:-2] if value.endswith("ms") else value[:-1] if value.endswith("s") else value
        try:
            seconds = float(number) * scale
        except ValueError:
            raise ProxyError(f"--slo {item!r}: {value!r} is not a time (500ms, 2s)") from None
        if not (seconds > 0 and math.isfinite(seconds)):
            raise ProxyError(f"--slo {item!r}: expected a time > 0")
        slo[name] = seconds
    return slo
PATHS = {"/chat/completions": "chat", "/completions": "completions", "/responses": "responses"}
"""OpenAI paths (after the base URL's ``/v1``) whose answers are analyzed."""


class ProxyError(ValueError):
    """The proxy cannot start as asked; the message is for the user."""


@dataclass(frozen=True)
class ProxyOptions:
    upstream: str = "https://api.openai.com/v1"
    """The OpenAI-compatible base URL requests under ``/v1`` go to (vLLM, Ollama, llama.cpp, LiteLLM...)."""
    anthropic_upstream: str = "https://api.anthropic.com"
    """Where requests of Anthropic's SDK go (recognized by its ``anthropic-version`` header)."""
    on_cut: str = "stop"
    """How a cut stream ends for its client: ``stop`` (as a stopped stream) or ``error`` (the in-stream error)."""
    upstream_timeout: float = 300.0
    """Seconds an upstream may stay silent (before its answer or within it) before the request fails."""
    max_body: int = 32 << 20
    """Request bodies over this many bytes are refused (413)."""
    token: str | None = None
    """Required from clients (header ``x-midstream-token``) when set; needed to bind beyond loopback."""
    prices: tuple[tuple[str, float], ...] = ()
    """(model, US dollars per million output tokens): what a cut saved is priced where the model is listed."""
    slo: tuple[tuple[str, float], ...] = ()
    """Per-request service levels (``parse_slo``): a request meeting all of them counts towards goodput."""

    def __post_init__(self) -> None:
        for name in ("upstream", "anthropic_upstream"):
            flag, value = f"--{name.replace('_', '-')}", getattr(self, name)
            # Whatever the value holds, and however it fails to parse, nothing before its last @ is ever shown
            # (a password; the value may come from OPENAI_BASE_URL, unseen), nor the parser's words, which can
            # quote the whole netloc.
            # a key in the URL's query: never shown, whatever its shape, wherever the upstream may echo it (known
            # before any error here quotes the URL: "?sig=..#x" was printed whole)
            for param, given in parse_qsl(value.partition("?")[2].partition("#")[0]):
                if SECRET_PARAM.fullmatch(param):
                    remember(given)
            secret = "@" in value
            shown = redact(("…@" + value.rpartition("@")[2]) if secret else value)
            try:
                url = urlsplit(value)
                url.port  # noqa: B018 - raises on a port that is not one
            except ValueError as exc:  # a bad port, an unclosed [IPv6 address, characters NFKC changes
                raise ProxyError(f"{flag} {shown!r}: not a URL" + ("" if secret else f" ({redact(str(exc))})")
                                 ) from None
            if url.scheme not in ("http", "https") or not url.hostname:
                raise ProxyError(f"{flag} {shown!r}: expected an http(s) URL")
            if "#" in value:  # (a fragment is never sent: what follows it would be lost without a word)
                raise ProxyError(f"{flag} {shown!r}: a #fragment is never sent to a server: remove it")
            if secret:
                # the clients' own keys (Authorization, x-api-key) are what reaches the upstream; credentials
                # in the URL would be added to requests that did not send them and clash with those that do
                raise ProxyError(f"{flag} {shown!r}: a user:password in the URL is not supported (the clients' "
                                 "own keys are forwarded): remove it")
        if self.on_cut not in ON_CUT:
            raise ProxyError(f"--on-cut {self.on_cut!r}: expected one of {', '.join(ON_CUT)}")
        if not (self.upstream_timeout >= MIN_UPSTREAM_TIMEOUT_S and math.isfinite(self.upstream_timeout)):
            # (below a millisecond no event loop can keep it: every answer would read as a silence)
            raise ProxyError(f"--upstream-timeout {self.upstream_timeout:g}: expected seconds >= "
                             f"{MIN_UPSTREAM_TIMEOUT_S:g}")
        if not self.max_body > 0:
            raise ProxyError(f"--max-body {self.max_body}: expected bytes > 0")
        if self.token:  # (given as --token, not from the environment ``redact`` reads: replaced all the same)
            remember(self.token)


SECRET_PARAM = re.compile(r"(?i)(?:x-)?(?:api[_-]?|subscription-)?key|token|access_token|secret|sig|signature"
                          r"|password|auth|code")
"""Query parameters of an upstream URL whose values are secrets (``?key=``: Google's API keys, say)."""


def _split_query(upstream: str) -> tuple[str, str]:
    """An upstream URL as (its base, without a trailing slash; its own query, without the ``?``)."""
    base, _, own = upstream.partition("?")
    return base.rstrip("/"), own


def _with_query(own: str, suffix: str) -> str:
    """The client's ``?query`` (``suffix``, as it sent it) after the upstream URL's own parameters, which every
    request under it carries (``--upstream 'https://host/v1?api-version=2024-10-21'``)."""
    if not own:
        return suffix
    return f"?{own}&{suffix[1:]}" if suffix[1:] else f"?{own}"


class _Relayed(web.StreamResponse):
    """A response with the upstream's headers as they came: aiohttp's own ``Server`` and its default
    ``Content-Type`` are taken out again where the upstream sent none. (A ``Date`` stays: RFC 9110 §6.6.1 asks a
    recipient with a clock that forwards a response without one to add it.)"""

    upstream_names: frozenset[str] = frozenset()
    _framed = False  # (chunks after the first are framed here and handed to the transport)

    async def relay(self, chunk: bytes) -> None:
        """``write`` for an answer's chunks, as cheap as it can be. The first goes through aiohttp (it sends the
        headers with it); after it, on a chunked, uncompressed response, each chunk is framed here and given to
        the transport at once, without aiohttp's per-write bookkeeping, and the writing waits only while the
        client's socket is backed up (the same backpressure: a slow client slows the reading)."""
        if not self._framed:
            await self.write(chunk)
            writer = self._payload_writer
            self._framed = bool(getattr(writer, "chunked", False) and getattr(writer, "_compress", True) is None
                                and getattr(writer, "length", 0) is None and getattr(writer, "_headers_written", False))
            return
        transport = self._payload_writer.transport  # type: ignore[union-attr]
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client's connection is closing")
        transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        if transport.get_write_buffer_size() > DRAIN_BYTES:
            await self._payload_writer.drain()  # type: ignore[union-attr]

    async def _prepare_headers(self) -> None:
        length = self.headers.get("Content-Length") if self.status == 304 else None
        await super()._prepare_headers()
        for name in ("Server", "Content-Type"):
            if name.lower() not in self.upstream_names:
                self.headers.popall(name, None)
        if length is not None and "Content-Length" not in self.headers:
            # a 304's Content-Length is the length the representation would have (RFC 9110 §8.6), not a body's:
            # aiohttp takes it out, as the sender may; a forwarder keeps what the upstream said
            self.headers["Content-Length"] = length


CONNECT_TIMEOUT_S = 30.0
"""Seconds an upstream has to accept the connection."""
HEADER_LINE_MAX = 32 << 10
HEADERS_MAX = 256
"""A header line (or field) and a number of headers the proxy takes from either side: aiohttp's defaults (8,190
bytes, 128 headers) turned an upstream's answer with a long cookie into "upstream unreachable" and refused a
client's request that the upstream takes. At most 8 MiB of headers a request."""
DRAIN_BYTES = 1 << 16
"""Bytes waiting for a client past which the relay of its answer waits for them to go (aiohttp's own limit)."""
READING_COUNTS = ("chunks", "reasoning_chars", "tool_chars", "other_choices_chars", "keepalives")
"""What an answer's reading counts (a request without an answer: all 0)."""
_CHARS = {"reasoning": "reasoning_chars", "tool": "tool_chars", "choice": "other_choices_chars"}
EARLY_MAX = 4096
"""Events a proxied stream keeps for the hub until it begins reading it (a queue's worth)."""
TEXT_DELTAS = ("response.output_text.delta", "response.text.delta", "response.output_audio_transcript.delta",
               "response.audio_transcript.delta")
AUDIO_DELTAS = ("response.output_audio.delta", "response.audio.delta")
"""Realtime server events that carry a response's output (GA names, then beta)."""


@dataclass
class RealtimeState:
    """Where a relayed Realtime session stands."""

    audio_stream: str
    """The name of the session's audio stream (the assistant's voice), opened with the first audio delta."""
    audio_open: bool = False
    audio_format: tuple[str, int] = ("pcm16", 24_000)
    """(codec, rate) the server said it sends (``session.created``/``updated``); the API's default until then."""
    open: bool = False
    """A response is under way."""
    cut: bool = False
    """A response under way was cut: its further deltas are not relayed (those of the responses in ``cut_ids``, or
    any without a ``response_id``)."""
    cut_ids: set[str] = field(default_factory=set)
    """The responses cut, by id, until they are done."""
    items: dict[str, RealtimeItem] = field(default_factory=dict)
    """The output items of the responses under way, by id (at most ``ITEMS_KEPT``): whose they are, and how much of
    their audio the client got (where a cut truncates each)."""
    item_id: str = ""
    """The item that spoke last (audio deltas that name none are its)."""
    asked: list[tuple[str, float, float | None]] = field(default_factory=list)
    """The client's ``response.create`` events (their ``event_id``, when they went upstream, the most output
    tokens they set) not yet answered by a ``response.created`` or refused."""
    max_tokens: float | None = None
    """The most output tokens of a response, as the server said the session's are (inf: no limit; None: unsaid)."""
    spoke: float = math.nan
    """When the server said the user stopped speaking (``input_audio_buffer.speech_stopped``: its voice detection
    starts the response itself)."""
    responses: dict[str, RealtimeResponse] = field(default_factory=dict)
    """The responses under way, by id (out-of-band ones can run at the same time)."""
    current: RealtimeResponse | None = None
    """The newest response under way (an event that names none is its)."""
    last_chunk: float = math.nan
    """When the session's last chunk of output came (a response cannot have been asked for before it)."""


@dataclass
class RealtimeResponse:
    """A Realtime response under way: when it was asked for (its request's start) and its chunks, for its figures."""

    t_start: float
    first_chunk: float = math.nan
    last_chunk: float = math.nan
    chunks: int = 0
    limit: float | None = None
    """The most output tokens it may produce (inf: no limit; None: unknown): what a cut saves is measured to it."""
    cut: bool = False
    """A cut stopped it (``response.cancel`` sent, by its id)."""
    by_client: bool = False
    """Its client cancelled it (``response.cancel`` naming it, or none while it was the newest): a cut that comes
    after neither stops nor counts it."""
    out_of_band: bool = False
    """It adds nothing to the conversation (``conversation_id`` null: asked with ``"conversation": "none"``): its
    items cannot be truncated, the server keeps none of them."""


@dataclass
class RealtimeItem:
    """An output item of a Realtime response: whose it is, and the audio of it the client received."""

    response: str = ""
    """The response's id ("" if no event named it)."""
    content_index: int = 0
    ms: Fraction = Fraction(0)
    """Its audio relayed to the client, in milliseconds (exactly: the truncate says the whole ones)."""


ITEMS_KEPT = 256
"""Output items a Realtime session keeps track of at most (the oldest are forgotten first)."""


class ProxiedStream(Source):
    """One proxied request (or Realtime session) as a source of the hub. Its events go straight into its
    streams' pipelines through the hub's ``sink`` (no task switch per chunk); past a pipeline's queue they are
    dropped and counted: the client's bytes never wait for the analysis."""

    kind = "text"
    lossless = False

    def __init__(self, stream_id: str, uri: str, identity: str, clock: Clock) -> None:
        super().__init__(stream_id, uri, clock)
        self._identity = identity
        self._early: list[Event] = []
        self._ended = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self.on_cut: Callable[[], None] | None = None
        self.session = False
        """A Realtime session: a cut stops the response under way, the session goes on and can be cut again."""
        self.t_start = clock.now()
        self.first_chunk = self.first_output = self.last_chunk = math.nan
        self.reported: int | None = None
        self.metrics: dict[str, Any] = {"bytes_out": 0, **dict.fromkeys(READING_COUNTS, 0)}
        """The gateway's counters of the request (status, bytes, a cut) and the reading's (``READING_COUNTS``,
        the request's timings), wherever its answer is read (``AnswerReading``)."""
        self.reading: AnswerReading | None = None

    @property
    def sink(self) -> Callable[[Event], bool] | None:
        return self._sink

    @sink.setter
    def sink(self, sink: Callable[[Event], bool] | None) -> None:
        """Set by the hub when it starts reading this source: what was put before goes in first."""
        self._sink = sink
        if sink is not None:
            early, self._early = getattr(self, "_early", []), []
            for event in early:
                sink(event)

    def identity(self, kind: str) -> str:
        return self._identity if kind == "text" else f"{self._identity}#{kind}"

    def stream_metrics(self, stream: str) -> dict[str, Any]:
        return dict(self.metrics) if stream == self.stream_id else {}

    def put(self, event: Event | None) -> None:
        """An event of this stream (or of its audio stream); None: the last one was put."""
        if event is None:
            self._ended.set()
        elif self._sink is None:
            if len(self._early) < EARLY_MAX:  # the hub has not begun reading this source (yet)
                self._early.append(event)
        else:
            self._sink(event)

    def cancel(self) -> None:
        if self._cancelled:
            return
        super().cancel()
        if self.on_cut is not None:
            self._loop.call_soon_threadsafe(self.on_cut)

    async def events(self) -> AsyncIterator[Event]:
        await self._ended.wait()  # the events went to the pipeline directly
        return
        yield


def _request_info(api: str, body: bytes) -> tuple[str, bool, int | None, int] | None:
    """(model, streamed, the most output tokens it asked for, the answers it asked for: ``n``) of an analyzable
    request; None when the body is not a JSON object (forwarded as is)."""
    try:
        obj = loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(obj, dict):
        return None
    model = obj.get("model")
    limit = next((v for k in ("max_completion_tokens", "max_tokens", "max_output_tokens")
                  if isinstance(v := obj.get(k), int) and not isinstance(v, bool) and v > 0), None)
    n = obj.get("n")  # (as servers validate it: "2" and 2.0 are 2; past the most a reader follows, that many)
    if isinstance(n, str) and n.strip().isascii() and n.strip().isdecimal() and len(n) < 20:  # ("²" is a digit)
        n = int(n)
    elif isinstance(n, float) and n.is_integer():
        n = int(n)
    n = min(n, MAX_CHOICES) if isinstance(n, int) and not isinstance(n, bool) and n >= 1 else 1
    return (str(model) if isinstance(model, str) and model else "unknown"), obj.get("stream") is True, limit, n


CUT_GRACE_S = 1.0
"""A cut asked for while an event is half-sent waits this long for the event's end, then drops the answer."""


_LINE_END = re.compile(rb"[\r\n]")


def _event_end(reader: Reader, chunk: bytes) -> int | None:
    """Where in ``chunk`` the event under way ends (just past its blank line): 0 when the reader is between
    events, None when the event does not end in this chunk."""
    if reader.cut_safe:
        return 0
    probe = reader.sse.copy()
    # Up to each CR or LF in turn (either can end a line; a CR ending a blank line ends the event whatever comes
    # after it). Byte by byte, a long line under way was copied once a byte: seconds of the relay's loop for a cut
    # in a large event.
    start = 0
    for end in _LINE_END.finditer(chunk):
        probe.feed(chunk[start:end.end()])
        start = end.end()
        if probe.cut_safe:
            return start
    return None


def _realtime_chunk(stream: ProxiedStream, state: RealtimeState, obj: dict, now: float) -> None:
    """A chunk of a Realtime response's output (text, audio, a tool call): counted, and timed for its figures."""
    m = stream.metrics
    m["chunks"] += 1
    state.last_chunk = now
    rid = obj.get("response_id")
    response = state.responses.get(rid) if isinstance(rid, str) else None
    response = response or state.current
    if response is None:
        return
    response.chunks += 1
    response.last_chunk = now
    if math.isnan(response.first_chunk):  # (a Realtime response has no reasoning of its own: its TTFT is its TTFO)
        response.first_chunk = now
        m["ttft_req_ms"] = m["ttfo_req_ms"] = round((now - response.t_start) * 1e3, 1)


def _held(obj: dict, state: RealtimeState) -> bool:
    """Whether a response's event (while a cut holds) is a cut response's: by the response it names, even once
    another response began; else by its item's response (``response.mcp_call.*`` name only their item); an event
    naming neither, the newest response's, or, with none under way, while responses without ids were cut."""
    rid = obj.get("response_id")
    if isinstance(rid, str):
        return rid in state.cut_ids
    item = state.items.get(obj["item_id"]) if isinstance(obj.get("item_id"), str) else None
    if item is not None and item.response:
        return item.response in state.cut_ids
    current = state.current  # (neither: the newest response's, as its figures are)
    return current.cut if current is not None else state.cut and not state.cut_ids


def _item(state: RealtimeState, item_id: str, response: str) -> RealtimeItem:
    """The session's record of an output item (made on first sight; the oldest forgotten past ``ITEMS_KEPT``)."""
    item = state.items.get(item_id)
    if item is None:
        if len(state.items) >= ITEMS_KEPT:
            del state.items[next(iter(state.items))]
        item = state.items[item_id] = RealtimeItem(response)
    elif response and not item.response:
        item.response = response
    return item


def _token_limit(obj: dict, *keys: str) -> float | None:
    """The most output tokens a Realtime session or response says (untrusted JSON: the first of ``keys`` it has):
    a whole number, inf ("inf": no limit), or None when it says none."""
    for key in keys:
        value = obj.get(key)
        if value == "inf":
            return math.inf
        if value.__class__ is int and 0 <= value < 10 ** 15:  # (past that, no limit a model could reach)
            return value
    return None


def _end(reason: str) -> str:
    """How a request ended, in a word (``end``), from its stream's end reason: a cut's is "cancelled"."""
    return "cut" if reason == "cancelled" else reason


READABLE_ENCODINGS = ("identity", "gzip", "deflate")
"""The Content-Encodings of answers the analysis reads (the others are forwarded, not read)."""


def _decoder(encoding: str):
    """A decompressor for the analysis copy of a compressed answer; None: identity or not readable here."""
    encoding = encoding.strip().lower()
    if encoding == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    return None


class AnswerReading:
    """The analysis of one answer, from a copy of the bytes its client was sent: its events into its stream,
    its metrics (the README's definitions), its end. It runs where the hub is, given each copy with the time it
    was forwarded: beside the gateway (``ProxyServer`` in the hub's process) or fed by a relay process
    (``relay``), which then only forwards, frames events for a cut and ships the bytes. Reading never stops
    forwarding: what it cannot make sense of is recorded, and the rest of the answer is not read."""

    def __init__(self, stream: ProxiedStream, api: str, streamed: bool, encoding: str, t: float,
                 options: ProxyOptions, totals: GatewayTotals, choices: int = 1) -> None:
        self.stream, self.options, self.totals = stream, options, totals
        stream.reading = self
        self.reader: Reader | None = Reader(api, streamed, choices=choices)  # (``choices``: the answers asked for)
        self.streamed = streamed
        self.decoder = _decoder(encoding)
        if encoding != "identity" and self.decoder is None:
            self._unread(t, f"answer compressed ({encoding}): forwarded, not read")

    def _unread(self, t: float, why: str) -> None:
        self.reader = None
        self.stream.put(Flag(self.stream.stream_id, t, why, kind="proxy"))

    def feed(self, t: float, chunk: bytes, framer: Reader | None = None) -> None:
        """A chunk that came from the upstream at ``t`` (and was forwarded). (``framer``, where the answer's events
        ended before it, is for a reading in another process, which may skip chunks and must start again where an
        event starts.)"""
        reader = self.reader
        if reader is None:
            return
        try:
            if self.decoder is not None:  # bounded: a small compressed chunk must not inflate without limit
                data = self.decoder.decompress(chunk, 64 * len(chunk) + (1 << 16))
                if self.decoder.unconsumed_tail:
                    self._unread(t, "answer inflates more than 64 times: forwarded, not read further")
                    return
            else:
                data = chunk
            comments, oversized = reader.sse.comments, reader.sse.oversized
            self._take(t, reader.feed(data))
            self.stream.metrics["keepalives"] += reader.sse.comments - comments
            if reader.sse.oversized > oversized:  # (forwarded all the same; its text is not in the analysis)
                self.stream.put(Flag(self.stream.stream_id, t, f"an event's line over {reader.sse.max_line >> 20} "
                                     "MiB was forwarded, not read: its text is not analysed", kind="proxy"))
        except Exception as exc:  # odd bytes or JSON this reader did not foresee: forwarding goes on regardless
            self.reader = None
            self.stream.put(StreamError(self.stream.stream_id, t,
                                        f"answer not read further: {type(exc).__name__}: {str(exc)[:80]}"))

    def gap(self) -> None:
        """Chunks were skipped (the analysis fell behind): the next starts an event; what was left of the last
        one is dropped."""
        if self.reader is not None:
            comments = self.reader.sse.comments
            self.reader.sse = SSEParser()
            self.reader.sse.comments = comments

    def lost(self, t: float, why: str) -> None:
        """The rest of the answer will not come (a body, a compressed stream: not readable from the middle)."""
        if self.reader is not None:
            self._unread(t, why)

    @property
    def partial(self) -> bool:
        """Copies of the answer were skipped: its counts cover what was read, and figures made of them are not
        given (only what the server's usage says)."""
        return bool(self.stream.metrics.get("analysis_dropped"))

    def _take(self, now: float, parts: list[Part]) -> None:
        stream = self.stream
        name, m = stream.stream_id, stream.metrics
        timed = False  # the chunk under way was handed to the analysis as one (its text, or an OutputChunk)
        for i, part in enumerate(parts):
            if part.kind == "chunk":
                timed = False
                m["chunks"] += 1
                stream.last_chunk = now
                if math.isnan(stream.first_chunk):
                    stream.first_chunk = now
                    m["ttft_req_ms"] = round((now - stream.t_start) * 1e3, 1)
            elif part.kind in ("text", "tool", "choice") and math.isnan(stream.first_output):
                stream.first_output = now
                m["ttfo_req_ms"] = round((now - stream.t_start) * 1e3, 1)
            if part.kind == "text":
                stream.put(TextDelta(name, now, part.text))
                timed = True
            elif part.kind in ("reasoning", "tool", "choice"):
                m[_CHARS[part.kind]] += len(part.text)
                if not timed:  # one timed unit a chunk, as AIPerf counts its responses (text comes first in one)
                    timed = True
                    stream.put(OutputChunk(name, now, output_part(parts, i)))  # (timed and counted, not read as text)
                if part.choice:  # a later choice's content: read for a loop, apart from the stream's text
                    stream.put(ChoiceText(name, now, part.text, part.choice))
                elif part.kind == "reasoning":  # (the answer's thinking: read for a loop too)
                    stream.put(ChoiceText(name, now, part.text, REASONING))
            elif part.kind == "ended":  # a choice of a request for several ended (a loop there is over)
                stream.put(ChoiceText(name, now, choice=part.choice, ended=True))
            elif part.kind == "usage":
                stream.reported = part.completion_tokens
                stream.put(Usage(name, now, part.prompt_tokens, part.completion_tokens))
            elif part.kind == "finish":
                m["finish_reason"] = part.text
            elif part.kind == "error":
                stream.put(StreamError(name, now, part.text, fatal=part.fatal))

    def finish(self, t: float, reason: str, note: str = "", cut: bool = False, limit: int | None = None) -> None:
        """The answer ended at ``t`` (``reason`` as ``StreamClosed`` says it; ``cut``: by a cut, ``limit``: the
        request's max_tokens): its last parts, the request's figures, the stream's end (but for its last ``None``,
        which the gateway puts)."""
        stream = self.stream
        if cut:
            self._saved(limit)
        elif reason == "finished" and self.reader is not None:
            try:
                self._take(t, self.reader.end())
            except Exception as exc:  # an answer this reader cannot make sense of: forwarded all the same
                self._unread(t, f"answer not read: {type(exc).__name__}")
        # how the request ended, beside its timings: one the client left or a cut one reads like a finished one
        # otherwise ("closed", its e2e to the last chunk it got)
        stream.metrics["end"] = _end(reason)
        finish = stream.metrics.get("finish_reason") or _end(reason)
        stream.put(RequestFinished(stream.stream_id, t, reason=str(finish), streamed=self.streamed))
        self._timings(judged=reason != "proxy stopped" and self.reader is not None)
        if note:
            stream.put(Flag(stream.stream_id, t, note, kind="proxy"))
        stream.put(StreamClosed(stream.stream_id, t, reason=reason))

    def _saved(self, limit: int | None) -> None:
        """What a cut saved (``cut_saving``), from what came of the answer."""
        stream = self.stream
        received = stream.reported or (None if self.partial else stream.metrics["chunks"])
        cut_saving(stream, self.totals, self.options, received, limit)

    def _timings(self, judged: bool = True) -> None:
        """The request's end-to-end figures (see the README's metric definitions), and its SLO verdict (``judged``
        False: none without a chunk — an answer not read, a compressed one say, or one the proxy's stop ended)."""
        stream, totals = self.stream, self.totals
        m = stream.metrics
        if self.partial:  # (no timings, no SLO verdict made of what the analysis skipped)
            if stream.reported:
                m["output_tokens"], m["output_tokens_from"] = stream.reported, "usage"
            return
        if not judged and math.isnan(stream.first_chunk):
            return
        ok = request_figures(m, stream.t_start, stream.first_chunk, stream.last_chunk, m["chunks"], stream.reported,
                             self.streamed, self.options.slo)
        if ok is not None:
            totals.slo_done += 1
            totals.slo_good += ok


def cut_saving(stream: ProxiedStream, totals: GatewayTotals, options: ProxyOptions, received: int | None,
               limit: float | None) -> None:
    """What a cut saved, into the request's metrics and the gateway's totals: the output tokens the request could
    still have produced (``limit``, its max_tokens, less the ``received``), and their price where the price table
    has the model. Without a finite limit, or a count of what came: unknown, not guessed."""
    m = stream.metrics
    m["cut_tokens_received"] = received
    if "cut_usd_saved_max" in m:  # (a Realtime session's last cut is its metrics': not an earlier one's price)
        m["cut_usd_saved_max"] = None
    if limit is None or not math.isfinite(limit) or received is None:
        m["cut_tokens_saved_max"] = None
        return
    saved = max(0, int(limit) - received)
    m["cut_tokens_saved_max"] = saved
    totals.cuts_bounded += 1
    totals.tokens_saved += saved
    price = dict(options.prices).get(stream.stream_id.rpartition("#")[0])
    if price is not None:
        m["cut_usd_saved_max"] = round(saved * price / 1e6, 6)
        totals.usd_saved += saved * price / 1e6


REQUEST_FIGURES = ("ttft_req_ms", "ttfo_req_ms", "e2e_req_ms", "output_tokens", "output_tokens_from",
                   "tokens_counted_minus_usage", "tpot_req_ms", "output_tokens_per_s", "slo_ok")
"""A request's own figures (a Realtime session's: its last response's)."""


def request_figures(m: dict, t_start: float, first_chunk: float, last_chunk: float, counted: int,
                    reported: int | None, streamed: bool, slo: tuple) -> bool | None:
    """A finished request's end-to-end figures into its metrics ``m`` (see the README's definitions; its times to
    the first chunk and output are there already), and its SLO verdict (None: no SLO set). One the upstream answered
    that ended without a chunk (an error status, an upstream silent past its timeout, a client that left first) met
    none: it counts against the goodput (it was left out, so a request that timed out weighed less than one merely
    slow)."""
    if math.isnan(first_chunk):
        if not slo:
            return None
        m["slo_ok"] = 0
        return False
    e2e = last_chunk - t_start
    tokens = reported if reported else counted  # the server's count, reasoning included
    m["e2e_req_ms"] = round(e2e * 1e3, 1)
    m["output_tokens"] = tokens
    m["output_tokens_from"] = "usage" if reported else "counted"
    if reported:
        m["tokens_counted_minus_usage"] = counted - reported
    if tokens > 1 and streamed:  # (a body, not streamed, has no time per token; several tokens in one
        # chunk have 0, as AIPerf's ITL and vLLM's TPOT give them)
        m["tpot_req_ms"] = round((last_chunk - first_chunk) / (tokens - 1) * 1e3, 3)
    if tokens > 1:
        m["output_tokens_per_s"] = round(tokens / max(e2e, 1e-9), 2)
    if not slo:
        return None
    got = {"ttft": m.get("ttft_req_ms"), "ttfo": m.get("ttfo_req_ms"), "tpot": m.get("tpot_req_ms"),
           "e2e": m.get("e2e_req_ms")}
    # A request without a time per token (its answer came in one chunk) is not judged on it, as vLLM's
    # benchmark counts a one-token answer as meeting a TPOT bound; every other bound must be met.
    ok = all(got[name] <= limit * 1e3 if got[name] is not None else name == "tpot" for name, limit in slo)
    m["slo_ok"] = int(ok)
    return ok


def check_binding(host: str, options: ProxyOptions) -> None:
    """A proxy bound beyond loopback serves only clients that show its token."""
    if not is_loopback(host) and not options.token:
        raise ProxyError(f"binding {host} (not loopback) needs a token: --token or MIDSTREAM_PROXY_TOKEN")
    if not is_loopback(host) and weak_token(options.token):
        raise ProxyError(f"binding {host} (not loopback): {weak_token(options.token)}")


class GatewayTotals:
    """What a gateway counts over its run, the same whether it forwards in this process (``ProxyServer``) or in a
    relay process (``ProxyProcess``, which adds up its relays')."""

    TOTALS = ("requests", "cuts", "client_left", "responses_judged", "responses_good", "slo_done", "slo_good",
              "cuts_bounded", "tokens_saved", "usd_saved", "unanswered_judged")
    FORWARDING = TOTALS[:5] + TOTALS[7:]
    """Counted where the bytes are forwarded (Realtime sessions are read there too: their responses' SLO
    verdicts, their cuts' savings; requests that ended before their upstream answered); the others, and the
    savings of the other cuts, where the answers are read (``AnswerReading``)."""

    def _zero_totals(self) -> None:
        self.requests = self.cuts = self.client_left = self.slo_done = self.slo_good = 0
        self.responses_judged = self.responses_good = self.cuts_bounded = self.unanswered_judged = 0
        """(``cuts_bounded``: the cuts of requests that set a max_tokens, whose saving is known at most)"""
        self.tokens_saved = 0
        """Output tokens the cuts kept from being generated, at most (requests that set a max_tokens)."""
        self.usd_saved = 0.0

    @property
    def judged(self) -> int:
        """Finished requests given an SLO verdict (a Realtime session's responses each count as one)."""
        return self.slo_done + self.responses_judged + self.unanswered_judged

    @property
    def goodput(self) -> float:
        """Share of the finished requests that met every SLO (NaN before the first, or without ``--slo``)."""
        return (self.slo_good + self.responses_good) / self.judged if self.judged else math.nan

    def summary(self) -> dict:
        """The totals as the headless summary shows them (``proxy``)."""
        return {"requests": self.requests, "cuts": self.cuts, "client_left": self.client_left,
                "cuts_bounded": self.cuts_bounded, "tokens_saved_max": self.tokens_saved,
                "usd_saved_max": round(self.usd_saved, 6), "slo_judged": self.judged,
                "slo_good": self.slo_good + self.responses_good, "goodput": self.goodput}


class ProxyServer(LocalServer, GatewayTotals):
    """The gateway: ``start()`` binds it; every analyzed request is added to ``hub`` as a ``ProxiedStream``."""

    header_timeout = 30.0
    # An application opens many connections at once from one address (every client here is 127.0.0.1):
    # no per-address cap on connections still sending their headers, a deeper queue.
    max_pending = 2048
    max_pending_per_client = None
    backlog = 2048
    runner_kwargs = {"handler_cancellation": True}  # a client that leaves cancels its handler: upstream closed
    handler_kwargs = {"max_line_size": HEADER_LINE_MAX, "max_field_size": HEADER_LINE_MAX, "max_headers": HEADERS_MAX}

    def __init__(self, hub, options: ProxyOptions | None = None, host: str = "127.0.0.1", port: int = 8080, *,
                 ssl_context=None, explain: Callable[[str], tuple[str, str]] | None = None) -> None:
        options = options or ProxyOptions()
        check_binding(host, options)
        super().__init__(host, port, ssl_context)
        self.hub, self.options = hub, options
        self.explain = explain or (lambda stream: ("cancel", "cancelled by the user"))
        """(rule, reason) of a stream's cut, for the client's ending (the run's rule engine knows)."""
        self.clock: Clock = getattr(hub, "clock", None) or MonotonicClock()
        self._session: aiohttp.ClientSession | None = None
        self._counter = itertools.count(1)
        self._zero_totals()
        self.stopping = False
        self.read_answer: Callable[..., Any] = getattr(hub, "read_answer", None) or self._read_here
        """(stream, api, streamed, encoding, t) -> what is given a copy of the answer's bytes (``feed``) and its end
        (``finish``): an ``AnswerReading`` here, or what ships them to the hub's process (a relay)."""

    def _read_here(self, stream: ProxiedStream, api: str, streamed: bool, encoding: str, t: float,
                   choices: int = 1) -> AnswerReading:
        return AnswerReading(stream, api, streamed, encoding, t, self.options, self, choices)

    def __repr__(self) -> str:  # never the token
        return f"ProxyServer({self.host!r}, {self.port}, token={'set' if self.options.token else 'none'})"

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.options.max_body)
        app.router.add_route("*", "/{tail:.*}", self._handle, expect_handler=self._expect)
        return app

    async def _expect(self, request: web.Request) -> web.StreamResponse | None:
        """``Expect: 100-continue``: a body declared over the limit is refused before the client sends it (it was
        told to go on, then refused); otherwise aiohttp's own answer."""
        if request.content_length is not None and request.content_length > self.options.max_body:
            return _too_large(self.options.max_body)
        return await _continue(request)

    async def start(self) -> str:
        # unchanged bytes: no decompression, no headers the client did not send
        self._session = aiohttp.ClientSession(  # nothing the client did not send
            auto_decompress=False, skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            max_line_size=HEADER_LINE_MAX, max_field_size=HEADER_LINE_MAX, max_headers=HEADERS_MAX,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_S),
            # as many connections upstream as clients ask for: aiohttp's default pool of 100 held the 101st request
            # (silently, for as long as a stream lasts) until one of the first hundred ended
            connector=aiohttp.TCPConnector(limit=0), trace_configs=[_handshake_trace()])
        try:
            return await super().start()
        except BaseException:
            await self._session.close()
            raise

    async def stop(self) -> None:
        self.stopping = True  # requests under way end now because of this, not because their clients left
        await super().stop()
        if self._session is not None:
            await self._session.close()

    def _left(self, cancelled: bool = True) -> tuple[str, str]:
        """(reason, words) for a request cut off on the client's side: its handler was cancelled because the
        client left or because the proxy is stopping, or (``cancelled`` False) writing to the client failed."""
        if cancelled and self.stopping:
            return "proxy stopped", "the proxy stopped"
        self.client_left += 1
        return "client left", "client left"

    # -- routing ----------------------------------------------------------------------------------

    def _learn_keys(self, headers) -> None:
        """The request's credentials are secrets ``redact`` replaces from now on, whatever their shape (an upstream
        may echo a key it refuses: "Incorrect API key provided: ..."); the hub's process is told them too (it is
        where text is printed and recorded), before the request's stream opens."""
        tell = getattr(self.hub, "secret", None)
        for value in credentials(headers):
            remember(value)
            if tell is not None:
                tell(value)

    def _route(self, request: web.Request) -> tuple[str | None, str, str]:
        """(api analyzed or None, upstream URL, provider). The URL keeps the client's path and query as it sent
        them (``%3A`` stays ``%3A``, ``%2e%2e`` and ``..`` stay): the upstream reads them as it would direct (a
        signed URL still verifies); which API it is, is read on the path aiohttp normalised."""
        path = request.rel_url.raw_path
        sent = request.raw_path  # (the request target as it came; absolute-form: as aiohttp read it)
        raw_path, mark, query = (sent if sent.startswith("/") else request.rel_url.raw_path_qs).partition("?")
        suffix = mark + query
        if "anthropic-version" in request.headers:
            base, own = _split_query(self.options.anthropic_upstream)
            api = "messages" if path.rstrip("/") == "/v1/messages" and request.method == "POST" else None
            return api, base + raw_path + _with_query(own, suffix), "anthropic"
        base, own = _split_query(self.options.upstream)
        if raw_path == "/v1" or raw_path.startswith("/v1/"):  # the client's base URL ends in /v1, like the upstream's
            api = PATHS.get(path[3:].rstrip("/")) if request.method == "POST" and path.startswith("/v1") else None
            return api, base + raw_path[3:] + _with_query(own, suffix), "openai"
        origin = urlsplit(base)
        return None, f"{origin.scheme}://{origin.netloc}{raw_path}{suffix}", "openai"

    # -- one request ------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        token = self.options.token
        given = request.headers.get(TOKEN_HEADER, "").encode("utf-8", "surrogateescape")
        if token and not hmac.compare_digest(given, token.encode("utf-8", "surrogateescape")):
            return _error(401, f"this proxy needs its token in the {TOKEN_HEADER} header", "midstream_unauthorized")
        if not same_origin(request):  # a web page elsewhere must not use the proxy (and the keys behind it)
            return _error(403, "this proxy serves applications, not web pages from other origins", "midstream_origin")
        self._learn_keys(request.headers)
        api, url, provider = self._route(request)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request, url, provider)
        if request.content_length is not None and request.content_length > self.options.max_body:
            return _too_large(self.options.max_body)
        try:
            body = await self._body(request)
        except web.HTTPRequestEntityTooLarge:
            return _too_large(self.options.max_body)
        except asyncio.TimeoutError:
            timed_out = _error(408, f"request body stalled: no bytes of it for {self.header_timeout:g} s",
                               "request_timeout")
            timed_out.force_close()  # the rest of that body is not waited for
            return timed_out
        headers = _forwarded_headers(request.headers, TOKEN_HEADER)
        self.requests += 1
        info = _request_info(api, body) if api else None
        stream = self._open(api, provider, url, info) if api and info else None
        t_sent = self.clock.now()
        asking = asyncio.ensure_future(self._session.request(  # type: ignore[union-attr]
            request.method, URL(url, encoded=True), headers=headers, data=body or None, allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_S,
                                          sock_read=self.options.upstream_timeout)))
        cut_early: list[bool] = []
        if stream is not None:
            def cut_before_answer() -> None:  # a cut while the upstream has not answered: stop asking it
                if not asking.done() and not self.stopping:
                    cut_early.append(True)
                    asking.cancel()
            stream.on_cut = cut_before_answer
        try:
            upstream = await asking
        except asyncio.CancelledError:
            if cut_early and stream is not None and not asyncio.current_task().cancelling():  # type: ignore[union-attr]
                return self._cut_before_answer(stream)
            asking.cancel()
            reason, words = self._left()
            if stream is not None:
                self._unanswered(stream, reason)
                self._close(stream, reason, f"{words} before the upstream answered")
            raise
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
            if isinstance(exc, aiohttp.ConnectionTimeoutError):  # (a TimeoutError too: the connection, not a silence)
                message = f"upstream unreachable: no connection within {CONNECT_TIMEOUT_S:g} s"
            elif isinstance(exc, asyncio.TimeoutError):
                message = f"upstream silent for {self.options.upstream_timeout:g} s"
            elif isinstance(exc, ValueError):  # aiohttp refuses a request it cannot send as given (a header value)
                message = f"request not forwarded: {str(exc)[:120]}"
            elif isinstance(exc, aiohttp.ClientConnectorError):
                message = f"upstream unreachable: {type(exc).__name__}: {str(exc)[:120]}"
            elif isinstance(exc, aiohttp.ClientResponseError):  # it answered, in a way that cannot be relayed
                # (the parser's words can quote the answer's headers: not repeated)
                message = f"upstream answer unreadable: {exc.message.split(':')[0][:80]} ({type(exc).__name__})"
            else:  # (a connection the upstream closed or reset before it answered)
                message = f"upstream failed before it answered: {type(exc).__name__}: {str(exc)[:120]}"
            if stream is not None:
                stream.put(StreamError(stream.stream_id, self.clock.now(), message, fatal=True))
                self._unanswered(stream, "error")
                self._close(stream, "error")
            return _error(502, message, "midstream_upstream_error")
        async with upstream:
            return await self._relay(request, upstream, stream, api, info, t_sent)

    async def _body(self, request: web.Request) -> bytes:
        """The request body, read as it comes: a body whose bytes stop coming for ``header_timeout`` seconds is a
        TimeoutError (it must not hold its connection for ever), however long a slow upload of a large one takes;
        over ``max_body`` bytes (a chunked body says no length first) is HTTPRequestEntityTooLarge."""
        parts: list[bytes] = []
        size = 0
        while True:
            chunk = await asyncio.wait_for(request.content.readany(), self.header_timeout)
            if not chunk:
                return b"".join(parts)
            size += len(chunk)
            if size > self.options.max_body:
                raise web.HTTPRequestEntityTooLarge(max_size=self.options.max_body, actual_size=size)
            parts.append(chunk)

    def _cut_before_answer(self, stream: ProxiedStream) -> web.Response:
        """A stream cut before its upstream answered: the request to the upstream is dropped (its connection
        closed), and the client, which has no stream yet to end, gets an error in its SDK's shape that the SDKs
        do not retry (``x-should-retry: false``; a retry would ask the same again)."""
        self.cuts += 1
        rule, reason = self.explain(stream.stream_id)
        stream.metrics["cut"] = f"{rule}: {reason}"
        self._unanswered(stream, "cancelled")
        self._close(stream, "cancelled", f"cut by {rule} before the upstream answered: request dropped, the "
                                         "client told")
        answer = _error(503, f"cut by {rule} before the upstream answered: {reason}", "midstream_cut")
        answer.headers["x-should-retry"] = "false"
        return answer

    # -- WebSocket (the Realtime API) ---------------------------------------------------------------

    async def _websocket(self, request: web.Request, url: str, provider: str) -> web.StreamResponse:
        """Both directions relayed message by message (same type, same payload: pings and pongs too); the server's
        Realtime events read into a stream (a response per request, text and audio transcripts as text). The
        upstream's handshake answer reaches the client as it came: a refusal's status, headers and body, or the
        101's headers and the subprotocol the upstream chose."""
        protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        headers = _forwarded_headers(request.headers, TOKEN_HEADER, websocket=True)
        ws_url = "ws" + url[len("http"):]  # http -> ws, https -> wss
        model = request.query.get("model") or "realtime"
        answer: dict[str, Any] = {"timeout": self.options.upstream_timeout}
        kept = _HANDSHAKE.set(answer)
        try:
            upstream = await asyncio.wait_for(self._session.ws_connect(  # type: ignore[union-attr]
                URL(ws_url, encoded=True), headers=headers, protocols=protocols, max_msg_size=self.options.max_body,
                autoclose=False, autoping=False,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=10.0)), self.options.upstream_timeout)
        except aiohttp.WSServerHandshakeError as exc:
            if "body" in answer:  # refused (401, 429 with its retry-after, 503): the client gets it unchanged
                return await self._refused(request, provider, url, model, answer)
            return self._ws_failed(provider, url, model,
                                   f"upstream answered the WebSocket handshake wrongly: {exc.status} {exc.message}")
        except asyncio.TimeoutError as exc:
            if "body" in answer:  # refused, its body still coming at the handshake's deadline: as much as came
                answer["cut"] = True
                return await self._refused(request, provider, url, model, answer)
            return self._ws_failed(provider, url, model,
                                   f"upstream unreachable: no connection within {CONNECT_TIMEOUT_S:g} s"
                                   if isinstance(exc, aiohttp.ConnectionTimeoutError) else
                                   f"upstream silent for {self.options.upstream_timeout:g} s")
        except (aiohttp.ClientError, OSError) as exc:
            return self._ws_failed(provider, url, model, f"upstream unreachable: {type(exc).__name__}: {str(exc)[:120]}")
        finally:
            _HANDSHAKE.reset(kept)
        self.requests += 1
        # the subprotocol the upstream chose (the client offered several: OpenAI's SDKs offer one that carries the
        # key), and the 101's own headers (a request id, say)
        client = web.WebSocketResponse(protocols=(upstream.protocol,) if upstream.protocol else (),
                                       max_msg_size=self.options.max_body, autoclose=False, autoping=False)
        for key, value in _forwarded_headers(answer.get("headers") or CIMultiDict(), websocket=True).items():
            if key.lower() not in ("content-length", "content-type"):
                client.headers.add(key, value)
        try:
            await client.prepare(request)
        except BaseException:
            await upstream.close()
            raise
        stream = self._open("realtime", provider, url, (model, True, None), started=False, session=True)
        state = RealtimeState(f"{stream.stream_id}-audio")

        def send_upstream(event: dict) -> None:
            sending = asyncio.ensure_future(upstream.send_str(json.dumps(event)))
            sending.add_done_callback(lambda t: t.cancelled() or t.exception())  # a closed socket: nothing to do

        def on_cut() -> None:  # a Realtime response is stopped the protocol's way; the session goes on
            stream._cancelled = False  # a later response of the session can be cut too
            # every response under way is stopped (out-of-band ones can run beside the conversation's: the stream's
            # text is theirs together), each named, so that the cancel stops it whichever conversation it is in
            targets = [rid for rid, response in state.responses.items() if not (response.cut or response.by_client)]
            if not state.open or upstream.closed or (not targets if state.responses else state.cut):
                return  # no response under way, or all cut already (or the run is stopping)
            self.cuts += max(1, len(targets))  # (each response stopped is a cut request, as each is a request)
            state.cut = True  # the rest of their deltas are not relayed
            for rid in targets:
                state.responses[rid].cut = True  # (what it saved: when it is done, cancelled, from its usage)
                if rid:
                    state.cut_ids.add(rid)
            rule, reason = self.explain(stream.stream_id)
            stream.metrics["cut"] = f"{rule}: {reason}"
            for rid in targets if any(targets) else [""]:
                send_upstream({"type": "response.cancel", **({"response_id": rid} if rid else {})})
            said = "response.cancel sent upstream"
            # the assistant's audio the client got is where each item of theirs ends: the server forgets the rest
            # (an item no event tied to a response: the one that spoke last; out-of-band ones are in no conversation)
            stopped = {rid for rid in targets if not state.responses[rid].out_of_band} if state.responses else {""}
            ends = [(item_id, item) for item_id, item in state.items.items() if item_id and item.ms and (
                item.response in stopped if item.response else item_id == state.item_id and bool(stopped))]
            for item_id, item in ends:
                send_upstream({"type": "conversation.item.truncate", "item_id": item_id,
                               "content_index": item.content_index, "audio_end_ms": int(item.ms)})
            if ends:
                stream.metrics["truncated_at_ms"] = int(ends[-1][1].ms)
                said += ", " + "; ".join(f"{'its' if len(ends) == 1 else item_id} audio item truncated at "
                                         f"{int(item.ms)} ms" for item_id, item in ends) + " (what the client received)"
            stream.put(Flag(stream.stream_id, self.clock.now(), f"cut by {rule}: {said}", kind="proxy"))

        stream.on_cut = on_cut

        said: dict[bool, tuple[int, str]] = {}  # the close frame's code and reason, by side (True: the upstream's)

        async def relay(src, dst, from_upstream: bool) -> str:
            """Until ``src`` ends: "closed" (its close frame came), "dropped" (its connection ended without one),
            or "unsent" (``dst`` could not be written to: that side is gone)."""
            while True:
                try:
                    msg = await src.receive()
                except (ConnectionError, aiohttp.ClientError):
                    return "dropped"
                kind = msg.type
                if kind == aiohttp.WSMsgType.CLOSE:  # (its reason kept: ``async for`` hid it)
                    said[from_upstream] = (msg.data, msg.extra if isinstance(msg.extra, str) else "")
                    return "closed"
                if kind == aiohttp.WSMsgType.ERROR:  # (a frame over the size limit, say: that side is told why)
                    code = getattr(msg.data, "code", 0)
                    if 1000 <= code < 5000 and not src.closed:
                        with contextlib.suppress(ConnectionError, aiohttp.ClientError, asyncio.TimeoutError):
                            await src.close(code=code, message=str(msg.data).encode("utf-8")[:123])
                    return "dropped"
                try:
                    if kind == aiohttp.WSMsgType.TEXT:
                        data = msg.data
                        if from_upstream:
                            data = self._realtime_relayed(stream, data, state)
                            if data is None:
                                continue  # an event of a response that was cut: the client gets no more of it
                        await dst.send_str(data)
                        if not from_upstream:
                            self._realtime_asked(data, state)
                    elif kind == aiohttp.WSMsgType.BINARY:
                        await dst.send_bytes(msg.data)
                    elif kind == aiohttp.WSMsgType.PING:  # (answered by the other end, not by the proxy: a client's
                        await dst.ping(msg.data)          # ping says whether the upstream is alive)
                    elif kind == aiohttp.WSMsgType.PONG:
                        await dst.pong(msg.data)
                    else:  # closing, closed
                        return "dropped"
                except (ConnectionError, aiohttp.ClientError, RuntimeError):  # (aiohttp: "closed" is a RuntimeError)
                    return "unsent"

        up = asyncio.ensure_future(relay(upstream, client, True))
        down = asyncio.ensure_future(relay(client, upstream, False))
        reason, ended_by_upstream, how = "finished", True, "closed"
        try:
            done, _ = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
            first = up if up in done else down
            how = first.result()
            if how == "unsent":  # the other side could not be written to: it ended, as its own relay says
                first = down if first is up else up
                done, _ = await asyncio.wait({first}, timeout=SIDE_END_S)
                how = first.result() if done and first.result() != "unsent" else "dropped"
            ended_by_upstream = first is up
            if ended_by_upstream:
                code = said.get(True, (0, ""))[0]
                if how == "dropped" or code in ABNORMAL_CLOSE:
                    reason = "error"
                    stream.put(StreamError(stream.stream_id, self.clock.now(), "upstream dropped the session" if
                                           how == "dropped" else f"upstream closed the session: {code} "
                                           f"{said[True][1][:80]}".rstrip(), fatal=True))
            elif how != "closed" or state.responses:  # (a client that closed between responses ended its session)
                reason = "client left"
        except asyncio.CancelledError:
            reason = "proxy stopped" if self.stopping else "client left"
            ended_by_upstream, how = False, "dropped"
            raise
        finally:
            for task in (up, down):
                task.cancel()
            # the session's end is recorded first: closing the sockets below may itself be cancelled (the proxy
            # stopping cancels this handler, and then its clean-up)
            if reason == "client left":
                self.client_left += 1
            for response in state.responses.values():  # (cut short by the session's end: judged on what came, as
                self._realtime_judged(stream, response, None)  # an HTTP request its client left is)
            if state.open:
                stream.put(RequestFinished(stream.stream_id, self.clock.now(), reason=reason))
            if state.audio_open:
                stream.put(StreamClosed(state.audio_stream, self.clock.now(),
                                        reason=reason))
            self._close(stream, reason)
            # The side that ended passes its code and reason on. 1005, 1006 and 1015 say that no close frame came
            # (a dropped connection): no frame may carry them (RFC 6455 7.4.1): an upstream that dropped the
            # connection drops the client's, a client that did says "going away" upstream.
            # (a close frame without a code, valid, says 1000 on: aiohttp can send none)
            code, words = said.get(ended_by_upstream, (0, ""))
            framed = how == "closed"
            if not (1000 <= code < 5000 and code not in (1005, 1006, 1015)):
                code, words = 1000, ""
            words_b = words.encode("utf-8")[:123]  # (a close frame's reason: at most 123 bytes)
            if ended_by_upstream:
                await upstream.close(code=code)  # (its close answered, with its code)
                if not client.closed:
                    if not framed and request.transport is not None:
                        request.transport.close()
                    else:
                        await client.close(code=code, message=words_b)
            else:
                await upstream.close(code=code if framed else 1001, message=words_b if framed else b"")
                if not client.closed:  # (the proxy stopping: "going away")
                    await client.close(code=code if framed else 1001 if reason == "proxy stopped" else 1000,
                                       message=words_b if framed else b"")
        return client

    def _ws_ended_unanswered(self, provider: str, url: str, model: str, message: str,
                             status: int | None = None) -> None:
        """A Realtime session whose handshake failed, recorded as a session that ended in that error."""
        self.requests += 1
        stream = self._open("realtime", provider, url, (model, True, None), started=False, session=True)
        if status is not None:
            stream.metrics["status"] = status
        stream.put(StreamError(stream.stream_id, self.clock.now(), message[:200], fatal=True))
        self._unanswered(stream, "error")
        self._close(stream, "error")

    def _ws_failed(self, provider: str, url: str, model: str, message: str) -> web.Response:
        """The proxy's own 502 for a handshake that failed (recorded, as an HTTP request that failed so is)."""
        self._ws_ended_unanswered(provider, url, model, message)
        return _error(502, message[:200], "midstream_upstream_error")

    async def _refused(self, request: web.Request, provider: str, url: str, model: str,
                       answer: dict) -> web.StreamResponse:
        """An upstream's refusal of a WebSocket handshake, for the client as it came (status, end-to-end headers,
        body), recorded as a session that ended in that error."""
        status = answer["status"]
        self._ws_ended_unanswered(provider, url, model, f"upstream refused the WebSocket: {status}", status)
        refused = _Relayed(status=status, reason=answer["reason"])
        refused.upstream_names = frozenset(k.lower() for k in answer["headers"])
        for key, value in _forwarded_headers(answer["headers"]).items():
            if key.lower() != "content-length":  # (its own: the body kept)
                refused.headers.add(key, value)
        body = bytes(answer["body"][:REFUSAL_KEPT])
        refused.content_length = len(body)
        if answer.get("cut"):  # (its body broke off, or went past what is kept: the connection goes with it)
            refused.force_close()
        with contextlib.suppress(ConnectionError):
            await refused.prepare(request)
            await refused.write(body)
            await refused.write_eof()
        return refused

    def _realtime_relayed(self, stream: ProxiedStream, data: str, state: RealtimeState) -> str | None:
        """What the client gets of one server event (None: nothing); read into the stream on the way. Reading
        never stops the relay: what it cannot make sense of is recorded and passed on unchanged."""
        try:
            return self._realtime_event(stream, data, state)
        except Exception as exc:  # noqa: BLE001 - an event of a shape nobody foresaw
            stream.put(StreamError(stream.stream_id, self.clock.now(),
                                   f"unreadable event ({type(exc).__name__}): {data[:80]!r}"))
            return data

    def _realtime_event(self, stream: ProxiedStream, data: str, state: RealtimeState) -> str | None:
        try:
            obj = loads(data)
        except (ValueError, RecursionError):
            stream.put(StreamError(stream.stream_id, self.clock.now(), f"malformed event: {data[:80]!r}"))
            return data
        if not isinstance(obj, dict):
            return data
        kind, now, name = str(obj.get("type", "")), self.clock.now(), stream.stream_id
        if kind == "response.output_item.added" and isinstance(obj.get("item"), dict) \
                and isinstance(obj["item"].get("id"), str):  # whose item it is (held back or not: its later
            rid = obj.get("response_id")  # events may name only it)
            _item(state, obj["item"]["id"], rid if isinstance(rid, str) else "")
        if (state.cut or state.cut_ids) and kind.startswith("response.") \
                and kind not in ("response.created", "response.done") and _held(obj, state):
            return None  # a cut response's deltas, parts and items (its text, its tool calls): not relayed
        delta = obj.get("delta") if isinstance(obj.get("delta"), str) else ""
        if kind in ("session.created", "session.updated"):
            session = obj.get("session")
            state.audio_format = realtime_audio_format(session) or state.audio_format
            if isinstance(session, dict):  # (GA, then beta)
                state.max_tokens = _token_limit(session, "max_output_tokens", "max_response_output_tokens")
        elif kind == "input_audio_buffer.speech_stopped":
            state.spoke = now
        elif kind == "response.created":
            state.open, state.cut, state.item_id = True, False, ""
            # the response's request: the client's response.create, else the end of the user's speech (the
            # server's voice detection asks for it), else this event (a response the server began on its own)
            ask = state.asked.pop(0) if state.asked else None
            asked = ask[1] if ask else state.spoke if not math.isnan(state.spoke) else now
            state.spoke = math.nan
            start = min(now, max(asked, state.last_chunk if not math.isnan(state.last_chunk) else asked))
            resp = obj.get("response") if isinstance(obj.get("response"), dict) else {}
            rid = resp.get("id") if isinstance(resp.get("id"), str) else ""
            # the most it may say: as the server says it used, else as asked, else the session's
            limit = _token_limit(resp, "max_output_tokens")
            limit = limit if limit is not None else ask[2] if ask and ask[2] is not None else state.max_tokens
            if len(state.responses) < 64 or rid in state.responses:
                state.current = state.responses[rid] = RealtimeResponse(
                    start, limit=limit, out_of_band="conversation_id" in resp and resp["conversation_id"] is None)
            for key in REQUEST_FIGURES:  # (None, not gone: the hub's copy of the metrics is updated, never pruned)
                stream.metrics[key] = None
            stream.put(RequestStarted(name, start))
        elif kind == "response.output_item.added":
            item = obj.get("item")
            if isinstance(item, dict) and isinstance(item.get("id"), str) and item.get("type", "message") == "message":
                state.item_id = item["id"]
            elif isinstance(item, dict) and item.get("type") == "function_call" and isinstance(item.get("name"), str) \
                    and item["name"]:  # a tool call's name: output, its first chunk (as in Chat Completions)
                _realtime_chunk(stream, state, obj, now)
                stream.metrics["tool_chars"] += len(item["name"])
                stream.put(OutputChunk(name, now, "tool"))
        elif kind in TEXT_DELTAS and delta:
            _realtime_chunk(stream, state, obj, now)
            stream.put(TextDelta(name, now, delta))
        elif kind in AUDIO_DELTAS and delta:
            _realtime_chunk(stream, state, obj, now)
            self._realtime_audio(stream, obj, delta, state, now)
        elif kind == "response.function_call_arguments.delta" and delta:  # a tool call: timed, not read as text
            _realtime_chunk(stream, state, obj, now)
            stream.metrics["tool_chars"] += len(delta)
            stream.put(OutputChunk(name, now, "tool"))
        elif kind == "response.done":
            resp = obj.get("response") if isinstance(obj.get("response"), dict) else {}
            usage = resp.get("usage") if isinstance(resp.get("usage"), dict) else {}
            if usage:
                stream.put(Usage(name, now, _int(usage.get("input_tokens")), _int(usage.get("output_tokens"))))
            rid = resp.get("id") if isinstance(resp.get("id"), str) else ""
            response = state.responses.pop(rid, None)
            if response is not None:  # the response's own figures, and its SLO verdict
                out = usage.get("output_tokens")
                reported = _int(out) if out.__class__ is int else None  # (none said: what was counted)
                self._realtime_judged(stream, response, reported)
                if response.cut:  # what its cut saved: the output it still could have produced (one that ended
                    # before the cancel came saved nothing)
                    received = response.chunks if reported is None else reported
                    cancelled = resp.get("status") == "cancelled"
                    cut_saving(stream, self, self.options, received, response.limit if cancelled or
                               response.limit is None else received)
                if state.current is response:
                    state.current = next(reversed(state.responses.values()), None)
            state.open = bool(state.responses)
            if not state.open:
                state.asked.clear()  # (asks made while it ran went unanswered: the server refuses them, or drops
                # them; one left pending would start the next response at it, however long ago)
            stream.put(RequestFinished(name, now, reason=str(resp.get("status") or "completed")))
            was_cut = rid in state.cut_ids or (state.cut and not rid)
            state.cut_ids.discard(rid)
            if rid:  # (its items cannot be truncated any more)
                for item_id in [item_id for item_id, item in state.items.items() if item.response == rid]:
                    del state.items[item_id]
            if was_cut and resp.get("output"):
                # the cut response ends as cancelled without the output the client never got
                obj["response"] = {**resp, "output": []}
                return json.dumps(obj)
        elif kind == "error":
            err = obj.get("error") if isinstance(obj.get("error"), dict) else {}
            stream.put(StreamError(name, now, str(err.get("message") or "error event")[:200]))
            # a response.create refused (the one the error names, else, with no response under way, the oldest):
            # it starts no response
            refused = [a for a in state.asked if a[0] and a[0] == err.get("event_id")]
            if refused or (state.asked and not state.open):
                state.asked.remove(refused[0] if refused else state.asked[0])
        return data

    def _realtime_judged(self, stream: ProxiedStream, response: RealtimeResponse, reported: int | None) -> None:
        """A Realtime response that ended (or whose session did): its figures and SLO verdict, in the goodput."""
        ok = request_figures(stream.metrics, response.t_start, response.first_chunk, response.last_chunk,
                             response.chunks, reported, True, self.options.slo)
        if ok is not None:
            self.responses_judged += 1
            self.responses_good += ok

    def _realtime_asked(self, data: str, state: RealtimeState) -> None:
        """A client's event on its way upstream: when it asks for a response (the start of that response's
        figures), or cancels one itself."""
        if '"response.cancel"' not in data and '"response.create"' not in data:
            return
        try:
            obj = loads(data)
        except (ValueError, RecursionError):
            return
        kind = obj.get("type") if isinstance(obj, dict) else None
        if kind == "response.cancel":  # the client's own: not a cut's
            rid = obj.get("response_id")
            if isinstance(rid, str) and rid:
                response = state.responses.get(rid)
            elif rid is None or rid == "":  # none: the default conversation's response (the newest of it)
                response = next((r for r in reversed(state.responses.values()) if not r.out_of_band), None)
            else:  # (an id that is not a string: the server refuses the event, nothing is cancelled)
                response = None
            if response is not None:
                response.by_client = True
        elif kind == "response.create" and len(state.asked) < 64:
            event_id = obj.get("event_id")
            resp = obj.get("response")
            limit = _token_limit(resp, "max_output_tokens", "max_response_output_tokens") \
                if isinstance(resp, dict) else None
            state.asked.append((event_id if isinstance(event_id, str) else "", self.clock.now(), limit))

    def _realtime_audio(self, stream: ProxiedStream, obj: dict, delta: str, state: RealtimeState, now: float) -> None:
        """An audio delta into the session's audio stream (opened with the first), and where its item stands."""
        if isinstance(obj.get("item_id"), str):  # (responses at once: their items' audio interleaves)
            state.item_id = obj["item_id"]
        rid = obj.get("response_id")
        item = _item(state, state.item_id, rid if isinstance(rid, str) else "") if state.item_id else None
        if item is not None and "content_index" in obj:
            item.content_index = _int(obj["content_index"])
        codec, rate = state.audio_format
        try:
            samples = decode_realtime_audio(delta, codec)
        except ValueError as exc:
            stream.put(StreamError(state.audio_stream if state.audio_open else stream.stream_id, now,
                                   f"audio delta not {codec}: {str(exc)[:100]}"))
            return
        if item is not None:
            item.ms += Fraction(samples.size * 1000, rate)  # (exact: a float sum fell a millisecond short)
        stream.metrics["audio_ms"] = round(stream.metrics.get("audio_ms", 0.0) + samples.size / rate * 1000, 1)
        if not state.audio_open:
            state.audio_open = True
            stream.put(StreamOpened(state.audio_stream, now, kind="audio", source=stream.uri,
                                    identity=stream.identity("audio")))
        if samples.size:
            stream.put(AudioChunk(state.audio_stream, now, samples=samples, sample_rate=rate))

    def _open(self, api: str, provider: str, url: str, info: tuple, started: bool = True,
              session: bool = False) -> ProxiedStream:
        model = info[0]
        host = urlsplit(url).hostname or "?"
        name = f"{model}#{next(self._counter)}"
        stream = ProxiedStream(name, f"proxy:{api}/{model}@{host}", f"proxy:{provider}/{model}@{host}", self.clock)
        stream.session = session  # (before the hub has it: a relay process tells the hub's process as it opens)
        now = stream.t_start
        stream.put(StreamOpened(name, now, kind="text", source=stream.uri, identity=stream.identity("text")))
        if started:
            stream.put(RequestStarted(name, now))
        self.hub.add_source(stream)
        return stream

    def _unanswered(self, stream: ProxiedStream, reason: str) -> None:
        """The SLO verdict of a request that ended before its upstream's answer began (unreachable, silent before
        its headers, an answer that could not be relayed, a client that left first, a cut while it waited): it met
        none, as one answered without a chunk did (left out, a request that never got an answer weighed less than
        a slow one). One the proxy's stop ended is not judged."""
        if self.options.slo and reason != "proxy stopped":
            stream.metrics["slo_ok"] = 0
            self.unanswered_judged += 1

    def _close(self, stream: ProxiedStream, reason: str, note: str = "") -> None:
        now = self.clock.now()
        stream.metrics["end"] = _end(reason)  # (one that ended before its answer too)
        if note:
            stream.put(Flag(stream.stream_id, now, note, kind="proxy"))
        stream.put(StreamClosed(stream.stream_id, now, reason=reason))
        stream.put(None)

    async def _relay(self, request: web.Request, upstream: aiohttp.ClientResponse, stream: ProxiedStream | None,
                     api: str | None, info: tuple | None, t_sent: float) -> web.StreamResponse:
        resp = _Relayed(status=upstream.status, reason=upstream.reason)
        resp.upstream_names = frozenset(k.lower() for k in upstream.headers)
        for key, value in _forwarded_headers(upstream.headers).items():
            resp.headers.add(key, value)
        ctype = upstream.headers.get("Content-Type", "")
        # An answer without a Content-Type to a request that asked to stream is read as a stream, as the SDKs read
        # it (by the request's "stream", not the header): it was flagged "not a JSON object" and left unread.
        streamed = "text/event-stream" in ctype or (not ctype.strip() and info is not None and info[1]
                                                      and upstream.status < 300)
        encoding = upstream.headers.get("Content-Encoding", "identity").strip().lower() or "identity"
        clock = self.clock
        # The answer's copy goes to its reading (the analysis, maybe in another process); this process frames its
        # events only where a cut can end it cleanly: between events of an uncompressed event stream. Otherwise (a
        # body, a compressed stream) the rest of the answer is not worth breaking: the cut is noted, not made.
        choices = info[3] if info else 1  # (the answers asked for: ``n``)
        reading = self.read_answer(stream, api, streamed, encoding, clock.now(), choices) \
            if stream is not None and api else None
        framer = (Reader(api, True, lite=True, choices=choices)
                  if reading is not None and streamed and encoding == "identity" else None)
        cuttable = framer is not None
        if upstream.headers.get("Content-Length", "").isdigit() and not cuttable:
            resp.content_length = int(upstream.headers["Content-Length"])
        # (an event stream a cut may end goes chunked, with the same bytes: its length declared, the ending of a cut
        # left the body short of it on a connection kept open, and the client waited for the rest until it timed out)
        cut = {"asked": False, "forced": False}
        loop = asyncio.get_running_loop()
        if stream is not None:
            stream.metrics["status"] = upstream.status
            stream.metrics["ttfb_ms"] = round((clock.now() - t_sent) * 1e3, 1)

            def force() -> None:  # an event left half-sent for too long: the cut cannot wait for its end
                if not upstream.closed and cut["asked"]:
                    cut["forced"] = True
                    upstream.close()

            def on_cut() -> None:  # the hub (a rule, the user) cancelled the stream
                if self.stopping:
                    return  # the run is ending: every request goes with it, nothing to say of each
                if framer is None or framer.state.finished:
                    why = ("the answer had already ended" if cuttable else
                           f"the answer is compressed ({encoding}): its events cannot be ended cleanly"
                           if streamed and encoding != "identity" else "the answer is not an event stream")
                    stream.put(Flag(stream.stream_id, clock.now(), f"not cut: {why}", kind="proxy"))
                    return
                cut["asked"] = True
                if framer.cut_safe:
                    upstream.close()  # at once: a silent upstream must not hold the cut back
                else:
                    loop.call_later(CUT_GRACE_S, force)

            stream.on_cut = on_cut
            if upstream.status >= 400:
                stream.put(StreamError(stream.stream_id, clock.now(), f"upstream answered {upstream.status}",
                                       fatal=True))
        outcome, note = "finished", ""
        unwatch = _wake_on_lost_connection(upstream)
        content = upstream.content
        try:
            await resp.prepare(request)
            while True:  # the path of every chunk: as little as can be
                try:
                    chunk = await content.readany()
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                    if cut["asked"]:
                        outcome = "cut"
                    else:
                        outcome = "error"
                        note = (f"upstream silent for {self.options.upstream_timeout:g} s"
                                if isinstance(exc, asyncio.TimeoutError) else
                                f"upstream dropped the answer: {type(exc).__name__}")
                    break
                if not chunk:
                    outcome = "cut" if cut["asked"] else "finished"
                    break
                came = clock.now()  # (its time is its arrival: a client slow to take it does not delay it)
                if cut["asked"] and framer is not None:
                    end = _event_end(framer, chunk)  # forward up to the end of the event under way, then cut
                    if end is not None:
                        chunk, outcome = chunk[:end], "cut"
                if chunk:
                    await resp.relay(chunk)  # backpressure: a slow client slows the reading, never a buffer
                    if stream is not None:
                        stream.metrics["bytes_out"] += len(chunk)
                        if reading is not None:
                            if framer is not None:
                                reading.feed(came, chunk, framer)
                                framer = self._frame(stream, framer, chunk)
                            else:
                                reading.feed(came, chunk)
                if outcome == "cut":
                    break
        except (asyncio.CancelledError, ConnectionError) as exc:  # the client left: its upstream goes too
            upstream.close()
            if framer is not None and framer.state.finished and not cut["asked"]:
                # ... after the answer's own end ([DONE], message_stop, response.completed) had reached it: the
                # OpenAI SDK closes the connection there, before the chunked body's last empty chunk comes
                if stream is not None:
                    self._finish(stream, reading, "finished", "the client closed the connection after the answer's "
                                 "end, before the upstream's body ended")
            else:
                reason, words = self._left(isinstance(exc, asyncio.CancelledError))
                if stream is not None:
                    self._finish(stream, reading, reason,
                                 f"{words} after {stream.metrics['bytes_out']} bytes of the answer")
            if isinstance(exc, asyncio.CancelledError):
                raise
            return resp
        finally:
            unwatch()
        if outcome == "cut" and (cut["forced"] or framer is None or not framer.cut_safe):
            outcome, note = "error", "cut in the middle of an event the upstream did not finish"
        if outcome == "cut":
            upstream.close()
            self.cuts += 1
            rule, reason = self.explain(stream.stream_id) if stream is not None else ("cancel", "cancelled")
            if stream is not None:  # noted before the ending is written: the client may leave meanwhile
                stream.metrics["cut"] = f"{rule}: {reason}"
                self._finish(stream, reading, "cancelled", f"cut by {rule}: upstream closed, client sent the "
                             f"{'error' if self.options.on_cut == 'error' else 'stop'} ending", cut=True,
                             limit=info[2] * info[3] if info and info[2] else None)  # (max_tokens is per answer)
            try:
                await resp.write(cut_ending(framer, rule, reason, self.options.on_cut))  # type: ignore[arg-type]
            except ConnectionError:
                pass
        elif outcome == "error":
            upstream.close()
            if stream is not None:
                stream.put(StreamError(stream.stream_id, clock.now(), note, fatal=True))
                self._finish(stream, reading, "error")
            if request.transport is not None:  # the client sees the same drop: no clean end of the body
                request.transport.close()
            return resp
        elif stream is not None:
            self._finish(stream, reading, "finished")
        try:
            await resp.write_eof()
        except ConnectionError:
            pass
        return resp

    def _frame(self, stream: ProxiedStream, framer: Reader, chunk: bytes) -> Reader | None:
        """Where the answer's events end, for a cut (the framer, or None once it cannot tell: no cut then)."""
        try:
            framer.feed(chunk)
            return framer
        except Exception as exc:  # noqa: BLE001 - bytes nobody foresaw: forwarded all the same
            stream.put(Flag(stream.stream_id, self.clock.now(), f"events not framed further ({type(exc).__name__}): "
                            "the answer cannot be cut cleanly", kind="proxy"))
            return None

    def _finish(self, stream: ProxiedStream, reading, reason: str, note: str = "", cut: bool = False,
                limit: int | None = None) -> None:
        if reading is not None:
            reading.finish(self.clock.now(), reason, note, cut, limit)
            stream.put(None)
        else:
            self._close(stream, reason, note)


_HANDSHAKE: contextvars.ContextVar[dict | None] = contextvars.ContextVar("midstream_handshake", default=None)
"""Where ``_websocket`` wants its upstream's handshake answer (aiohttp's ``ws_connect`` keeps none of a refusal's
body, and gives no 101's headers)."""
REFUSAL_KEPT = 1 << 20
"""Bytes of an upstream's refusal of a WebSocket handshake passed on, at most."""
SIDE_END_S = 1.0
"""How long a Realtime session one of whose sides could no longer be written to waits for that side's own end (its
close frame, with its code: an upstream's 1009 for a message too large, a client's normal close) before it is
taken as dropped."""
ABNORMAL_CLOSE = frozenset(range(1002, 1016)) - {1004, 1005, 1006}
"""Close codes that say the session failed (RFC 6455 7.4.1: a protocol error, a message too large, an error of
the server's ...), not that it ended."""


def _handshake_trace() -> aiohttp.TraceConfig:
    """Keeps a WebSocket handshake's answer where ``_websocket`` set ``_HANDSHAKE`` (the same task): a 101's headers,
    or a refusal's status, headers and body (read here, before ``ws_connect`` closes it unread)."""

    async def on_end(_session, _ctx, params: aiohttp.TraceRequestEndParams) -> None:
        answer = _HANDSHAKE.get()
        if answer is None or "status" in answer:
            return
        resp = params.response
        answer.update(status=resp.status, reason=resp.reason, headers=resp.headers)
        if resp.status == 101:
            return
        body = answer["body"] = bytearray()  # (what came, kept as it comes: the handshake's deadline can end this)
        answer["cut"] = True
        try:
            while len(body) <= REFUSAL_KEPT:
                chunk = await asyncio.wait_for(resp.content.readany(), answer["timeout"])
                if not chunk:
                    answer["cut"] = False
                    break
                body += chunk
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            pass

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(on_end)
    return trace


def _forwarded_headers(headers, token_header: str = "", websocket: bool = False) -> CIMultiDict:
    """The end-to-end headers of a message, to pass on: not the hop-by-hop ones, nor those its ``Connection``
    header names (RFC 9110 §7.6.1), nor the proxy's own token, nor (``websocket``) the handshake's own."""
    named = {t.strip().lower() for v in headers.getall("Connection", []) for t in v.split(",") if t.strip()}
    return CIMultiDict((k, v) for k, v in headers.items()
                       if (low := k.lower()) not in HOP_BY_HOP and low not in named and low != token_header
                       and not (websocket and low.startswith("sec-websocket")))


def _wake_on_lost_connection(upstream: aiohttp.ClientResponse) -> Callable[[], None]:
    """Make the answer's reader fail once its connection is gone before the answer's end; returns what undoes it.

    aiohttp (3.14) closes the connection on bytes it cannot parse (a chunk size that is not hex), but puts the
    error on the connection, not on the answer being read: ``readany`` waited for ever, and the client with it,
    since the read timeout goes with the connection. (A normal end comes before the connection's: EOF is set by
    then, and this does nothing.)"""
    connection = upstream.connection
    protocol = connection.protocol if connection is not None else None
    if protocol is None:
        return lambda: None
    content = upstream.content

    def wake(_done=None) -> None:
        if not content.is_eof() and content.exception() is None:
            why = protocol.exception() if hasattr(protocol, "exception") else None
            content.set_exception(aiohttp.ClientPayloadError(
                "the upstream's connection ended before its answer did" + (f" ({why})" if why else "")))

    closed = protocol.closed
    if closed is None or closed.done():  # (lost already)
        wake()
        return lambda: None
    closed.add_done_callback(wake)
    return lambda: closed.remove_done_callback(wake)  # (a connection kept for the next request: no callbacks pile up)


def _too_large(limit: int) -> web.Response:
    """413, and the connection closed after it (``Connection: close``): no further request on it. (aiohttp still
    reads and drops what comes of the body for up to 10 s before it closes, so that a client still sending reads
    the answer rather than a reset.)"""
    refused = _error(413, f"request body over {limit} bytes", "request_too_large")
    refused.force_close()
    return refused


def _error(status: int, message: str, kind: str) -> web.Response:
    """An error of the proxy's own, shaped as the OpenAI and Anthropic SDKs read errors."""
    return web.json_response({"type": "error", "error": {"message": message, "type": kind, "code": kind}},
                             status=status)


__all__ = ["ON_CUT", "SLO_NAMES", "ProxiedStream", "ProxyError", "ProxyOptions", "ProxyServer", "TOKEN_HEADER",
           "parse_slo"]
