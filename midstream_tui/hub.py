"""The hub: one StreamPipeline per stream, analysis in worker threads, Snapshots out.

Data flows one way: sources (or library calls) offer events to a pipeline's
bounded queue; each analysis tick, every pipeline drains its queue, updates its
ring buffers and runs the kernels in a worker thread, and publishes one frozen
``Snapshot``. The UI, the headless printer and library users read snapshots.

The hub imports nothing from Textual. All its public methods except the
``async`` ones are thread-safe, so code that already has a stream in hand can
push to it from any thread (see README, "Library API").
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .analysis import kernels
from .analysis.dynamics import UNKNOWN, AttractorClass, classify_attractor, delay_embed_2d
from .analyzers import ANALYZERS, NOTHING, Measured, StreamAnalyzer
from .clock import Clock, MonotonicClock
from .events import (
    AudioChunk,
    ChoiceText,
    Event,
    KIND_OF_EVENT,
    Flag,
    OutputChunk,
    RequestFinished,
    RequestStarted,
    StreamClosed,
    StreamError,
    StreamOpened,
    TextDelta,
    VideoFrame,
)
from .perception import Perception
from .snapshot import PatternHit, SignalView, Snapshot
from .sources.base import ScheduledSource, Source
from .sources.params import identity_of

DATA_EVENTS = (TextDelta, OutputChunk, ChoiceText, AudioChunk, VideoFrame)
PORTRAIT_POINTS = 300
ATTRACTOR_WINDOW = 600
"""Newest signal points classified each time (12 s of audio chunks, 20 s of video frames)."""
ATTRACTOR_INTERVAL = 1.0
"""Seconds of stream time between attractor estimates of a stream: the portrait, its type and λ change
slowly (each estimate looks at the newest 1,000-2,000 points), so estimating on every 100 ms tick would be
waste; once a second is as often as a person reads a new type or exponent."""
RECLASSIFY_SHARE = 0.25
RECLASSIFY_MAX_S = 5.0
"""A signal's type and λ are estimated again once this share of its window is new since the last estimate
(or this many seconds passed, or the stream ended); in between, its portrait still moves every second with
the last estimate's lag. A verdict over 600 points barely moves when 60 of them are new; a quarter is where
it can (a text stream at 50 chunks a second: every 3 s once its window is full, every second while it is
young), and the estimate is most of a stream's analysis cost (2-6 ms a signal; at a tenth, one 10 s stream of
`bench_proxy_hub.py` had 22 of them, 16 now)."""
DYNAMICS_PER_S = 24.0
"""Attractor estimates per second across all streams, live (each costs a few ms of kernels on a worker).
The demo's six streams need 6; past the budget (a proxy's hundreds of requests) the stalest streams go first
and each is estimated less often, so the analysis' cost stays bounded however many streams come."""
ENDED_GRACE_S = 5.0
"""Seconds an ended stream stays at least (its last snapshot seen by the dashboard, recorder and learner)
before ``max_ended`` may age it out."""
INGEST_INTERVAL = 0.05
"""Seconds between queue drains: independent of the (slower, user-set) analysis interval,
so a 30 fps source never overflows its queue while snapshots are published once a second."""
INGEST_IDLE = 2 * INGEST_INTERVAL
"""Seconds to the next look at the queues after a look that found none to drain. At one or two text streams that
is every look, and each look is a wake-up of the event loop: 20 a second of the 60 `midstream proxy` with one
stream had. A queue that starts filling right after such a look waits at most this long for a drain (and at most
until the next analysis step, which drains every queue); a media queue is due as soon as it holds anything, so a
video or audio stream keeps the looks at ``INGEST_INTERVAL``."""
INGEST_ENDED = 0.25
"""The same when every stream has ended (or there is none: a proxy waiting for requests). A stream added meanwhile
is drained by the next analysis step, as before, and looked at again from then on."""
INGEST_MIN = 16
"""Events the text streams' queues hold together before they are drained between analysis steps; fewer wait for
the next step, which drains every queue first. At 50 chunks a second a stream has 5 at each 100 ms step: waking a
worker 20 times a second for them cost more than their analysis (`midstream proxy` with one stream spent about a
fifth less CPU without those drains). A media queue is drained as soon as it holds anything (a frame is large)."""
RUN_POLL_S = 0.05
"""Seconds between ``Hub.run``'s looks at whether the run is over (its sources ended and their queues drained)."""
RUN_POLL_SERVING_S = 0.25
"""The same for a run that serves (a service adds sources: `midstream proxy`), which ends only at its duration (looked
at every ``RUN_POLL_S`` once it is this close) or on an error (noticed this late at most). Each look is a wake-up of
the event loop: at ``RUN_POLL_S`` they were 20 of the 60 a second of a proxy relaying one stream."""
PARALLEL_MIN = 16
"""Streams from which the analysis' work (queue drains and ticks) is spread over the worker threads. A few
streams' work is mostly Python per event, and two threads taking turns at the GIL cost more than their nogil
kernels gained in parallel: with it all on one thread, the default demo (6 streams) took 13 % less CPU."""
RECENT_PATTERNS = 20
STARTUP_EVENTS = 20_000
STARTUP_BYTES = 512 * 2**20
"""While the hub warms up (kernels loaded or compiled, ~0.3 s cached, ~15 s on a first run)
its pipelines queue what their sources deliver instead of dropping it, up to these bounds:
STARTUP_EVENTS per stream, STARTUP_BYTES for all streams together (about 25 s of 640x360
video at 30 fps): nothing is lost for start-up, and memory stays bounded."""


class StartupBudget:
    """Bytes all of a hub's pipelines may queue while it warms up (thread-safe)."""

    def __init__(self, limit: int = STARTUP_BYTES) -> None:
        self.left = limit
        self._lock = threading.Lock()

    def take(self, n: int) -> bool:
        with self._lock:
            if n > self.left:
                return False
            self.left -= n
            return True

    def give(self, n: int) -> None:
        with self._lock:
            self.left += n


