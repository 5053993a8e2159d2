"""Meta-learning, level 0: what normal looks like for each source, learned as it streams and kept across runs.

A *source* is what a stream comes from, independent of the run: a model at an
endpoint (``openai:chat/gpt-4o-mini@api.openai.com``), a simulator with its
behaviour (``sim:text/normal``), a media kind at a host. For each source the
learner keeps running distributions (log-spaced histograms: mergeable, bounded,
saved as JSON) of

  itl_ms        every inter-token gap inside a request
  ttft_ms       every time to first token
  below_full_scale_db   audio level per chunk (dB under full scale)
  motion        video motion per frame

and judges anomalies against them instead of fixed numbers. The first use is
the stall rule. A stall is a pause that matters to a person reading the stream:
with ``adaptive`` (the built-in stall rule has it), no token for at least

    max(STALL_FLOOR_S, STALL_FACTOR x the source's median gap), at most 6 x rule.seconds

once the source has ``MIN_SAMPLES`` gaps; before that the rule's own ``seconds``
apply. The floor (2.5 s) is never undercut: a reader's flow survives a pause of
about a second, and healthy models pause for up to ~2 s now and then (the
simulators do so by design), so a learned limit of 1 s flagged healthy streams
several times a minute. The factor (10) keeps a stall far outside the source's
own pace; the median, not a high quantile, because a source that stalls often
would otherwise learn its stalls as normal. A slow model whose normal gaps reach
8 s stops being flagged at 5 s; a fast model's 2.5 s pause is a stall.

Levels 1 and 2 (below) learn off the event loop: while the hub's live loop runs,
the learner's tick only hands ``now`` to one worker thread (ticks coalesce when it
is busy), and each outcome model is refitted at most once per ``REFIT_EVERY_S`` of
the analysis clock, vectorised, over at most ``OutcomeModel.MEMORY`` examples and
``OutcomeModel.ITERATIONS`` Newton steps: a burst of thousands of ended streams costs
one bounded refit, not one per stream.

Embedding parameters (lag, dimension, Theiler window) are already chosen from
each window of the stream itself by the dynamics core (mutual information, false
neighbours, autocorrelation time); the learner reports them per stream.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from ..events import AudioChunk, RequestFinished, RequestStarted, StreamOpened, TextDelta, VideoFrame

LOG_MIN, LOG_MAX, BINS_PER_DECADE = -4.0, 6.0, 40
N_BINS = int((LOG_MAX - LOG_MIN) * BINS_PER_DECADE)
MIN_SAMPLES = 200
STALL_FACTOR = 10.0
"""A stall is a gap this many times the source's median gap. The median, not a high percentile: a source
that stalls often would otherwise learn its stalls as normal."""
STALL_FLOOR_S = 2.5
"""No learned stall limit goes below this (or below the rule's own ``seconds``, if that is lower): pauses
shorter than this are ordinary for healthy models and not worth a flag."""
STALL_CAP_FACTOR = 6.0
"""No learned stall limit goes above the rule's ``seconds`` times this: however slow the source."""
REFIT_EVERY_S = 1.0
"""Seconds of analysis clock between two refits of one outcome model (labels in between are batched)."""
LIVE_TICK_BUDGET_S = 0.05
"""Live, a learner tick stops looking at streams after this long; the next tick goes on where it stopped
(a burst of thousands of ended streams is learned over a few ticks instead of in one long one)."""
STATE_VERSION = 1


class Distribution:
    """A running distribution of positive values on log-spaced bins (about 6 % wide); exact count and mean."""

    __slots__ = ("counts", "n", "total", "low", "high")

    def __init__(self) -> None:
        self.counts = np.zeros(N_BINS + 2, dtype=np.int64)  # [0]: <= 10^LOG_MIN (and <= 0), [-1]: overflow
        self.n = 0
        self.total = 0.0
        self.low = math.inf
        self.high = -math.inf

    def add(self, x: float) -> None:
        if not math.isfinite(x):
            return
        if x <= 0:
            k = 0
        else:
            k = int((math.log10(x) - LOG_MIN) * BINS_PER_DECADE) + 1
            k = min(max(k, 0), N_BINS + 1)
        self.counts[k] += 1
        self.n += 1
        self.total += x
        self.low, self.high = min(self.low, x), max(self.high, x)

    def quantile(self, q: float) -> float:
        if self.n == 0:
            return math.nan
        rank = q * (self.n - 1)
        cum = np.cumsum(self.counts)
        k = int(np.searchsorted(cum, rank, side="right"))
        if k == 0:
            return max(self.low, 0.0)
        if k > N_BINS:
            return self.high
        upper = 10 ** (LOG_MIN + k / BINS_PER_DECADE)  # the bin's upper edge: errs on the high side
        return float(min(max(upper, self.low), self.high))

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else math.nan

    def to_json(self) -> dict:
        nz = np.flatnonzero(self.counts)
        return {"n": self.n, "total": self.total, "low": self.low if self.n else None,
                "high": self.high if self.n else None, "bins": {str(int(k)): int(self.counts[k]) for k in nz}}

    @classmethod
    def from_json(cls, data: dict) -> Distribution:
        d = cls()
        for k, c in (data.get("bins") or {}).items():
            k = int(k)
            if 0 <= k < d.counts.size and int(c) > 0:
                d.counts[k] = int(c)
        d.n = int(d.counts.sum())
        d.total = float(data.get("total") or 0.0)
        d.low = float(data["low"]) if data.get("low") is not None else math.inf
        d.high = float(data["high"]) if data.get("high") is not None else -math.inf
        return d


def source_key(uri: str, kind: str) -> str:
    """What a stream comes from, the same across runs: scheme/path, the model or behaviour, the host."""
    parts = urlsplit(uri or "")
    params = dict(parse_qsl(parts.query))
    if parts.scheme == "sim":  # a simulator's "model" is its behaviour and pace
        rate = f"@{params['rate']}/s" if "rate" in params else ""
        return f"sim:{parts.path}/{params.get('behavior', 'normal')}{rate}"
    if parts.scheme == "openai":
        host = urlsplit(params.get("base_url") or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com").hostname
        return f"openai:{parts.path}/{params.get('model', '?')}@{host}"
    if parts.scheme in ("http", "https", "rtmp", "udp", "webrtc", "srt"):
        return f"{parts.scheme}:{kind}@{parts.hostname}"
    if uri.endswith(".jsonl") or uri.endswith(".sse"):
        return f"replay:{kind}"
    return f"file:{kind}" if uri else f"library:{kind}"


class MetaLearner:
    """Level 0: per-source baselines fed from every event, judged against, saved between runs."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else None
        self.baselines: dict[str, dict[str, Distribution]] = {}
        self.runs = 0
        self._lock = threading.Lock()
        self._stream_key: dict[str, str] = {}
        self._last_delta: dict[str, float] = {}
        self._request_start: dict[str, float] = {}
        self._first_seen: dict[str, bool] = {}
        self.stall_decisions: dict[str, float] = {}
        """The stall threshold last used per stream (seconds), for display."""
        self.stall_reasons: dict[str, str] = {}
        self.stall_rules: dict[str, str] = {}
        self.what = WhatMatters()
        self.tuner = RuleTuner()
        self.history: list[dict] = []
        """Every rule change applied or rolled back, across runs (level 2's log)."""
        self.now = 0.0
        self._hub = None
        self._status: dict[str, str] = {}
        self._rule_hits_seen = 0
        self._flags: dict[str, int] = {}
        self._last_propose = -math.inf
        self._limits: dict[tuple[str, float], tuple[int, float, str]] = {}
        """(source, rule seconds) -> (gaps seen when worked out, limit, why): quantiles are not redone per tick."""
        self._seen_seq: dict[str, int] = {}
        self._cursor = 0
        self._quantiles: dict[str, tuple[float, float]] = {}
        self._tick_lock = threading.Lock()  # one level 1/2 tick at a time (worker, last tick at stop, user marks)
        self._wake = threading.Condition()
        self._pending: float | None = None
        self._busy = False
        self._worker: threading.Thread | None = None
        self._stopping = False
        self._worker_error: Exception | None = None
        self.learn_seconds: deque[float] = deque(maxlen=1000)
        """Wall time of the recent level 1/2 ticks (in the worker thread while live)."""
        self.ticks_coalesced = 0
        """Live ticks that found the worker still busy and were merged into a later one."""
        if self.path is not None and self.path.is_file():
            self.load()

    # -- persistence --------------------------------------------------------------------------

    def load(self) -> None:
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError):
            return  # a damaged file: start over rather than fail the run (the next save replaces it)
        if data.get("version") != STATE_VERSION:
            return
        self.runs = int(data.get("runs", 0))
        self.baselines = {key: {m: Distribution.from_json(d) for m, d in metrics.items()}
                          for key, metrics in (data.get("baselines") or {}).items()}
        self.what.load(data.get("level1") or {})
        self.history = list(data.get("changes") or [])
        self.tuner.loop_episodes = [(int(w), bool(ended)) for w, ended in (data.get("loop_episodes") or [])
                                    if isinstance(w, (int, float))][-LOOP_EPISODES_KEPT:]

    def to_json(self) -> dict:
        with self._lock:
            changes = self.history + [p.to_json() for p in self.tuner.proposals
                                      if p.status in ("applied", "rolled back")]
            return {"version": STATE_VERSION, "saved": time.time(), "runs": self.runs,
                    "baselines": {key: {m: d.to_json() for m, d in metrics.items()}
                                  for key, metrics in self.baselines.items()},
                    "level1": self.what.to_json(), "changes": changes[-200:],
                    "loop_episodes": [[w, ended] for w, ended in self.tuner.loop_episodes[-LOOP_EPISODES_KEPT:]]}

    def save(self) -> None:
        self.flush()
        self.close()
        if self.path is None:
            return
        with self._tick_lock:
            text = json.dumps(self.to_json())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(text, "utf-8")
        os.replace(tmp, self.path)  # never a half-written state under the real name

    # -- learning (from the ingest workers) ------------------------------------------------------

    def attach(self, hub, engine=None, *, auto: bool = False) -> MetaLearner:
        """Learn from ``hub``'s streams; with a RuleEngine, propose (and with ``auto`` apply) rule changes."""
        hub.add_tap(self)
        hub.on_tick(self.tick)
        self.runs += 1
        hub.meta = self
        self._hub = hub
        self.tuner.engine, self.tuner.auto = engine, auto
        return self

    # -- levels 1 and 2, on the analysis clock ---------------------------------------------------

    def tick(self, now: float) -> None:
        """Called on the analysis clock. While the hub's live loop runs, the work is handed to the learner's
        worker thread (the event loop never waits for learning); otherwise (virtual time, library use, the
        last tick at stop) it runs here, so results are deterministic."""
        if self._worker_error is not None:
            error, self._worker_error = self._worker_error, None
            raise error  # the hub records a failing tick callback and ends the run, as for any consumer
        hub = self._hub
        if hub is not None and hub.running:
            with self._wake:
                if self._pending is not None or self._busy:
                    self.ticks_coalesced += 1
                self._pending = now
                if self._worker is None:
                    self._worker = threading.Thread(target=self._work, name="midstream-meta", daemon=True)
                    self._worker.start()
                self._wake.notify()
            return
        self._tick_now(now)

    def close(self, timeout: float = 10.0) -> None:
        """Finish the work under way and stop the worker thread (a later live tick starts a new one)."""
        with self._wake:
            worker, self._worker = self._worker, None
            self._stopping = True
            self._wake.notify_all()
        if worker is not None:
            worker.join(timeout)
        with self._wake:
            self._stopping = False

    def _work(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._pending is not None or self._stopping)
                if self._pending is None:  # stopping, nothing left to do
                    return
                now, self._pending = self._pending, None
                self._busy = True
            try:
                self._tick_now(now, LIVE_TICK_BUDGET_S)
            except Exception as exc:  # handed to the next tick() on the loop
                self._worker_error = exc
            finally:
                with self._wake:
                    self._busy = False
                    self._wake.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait (at most ``timeout`` s) for the worker to finish, then refit what is still unfitted."""
        with self._wake:
            idle = self._wake.wait_for(lambda: self._pending is None and not self._busy, timeout)
        with self._tick_lock:
            self.what.refit(self.now, force=True)
        return idle

    def _tick_now(self, now: float, budget: float | None = None) -> None:
        with self._tick_lock:
            if now < self.now:  # a worker tick overtaken by the last tick at stop: nothing new to see
                return
            started = time.perf_counter()
            self._tick_locked(now, budget)
            self.learn_seconds.append(time.perf_counter() - started)

    def _tick_locked(self, now: float, budget: float | None) -> None:
        self.now = now
        self._quantiles.clear()
        hub = self._hub
        engine = self.tuner.engine
        if engine is not None:
            for hit in engine.hits[self._rule_hits_seen:]:
                if hit.action != "cancel":
                    self._flags[hit.stream] = self._flags.get(hit.stream, 0) + 1
                self.tuner.alarms["fired"] += 1
            self._rule_hits_seen = len(engine.hits)
        snaps = list(hub.snapshots().items())
        start = self._cursor % len(snaps) if snaps else 0
        deadline = time.perf_counter() + budget if budget is not None else math.inf
        for i, (stream, snap) in enumerate(snaps[start:] + snaps[:start]):
            if self._seen_seq.get(stream) == snap.seq:
                continue  # nothing new (an ended stream, once learned from)
            if time.perf_counter() > deadline:
                self._cursor = start + i  # the rest next tick: their ends are still unseen, so not lost
                break
            self._seen_seq[stream] = snap.seq
            self.what.observe(snap, now, self)
            self.tuner.observe_loops(snap)
            before = self._status.get(stream, "open")
            self._status[stream] = snap.status
            if before == "open" and snap.status != "open":
                self._ended(stream, snap)
        self.what.refit(now)
        if now - self._last_propose >= 30.0:
            self._last_propose = now
            self.tuner.propose(self)
            self.tuner.evaluate(now)

    def _ended(self, stream: str, snap) -> None:
        self.what.observe(snap, self.now, self, final=True)  # how it looked when the outcome came
        by_rule = any(h.kind == "rule" and "cancel" in h.message for h in snap.patterns)
        if snap.status == "cancelled":
            self.what.outcome(stream, "cancel", 1)
            if not by_rule:  # the user stopped it: that says bad too
                self.what.outcome(stream, "bad", 1)
        elif snap.status == "error":
            self.what.outcome(stream, "error", 1)
            self.what.outcome(stream, "cancel", 0)
        else:  # finished by itself
            self.what.outcome(stream, "cancel", 0)
            self.what.outcome(stream, "error", 0)
            self.tuner.alarms["false"] += self._flags.get(stream, 0)  # flagged, and it was fine

    def mark(self, stream: str, good: bool) -> bool:
        """The user says a stream is good or bad (keys g / b): a label for level 1 (fitted at the next tick)."""
        with self._tick_lock:
            done = self.what.outcome(stream, "bad", 0 if good else 1)
            if good:
                self.tuner.alarms["false"] += self._flags.pop(stream, 0)
            return done

    def observe(self, key: str, metric: str, value: float) -> None:
        with self._lock:
            metrics = self.baselines.setdefault(key, {})
            dist = metrics.get(metric)
            if dist is None:  # (not setdefault: that would build a Distribution per value)
                dist = metrics[metric] = Distribution()
            dist.add(value)

    def event(self, stream: str, ev, analyzer) -> None:
        if isinstance(ev, StreamOpened):
            self._stream_key[stream] = source_key(ev.source, ev.kind)
            return
        key = self._stream_key.get(stream)
        if key is None:
            key = self._stream_key[stream] = source_key("", analyzer.kind)
        if isinstance(ev, TextDelta):
            if not ev.text:
                return
            last = self._last_delta.get(stream)
            if last is not None:
                self.observe(key, "itl_ms", (ev.t - last) * 1e3)
            elif stream in self._request_start:
                self.observe(key, "ttft_ms", (ev.t - self._request_start[stream]) * 1e3)
            self._last_delta[stream] = ev.t
        elif isinstance(ev, RequestStarted):
            self._request_start[stream] = ev.t
            self._last_delta.pop(stream, None)  # the wait for the first token is TTFT, not a gap
        elif isinstance(ev, RequestFinished):
            self._last_delta.pop(stream, None)
        elif isinstance(ev, AudioChunk):
            level = analyzer.rms_db.last()
            if math.isfinite(level):
                self.observe(key, "below_full_scale_db", -level + 1e-3)  # positive, for the log bins
        elif isinstance(ev, VideoFrame):
            motion = analyzer.motion.last()
            if math.isfinite(motion):
                self.observe(key, "motion", motion + 1e-6)

    # -- judging --------------------------------------------------------------------------------

    def key_of(self, stream: str) -> str | None:
        return self._stream_key.get(stream)

    def baseline(self, key: str, metric: str) -> Distribution | None:
        with self._lock:
            return self.baselines.get(key, {}).get(metric)

    def gap_quantiles(self, key: str) -> tuple[float, float] | None:
        """The source's p99 and p99.9 gap (ms), once it has 50 gaps; worked out once per tick per source."""
        cached = self._quantiles.get(key)
        if cached is None:
            dist = self.baseline(key, "itl_ms")
            if dist is None or dist.n < 50:
                return None
            cached = self._quantiles[key] = (dist.quantile(0.99), dist.quantile(0.999))
        return cached

    def stall_threshold(self, stream: str, default: float) -> tuple[float, str]:
        """Seconds without a token that make a stall for this stream's source, and why.

        ``max(floor, STALL_FACTOR x median gap)``, at most ``STALL_CAP_FACTOR x default``, where the floor is
        ``STALL_FLOOR_S`` (or ``default`` if the rule asks for less); ``default`` until the source has
        ``MIN_SAMPLES`` gaps. Worked out again only when the source's gaps grew by 5 %.
        """
        key = self._stream_key.get(stream)
        dist = self.baseline(key, "itl_ms") if key else None
        if dist is None or dist.n < MIN_SAMPLES:
            seen = dist.n if dist else 0
            why = f"default {default:g} s ({seen}/{MIN_SAMPLES} gaps seen for this source)"
            self.stall_decisions[stream], self.stall_reasons[stream] = default, why
            return default, why
        cached = self._limits.get((key, default))
        if cached is None or dist.n >= cached[0] * 1.05:
            median = dist.quantile(0.5) / 1e3
            floor, cap = min(STALL_FLOOR_S, default), default * STALL_CAP_FACTOR
            learned = min(max(STALL_FACTOR * median, floor), cap)
            why = (f"{learned:.2f} s = max(floor {floor:g} s, {STALL_FACTOR:g} x median gap {median:.3f} s), "
                   f"at most {cap:g} s; {dist.n} gaps of {key}")
            cached = self._limits[(key, default)] = (dist.n, learned, why)
        self.stall_decisions[stream], self.stall_reasons[stream] = cached[1], cached[2]
        self.stall_rules[stream] = stall_definition(default)
        return cached[1], cached[2]

    def summary(self, stream: str) -> dict:
        """What the learner knows about a stream's source, for the dashboard and `meta show`."""
        key = self._stream_key.get(stream)
        out: dict = {"source": key, "runs": self.runs}
        if key is None:
            return out
        with self._lock:
            metrics = dict(self.baselines.get(key, {}))
        for name, dist in metrics.items():
            out[name] = {"n": dist.n, "p50": dist.quantile(0.5), "p99": dist.quantile(0.99)}
        if stream in self.stall_decisions:
            out["stall_s"] = self.stall_decisions[stream]
            out["stall_why"] = self.stall_reasons.get(stream, "")
            if stream in self.stall_rules:
                out["stall_rule"] = self.stall_rules[stream]
        return out


def stall_definition(default: float) -> str:
    """What a stall is, once a source is learned, in one line (for the panel and ``meta show``)."""
    return (f"a pause of max({min(STALL_FLOOR_S, default):g} s, {STALL_FACTOR:g} x median gap), "
            f"at most {default * STALL_CAP_FACTOR:g} s")


def default_path() -> Path:
    """Beside the recorded sessions (MIDSTREAM_DATA_DIR or the XDG data folder)."""
    from ..sessions import data_dir

    return data_dir() / "meta.json"


# -- level 1: what matters -----------------------------------------------------------------------------

OUTCOMES = ("cancel", "error", "bad")
"""cancelled by a rule (or by the user); ended in an error; marked bad by the user (``g``/``b`` keys)."""
PATTERN_KINDS = ("loop", "recurring", "stall", "silence", "scene-cut", "error", "detection", "speech")
FEATURES = ("bias", "rep4", "loop", "compression", "low_novelty", "slow_gaps", "waiting",
            *(f"hits:{k}" for k in PATTERN_KINDS))
SAMPLE_EVERY = 0.5  # seconds between feature samples of a stream
SAMPLES_KEPT = 2
"""What a stream looked like as it ended (and just before) is what is taken to precede its outcome."""


def _finite(v, default: float = 0.0) -> float:
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else default


class OutcomeModel:
    """Logistic regression of one outcome on the features, refitted over a bounded memory of examples.

    New labels join the last ``MEMORY`` examples (``add``: O(1)); ``refit`` fits all of them at once, so the
    newest streams do not wash out what earlier ones taught (plain one-pass SGD did exactly that: streams end
    in bursts of one kind). The fit is L2-regularised (a Gaussian prior on the weights, the bias nearly
    free) and found by at most ``ITERATIONS`` damped Newton steps on arrays: a few milliseconds, whatever
    the number of labels since the last fit.
    """

    MEMORY = 400
    ITERATIONS = 12
    MAX_STEP = 4.0
    """Largest change of any weight per Newton step: separable data cannot throw the weights far at once."""

    def __init__(self, l2: float = 1.0) -> None:
        self.w = np.zeros(len(FEATURES))
        self.l2 = l2
        self.seen = 0
        self.positives = 0
        self.examples: list[tuple[list[float], int]] = []
        self.dirty = False
        """Examples were added since the weights were last fitted."""
        self.refitted_at = -math.inf

    def predict(self, x: np.ndarray) -> float:
        z = float(np.clip(self.w @ x, -30, 30))
        return 1.0 / (1.0 + math.exp(-z))

    def add(self, samples: list[np.ndarray], label: int) -> None:
        for x in samples:
            self.examples.append(([float(v) for v in x], int(label)))
        del self.examples[:-self.MEMORY]
        self.seen += 1
        self.positives += label
        self.dirty = True

    def relabel(self, x: list[float], label: int) -> bool:
        """Change the label of the newest example equal to ``x`` (False if it left the memory)."""
        for i in range(len(self.examples) - 1, -1, -1):
            if self.examples[i][0] == x:
                old = self.examples[i][1]
                self.examples[i] = (x, int(label))
                self.positives += int(label) - old
                self.dirty = True
                return True
        return False

    def refit(self) -> None:
        """Fit the weights to the examples in memory (warm start from the current weights)."""
        self.dirty = False
        if not self.examples:
            return
        xs = np.asarray([e[0] for e in self.examples], dtype=float)
        ys = np.asarray([e[1] for e in self.examples], dtype=float)
        penalty = np.full(xs.shape[1], self.l2)
        penalty[0] = 1e-3  # the bias: nearly free, but finite when every label is the same
        w = self.w.copy()
        for _ in range(self.ITERATIONS):
            p = 1.0 / (1.0 + np.exp(-np.clip(xs @ w, -30, 30)))
            grad = xs.T @ (p - ys) + penalty * w
            hess = (xs * (p * (1.0 - p))[:, None]).T @ xs + np.diag(penalty)
            step = np.linalg.solve(hess, grad)
            biggest = float(np.max(np.abs(step)))
            if biggest > self.MAX_STEP:
                step *= self.MAX_STEP / biggest
            w -= step
            if biggest < 1e-6:
                break
        self.w = w  # one assignment: readers (the panel) see the old weights or the new ones

    def learn(self, samples: list[np.ndarray], label: int) -> None:
        """Add one label and refit at once (library use; the learner batches labels instead)."""
        self.add(samples, label)
        self.refit()

    def to_json(self) -> dict:
        return {"w": [round(float(v), 6) for v in self.w], "seen": self.seen, "positives": self.positives,
                "examples": [[[round(v, 4) for v in x], y] for x, y in self.examples]}

    @classmethod
    def from_json(cls, data: dict) -> OutcomeModel:
        m = cls()
        w = data.get("w") or []
        if len(w) == len(FEATURES) and all(isinstance(v, (int, float)) and math.isfinite(v) for v in w):
            m.w = np.asarray(w, dtype=float)
        m.seen, m.positives = int(data.get("seen", 0)), int(data.get("positives", 0))
        m.examples = [(list(map(float, x)), int(y)) for x, y in (data.get("examples") or [])
                      if isinstance(x, list) and len(x) == len(FEATURES)][-cls.MEMORY:]
        return m


def features(snap, learner: MetaLearner | None = None) -> np.ndarray:
    """What the outcome models look at in a snapshot (all roughly 0..3)."""
    m = snap.metrics
    key = learner.key_of(snap.stream) if learner else None
    base = learner.gap_quantiles(key) if (learner and key) else None
    slow = waiting = 0.0
    if base is not None and snap.status == "open":  # an ended stream is not waiting
        p99, p999 = base
        slow = min(max(math.log(max(_finite(m.get("itl_p99_ms"), p99), 1e-3) / max(p99, 1e-3)), -2.0), 3.0)
        since_ms = max(0.0, _finite(m.get("since_token_s"))) * 1e3  # live, a token can postdate the tick's clock
        waiting = min(math.log1p(since_ms / max(p999, 1e-3)), 3.0)
    hits: dict[str, int] = {}
    for hit in snap.patterns:
        hits[hit.kind] = hits.get(hit.kind, 0) + 1
    x = [1.0, _finite(m.get("rep4")), _finite(m.get("loop_words")) / 40.0,
         (_finite(m.get("compression"), 1.0) - 1.0) / 2.0, 1.0 - _finite(m.get("novelty4"), 1.0), slow, waiting,
         *(math.log1p(hits.get(k, 0)) for k in PATTERN_KINDS)]
    return np.asarray([min(max(v, -3.0), 3.0) for v in x])  # bounded: one odd number must not swing the model


class WhatMatters:
    """Level 1: outcome models trained when a stream's outcome is known; risks and pattern relevance."""

    def __init__(self) -> None:
        self.models = {o: OutcomeModel() for o in OUTCOMES}
        self._samples: dict[str, list[np.ndarray]] = {}
        self._sampled_at: dict[str, float] = {}
        self._labelled: dict[tuple[str, str], tuple[list[float], int]] = {}
        """(stream, outcome) -> the example it was labelled with, so a user can change a mark (g, then b)."""

    def observe(self, snap, now: float, learner: MetaLearner, final: bool = False) -> None:
        """Sample the stream's features (every SAMPLE_EVERY s while open, and once as it ends)."""
        if final or (snap.status == "open" and now - self._sampled_at.get(snap.stream, -math.inf) >= SAMPLE_EVERY):
            self._sampled_at[snap.stream] = now
            samples = self._samples.setdefault(snap.stream, [])
            samples.append(features(snap, learner))
            del samples[:-SAMPLES_KEPT]

    def outcome(self, stream: str, outcome: str, label: int) -> bool:
        """Train ``outcome`` on what the stream looked like as it ended; once per stream and outcome."""
        samples = self._samples.get(stream)
        if not samples:
            return False
        known = self._labelled.get((stream, outcome))
        if known is not None:  # labelled before: a user's changed mark replaces it, the same label is a no-op
            x, was = known
            if was == label or not self.models[outcome].relabel(x, label):
                return False
            self._labelled[(stream, outcome)] = (x, int(label))
            return True
        x = samples[-1]
        self._labelled[(stream, outcome)] = ([float(v) for v in x], int(label))
        self.models[outcome].add([x], label)
        return True

    def refit(self, now: float, force: bool = False) -> None:
        """Refit the models with new labels: each at most once per REFIT_EVERY_S of ``now`` (or now, ``force``)."""
        for model in self.models.values():
            if model.dirty and (force or now - model.refitted_at >= REFIT_EVERY_S):
                model.refitted_at = now
                model.refit()

    def risks(self, snap, learner: MetaLearner) -> dict[str, float]:
        """Each outcome's probability for this stream, from models that have seen both answers a few times."""
        x = features(snap, learner)
        return {o: m.predict(x) for o, m in self.models.items() if m.seen >= 5 and 0 < m.positives < m.seen}

    def relevance(self) -> dict[str, float]:
        """How much each pattern kind raises the odds of trouble (0..1), from the trained weights."""
        out = {}
        for k in PATTERN_KINDS:
            i = FEATURES.index(f"hits:{k}")
            w = max((m.w[i] for m in self.models.values() if m.seen), default=0.0)
            out[k] = 1.0 / (1.0 + math.exp(-3.0 * w)) * 2 - 1 if w > 0 else 0.0
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def to_json(self) -> dict:
        return {o: m.to_json() for o, m in self.models.items()}

    def load(self, data: dict) -> None:
        for o in OUTCOMES:
            if isinstance(data.get(o), dict):
                self.models[o] = OutcomeModel.from_json(data[o])


# -- level 2: changing its own rules, within limits -------------------------------------------------------

BOUNDS = {("stop-loops", "min_words"): (20, 200), ("stall", "seconds"): (STALL_FLOOR_S, 60.0)}
"""The only parameters proposals may change, and how far."""
SAFETY_RULES = ("stop-loops",)
"""Rules that act to protect: their action and existence never change (only bounded parameters)."""
MAX_CHANGES = 3
"""Changes applied per session at most (accepted or automatic)."""
MIN_LOOP_EPISODES = 5
LOOP_EPISODES_KEPT = 200  # across runs: how loops ended is learned knowledge too
LOOP_OVER_S = 3.0  # seconds without a loop before an episode counts as ended by itself
EVALUATE_AFTER = 300.0  # seconds of session after a change before its effect is judged


@dataclass
class Proposal:
    id: int
    rule: str
    param: str
    old: float
    new: float
    reason: str
    status: str = "pending"
    """pending, applied, rejected, rolled back, or refused (a constraint said no)."""
    applied_at: float | None = None
    before: dict | None = None
    """Rule firings per stream-minute before the change, and how many of them were false alarms."""
    effect: str = ""

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in ("id", "rule", "param", "old", "new", "reason", "status", "applied_at",
                                              "effect")}


class RuleTuner:
    """Level 2: proposals to change rule thresholds, checked against bounds, applied, measured, rolled back."""

    def __init__(self, engine=None, *, auto: bool = False) -> None:
        self.engine = engine
        self.auto = auto
        self.proposals: list[Proposal] = []
        self.applied_this_session = 0
        self.loop_episodes: list[tuple[int, bool]] = []
        """(longest loop in words, whether it ended before the cancel threshold) per loop episode seen."""
        self._episode: dict[str, tuple[int, float | None]] = {}
        """stream -> (longest loop so far in this episode, since when no loop has been seen)"""
        self.alarms = {"fired": 0, "false": 0, "minutes": 0.0}
        self._lock = threading.RLock()

    def _rule(self, name: str):
        for rule in self.engine.rules if self.engine else ():
            if rule.name == name:
                return rule
        return None

    def observe_loops(self, snap) -> None:
        words = int(_finite(snap.metrics.get("loop_words")))
        current, quiet_since = self._episode.get(snap.stream, (0, None))
        if snap.status != "open":
            if current > 0:  # the stream ended (a rule, the user, the model) while looping
                self.loop_episodes.append((current, quiet_since is not None))
            self._episode.pop(snap.stream, None)
        elif words > 0:
            self._episode[snap.stream] = (max(current, words), None)
        elif current > 0:
            if quiet_since is None:
                self._episode[snap.stream] = (current, snap.t)
            elif snap.t - quiet_since >= LOOP_OVER_S:  # no loop for a while: it ended by itself
                self.loop_episodes.append((current, True))
                self._episode.pop(snap.stream, None)

    # Each public method holds the (re-entrant) lock: the learner's worker proposes and evaluates while the
    # user accepts, rejects and undoes from the UI thread.

    def propose(self, learner: MetaLearner) -> list[Proposal]:
        """New proposals from what levels 0 and 1 know; each checked against the constraints."""
        with self._lock:
            new: list[Proposal] = []
            loops = self._rule("stop-loops")
            recovered = [w for w, ended in self.loop_episodes if ended]
            went_on = [w for w, ended in self.loop_episodes if not ended]
            if loops is not None and len(self.loop_episodes) >= MIN_LOOP_EPISODES and len(went_on) >= 3:
                # half again the longest loop that still ended by itself: cancelling there stops no stream that
                # would have recovered (as far as seen), and cuts the loops that went on sooner
                safe = int(math.ceil(1.5 * max(recovered))) if recovered else 0
                target = max(BOUNDS[("stop-loops", "min_words")][0], safe)
                if target < loops.min_words * 0.9:
                    new.append(self._make("stop-loops", "min_words", loops.min_words, target,
                                          f"{len(self.loop_episodes)} loops seen, the longest that ended by itself "
                                          f"had {max(recovered) if recovered else 0} words: cancel sooner"))
            # No proposal changes the stall rule's own limit: it is what applies to sources not learned yet,
            # and a benchmark showed a learned median of fast sources (1 s) flooding a slow unlearned one with
            # false stalls. Level 0 adapts the limit per source instead, within the rule's bounds.
            for p in new:
                if self.auto and p.status == "pending":
                    self.apply(p, now=learner.now)
            return new

    def _make(self, rule: str, param: str, old: float, new: float, reason: str) -> Proposal:
        with self._lock:
            for p in self.proposals:  # one open proposal per parameter
                if p.rule == rule and p.param == param and p.status == "pending":
                    p.new, p.reason = new, reason
                    return p
            p = Proposal(len(self.proposals) + 1, rule, param, old, new, reason)
            low, high = BOUNDS.get((rule, param), (None, None))
            if low is None:
                p.status, p.effect = "refused", "not a tunable parameter"
            elif not low <= new <= high:
                p.status, p.effect = "refused", f"outside the bounds {low}..{high}"
            self.proposals.append(p)
            return p

    def apply(self, p: Proposal, now: float) -> bool:
        with self._lock:
            if p.status != "pending":
                return False
            if self.applied_this_session >= MAX_CHANGES:
                p.status, p.effect = "refused", f"at most {MAX_CHANGES} changes per session"
                return False
            rule = self._rule(p.rule)
            if rule is None:
                p.status, p.effect = "refused", "no such rule in use"
                return False
            self.engine.rules = [replace(r, **{p.param: type(getattr(r, p.param))(p.new)}) if r is rule else r
                                 for r in self.engine.rules]
            p.status, p.applied_at, p.before = "applied", now, dict(self.alarms)
            self.applied_this_session += 1
            return True

    def undo(self, p: Proposal, why: str = "undone by the user") -> bool:
        with self._lock:
            if p.status != "applied":
                return False
            self.engine.rules = [replace(r, **{p.param: type(getattr(r, p.param))(p.old)}) if r.name == p.rule
                                 else r for r in self.engine.rules]
            p.status, p.effect = "rolled back", why
            return True

    def reject(self, p: Proposal) -> None:
        with self._lock:
            if p.status == "pending":
                p.status = "rejected"

    def evaluate(self, now: float) -> None:
        """After a while, judge each applied change by false alarms per firing; roll back what made it worse."""
        with self._lock:
            for p in self.proposals:
                if p.status != "applied" or p.applied_at is None or now - p.applied_at < EVALUATE_AFTER or p.effect:
                    continue
                before = p.before or {"fired": 0, "false": 0}
                fired = self.alarms["fired"] - before["fired"]
                false = self.alarms["false"] - before["false"]
                rate_before = before["false"] / before["fired"] if before["fired"] else 0.0
                rate_after = false / fired if fired else 0.0
                if fired and rate_after > rate_before + 0.1:
                    self.undo(p, f"rolled back: false alarms {rate_before:.0%} -> {rate_after:.0%} of firings")
                else:
                    p.effect = (f"kept: {fired} firings since, {false} false ({rate_after:.0%}; "
                                f"before {rate_before:.0%})")

    def pending(self) -> list[Proposal]:
        return [p for p in self.proposals if p.status == "pending"]
