"""The proxy in two processes: bytes in one, analysis in the other.

``midstream proxy`` runs the gateway (``gateway.ProxyServer``: forwarding, reading the answers, cutting) in a
process of its own, the *relay*, and the hub (analysis, rules, learning, recording, the dashboard) where it ran
before. Measured (``bench/bench_proxy.py``): in one process the analysis threads hold the interpreter about
a third of the time and each chunk waiting to be forwarded waits its turn behind them; apart, the relay's
interpreter does nothing else.

The relay does as little per chunk as it can: it forwards it, frames the answer's events where a cut may
have to end it (``Reader(lite=True)``: the events that only carry text are not decoded), and ships a copy of the
bytes with the time they came from the upstream; the answers are read where the hub is (``gateway.AnswerReading``):
their text, their metrics, their ends. Measured (``bench/bench_proxy.py``, 200 streams): reading them in the relay
took about half of its time, and every chunk of a burst waited behind the reading of the ones before it.

The two talk over a private socket pair, in batches (a 4-byte length, then a pickled list; both ends are this code):
the relay sends each request's opening, the copies of its answer's bytes, its events, its counters and the gateway's
totals; the hub asks for them at each analysis step (``pull``, numbered), and sends cuts (the stream, the rule and
why) and, at the end, ``stop``. The relay never waits for the hub: past ``BACKLOG_BYTES`` unsent, the copies are
skipped (counted per stream, ``analysis_dropped`` chunks and ``analysis_dropped_bytes``; the reading starts again
with the next event once the hub has caught up, so the request's counts then cover what was read) while the bytes to
the clients go on; the events that open, end and measure a request are always sent. If the hub's process goes, the
relay stops; if the relay goes, its streams end as errors and the run says so.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..clock import MonotonicClock
from ..events import AudioChunk, Event, StreamClosed, StreamError, TextDelta
from ..redact import redact, remember
from .gateway import (READABLE_ENCODINGS, READING_COUNTS, AnswerReading, GatewayTotals, ProxiedStream, ProxyOptions,
                      ProxyServer, check_binding)
from .protocols import Reader, next_event_start

FLUSH_S = 0.25
"""Events wait at most this long in the relay before they go to the hub's process. It asks for them (``pull``) at
the start of each analysis step (every 100 ms headless, at least 200 ms with the dashboard), so a batch usually
goes then, with everything up to the step: one wake-up of each process per step, and the step sees each chunk's
copy however recently it came. This bound is for a hub that does not ask (a step that is late, the hub warming up
or stopping, a relay just started again); ``FLUSH_BUSY`` bounds a batch when many come."""
FLUSH_BUSY = 64
"""A batch this long goes ``FLUSH_BUSY_S`` after its first message (or at once, if that has passed), without waiting
for the hub to ask: from about 13 streams of 50 chunks a second (at 100 ms steps), batches go more often than
steps, and from about 130 every 10 ms (at 200 streams, 50 ms batches for everyone, each read in one go, had
added about 1 ms to the p99 delay of the chunks forwarded).

