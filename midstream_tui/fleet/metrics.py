"""What Prometheus scrapes (``--metrics-port N``): the hub's streams as histograms, counters and gauges.

Attached to a live hub it is a tap — every event of every stream — so its histograms hold each measured value,
as the references define them (see the README's metric definitions):

    midstream_ttft_seconds                   request start -> first chunk of output, reasoning included (AIPerf TTFT)
    midstream_ttfo_seconds                   request start -> first content or tool-call chunk (AIPerf TTFO)
    midstream_time_to_first_chunk_seconds    request start -> first chunk of output (OTel time_to_first_chunk)
    midstream_inter_chunk_gap_seconds        between consecutive chunks of a request (vLLM ITL, AIPerf ICL,
                                             OTel time_per_output_chunk)
    midstream_tpot_seconds                   per request: (last - first chunk) / (output tokens - 1), the
                                             server's usage count when it sent one
    midstream_e2e_seconds                    per request: start -> last chunk

and counters (``midstream_output_tokens_total``, ``_requests_total``, ``_cuts_total``, ``_pattern_hits_total``,
``_rule_hits_total``, ``_dropped_events_total``) and gauges (streams by status; video fps, bitrate, audio
level), read from the snapshots at the analysis rate. On a watcher (no events, only snapshots) the counters
and gauges are fed from the snapshots (streams already under way when it joined count from then on); the
histograms stay empty there — they need the events: scrape each agent's own ``/metrics`` for them.

Labels: ``agent``, ``kind`` and ``source`` — what the stream comes from (a model at its endpoint, a simulator, a
media kind at a host), never a request: the number of series stays bounded (past ``MAX_SOURCES`` distinct
sources, the rest count as ``other``; on a watcher, past ``MAX_AGENTS`` agents too, and past ``MAX_PATTERNS``
kinds of pattern per agent — a peer names its hits' kinds —; an agent gone from the watcher's view takes its
series with it).
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections import OrderedDict

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..events import OutputChunk, RequestFinished, RequestStarted, StreamClosed, StreamOpened, TextDelta, Usage
from ..sources.params import identity_of
from .wire import shown

MAX_SOURCES = 50
MAX_AGENTS = 200
"""Agents a watcher gives series of their own; the rest count as ``other`` (a peer can name itself anything)."""
MAX_PATTERNS = 32
"""Kinds of pattern hit with series of their own, per agent (a hub's own are a dozen or two); the rest of that
agent's count as ``other``."""
SEEN_MAX = 10_000
RUNS_KEPT = 8
"""Runs of an agent whose counts are remembered per stream (one started again, two clashing on a name)."""
"""Streams whose counted totals are remembered (a stream seen again is not counted twice)."""
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
"""The OpenTelemetry GenAI conventions' advisory boundaries for gen_ai.client.operation.duration (seconds)."""
CHUNK_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
"""... and for time_per_output_chunk (seconds); a gap finer than 10 ms falls in the first."""
LABELS = ("agent", "kind", "source")


class _Request:
    __slots__ = ("labels", "start", "first_chunk", "first", "output", "last", "tokens", "usage", "prompt")

    def __init__(self, labels: tuple[str, str, str]) -> None:
        self.labels = labels
        self.reset(math.nan)

    def reset(self, start: float) -> None:
        self.start, self.first_chunk, self.first, self.last = start, math.nan, math.nan, math.nan
        self.output = math.nan
        self.tokens = self.usage = self.prompt = 0


class RequestTap:
    """A hub tap that turns each stream's events into per-request figures, as the references define them, and
    hands them to the ``on_*`` hooks with the stream's labels (agent, kind, source). Called in ingest workers."""

    def __init__(self, agent: str, max_sources: int = MAX_SOURCES) -> None:
        # (redacted as on NATS: an agent named after a key was exported in clear on every series)
        self.agent, self.max_sources = shown(agent), max_sources
        self._lock = threading.Lock()
        self._sources: set[str] = set()
        self._agents: set[str] = set()
        self._patterns: dict[str, set[str]] = {}  # per agent: one peer's made-up kinds never crowd out another's
        self._labels: dict[str, tuple[str, str, str]] = {}
        self._requests: dict[str, _Request] = {}

    def _source(self, source: str) -> str:
        return self._capped(self._sources, source, self.max_sources)

    def _capped(self, seen: set[str], value: str, most: int) -> str:
        """``value`` as a label: itself while fewer than ``most`` are in ``seen``, else ``other``."""
        with self._lock:
            if value in seen:
                return value
            if len(seen) >= most:
                return "other"
            seen.add(value)
            return value

    def _labels_of(self, stream: str, kind: str, source_uri: str, identity: str = "") -> tuple[str, str, str]:
        labels = self._labels.get(stream)
        if labels is None:
            # a watcher's streams are AGENT/STREAM; an agent's name may hold "/" too: the watcher knows which part
            known = self.agent_of(stream) if not self.events and self.agent_of is not None else None
            agent = self.agent if self.events else self._capped(self._agents, known or stream.partition("/")[0],
                                                                MAX_AGENTS)
            labels = self._labels[stream] = (agent, kind, self._source(identity or identity_of(source_uri, kind)))
        return labels

    events = True
    agent_of = None
    """A watcher's ``agent_of(stream)``: the agent a stream it shows belongs to."""

    def forget(self, stream: str) -> None:
        self._labels.pop(stream, None)
        self._requests.pop(stream, None)

    def event(self, stream: str, event, measured) -> None:
        if isinstance(event, StreamOpened):
            self._labels.pop(stream, None)
            self._labels_of(stream, event.kind, event.source, event.identity)
            return
        if isinstance(event, StreamClosed):  # (a proxy's every request is a stream: its request is not kept)
            req = self._requests.pop(stream, None)
            if req is not None and not math.isnan(req.start) and math.isnan(req.first):
                self.on_failed(req.labels, event.t - req.start, event.reason)
            # Its labels are: its cut and the rule hits after its end are counted at a later step, and rebuilt from
            # the URI alone a proxied request's read "file:text" (its source is its identity, proxy:...). They go
            # when the hub no longer shows the stream (``tick``).
            return
        req = self._requests.get(stream)
        chunk = isinstance(event, (TextDelta, OutputChunk))
        if isinstance(event, RequestStarted) or (chunk and (req is None or math.isnan(req.start))):
            if req is None:  # (text without a RequestStarted begins a request, as the text analyzer counts it)
                labels = self._labels.get(stream) or self._labels_of(stream, "text", "")
                req = self._requests[stream] = _Request(labels)
            req.reset(event.t)
            self.on_request(req.labels)
        if chunk:  # (its text, its reasoning or a tool call's arguments: each a chunk, as the references count)
            labels = req.labels
            if event.tokens > 0:
                self.on_tokens(labels, event.tokens)
            timed = event.text if isinstance(event, TextDelta) else True  # (an empty text chunk carries nothing)
            if timed and math.isnan(req.first_chunk) and not math.isnan(req.start):
                req.first_chunk = event.t
                self.on_first_chunk(labels, event.t - req.start)
            if timed and math.isnan(req.output) and not math.isnan(req.start) and \
                    getattr(event, "part", "text") != "reasoning":
                req.output = event.t
                self.on_ttfo(labels, event.t - req.start)
            if measured.ttft_s is not None:
                self.on_ttft(labels, measured.ttft_s)
            if measured.gap_s is not None:
                self.on_gap(labels, measured.gap_s)
            if timed:
                if math.isnan(req.first):
                    req.first = event.t
                req.last = event.t
                req.tokens += max(0, int(event.tokens))
        elif isinstance(event, Usage) and req is not None:
            req.usage, req.prompt = int(event.completion_tokens), int(event.prompt_tokens)
        elif isinstance(event, RequestFinished) and req is not None:
            if not math.isnan(req.first) and not math.isnan(req.start):
                tokens = req.usage or req.tokens
                tpot = (req.last - req.first) / (tokens - 1) if tokens > 1 and event.streamed else None
                self.on_finished(req.labels, req.last - req.start, tpot, tokens, req.prompt, event.reason)
            elif not math.isnan(req.start):
                self.on_failed(req.labels, event.t - req.start, event.reason)
            req.reset(math.nan)

    # hooks
    def on_request(self, labels) -> None: ...
    def on_tokens(self, labels, n: int) -> None: ...
    def on_first_chunk(self, labels, seconds: float) -> None: ...
    def on_ttft(self, labels, seconds: float) -> None: ...
    def on_ttfo(self, labels, seconds: float) -> None: ...
    def on_gap(self, labels, seconds: float) -> None: ...
    def on_finished(self, labels, e2e: float, tpot: float | None, output_tokens: int, input_tokens: int,
                    reason: str) -> None: ...
    def on_failed(self, labels, seconds: float, reason: str) -> None: ...


class PrometheusMetrics(RequestTap):
    """The series of one hub (or a watcher's view of many agents) in their own registry."""

    adds_sources = False

    def __init__(self, hub, agent: str, *, max_sources: int = MAX_SOURCES) -> None:
        super().__init__(agent, max_sources)
        self.hub = hub
        self.registry = r = CollectorRegistry()
        self.ttft = Histogram("midstream_ttft_seconds", "Time to first token: request start to its first chunk of "
                              "output, reasoning included (AIPerf TTFT)", LABELS, buckets=DURATION_BUCKETS, registry=r)
        self.ttfo = Histogram("midstream_ttfo_seconds", "Time to first output: request start to its first chunk of "
                              "content or a tool call, not reasoning (AIPerf TTFO)", LABELS, buckets=DURATION_BUCKETS,
                              registry=r)
        self.first_chunk = Histogram("midstream_time_to_first_chunk_seconds", "Request start to its first chunk "
                                     "(OpenTelemetry time_to_first_chunk)", LABELS, buckets=DURATION_BUCKETS,
                                     registry=r)
        self.gap = Histogram("midstream_inter_chunk_gap_seconds", "Gap between consecutive chunks of a request "
                             "(vLLM ITL, AIPerf ICL, OpenTelemetry time_per_output_chunk)", LABELS,
                             buckets=CHUNK_BUCKETS, registry=r)
        self.tpot = Histogram("midstream_tpot_seconds", "Per request: (last chunk - first chunk) / (output tokens "
                              "- 1)", LABELS, buckets=CHUNK_BUCKETS, registry=r)
        self.e2e = Histogram("midstream_e2e_seconds", "Per request: start to last chunk", LABELS,
                             buckets=DURATION_BUCKETS, registry=r)
        self.tokens = Counter("midstream_output_tokens", "Output tokens streamed", LABELS, registry=r)
        self.requests = Counter("midstream_requests", "Requests begun", LABELS, registry=r)
        self.cuts = Counter("midstream_cuts", "Streams cancelled mid-stream (by a rule or a person)", LABELS,
                            registry=r)
        self.hits = Counter("midstream_pattern_hits", "Patterns noticed (loop, stall, silence, scene-cut, rule, ...)",
                            (*LABELS, "pattern"), registry=r)
        self.rule_hits = Counter("midstream_rule_hits", "Mid-stream rules that fired", LABELS, registry=r)
        self.drops = Counter("midstream_dropped_events", "Events the analysis dropped (queue full), counted",
                             LABELS, registry=r)
        self.streams = Gauge("midstream_streams", "Streams in view by status", ("agent", "kind", "status"),
                             registry=r)
        self.fps = Gauge("midstream_video_fps", "Video frames per second (newest stream of the source)", LABELS,
                         registry=r)
        self.bitrate = Gauge("midstream_bitrate_bits_per_second", "Media bitrate (newest stream of the source)",
                             LABELS, registry=r)
        self.level = Gauge("midstream_audio_level_dbfs", "Audio RMS level, dBFS (newest stream of the source)",
                           LABELS, registry=r)
        self._seen: OrderedDict[str, dict] = OrderedDict()  # stream -> what was counted of it (newest SEEN_MAX)
        self._media_shown: set[tuple[str, str, str]] = set()
        self._server = None
        self._shown: set[tuple[str, str, str]] = set()
        self._hit_seq = 0
        self.events = hasattr(hub, "add_tap")
        """Fed every event (a live hub), or only snapshots (a watcher)."""
        self.agent_of = getattr(hub, "agent_of", None)
        if self.events:
            hub.add_tap(self)
        hub.on_tick(self.tick)

    # ------------------------------------------------------------ every event (a tap: an ingest worker)

    def on_request(self, labels) -> None:
        self.requests.labels(*labels).inc()

    def on_tokens(self, labels, n: int) -> None:
        self.tokens.labels(*labels).inc(n)

    def on_first_chunk(self, labels, seconds: float) -> None:
        self.first_chunk.labels(*labels).observe(seconds)

    def on_ttft(self, labels, seconds: float) -> None:
        self.ttft.labels(*labels).observe(seconds)

    def on_ttfo(self, labels, seconds: float) -> None:
        self.ttfo.labels(*labels).observe(seconds)

    def on_gap(self, labels, seconds: float) -> None:
        self.gap.labels(*labels).observe(seconds)

    def on_finished(self, labels, e2e, tpot, output_tokens, input_tokens, reason) -> None:
        self.e2e.labels(*labels).observe(e2e)
        if tpot is not None:
            self.tpot.labels(*labels).observe(tpot)

    # ------------------------------------------------------------ each analysis tick (the event loop)

    def tick(self, _now: float) -> None:
        snaps = self.hub.snapshots()
        run_of = getattr(self.hub, "run_of", None)
        counts: dict[tuple[str, str, str], int] = {}
        media: set[tuple[str, str, str]] = set()
        before_join = getattr(self.hub, "preexisting", ())  # a watcher's streams read from the bucket at its start
        for stream, snap in snaps.items():
            labels = self._labels_of(stream, snap.kind, snap.source)
            seen = self._seen.get(stream)
            first = seen is None
            if first:  # first sight: counted from zero, unless it was under way before this watcher came
                seen = self._seen[stream] = {"status": snap.status if stream in before_join else "",
                                             "runs": OrderedDict()}
                if len(self._seen) > SEEN_MAX:
                    self._seen.popitem(last=False)
            self._seen.move_to_end(stream)
            # Counted per run of the agent: one started again under its name counts from zero, and two that clash
            # on a name (the watcher warns) each add their own, never the difference between them again and again.
            run = run_of(stream) if run_of is not None else ""
            mine = seen["runs"].get(run)
            new_run = mine is None and not (first and stream in before_join)  # (not one cut before this watcher)
            if mine is None:
                mine = seen["runs"][run] = {"drops": 0, "requests": 0, "tokens": 0}
                if first and stream in before_join:
                    mine.update(drops=_count(snap.metrics.get("drops")), requests=_count(snap.metrics.get("requests")),
                                tokens=_count(snap.metrics.get("tokens")))
                while len(seen["runs"]) > RUNS_KEPT:
                    seen["runs"].popitem(last=False)
            if snap.status == "cancelled" and not mine.get("cut"):  # once a run: a peer may flip it back and forth
                if seen["status"] != "cancelled" or new_run:
                    self.cuts.labels(*labels).inc()
                mine["cut"] = 1
            seen["status"] = snap.status
            key = (labels[0], snap.kind, snap.status)
            counts[key] = counts.get(key, 0) + 1
            self._grow(mine, "drops", snap.metrics.get("drops"), self.drops.labels(*labels))
            if not self.events:  # a watcher: the counters the events would have fed, from the snapshots
                self._grow(mine, "requests", snap.metrics.get("requests"), self.requests.labels(*labels))
                self._grow(mine, "tokens", snap.metrics.get("tokens"), self.tokens.labels(*labels))
            if snap.status == "open" and snap.kind in ("audio", "video"):
                self._media(snap, labels)
                media.add(labels)
        for labels in self._media_shown - media:  # no live stream of that source any more: no stale value
            for gauge in (self.fps, self.bitrate, self.level):
                with contextlib.suppress(KeyError):
                    gauge.remove(*labels)
        self._media_shown = media
        for key in self._shown | set(counts):
            self.streams.labels(*key).set(counts.get(key, 0))
        self._shown |= set(counts)
        hits = self.hub.patterns_since(self._hit_seq)
        if hits:
            self._hit_seq = hits[-1][0]
        for _seq, hit in hits:
            snap = snaps.get(hit.stream)
            if snap is None:
                continue
            labels = self._labels_of(hit.stream, snap.kind, snap.source)
            kinds = self._patterns.setdefault(labels[0], set())
            self.hits.labels(*labels, self._capped(kinds, hit.kind, MAX_PATTERNS)).inc()
            if hit.kind == "rule":
                self.rule_hits.labels(*labels).inc()
        for gone in [s for s in list(self._labels) if s not in snaps]:  # aged out of the hub, or a watcher's view
            self.forget(gone)
        if not self.events and isinstance(getattr(self.hub, "agents", None), dict):
            present = set(self.hub.agents)
            for agent in [a for a in self._agents if a not in present]:  # gone: its series go too
                self._remove_agent(agent)

    def _remove_agent(self, agent: str) -> None:
        """Take every series of ``agent`` out of the registry (a watcher's agent that is gone)."""
        with self._lock:
            self._agents.discard(agent)
            self._patterns.pop(agent, None)
        families = (self.ttft, self.ttfo, self.first_chunk, self.gap, self.tpot, self.e2e, self.tokens, self.requests,
                    self.cuts, self.hits, self.rule_hits, self.drops, self.streams, self.fps, self.bitrate, self.level)
        for family in families:
            # (prometheus_client lists a family's children only in its private ``_metrics``; removing is public)
            for values in [v for v in list(getattr(family, "_metrics", {})) if v and v[0] == agent]:
                with contextlib.suppress(KeyError):
                    family.remove(*values)
        self._shown = {key for key in self._shown if key[0] != agent}
        self._media_shown = {key for key in self._media_shown if key[0] != agent}

    @staticmethod
    def _grow(seen: dict, name: str, value, counter) -> None:
        """Count what a stream's own counter (``value``) gained since last seen (in this run)."""
        value = _count(value)
        if value > seen[name]:
            counter.inc(value - seen[name])
            seen[name] = value

    def _media(self, snap, labels) -> None:
        m = snap.metrics
        for gauge, name, scale in ((self.fps, "fps", 1.0), (self.bitrate, "bitrate_mbps", 1e6),
                                   (self.bitrate, "bitrate_kbps", 1e3), (self.level, "level_dbfs", 1.0)):
            value = m.get(name)
            if isinstance(value, (int, float)) and math.isfinite(value):
                gauge.labels(*labels).set(value * scale)

    # ------------------------------------------------------------ the HTTP endpoint

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Serve ``/metrics`` on ``host:port`` now (a taken port raises ``OSError`` here, before the run)."""
        from prometheus_client import start_http_server

        self._server, _thread = start_http_server(port, addr=host, registry=self.registry)

    @property
    def port(self) -> int | None:
        return self._server.server_address[1] if self._server is not None else None

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()


def _count(value) -> int:
    return int(value) if isinstance(value, (int, float)) and math.isfinite(value) and value > 0 else 0