class HubError(ValueError):
    """Misuse of the hub API (unknown stream, kind mismatch, ...)."""


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    a.flags.writeable = False
    return a


class _Family:
    """The streams of one source, for the errors it said it was retrying after (``StreamError.transient``)."""

    __slots__ = ("pipes", "since", "lock")

    def __init__(self, pipes: list) -> None:
        self.pipes = pipes
        self.since = -math.inf  # when the last such error was said (data from before it is not a recovery)
        self.lock = threading.Lock()  # (the streams of one source are drained in worker threads of their own)

    def join(self, pipe) -> None:
        """``pipe`` is a companion stream of this family's source."""
        if pipe.family is not self:
            pipe.family = self
            self.pipes.append(pipe)

    def recovered(self, t: float) -> None:
        """Data stamped ``t`` came after the retry was said: every stream of the source shows its last error that was
        not a retry's again, if any."""
        with self.lock:
            if t <= self.since:
                return
            self.since = -math.inf
            for pipe in self.pipes:
                if pipe._recovering:
                    pipe._recovering, pipe.error = False, pipe._lasting_error

    def said(self, pipe, message: str, transient: bool, t: float) -> None:
        """``pipe``'s source said an error (``transient``: one it is retrying after)."""
        with self.lock:
            pipe.error, pipe._recovering = message, transient
            if transient:
                self.since = max(self.since, t)
            else:
                pipe._lasting_error = message