Before the hub asked, batches went 50 ms after their first message (10 ms until 2026-12-06, which sent each chunk
of a stream of 50 a second alone and woke both processes for it). Asked at each step, a copy no longer waits in
the relay for a batch to be due: a loop is seen at the first step after its chunk came."""
FLUSH_BUSY_S = 0.01
METRICS_S = 0.5
"""How often at least the counters of the requests under way, and the gateway's totals, are sent (they go with each
batch the hub asks for, at each of its steps; this is for a hub that does not ask)."""
PULL_WAIT_S = 0.02
"""How long an analysis step waits for the relay's batch it asked for, at most (and at most a fifth of the step's
interval); the round trip takes well under a millisecond on an idle machine."""
COUNTERS_S = 0.05
"""The requests' counters go with a batch the hub asked for at most this often: with every one at 100 ms steps, with
every other at 20 ms (where the relay would copy and send every request's counters 50 times a second)."""
BACKLOG_BYTES = 32 << 20
"""Unsent bytes past which the relay skips answers' copies, text and audio for the analysis (never the clients')."""
START_TIMEOUT_S = 120.0
"""How long the hub waits for the relay process to listen (its imports, on a busy machine)."""
PROXY_DYNAMICS_PER_S = 10.0
"""Attractor estimates a second across all streams in ``midstream proxy`` (``Hub.dynamics_per_s``; 24 elsewhere):
the estimates are most of the analysis' periodic work, and on a machine the clients' bytes share, every core-ms
of it shows in their delay. Measured (``bench/bench_proxy.py --streams 200 --stagger``, three runs each, alternating):
p99 added +2.42 / +2.78 / +2.67 ms at this budget against +2.99 / +3.71 / +3.32 ms at 24, and 61-70 % of a core
against 69-82 %. With fewer than ten live streams nothing changes (each is estimated once a second); with 200,
each stream's type and exponent are estimated about every 20 s instead of every 10 s."""
_HEADER = struct.Struct("!I")
_COUNTERS = GatewayTotals.FORWARDING  # (the others are counted in the hub's process, where answers are read)


class RelayError(OSError):
    """The relay process could not start (its message is for the user), or ended."""


def _how(code: int | None) -> str:
    """How a process ended, from its return code, in words."""
    if code is None:
        return "gone"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


async def _receive(reader: asyncio.StreamReader) -> Any:
    """One message from the other process. Pickle is safe here only because of where the bytes come from: a
    socket pair made by the hub's process, whose one other end it handed to the relay it started (never a
    network peer); what each side pickles is its own objects (clients' text is data inside them)."""
    size, = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    return pickle.loads(await reader.readexactly(size))  # audit: ignore (our own process at the other end)


def _send(writer: asyncio.StreamWriter, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    writer.write(_HEADER.pack(len(data)) + data)


# -- the relay's side -----------------------------------------------------------------------------------------


class _Shipped:
    """An answer's reading seen from the relay process: the copies of its bytes go to the hub's process. While
    the hub is behind they are skipped (counted), and taken up again where the next event starts (``framer``:
    where the answer's events ended before the chunk). A body or a compressed stream cannot be read from the
    middle: the hub is told that the rest will not come, and nothing more is sent."""

    __slots__ = ("outbox", "stream", "name", "skipping", "done", "body", "sent")

    def __init__(self, outbox: _Outbox, stream: ProxiedStream, streamed: bool) -> None:
        self.outbox, self.stream, self.name = outbox, stream, stream.stream_id
        self.skipping = self.done = False
        self.body, self.sent = not streamed, 0

    def feed(self, t: float, chunk: bytes, framer: Reader | None = None) -> None:
        if self.done:
            return
        outbox = self.outbox
        outbox._touched.add(self.name)
        if self.skipping or outbox.behind():
            start = next_event_start(framer, chunk) if self.skipping and framer is not None and not outbox.behind() \
                else None
            if start is None:
                if framer is None:
                    self._lost(t, "the analysis fell behind: the rest of the answer was not read")
                self.skipping = True
                self._dropped(len(chunk))
                return
            self.skipping = False
            outbox._put(("gap", self.name))
            self._dropped(start)
            chunk = chunk[start:]
            if not chunk:
                return
        if self.body:
            self.sent += len(chunk)
            if self.sent > Reader.MAX_BODY:  # (the hub would keep no more of it)
                self._lost(t, f"answer body over {Reader.MAX_BODY >> 20} MiB: not read")
                return
        outbox._put(("b", self.name, t, chunk))

    def _dropped(self, size: int) -> None:
        if size:
            m = self.stream.metrics
            m["analysis_dropped"] = m.get("analysis_dropped", 0) + 1
            m["analysis_dropped_bytes"] = m.get("analysis_dropped_bytes", 0) + size

    def _lost(self, t: float, why: str) -> None:
        self.done = True
        self.outbox._put(("lost", self.name, t, why))

    def finish(self, t: float, reason: str, note: str = "", cut: bool = False, limit: int | None = None) -> None:
        self.outbox._put(("metrics", self.name, dict(self.stream.metrics)))  # (the gateway's last counts first)
        self.outbox._put(("finish", self.name, t, reason, note, cut, limit))


class _Outbox:
    """The hub as the gateway in the relay process sees it: what it is given goes to the hub's process."""

    def __init__(self, writer: asyncio.StreamWriter, clock: MonotonicClock, backlog: int = BACKLOG_BYTES) -> None:
        self.writer, self.clock, self.backlog = writer, clock, backlog
        self.server: ProxyServer | None = None
        self.streams: dict[str, ProxiedStream] = {}
        self._batch: list[tuple] = []
        self._touched: set[str] = set()
        self._flushing: asyncio.TimerHandle | None = None
        self._first = 0.0  # (when the batch's first message came)
        self._loop = asyncio.get_running_loop()
        self._last_totals: tuple = ()
        self._pulls = 0  # (how many times the hub asked for the batch)
        self._counted = 0.0  # (when the counters last went with a batch the hub asked for)
        self.ending: set[asyncio.Task] = set()
        self._ticker = self._loop.create_task(self._tick())

    # the hub's surface the gateway uses
    def secret(self, value: str) -> None:
        """A client's credential: the hub's process has ``redact`` replace it too (it never leaves the two)."""
        self._put(("secret", value))

    def add_source(self, stream: ProxiedStream) -> None:
        name = stream.stream_id
        self.streams[name] = stream
        self._put(("open", name, stream.uri, stream.identity("text"), stream.t_start, stream.session))
        self._put(("totals", self.totals()))  # (the request counted with it: a relay that dies loses neither)
        stream.sink = lambda event: self._event(stream, event)
        self.ending.add(self._loop.create_task(self._ended(stream)))
        if len(self.streams) == 1:
            self.flush()  # (the hub's process asks for batches only while it knows of a request under way)

    def read_answer(self, stream: ProxiedStream, api: str, streamed: bool, encoding: str, t: float,
                    choices: int = 1) -> _Shipped:
        """The gateway's reading of an answer: the hub's process reads it (``AnswerReading``), given the copies;
        its counts are the hub's then. (An encoding it cannot read: no copies, only the end.)"""
        for key in READING_COUNTS:
            stream.metrics.pop(key, None)
        self._put(("read", stream.stream_id, api, streamed, encoding, t, choices))
        shipped = _Shipped(self, stream, streamed)
        shipped.done = encoding not in READABLE_ENCODINGS
        return shipped

    def behind(self) -> bool:
        return self.writer.transport.get_write_buffer_size() > self.backlog

    def _event(self, stream: ProxiedStream, event: Event) -> bool:
        if isinstance(event, (TextDelta, AudioChunk)):
            if self.behind():
                stream.metrics["analysis_dropped"] = stream.metrics.get("analysis_dropped", 0) + 1
                return True
        elif isinstance(event, (StreamClosed, StreamError)):  # the request's final counters go before its end
            self._put(("metrics", stream.stream_id, dict(stream.metrics)))
        self._touched.add(stream.stream_id)
        self._put(("event", stream.stream_id, event))
        return True

    async def _ended(self, stream: ProxiedStream) -> None:
        await stream._ended.wait()
        self.streams.pop(stream.stream_id, None)
        self._touched.discard(stream.stream_id)
        self._put(("metrics", stream.stream_id, dict(stream.metrics)))
        self._put(("totals", self.totals()))  # (a cut, a client gone: counted before the request ended)
        self._put(("end", stream.stream_id))
        self.ending.discard(asyncio.current_task())  # type: ignore[arg-type]

    def _put(self, message: tuple) -> None:
        self._batch.append(message)
        if self._flushing is None:
            self._flushing = self._loop.call_later(FLUSH_S, self.flush)
            self._first = self._loop.time()
        elif len(self._batch) == FLUSH_BUSY:
            self._flushing.cancel()
            self._flushing = self._loop.call_at(self._first + FLUSH_BUSY_S, self.flush)

    def flush(self) -> None:
        if self._flushing is not None:
            self._flushing.cancel()
            self._flushing = None
        if self._batch and not self.writer.is_closing():
            batch, self._batch = self._batch, []
            _send(self.writer, batch)

    def totals(self) -> tuple:
        server = self.server
        return tuple(getattr(server, name) for name in _COUNTERS) if server is not None else ()

    def _counters(self) -> None:
        """The counters of the requests touched since the last time, and the totals if they moved, into the batch."""
        for name in self._touched:
            stream = self.streams.get(name)
            if stream is not None:
                self._batch.append(("metrics", name, dict(stream.metrics)))
        self._touched.clear()
        totals = self.totals()
        if totals != self._last_totals:
            self._last_totals = totals
            self._batch.append(("totals", totals))

    def pulled(self, number: int) -> None:
        """The hub's process is about to analyse (``ProxyProcess.pull``): the batch goes now, with the counters, and
        a mark that it is all there was when the pull ``number`` came."""
        now = self._loop.time()
        if now - self._counted >= COUNTERS_S:
            self._counted = now
            self._counters()
        self._batch.append(("pulled", number))
        self._pulls += 1
        self.flush()

    async def _tick(self) -> None:
        while True:
            pulls = self._pulls
            await asyncio.sleep(METRICS_S)
            if self._pulls != pulls:
                continue  # (the hub asked meanwhile: the counters went with its batches)
            self._counters()
            if self._batch:
                self.flush()


async def _relay(fd: int) -> None:
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_unix_connection(sock=sock, limit=1 << 20)
    config = await _receive(reader)
    clock = MonotonicClock()
    clock._t0 = config["t0"]  # the hub's clock: the same system-wide monotonic time, the same origin
    outbox = _Outbox(writer, clock, config["backlog"])
    reasons: dict[str, tuple[str, str]] = {}
    tls = None
    try:
        if config["cert"]:
            from ..servers.signaling import ssl_context_from

            tls = ssl_context_from(config["cert"], config["key"])
        server = ProxyServer(outbox, config["options"], config["host"], config["port"], ssl_context=tls,
                             explain=lambda name: reasons.pop(name, ("cancel", "cancelled by the user")))
        server._counter = itertools.count(config["first"])  # names unique across relay processes
        outbox.server = server
        await server.start()
    except OSError as exc:
        _send(writer, [("failed", exc.errno or 0, exc.strerror or str(exc))])
        await writer.drain()
        return
    except Exception as exc:  # noqa: BLE001 - told to the hub's process, which says it in one line
        _send(writer, [("failed", 0, f"{type(exc).__name__}: {exc}")])
        await writer.drain()
        return
    _send(writer, [("ready", server.port)])
    try:
        while True:
            try:
                message = await _receive(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                break  # the hub's process is gone: so is the proxy
            if message[0] == "cut":
                _, name, rule, reason = message
                stream = outbox.streams.get(name)
                if stream is not None and not stream.cancelled:
                    reasons[name] = (rule, reason)
                    stream.cancel()
            elif message[0] == "pull":
                outbox.pulled(message[1])
            elif message[0] == "stop":
                break
    finally:
        await server.stop()  # the requests under way end ("proxy stopped"); their last words are queued
        if outbox.ending:
            await asyncio.wait(outbox.ending, timeout=5.0)
        outbox._ticker.cancel()
        outbox._batch.append(("totals", outbox.totals()))
        outbox._batch.append(("bye",))
        outbox.flush()
        if not writer.is_closing():
            try:
                await writer.drain()
            except ConnectionError:
                pass
            writer.close()


def main() -> None:
    """``python -m midstream_tui.proxy FD``: started by ``ProxyProcess``, never by hand."""
    # A Ctrl-C in the terminal reaches the whole process group: the hub's process stops this one, in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.setswitchinterval(0.0005)  # (nothing else runs here; a thread of aiohttp's resolver must not wait 5 ms)
    try:  # libuv's loop: about half the time per chunk of asyncio's own (its reads, writes and timers in C)
        import uvloop
    except ImportError:  # (Windows: asyncio's own)
        asyncio.run(_relay(int(sys.argv[1])))
    else:
        uvloop.run(_relay(int(sys.argv[1])))


# -- the hub's side -------------------------------------------------------------------------------------------


class RemoteStream(ProxiedStream):
    """A request relayed by the relay process, as a source of the hub: its events come from that process."""


class ProxyProcess(GatewayTotals):
    """``ProxyServer``'s place in the hub (a service, the same counters) with the gateway in a relay process.

    A relay process that ends without being asked (killed, crashed) is started again on the same port, at most
    ``RESTARTS`` times in ``RESTART_WINDOW_S``: the requests it was relaying end as errors, the next ones are
    served. Past that the proxy stays down and the run ends with the reason (``hub.callback_error``)."""

    adds_sources = True
    RESTARTS = 3
    RESTART_WINDOW_S = 60.0

    def __init__(self, hub, options: ProxyOptions | None = None, host: str = "127.0.0.1", port: int = 8080, *,
                 cert: str | None = None, key: str | None = None, explain=None,
                 notice: Callable[[str], None] | None = None, backlog: int = BACKLOG_BYTES, nice: int = 0,
                 idle: bool = False, ready: Callable[[], None] | None = None) -> None:
        options = options or ProxyOptions()
        check_binding(host, options)
        self.hub, self.options, self.host, self.port = hub, options, host, port
        self.cert, self.key, self.backlog = cert, key, backlog
        """``backlog``: unsent bytes past which the relay drops answers' text and audio from the analysis."""
        self.nice = nice
        """How much lower than the relay's the priority of this process (the hub, its analysis, the dashboard)
        is set once the relay runs (``midstream proxy``: 10): on a busy machine the bytes get the CPU first, and
        the analysis falls behind (counted) rather than the clients' chunks."""
        self.idle = idle
        """And (Linux) in the ``SCHED_IDLE`` class (``midstream proxy --idle-analysis``): a relay that wakes takes
        the CPU from it at once, where a nice value only shares it out more unevenly. Measured
        (``bench/bench_proxy.py``, 200 streams on 2 cores, three runs each): p99 added per chunk +4.9 / +1.4 /
        +4.9 ms with nice alone, +0.07 / +2.8 / +1.7 ms with this. But this process then only has the CPU that
        nothing else wants: beside two busy loops it stops altogether (a ``--duration`` never ends, the dashboard
        freezes), so it is not the default. (It applies to every thread of this process: not for a process
        that also runs the clients or the upstream.)"""
        self.explain = explain or (lambda stream: ("cancel", "cancelled by the user"))
        self.ready = ready
        """Called once, when the first relay process listens (clients can connect from then on)."""
        self.notice = notice or self._to_hub
        """Told (one line) when the relay process ended and was started again, or could not be; by default the
        line goes to ``hub.notices`` (the dashboard shows it)."""
        self.clock = hub.clock
        self._zero_totals()
        self.pull_timeouts = 0
        """Analysis steps that went on without the relay's batch (it came after ``PULL_WAIT_S``)."""
        self.restarts: list[float] = []
        """When (the hub's clock) the relay process was started again after it ended unasked."""
        self.ended: str | None = None
        """Why the proxy stopped serving before it was stopped (None while it serves, or once stopped)."""
        self._shipped = dict.fromkeys(_COUNTERS, 0)
        """The totals the relay process last sent: what it counts is added to this process's (which reads the
        answers, and counts their cuts' savings: Realtime sessions' are the relay's)."""
        self._next = 1  # the number of the next stream's name (model#N): unique across relay processes
        self._streams: dict[str, RemoteStream] = {}
        self._proc: subprocess.Popen | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task | None = None
        self._bye = asyncio.Event()
        self._pulled = asyncio.Event()
        self._asked = self._answered = 0  # (the pulls sent to the relay, numbered, and the last it answered)
        self._serving = False  # (a relay has said it listens, and its connection has not ended since)
        self._stopping = False
        self._spawner = ThreadPoolExecutor(1, thread_name_prefix="midstream-relay-spawner")
        self._stderr = None

    def __repr__(self) -> str:  # never the token
        return f"ProxyProcess({self.host!r}, {self.port}, token={'set' if self.options.token else 'none'})"

    @property
    def url(self) -> str:
        return f"{'https' if self.cert else 'http'}://{self.host}:{self.port}"

    async def start(self) -> str:
        reader = await self._launch()
        if self.ready is not None:
            self.ready()
        if self.nice > 0 or self.idle:
            await self._lower_priority()
        self._serving = True
        self._reading = asyncio.get_running_loop().create_task(self._read(reader))
        before_step = getattr(self.hub, "before_step", None)
        if before_step is not None:
            before_step(self.pull)
        return self.url

    async def pull(self) -> None:
        """Before an analysis step: the relay sends what it holds (``_Outbox.pulled``), and the step waits for it at
        most ``PULL_WAIT_S`` (a relay busy or gone: what comes later is in the next step). Pulls are numbered, so a
        late answer to one that timed out does not pass for the next one's. Nothing is asked of a relay that is not
        serving (starting, started again, gone: a write to a dead one's socket would lose what it said last), nor of
        one relaying no request: the first request's start is sent at once, and the steps after it ask."""
        if not self._streams or not self._live():
            return
        self._asked += 1
        self._pulled.clear()
        _send(self._writer, ("pull", self._asked))  # type: ignore[arg-type]
        interval = getattr(self.hub, "analysis_interval", PULL_WAIT_S * 5)
        try:
            await asyncio.wait_for(self._pulled.wait(), min(PULL_WAIT_S, interval / 5))
        except asyncio.TimeoutError:
            self.pull_timeouts += 1

    def _live(self) -> bool:
        """Whether the relay process serves and can be written to (it has not been seen to end)."""
        writer, proc = self._writer, self._proc
        return (self._serving and writer is not None and not writer.is_closing() and not self._bye.is_set()
                and not self._stopping and proc is not None and proc.poll() is None)

    async def _launch(self) -> asyncio.StreamReader:
        """Start a relay process serving ``host:port``; the reader of what it says. RelayError if it cannot."""
        mine, theirs = socket.socketpair()
        if self._stderr is not None:
            self._stderr.close()
        self._stderr = tempfile.TemporaryFile()  # what a relay that fails says, for its one line (never shown)
        try:  # started from a thread of its own, which keeps the priority this process began with (see nice)
            # -P: the relay imports what this process imports, never a module of the current directory's
            self._proc = await asyncio.get_running_loop().run_in_executor(self._spawner, functools.partial(
                subprocess.Popen, [sys.executable, "-P", "-m", "midstream_tui.proxy", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=self._stderr))
        finally:
            theirs.close()
        try:
            reader, self._writer = await asyncio.open_unix_connection(sock=mine, limit=1 << 20)
            clock = self.clock if isinstance(self.clock, MonotonicClock) else MonotonicClock()
            _send(self._writer, {"options": self.options, "host": self.host, "port": self.port, "cert": self.cert,
                                 "key": self.key, "t0": clock._t0, "first": self._next, "backlog": self.backlog})
            first = await asyncio.wait_for(_receive(reader), START_TIMEOUT_S)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.TimeoutError):
            await self._end_process()
            raise RelayError(0, f"the proxy's relay process did not start{self._last_words()}") from None
        except BaseException:  # cancelled (Ctrl-C while it starts): it must not go on to serve alone
            if self._proc.poll() is None:
                self._proc.kill()
            raise
        if first[0][0] == "failed":
            await self._end_process()
            raise RelayError(first[0][1], first[0][2])
        self.port = first[0][1]
        return reader

    def _last_words(self) -> str:
        """``: <the last line the relay process wrote on its stderr>``, or nothing (a traceback's last line says
        what went wrong; redacted, it may quote a URL)."""
        try:
            self._stderr.seek(0)  # type: ignore[union-attr]
            lines = self._stderr.read()[-4096:].decode("utf-8", "replace").strip().splitlines()  # type: ignore[union-attr]
        except (OSError, AttributeError, ValueError):
            return ""
        return f": {redact(lines[-1].strip())[:200]}" if lines else ""

    async def _lower_priority(self) -> None:
        """Every thread of this process but the one that starts relay processes: lower by ``nice``, and into
        ``SCHED_IDLE`` when ``idle`` (Linux keeps a priority and a class per thread, and a new thread takes its
        creator's). Where that cannot be done, nothing."""
        spawner = await asyncio.get_running_loop().run_in_executor(self._spawner, threading.get_native_id)
        try:
            threads = [int(t) for t in os.listdir("/proc/self/task")]
        except OSError:
            return
        for tid in threads:
            if tid != spawner:
                try:
                    os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + self.nice))
                    if self.idle and hasattr(os, "SCHED_IDLE"):
                        os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
                except OSError:  # (a thread that has just ended; a system that refuses SCHED_IDLE: nice it is)
                    pass

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                while True:
                    for message in await _receive(reader):
                        self._take(message)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            self._serving = False
            if self._bye.is_set() or self._stopping:
                self._bye.set()  # (it went while being stopped, killed with this process's group: no bye comes)
                return
            await self._end_process()  # (it is ending: its exit code, once it has one)
            code = self._proc.returncode if self._proc is not None else None
            why = (f"the proxy's relay process ended ({_how(code)})"
                   f"{self._last_words() if code is None or code > 0 else ''}")  # (not killed: it may say why)
            now = self.clock.now()
            for stream in list(self._streams.values()):  # what it was relaying is lost with it
                stream.put(StreamError(stream.stream_id, now, why, fatal=True))
                stream.put(StreamClosed(stream.stream_id, now, reason="error"))
                stream.put(None)
            self._streams.clear()
            self._shipped = dict.fromkeys(_COUNTERS, 0)  # (the next relay process counts from 0)
            self.restarts = [t for t in self.restarts if now - t < self.RESTART_WINDOW_S]
            if len(self.restarts) >= self.RESTARTS:
                self.ended = (f"{why}: {len(self.restarts) + 1} times in {self.RESTART_WINDOW_S:g} s, "
                              "not started again")
            else:
                try:
                    reader = await self._launch()
                except RelayError as exc:
                    self.ended = f"{why}, and could not be started again: {exc.strerror or exc}"
                else:
                    self.restarts.append(now)
                    self._serving = True
                    self.notice(f"{why}; started again on port {self.port}")
                    continue
            if self.notice != self._to_hub:  # (the dashboard shows the run's failure itself: not twice)
                self.notice(self.ended)
            if getattr(self.hub, "callback_error", False) is None:
                self.hub.callback_error = RelayError(0, self.ended)  # the run ends, saying why
            self._bye.set()
            return

    def _to_hub(self, line: str) -> None:
        notices = getattr(self.hub, "notices", None)
        if notices is not None:
            notices.append(line)

    def _take(self, message: tuple) -> None:
        kind = message[0]
        if kind == "b":  # a copy of an answer's bytes (the most frequent message by far)
            stream = self._streams.get(message[1])
            if stream is not None and stream.reading is not None:
                stream.reading.feed(message[2], message[3])
        elif kind == "event":
            stream = self._streams.get(message[1])
            if stream is not None:
                stream.put(message[2])
        elif kind == "metrics":  # the gateway's counters (the reading's are this process's own)
            stream = self._streams.get(message[1])
            if stream is not None:
                stream.metrics.update(message[2])
        elif kind == "read":
            _, name, api, streamed, encoding, t, choices = message
            stream = self._streams.get(name)
            if stream is not None:
                AnswerReading(stream, api, streamed, encoding, t, self.options, self, choices)
        elif kind == "lost":
            stream = self._streams.get(message[1])
            if stream is not None and stream.reading is not None:
                stream.reading.lost(message[2], message[3])
        elif kind == "gap":
            stream = self._streams.get(message[1])
            if stream is not None and stream.reading is not None:
                stream.reading.gap()
        elif kind == "finish":
            _, name, t, reason, note, cut, limit = message
            stream = self._streams.get(name)
            if stream is not None and stream.reading is not None:
                stream.reading.finish(t, reason, note, cut, limit)
        elif kind == "open":
            _, name, uri, identity, t_start, session = message
            stream = self._streams[name] = RemoteStream(name, uri, identity, self.clock)
            stream.t_start, stream.session = t_start, session
            stream.on_cut = lambda: self._cut(name)
            number = name.rpartition("#")[2]
            if number.isdigit():
                self._next = max(self._next, int(number) + 1)
            self.hub.add_source(stream)
        elif kind == "end":
            stream = self._streams.pop(message[1], None)
            if stream is not None:
                stream.put(None)
        elif kind == "totals":
            for name, value in zip(_COUNTERS, message[1]):
                setattr(self, name, getattr(self, name) + value - self._shipped[name])
                self._shipped[name] = value
        elif kind == "pulled":
            self._answered = max(self._answered, message[1])
            if self._answered >= self._asked:
                self._pulled.set()
        elif kind == "secret":
            remember(message[1])
        elif kind == "bye":
            self._bye.set()

    def _cut(self, name: str) -> None:
        """A rule or the user cancelled a stream (in the hub's loop): the relay cuts it."""
        stream = self._streams.get(name)
        if stream is not None and self._live():
            rule, reason = self.explain(name)
            _send(self._writer, ("cut", name, rule, reason))
            if stream.session:  # (as the relay's copy: the session's next response can be cut too)
                stream._cancelled = False

    async def stop(self) -> None:
        self._stopping = True
        if self._writer is not None and not self._writer.is_closing() and not self._bye.is_set():
            _send(self._writer, ("stop",))
            try:  # (it stops its server at once and waits at most 5 s for the requests' ends: 10 s is ample)
                await asyncio.wait_for(self._bye.wait(), 10.0)
            except asyncio.TimeoutError:
                pass
        if self._reading is not None:
            self._reading.cancel()
            await asyncio.gather(self._reading, return_exceptions=True)
        await self._end_process()
        self._spawner.shutdown(wait=False)
        if self._stderr is not None:
            self._stderr.close()

    async def _end_process(self) -> None:
        if self._writer is not None:
            self._writer.close()
        proc = self._proc
        if proc is None:
            return
        for _ in range(100):
            if proc.poll() is not None:
                return
            await asyncio.sleep(0.05)
        proc.kill()
        await asyncio.get_running_loop().run_in_executor(None, proc.wait)


if __name__ == "__main__":
    main()