class StreamPipeline:
    """Bounded queue -> analyzer -> snapshot, for one stream.

    ``offer`` may be called from any thread. ``step`` runs in a worker thread,
    never twice at once for one pipeline.
    """

    def __init__(self, stream: str, kind: str, source: str = "", queue_capacity: int | None = None,
                 perception: Perception | None = None) -> None:
        if kind not in ANALYZERS:
            raise HubError(f"unknown stream kind {kind!r}: expected text, audio or video")
        self.stream, self.kind, self.source = stream, kind, source
        self.analyzer: StreamAnalyzer = ANALYZERS[kind](stream)
        self._capacity = queue_capacity
        self.queue_capacity = queue_capacity or self.analyzer.queue_capacity
        self._queue: deque[Event] = deque()
        self._lock = threading.Lock()
        self._step_lock = threading.Lock()
        self.drops = 0
        self.starting = False
        """Set by a starting hub until its ingest kernels are ready: data is queued, not dropped."""
        self.startup_budget = StartupBudget()
        """Shared by all of a hub's pipelines (the hub sets its own)."""
        self._startup_bytes = 0
        self.events = 0
        self.status = "open"
        self.error: str | None = None
        self.opened_t = math.nan
        self.closed_t = math.nan
        self.seq = 0
        self.latest: Snapshot | None = None
        self.recent: deque[PatternHit] = deque(maxlen=RECENT_PATTERNS)
        self._views: tuple[SignalView, ...] = ()
        self._drained_since_step = 0
        self._attractor_t = -math.inf
        self._estimates: dict[str, tuple[AttractorClass, int, float]] = {}
        """Signal name -> (its last estimate, the signal's points then, when)."""
        self._attractor_seq = 0
        self._perception = perception if perception is not None and perception.enabled else None
        self._perceiver = self._perception
        """The perception the analyzer was given (given again to a new analyzer, see ``_become``)."""
        self._data_seen = False
        self._recovering = False  # its error is one its source is retrying after (``StreamError.transient``)
        self._lasting_error: str | None = None  # its last error that was not such a one
        self.family = _Family([self])
        """The streams of its source (a companion joins its first stream's): data on any of them after a retry
        its source said it was making shows the retry worked, for all of them."""
        self.source_metrics: Callable[[], dict[str, Any]] | None = None
        """The source's own counters for this stream (decode errors, network gaps), merged into the metrics."""
        self.taps: tuple = ()
        """Consumers of every handled event (the session recorder, the meta-learner): ``tap.event(stream,
        event, measured)``, called in the ingest worker after the analyzer took the event."""

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    def offer(self, event: Event, count_drop: bool = True) -> bool:
        """Queue an event; data events are dropped (and counted) when the queue is full.

        Control events (open, close, errors, request boundaries) are never
        dropped: they are tiny and losing one would corrupt the stream's state.
        """
        with self._lock:
            if isinstance(event, DATA_EVENTS):
                if self.starting:
                    size = _payload_bytes(event)
                    full = len(self._queue) >= STARTUP_EVENTS or not self.startup_budget.take(size)
                    if not full:
                        self._startup_bytes += size
                else:
                    full = len(self._queue) >= self.queue_capacity
                if full:
                    self.drops += count_drop
                    return False
            self._queue.append(event)
            return True

    def _handle(self, ev: Event) -> Measured:
        """One event into the analyzer (control events into the stream's state); what it measured."""
        self.events += 1
        if math.isnan(self.opened_t):
            self.opened_t = ev.t
        if isinstance(ev, StreamOpened):
            self.source = ev.source or self.source
        if self._perception is not None:  # on the first event, once the source is known
            perception, self._perception = self._perception, None
            perception.attach(self.analyzer, self.source, self.opened_t)
        if isinstance(ev, StreamOpened):
            if ev.kind != self.kind:
                self._become(ev.kind)
            return NOTHING
        if isinstance(ev, StreamClosed):
            if self.status == "open":
                self.status = {"cancelled": "cancelled", "error": "error"}.get(ev.reason, "closed")
                self.closed_t = ev.t
                if self.status == "error" and self.error is None:  # (a companion: its source's error is its end)
                    self.error = "ended by an error of its source"
            self.analyzer.close()
        elif isinstance(ev, Flag):
            self.analyzer.hits.append(PatternHit(ev.t, self.stream, ev.kind, ev.message))
            if ev.condition:
                self.analyzer.flagged(ev.condition, ev.t, ev.since)
        elif isinstance(ev, StreamError):
            self.family.said(self, ev.message, ev.transient and not ev.fatal, ev.t)
            self.analyzer.hits.append(PatternHit(ev.t, self.stream, "error", ev.message))
            if ev.fatal and self.status == "open":
                self.status, self.closed_t = "error", ev.t
        elif self.status == "open":
            self._data_seen = True
            if self.family.since > -math.inf and ev.t > self.family.since:  # its source's data came again: the
                # retry it said it was making worked (the error is in the pattern log; no stream shows it as its state)
                self.family.recovered(ev.t)
            return self.analyzer.ingest(ev)
        return NOTHING

    def _become(self, kind: str) -> None:
        """The stream is of another kind than its source first said (a network input is only known to hold no video
        once it is open: its stream, added as video, carries its audio). Only before any data: an analyzer of the
        new kind takes over, with the hits the old one had not published yet."""
        if self._data_seen or kind not in ANALYZERS:
            raise HubError(f"stream {self.stream!r} is {self.kind}, not {kind}")
        old, self.kind = self.analyzer, kind
        self.analyzer = ANALYZERS[kind](self.stream)
        self.analyzer.hits.extend(old.hits)
        self.queue_capacity = self._capacity or self.analyzer.queue_capacity
        if self._perceiver is not None:
            self._perceiver.attach(self.analyzer, self.source, self.opened_t)

    def _drain(self) -> int:
        with self._lock:
            pending = list(self._queue)
            self._queue.clear()
            self.startup_budget.give(self._startup_bytes)
            self._startup_bytes = 0
        taps = self.taps
        for ev in pending:
            try:
                ingested = self.status == "open" or not isinstance(ev, DATA_EVENTS)
                measured = self._handle(ev)
                if ingested:
                    for tap in taps:
                        tap.event(self.stream, ev, measured)
            except Exception as exc:  # a bad event must not take the stream down
                self.family.said(self, f"bad {type(ev).__name__}: {type(exc).__name__}: {exc}", False, ev.t)
                self.analyzer.hits.append(PatternHit(ev.t, self.stream, "error", self.error))
        self._drained_since_step += len(pending)
        return len(pending)

    def drain(self) -> int:
        """Move queued events into the ring buffers (no snapshot); returns how many."""
        with self._step_lock:
            return self._drain()

    def dormant(self) -> bool:
        """Whether a step would do nothing: the stream has ended, its last snapshot is taken and its attractor
        estimated on all of it, nothing has come since, and its analyzer can add nothing by itself. Not while a
        drain is under way (it counts what it took in only once it is through: the stream would be passed over,
        and at a stop lose its last step)."""
        if self.status == "open" or self.latest is None or not self._step_lock.acquire(blocking=False):
            return False
        try:
            return (not self._queue and not self._drained_since_step and not self.analyzer.signal_changed
                    and self.analyzer.quiet())
        finally:
            self._step_lock.release()

    def dynamics_due(self, now: float) -> bool:
        """Whether the next step would estimate the attractor (new signal, and the interval passed or ended)."""
        return self.analyzer.signal_changed and (now - self._attractor_t >= ATTRACTOR_INTERVAL
                                                 or self.status != "open")

    def _estimate(self, name: str, sig: np.ndarray, points: int, now: float) -> AttractorClass:
        """The signal's attractor estimate: made again when enough of it is new (see RECLASSIFY_SHARE);
        ``points``: how many it has taken in so far."""
        last = self._estimates.get(name)
        if (last is None or self.status != "open" or now - last[2] >= RECLASSIFY_MAX_S
                or points - last[1] >= RECLASSIFY_SHARE * min(sig.size, ATTRACTOR_WINDOW)):
            last = (classify_attractor(sig, max_points=ATTRACTOR_WINDOW), points, now)
            self._estimates[name] = last
        return last[0]

    def step(self, now: float, dynamics: bool = True) -> tuple[Snapshot | None, list[PatternHit]]:
        """Drain the queue, analyse, and return (snapshot or None if unchanged, new hits).

        ``dynamics=False`` (the attractor kernels are still compiling) publishes the
        metrics and leaves the attractor estimate for a later step."""
        with self._step_lock:
            self._drain()
            changed, self._drained_since_step = self._drained_since_step, 0
            # (an ended stream whose last change its last estimate has not seen is estimated once more)
            if self.latest is not None and not changed and self.status != "open" and not (
                    dynamics and self.analyzer.signal_changed):
                late = self.analyzer.take_hits()  # perception can finish after the stream did (a last final)
                if not late:
                    return None, []
                self.analyzer.hits[:0] = late  # taken again below, with a fresh snapshot
            if math.isnan(self.opened_t):
                return None, []
            t_end = self.closed_t if self.status != "open" else now
            a = self.analyzer
            a.update(t_end)
            metrics: dict[str, Any] = a.metrics(t_end, self.opened_t)
            metrics["uptime_s"] = max(0.0, t_end - self.opened_t)
            metrics["events"] = self.events
            metrics["drops"] = self.drops
            metrics["queue"] = self.queue_depth
            if self.source_metrics is not None:
                metrics.update(self.source_metrics())
            due = now - self._attractor_t >= ATTRACTOR_INTERVAL or self.status != "open"
            if a.signal_changed and due and dynamics:
                a.signal_changed = False
                self._attractor_t = now
                self._attractor_seq += 1
                views = []
                points = a.signal_points()
                for name, sig in a.signals().items():
                    cls = self._estimate(name, sig, points.get(name, self.events), now)
                    px, py = delay_embed_2d(sig[-PORTRAIT_POINTS:], max(1, cls.lag))
                    views.append(SignalView(name, cls, _readonly(px), _readonly(py)))
                self._views = tuple(views)
            hits = a.take_hits()
            self.recent.extend(hits)
            self.seq += 1
            first = self._views[0] if self._views else SignalView(a.signal_name, UNKNOWN)
            snap = Snapshot(
                stream=self.stream, kind=self.kind, seq=self.seq, t=now, status=self.status,
                source=self.source, metrics=MappingProxyType(metrics), attractor=first.attractor,
                signal_name=first.name, attractor_seq=self._attractor_seq, portrait_x=first.portrait_x,
                portrait_y=first.portrait_y, signals=self._views,
                patterns=tuple(self.recent), error=self.error, text_tail=a.text_tail(),
                preview=a.preview_image(), transcript=a.transcript(), detections=a.detections(),
            )
            self.latest = snap
            return snap, hits


def _payload_bytes(event: Event) -> int:
    if isinstance(event, VideoFrame):
        return int(event.frame.nbytes)
    if isinstance(event, AudioChunk):
        return int(event.samples.nbytes)
    return 64 + 4 * len(getattr(event, "text", ""))




class Tap(Protocol):
    """Takes every handled event of every stream, with what the stream's analyzer measured from it (the session
    recorder, the meta-learner). Called in an ingest worker: it must not block."""

    def event(self, stream: str, event: Event, measured: Measured) -> None: ...


@runtime_checkable
class HubView(Protocol):
    """What the dashboard and the headless printer read and do: a live ``Hub`` or a ``sessions.RecordedHub``."""

    clock: Clock
    t0: float
    analysis_interval: float
    replay: bool
    """A record being played, not live streams."""
    warm: bool
    """The analysis kernels are compiled (a replay is always warm)."""
    running: bool
    ticks: int
    meta: Any
    """The meta-learner (``rules.MetaLearner``), or None."""

    @property
    def streams(self) -> list[str]: ...

    def snapshots(self) -> dict[str, Snapshot]: ...

    def snapshot(self, stream: str) -> Snapshot | None: ...

    def patterns_since(self, seq: int = 0) -> list[tuple[int, PatternHit]]: ...

    def cancel(self, stream: str) -> bool: ...

    def add_source(self, source: Source) -> None: ...

    def on_tick(self, callback: Callable[[float], None]) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def run(self, duration: float | None = None) -> None: ...


class Hub:
    """Owns the pipelines, runs sources and the analysis clock, publishes snapshots."""

    replay = False

    def __init__(self, clock: Clock | None = None, *, analysis_interval: float = 0.1,
                 pattern_log_size: int = 1000, workers: int = 2, perception: Perception | None = None) -> None:
        if not analysis_interval > 0:
            raise HubError("analysis interval must be > 0 seconds")
        self.clock: Clock = clock or MonotonicClock()
        self.analysis_interval = float(analysis_interval)
        self.perception = perception
        """Transcription and detection attached to new audio/video streams (None: neither)."""
        self.recorder = None
        self.meta = None
        """The meta-learner (rules.MetaLearner), when one is attached."""
        self.taps: tuple = ()
        self.t0 = self.clock.now()
        self._pipelines: dict[str, StreamPipeline] = {}
        self._lock = threading.RLock()
        self._log: deque[tuple[int, PatternHit]] = deque(maxlen=pattern_log_size)
        self._log_seq = 0
        self._sources: dict[str, Source] = {}
        self._services: list = []
        self.totals: dict[str, Callable[[], dict]] = {}
        """What a run adds up beside its streams, by name (a proxy's requests, cuts and goodput): each call gives
        them as they stand; the headless summary shows them."""
        self._tasks: list[asyncio.Task] = []
        self._analysis_task: asyncio.Task | None = None
        self._ingest_task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._serial: ThreadPoolExecutor | None = None
        """One thread for the work on a few streams (see PARALLEL_MIN), so a drain and a tick take turns."""
        self._workers = workers
        self._tick_callbacks: list[Callable[[float], None]] = []
        self._pulls: list[Callable[[], Awaitable[None]]] = []
        self.ticks = 0
        self.dynamics_deferred = 0
        """Attractor estimates put off to a later tick by the budget (``dynamics_per_s``)."""
        self.dynamics_per_s = DYNAMICS_PER_S
        """Attractor estimates per second across all streams (at least one a tick): what the analysis may spend
        on them however many streams come (``midstream proxy`` spends less, see ``proxy.PROXY_DYNAMICS_PER_S``)."""
        self.focus: str | None = None
        """The stream the user is looking at (the dashboard's selection): when the budget cannot estimate every
        stream that is due, it is estimated first (at most once a second, ``ATTRACTOR_INTERVAL``), so its panel
        is never the one that waits; the rest share what is left, the stalest first."""
        self.max_ended: int | None = None
        """Ended streams kept at most (live runs); the oldest beyond it are aged out: a proxy's thousands of
        requests must not grow memory and every tick's work without bound. None: all are kept."""
        self.aged_out = 0
        """Ended streams aged out by ``max_ended``."""
        self._stopped = False  # (see stopped)
        self.tick_seconds: deque[float] = deque(maxlen=1000)
        """Wall time of the recent live analysis ticks (all streams, worker threads)."""
        self.warm = False
        """Every kernel is ready (the attractor estimate runs); False while they load or compile."""
        self.ingest_ready = False
        """The kernels of ingest and metrics are ready: events are analysed and metrics published."""
        self.warmup_s = math.nan
        """Seconds the kernels took to load or compile (a first run compiles: ~15 s on 2 cores)."""
        self._starting = False
        self._startup_budget = StartupBudget()
        self._warm_thread: threading.Thread | None = None
        self.callback_error: Exception | None = None
        """The first exception raised by an ``on_tick`` callback; ``run()`` re-raises it."""
        self.service_errors: list[str] = []
        """Services that failed to stop (each stopped in any case)."""
        self.notices: deque[str] = deque(maxlen=100)
        """One-line messages from services for whoever watches the run (a gateway's relay started again...): the
        dashboard shows them and takes them out."""

    # ------------------------------------------------------------ library API

    @property
    def streams(self) -> list[str]:
        with self._lock:
            return list(self._pipelines)

    def pipeline(self, stream: str, kind: str | None = None, source: str = "") -> StreamPipeline:
        """The stream's pipeline, created on first use (``kind`` required then)."""
        with self._lock:
            pipe = self._pipelines.get(stream)
            if pipe is None:
                if kind is None:
                    raise HubError(f"unknown stream {stream!r}")
                pipe = self._pipelines[stream] = StreamPipeline(stream, kind, source, perception=self.perception)
                pipe.taps = self.taps
                pipe.starting = self._starting
                pipe.startup_budget = self._startup_budget
            elif kind is not None and kind != pipe.kind:
                raise HubError(f"stream {stream!r} is {pipe.kind}, not {kind}")
            return pipe

    def push(self, event: Event) -> bool:
        """Offer any event; the stream is created from the event's kind if new."""
        kind = event.kind if isinstance(event, StreamOpened) else KIND_OF_EVENT.get(type(event))
        pipe = self.pipeline(event.stream, kind)
        if self.running:
            return pipe.offer(event)
        # Library use with no ingest loop: the caller gets backpressure (a
        # synchronous drain), never silent drops. Live, drops are counted.
        if pipe.offer(event, count_drop=False):
            return True
        pipe.drain()
        return pipe.offer(event)

    def _now(self, t: float | None) -> float:
        return self.clock.now() if t is None else float(t)

    def open_stream(self, stream: str, kind: str, source: str = "", t: float | None = None) -> None:
        self.push(StreamOpened(stream, self._now(t), kind=kind, source=source,  # type: ignore[arg-type]
                               identity=identity_of(source, kind)))

    def push_text(self, stream: str, text: str, tokens: int = 1, t: float | None = None,
                  request_id: int = 0) -> bool:
        """A chunk of generated text carrying ``tokens`` tokens (like processMessage)."""
        return self.push(TextDelta(stream, self._now(t), text=str(text), tokens=int(tokens), request_id=request_id))

    def start_request(self, stream: str, t: float | None = None, request_id: int = 0) -> None:
        """Mark a request start: the next text's arrival minus this is the TTFT."""
        self.push(RequestStarted(stream, self._now(t), request_id=request_id))

    def finish_request(self, stream: str, t: float | None = None, request_id: int = 0) -> None:
        self.push(RequestFinished(stream, self._now(t), request_id=request_id))

    def push_audio(self, stream: str, samples: np.ndarray, sample_rate: int = 48_000,
                   t: float | None = None) -> bool:
        """PCM audio: int16, or float in [-1, 1]; shape (frames,) or (frames, channels)."""
        a = np.array(samples, copy=True)
        if a.ndim not in (1, 2) or a.size == 0:
            raise HubError(f"audio must be a non-empty 1-D or 2-D array, got shape {a.shape}")
        if a.dtype != np.int16:
            a = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=1.0, neginf=-1.0)
            a = np.clip(a * 32767.0, -32768, 32767).astype(np.int16)
        return self.push(AudioChunk(stream, self._now(t), samples=a, sample_rate=int(sample_rate)))

    def push_video(self, stream: str, frame: np.ndarray, t: float | None = None) -> bool:
        """An RGB frame, uint8, shape (height, width, 3)."""
        f = np.asarray(frame)
        if f.ndim != 3 or f.shape[2] != 3 or f.dtype != np.uint8:
            raise HubError(f"video frames must be HxWx3 uint8 arrays, got {f.shape} {f.dtype}")
        return self.push(VideoFrame(stream, self._now(t), frame=f.copy()))

    def close_stream(self, stream: str, reason: str = "finished", t: float | None = None) -> None:
        self.pipeline(stream).offer(StreamClosed(stream, self._now(t), reason=reason))

    def analyze(self, now: float | None = None) -> dict[str, Snapshot]:
        """Run one analysis step of every stream in this thread; return the snapshots."""
        now = self._now(now)
        for pipe in self._pipeline_list():
            self._publish(pipe.step(now))
        self.ticks += 1
        return self.snapshots()

    def snapshots(self) -> dict[str, Snapshot]:
        """Latest snapshot of every stream that has one, in stream order."""
        return {p.stream: p.latest for p in self._pipeline_list() if p.latest is not None}

    def snapshot(self, stream: str) -> Snapshot | None:
        return self.pipeline(stream).latest

    def patterns_since(self, seq: int = 0) -> list[tuple[int, PatternHit]]:
        """Pattern-log entries with a sequence number greater than ``seq``."""
        with self._lock:
            if not self._log or self._log[-1][0] <= seq:
                return []
            return [item for item in self._log if item[0] > seq]

    def _pipeline_list(self) -> list[StreamPipeline]:
        with self._lock:
            return list(self._pipelines.values())

    def _publish(self, result: tuple[Snapshot | None, list[PatternHit]]) -> None:
        _snap, hits = result
        if hits:
            with self._lock:
                for hit in hits:
                    self._log_seq += 1
                    self._log.append((self._log_seq, hit))

    # ------------------------------------------------------------ sources

    def add_source(self, source: Source) -> None:
        """Register a source; it starts with ``start()`` (or at once if running)."""
        with self._lock:
            if source.stream_id in self._sources or source.stream_id in self._pipelines:
                raise HubError(f"a stream named {source.stream_id!r} already exists")
            self._sources[source.stream_id] = source
            pipe = self.pipeline(source.stream_id, source.kind, source.uri)
            pipe.source_metrics = functools.partial(source.stream_metrics, source.stream_id)
        if self._analysis_task is not None:
            self._tasks.append(asyncio.get_running_loop().create_task(self._pump(source)))

    def add_service(self, service) -> None:
        """Something that runs beside the sources for the hub's whole life: its ``async start()`` runs in
        ``start()``. One that adds sources of its own (a proxy taking requests) stops first in ``stop()``, and while
        a hub has one, ``run()`` does not end when the sources so far have ended: more may come. One whose
        ``adds_sources`` is False (a publisher) only reads: it stops last, after the final analysis step."""
        self._services.append(service)

    def source(self, stream: str) -> Source | None:
        return self._sources.get(stream)

    def cancel(self, stream: str) -> bool:
        """Cancel a stream's source mid-stream; False if it has no running source."""
        src = self._sources.get(stream)
        pipe = self._pipelines.get(stream)
        if src is None or src.cancelled or pipe is None or pipe.status != "open":
            return False
        src.cancel()
        return True

    async def _pump(self, source: Source) -> None:
        pipe = self.pipeline(source.stream_id)
        companions: dict[str, StreamPipeline] = {}
        companions_lock = threading.RLock()

        def route(event: Event) -> StreamPipeline:
            if event.stream == source.stream_id:
                return pipe
            with companions_lock:  # a companion stream of the source (realtime or media audio)
                target = companions.get(event.stream)
                if target is None:
                    self._sources.setdefault(event.stream, source)  # cancelling it cancels the source
                    kind = event.kind if isinstance(event, StreamOpened) else KIND_OF_EVENT.get(type(event))
                    target = companions[event.stream] = self.pipeline(event.stream, kind)
                    target.source_metrics = functools.partial(source.stream_metrics, event.stream)
                    pipe.family.join(target)
                return target

        closed = [False]  # the pump ended its streams: what the source's thread still hands over goes nowhere

        def offer(event: Event) -> bool:
            """Straight from the source's own thread (``Source.sink``): False only when a lossless source
            must wait."""
            with companions_lock:  # (held while offering: nothing is handed over after the streams' close)
                if closed[0]:
                    return True
                target = route(event)
                return target.offer(event, count_drop=not source.lossless) or not source.lossless

        def close_all() -> list[StreamPipeline]:
            with companions_lock:
                closed[0] = True
                return [pipe, *companions.values()]

        source.sink = offer
        try:
            async for event in source:
                if offer(event):
                    continue  # queued, or dropped and counted: a live source cannot wait
                target = route(event)
                while not source.cancelled and not target.offer(event, count_drop=False):
                    await asyncio.sleep(INGEST_INTERVAL / 4)  # a source that can wait: backpressure
        except asyncio.CancelledError:  # the run ended (--duration, stop()): the companions end with it
            now = self.clock.now()
            for target in close_all():
                target.offer(StreamClosed(target.stream, now, reason="stopped"))
            raise
        except Exception as exc:  # a broken source becomes a recorded stream error
            now = self.clock.now()
            source.cancel()  # a reader thread of its own stops too
            targets = close_all()
            pipe.offer(StreamError(source.stream_id, now, f"{type(exc).__name__}: {exc}", fatal=True))
            for target in targets:
                target.offer(StreamClosed(target.stream, now, reason="error"))

    def add_tap(self, tap: Tap) -> None:
        """Give ``tap.event(stream, event, measured)`` every event of every stream, present and future
        (``measured``: what the stream's analyzer measured from it, see ``analyzers.Measured``)."""
        with self._lock:
            self.taps = (*self.taps, tap)
            for pipe in self._pipelines.values():
                pipe.taps = self.taps

    def attach_recorder(self, recorder) -> None:
        """Record every stream, present and future (see store.Recorder)."""
        self.recorder = recorder
        self.add_tap(recorder)

    def on_tick(self, callback: Callable[[float], None]) -> None:
        """Call ``callback(now)`` in the event loop after each analysis tick."""
        self._tick_callbacks.append(callback)

    def before_step(self, pull: Callable[[], Awaitable[None]]) -> None:
        """Await ``pull()`` at the start of each analysis step: a service whose events come in batches from another
        process (the proxy's relay) has it send what it holds, so that the step sees everything up to its time. The
        service bounds its own wait; an error it raises ends the run, as a tick callback's does."""
        self._pulls.append(pull)

    @property
    def running(self) -> bool:
        """Whether the analysis clock runs. It ends before ``stop()`` is over: the stop's last analysis step, which
        still counts what had arrived, comes after it (``stopped``)."""
        return self._analysis_task is not None and not self._analysis_task.done()

    @property
    def stopped(self) -> bool:
        """Whether a ``stop()`` is over (its last analysis step done, every service stopped, or the stop failed):
        nothing changes after it, until a new ``start()``."""
        return self._stopped

    def sources_done(self) -> bool:
        return all(t.done() for t in self._tasks)

    async def start(self) -> None:
        """Start every registered source and the analysis clock in the running loop."""
        if self._analysis_task is not None:
            return
        self._stopped = False
        loop = asyncio.get_running_loop()
        self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix="midstream-analysis")
        self._serial = ThreadPoolExecutor(1, thread_name_prefix="midstream-serial") if self._workers > 1 else None
        self.t0 = self.clock.now()
        self._set_starting(not self.ingest_ready)
        self._tasks = [loop.create_task(self._pump(s)) for s in self._sources.values()]
        self._analysis_task = loop.create_task(self._analysis_loop())
        self._ingest_task = loop.create_task(self._ingest_loop())
        started = []
        try:
            for service in self._services:
                await service.start()
                started.append(service)
        except BaseException:  # e.g. a port taken: what did start is stopped, the error goes to the caller
            self._services = started
            await self.stop()
            raise

    def _pool(self, streams: int) -> ThreadPoolExecutor:
        """Where the work on this many streams runs: all workers for many, one thread for a few."""
        return self._executor if streams >= PARALLEL_MIN or self._serial is None else self._serial

    def _batches(self, pipes: list[StreamPipeline]) -> list[list[StreamPipeline]]:
        """Split pipelines into one batch per worker thread where that helps (many streams: nogil kernels in
        parallel), without a thread hop per stream per tick; a few streams are one batch (see PARALLEL_MIN)."""
        n = 1 if len(pipes) < PARALLEL_MIN else max(1, min(self._workers, len(pipes)))
        return [pipes[i::n] for i in range(n)]

    async def _ingest_loop(self) -> None:
        loop = asyncio.get_running_loop()

        def drain_all(batch: list[StreamPipeline]) -> None:
            for pipe in batch:
                pipe.drain()

        while True:
            if not self.ingest_ready:  # draining now would only wait on numba's compile lock
                await asyncio.sleep(INGEST_INTERVAL)
                continue
            pipes = self._pipeline_list()
            # (once every source has ended, whatever is queued is drained: ``run`` ends when the queues are empty)
            busy = [p for p in pipes if p.queue_depth] if self.sources_done() else self._ingest_due(pipes)
            if busy:
                pool = self._pool(len(self._pipelines))
                await asyncio.gather(*(loop.run_in_executor(pool, drain_all, b) for b in self._batches(busy)))
            # Nothing to drain: the queues fill slowly (a few text streams), and the next analysis step drains them
            # first anyway; a look every other interval is enough until something is due (see INGEST_IDLE).
            await asyncio.sleep(INGEST_INTERVAL if busy else INGEST_IDLE
                                if any(p.status == "open" for p in pipes) else INGEST_ENDED)

    def _set_starting(self, starting: bool) -> None:
        with self._lock:
            self._starting = starting
            for pipe in self._pipelines.values():
                pipe.starting = starting

    def _warm_dynamics(self, started: float) -> None:
        kernels.warm_up_dynamics()
        self.warmup_s = time.perf_counter() - started
        self.warm = True

    async def _warm_up(self, loop: asyncio.AbstractEventLoop) -> None:
        """Ingest kernels first (sources queue meanwhile, nothing dropped), then the dynamics
        kernels in a thread of their own while events are analysed and metrics published."""
        if self.warm:
            return
        started = time.perf_counter()
        if not self.ingest_ready:
            await loop.run_in_executor(self._executor, kernels.warm_up_ingest)
            self.ingest_ready = True
        self._set_starting(False)
        if self._warm_thread is None:
            self._warm_thread = threading.Thread(target=self._warm_dynamics, args=(started,),
                                                 name="midstream-warm-up", daemon=True)
            self._warm_thread.start()

    async def _analysis_loop(self) -> None:
        loop = asyncio.get_running_loop()
        # Load or compile the kernels off the event loop; sources run meanwhile.
        await self._warm_up(loop)
        next_t = self.clock.now()
        while True:
            await self._tick(loop)
            next_t += self.analysis_interval
            if next_t < self.clock.now():  # fell behind: skip ticks rather than pile up
                next_t = self.clock.now()
            await self.clock.sleep_until(next_t)

    async def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        for pull in self._pulls:  # (what another process holds for this step comes first)
            try:
                await pull()
            except Exception as exc:  # noqa: BLE001 - as a tick callback's: the run ends, saying why
                if self.callback_error is None:
                    self.callback_error = exc
        now = self.clock.now()
        started = time.perf_counter()

        def step_all(batch: list[StreamPipeline]) -> None:
            # Published from the worker: if this tick is cancelled (shutdown) while a step runs,
            # the hits it took from the analyzer still reach the log.
            for pipe in batch:
                self._publish(pipe.step(now, dynamics=pipe in allowed))

        pipes = self._pipeline_list()
        # (ended streams already summed up are not stepped again: a proxy that has answered hundreds of requests
        # and waits for more wakes no thread)
        active = [p for p in pipes if not p.dormant()]
        if active:
            allowed = self._dynamics_allowed(active, now)
            pool = self._pool(len(active))
            await asyncio.gather(*(loop.run_in_executor(pool, step_all, b) for b in self._batches(active)))
        if self.max_ended is not None:
            self._age_out(pipes, now)
        self.tick_seconds.append(time.perf_counter() - started)
        self.ticks += 1
        for cb in self._tick_callbacks:
            try:
                cb(now)
            except Exception as exc:  # a consumer's error must not kill analysis silently
                if self.callback_error is None:
                    self.callback_error = exc

    @staticmethod
    def _ingest_due(pipes: list[StreamPipeline]) -> list[StreamPipeline]:
        """The queues the ingest loop drains now rather than leave to the next step (``INGEST_MIN``)."""
        queued = [p for p in pipes if p.queue_depth]
        if sum(p.queue_depth for p in queued if p.kind == "text") >= INGEST_MIN:
            return queued
        return [p for p in queued if p.kind != "text"]

    def _dynamics_allowed(self, pipes: list[StreamPipeline], now: float) -> set[StreamPipeline]:
        """The pipelines whose step at ``now`` may estimate their attractor: those due, within the budget
        (``dynamics_per_s``), the stream in ``focus`` then the stalest first; the rest wait for a later tick
        (counted)."""
        if not self.warm:
            return set()
        due = [p for p in pipes if p.dynamics_due(now)]
        budget = max(1, round(self.dynamics_per_s * self.analysis_interval))
        if len(due) > budget:
            focus = self.focus
            due.sort(key=lambda p: (p.stream != focus, p._attractor_t))
            self.dynamics_deferred += len(due) - budget
            due = due[:budget]
        return set(due)

    def _age_out(self, pipes: list[StreamPipeline], now: float) -> None:
        ended = [p for p in pipes if p.status != "open" and p.latest is not None and p.latest.status != "open"
                 and p.queue_depth == 0 and now - p.closed_t > ENDED_GRACE_S]
        extra = len(ended) - (self.max_ended or 0)
        if extra <= 0:
            return
        ended.sort(key=lambda p: p.closed_t)
        with self._lock:
            for pipe in ended[:extra]:
                self._pipelines.pop(pipe.stream, None)
                self._sources.pop(pipe.stream, None)
        self.aged_out += extra
        self._tasks = [t for t in self._tasks if not t.done()]

    async def stop(self) -> None:
        """Cancel sources, run a last analysis step, release the worker threads."""
        services, self._services = self._services, []
        # services that add streams stop first (their streams end); those that only read (a publisher) last,
        # after the final analysis step, so they carry the streams' final state
        readers = [s for s in services if not getattr(s, "adds_sources", True)]
        try:
            for service in services:
                if service not in readers:
                    await service.stop()
            await self._stop_analysis()
        finally:  # (readers stop in any case: a port, a connection, an exporter's thread)
            for service in readers:
                try:
                    await service.stop()
                except Exception as exc:  # noqa: BLE001 - one failing to stop must not keep the others running
                    self.service_errors.append(f"{type(service).__name__}: {exc}")
            self._stopped = True

    async def _stop_analysis(self) -> None:
        for src in list(self._sources.values()):
            src.cancel()
        for task in self._tasks:
            task.cancel()
        background = [t for t in (self._analysis_task, self._ingest_task) if t is not None]
        for task in background:
            task.cancel()
        pending = [*self._tasks, *background]
        await asyncio.gather(*pending, return_exceptions=True)
        if self._executor is not None:
            loop = asyncio.get_running_loop()
            try:
                if not self.warm:  # a short run can end before the warm-up did: the last analysis still happens
                    await self._warm_up(loop)
                    await asyncio.to_thread(self._warm_thread.join)
                self._set_starting(False)
                await self._tick(loop)
            finally:
                self._executor.shutdown(wait=False)
                self._executor = None
                if self._serial is not None:
                    self._serial.shutdown(wait=False)
                    self._serial = None
        self._analysis_task = self._ingest_task = None

    async def run(self, duration: float | None = None) -> None:
        """Run until ``duration`` seconds pass on the clock, or every source has ended."""
        await self.start()
        try:
            deadline = None if duration is None else self.t0 + duration
            while deadline is None or self.clock.now() < deadline:
                by_sources = self._tasks and not any(getattr(s, "adds_sources", True) for s in self._services)
                if by_sources and self.sources_done() and all(p.queue_depth == 0 for p in self._pipeline_list()):
                    break
                if self.callback_error is not None:
                    break
                # A run that can end with its sources looks often; one that serves (a proxy: requests come and go)
                # ends only at its deadline or on an error, and looks rarely until its deadline is near.
                near = deadline is not None and deadline - self.clock.now() <= RUN_POLL_SERVING_S
                await asyncio.sleep(RUN_POLL_S if by_sources or near else RUN_POLL_SERVING_S)
        finally:
            await self.stop()
        if self.callback_error is not None:
            raise self.callback_error


def run_virtual(hub: Hub, sources: Iterable[ScheduledSource], duration: float,
                interval: float | None = None,
                on_tick: Callable[[float, dict[str, Snapshot]], None] | None = None,
                stop: Callable[[], bool] | None = None, close_open: bool = False) -> dict[str, Snapshot]:
    """Drive scheduled sources through the hub in virtual time, as fast as the CPU allows.

    Events are merged by timestamp and pushed; an analysis step runs at every
    ``interval`` boundary, exactly as the live clock would. Deterministic: the
    same sources give the same snapshots. Used by tests, snapshots, benchmarks
    and ``--virtual`` headless runs. ``stop`` (asked at every analysis step) ends the run early when it
    says so (a signal). ``close_open``: at the end, as a live run does when its time is up or it is stopped,
    the streams still open are closed (reason "stopped") and one last analysis step runs.
    """
    interval = interval or hub.analysis_interval
    kernels.warm_up_ingest()
    kernels.warm_up_dynamics()
    hub.ingest_ready = hub.warm = True
    sources = list(sources)
    for src in sources:
        hub.pipeline(src.stream_id, src.kind, src.uri)
        hub._sources.setdefault(src.stream_id, src)
    t0 = hub.t0

    def scheduled(src) -> Iterator[tuple[Event, Any]]:
        for event in src.schedule(t0):
            yield event, src

    merged = heapq.merge(*(scheduled(src) for src in sources), key=lambda pair: pair[0].t)
    by_stream = {src.stream_id: src for src in sources}
    closed: set[str] = set()

    def tick(t: float) -> None:
        snaps = hub.analyze(t)
        for cb in hub._tick_callbacks:  # rules and other consumers, as on the live clock
            cb(t)
        if on_tick:
            on_tick(t, snaps)

    def end(t: float) -> dict[str, Snapshot]:
        still_open = [name for name, snap in hub.snapshots().items() if snap.status == "open"] if close_open else []
        for name in still_open:
            hub.push(StreamClosed(name, t, reason="stopped"))
        if still_open:
            tick(t)
        return hub.snapshots()

    next_tick = t0 + interval
    for event, origin in merged:
        if event.t > t0 + duration:
            break
        while event.t >= next_tick:
            tick(next_tick)
            next_tick += interval
            if stop is not None and stop():
                return end(next_tick - interval)
        src = by_stream.get(event.stream)
        if event.stream in closed:
            continue
        if src is not None and src.cancelled:  # cancelled mid-stream (by a rule): nothing more arrives
            closed.add(event.stream)
            hub.push(StreamClosed(event.stream, event.t, reason="cancelled"))
            continue
        if event.stream != origin.stream_id and event.stream not in hub._pipelines:  # a companion stream, at its first
            kind = event.kind if isinstance(event, StreamOpened) else KIND_OF_EVENT.get(type(event))
            if kind is not None:
                hub._pipelines[origin.stream_id].family.join(hub.pipeline(event.stream, kind))
        hub.push(event)
    while next_tick <= t0 + duration + 1e-9:
        tick(next_tick)
        next_tick += interval
        if stop is not None and stop():
            return end(next_tick - interval)
    return end(max(t0 + duration, next_tick - interval))  # (events up to the duration were pushed)
