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

import errno
import json
import math
import os
import sys
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np

from ..analyzers.base import STALL_FACTOR, STALL_FLOOR_S, stall_limit
from ..analyzers.base import Measured
from ..events import KIND_OF_EVENT, StreamOpened
from .outcomes import WhatMatters
from .tuner import LOOP_EPISODES_KEPT, RuleTuner

LOG_MIN, LOG_MAX, BINS_PER_DECADE = -4.0, 6.0, 40
N_BINS = int((LOG_MAX - LOG_MIN) * BINS_PER_DECADE)
MIN_SAMPLES = 200
STALL_CAP_FACTOR = 6.0
"""No learned stall limit goes above the rule's ``seconds`` times this: however slow the source."""
LIVE_TICK_BUDGET_S = 0.05
"""Live, a learner tick stops looking at streams after this long; the next tick goes on where it stopped
(a burst of thousands of ended streams is learned over a few ticks instead of in one long one)."""
STATE_VERSION = 1


class Distribution:
    """A running distribution of positive values on log-spaced bins (about 6 % wide); exact count and mean."""

    __slots__ = ("counts", "n", "total", "low", "high")

    def __init__(self) -> None:
        self.counts = [0] * (N_BINS + 2)  # [0]: <= 10^LOG_MIN (and <= 0), [-1]: overflow
        # (a list: one increment per inter-token gap of every stream; a numpy item costs several times more)
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
                "high": self.high if self.n else None, "bins": {str(int(k)): self.counts[k] for k in nz}}

    @classmethod
    def from_json(cls, data: dict) -> Distribution:
        d = cls()
        for k, c in (data.get("bins") or {}).items():
            k = int(k)
            if 0 <= k < len(d.counts) and int(c) > 0:
                d.counts[k] = int(c)
        d.n = sum(d.counts)
        d.total = float(data.get("total") or 0.0)
        d.low = float(data["low"]) if data.get("low") is not None else math.inf
        d.high = float(data["high"]) if data.get("high") is not None else -math.inf
        return d


class MetaLearner:
    """Level 0: per-source baselines fed from every event, judged against, saved between runs."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else None
        self.baselines: dict[str, dict[str, Distribution]] = {}
        self.runs = 0
        self._lock = threading.Lock()
        self._stream_key: dict[str, str] = {}
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
            state = parse_state(read_state(self.path), self.path)
        except NewerStateError as exc:  # a later MidStream's: left as it is, and not written over by this run
            _warn(f"warning: {exc}: left as it is; what this run learns is not saved")
            self.path = None
            return
        except StateError as exc:  # unreadable: kept aside, said once, and learning starts over
            _set_aside(self.path, exc)
            return
        if state is not None:
            self.runs, self.baselines, self.what, self.history, self.tuner.loop_episodes = state

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
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:  # a file where the folder should be (exist_ok only forgives a folder)
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(self.path.parent)) from None
        tmp = self.path.with_suffix(".tmp")
        try:
            tmp.write_text(text, "utf-8")
        except OSError:  # (a full disk): no empty or half-written meta.tmp left behind
            tmp.unlink(missing_ok=True)
            raise
        try:
            os.replace(tmp, self.path)  # never a half-written state under the real name
        except OSError:  # (a folder named meta.json): no meta.tmp left behind either
            tmp.unlink(missing_ok=True)
            raise

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
        if len(self._seen_seq) > len(snaps):
            # streams the hub let go (ended and aged out: a proxy's thousands of requests): what was learned
            # stays (per source); what was kept per stream goes, so the learner's memory stays bounded too
            live = {stream for stream, _ in snaps}
            for stream in [s for s in self._seen_seq if s not in live]:
                self._forget(stream)
        self.what.refit(now)
        if now - self._last_propose >= 30.0:
            self._last_propose = now
            self.tuner.propose(self)
            self.tuner.evaluate(now)

    def _ended(self, stream: str, snap) -> None:
        self.what.observe(snap, self.now, self, final=True)  # how it looked when the outcome came
        engine = self.tuner.engine
        by_rule = engine is not None and stream in engine.cancelled  # the hit's action, not its wording
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

    def _forget(self, stream: str) -> None:
        for per_stream in (self._stream_key, self._first_seen, self.stall_decisions, self.stall_reasons,
                           self.stall_rules, self._status, self._flags, self._seen_seq):
            per_stream.pop(stream, None)
        self.what.forget(stream)

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

    def event(self, stream: str, ev, measured: Measured) -> None:
        """A tap of the hub: what the stream's analyzer measured from one event (TTFT and gaps are the
        analyzer's, the same numbers the metrics show)."""
        if isinstance(ev, StreamOpened):
            self._stream_key[stream] = ev.identity or f"library:{ev.kind}"
            return
        key = self._stream_key.get(stream)
        if key is None:
            key = self._stream_key[stream] = f"library:{KIND_OF_EVENT.get(type(ev), 'text')}"
        if measured.gap_s is not None:
            self.observe(key, "itl_ms", measured.gap_s * 1e3)
        elif measured.ttft_s is not None:
            self.observe(key, "ttft_ms", measured.ttft_s * 1e3)
        elif measured.level_dbfs is not None and math.isfinite(measured.level_dbfs):
            self.observe(key, "below_full_scale_db", -measured.level_dbfs + 1e-3)  # positive, for the log bins
        elif measured.motion is not None and math.isfinite(measured.motion):
            self.observe(key, "motion", measured.motion + 1e-6)

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
            learned = stall_limit(median, floor, cap)
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


def default_path(folder: Path) -> Path:
    """Where what was learned is kept: beside the recorded sessions, in ``folder`` (the ``data_dir`` setting)."""
    return folder / "meta.json"


class StateError(ValueError):
    """A learned-state file that cannot be read (damaged, or not a file); the message is one line for the user."""


def read_state(path: Path) -> object:
    """The JSON saved at ``path`` (None when there is nothing there); a file that cannot be read or is not JSON
    (truncated, say) is a ``StateError``. (JSON of another shape than MidStream saves is ``MetaLearner.load``'s
    to judge: it is started over from.)"""
    if not path.exists():
        return None
    if path.is_dir():
        raise StateError(f"{path}: a folder, where the learned state is kept")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise StateError(f"{path}: the learned state cannot be read ({exc.strerror or exc})") from None
    try:
        return json.loads(raw.decode("utf-8"))
    except ValueError as exc:  # (JSONDecodeError, UnicodeDecodeError)
        raise StateError(f"{path}: the learned state is damaged ({exc})") from None


class NewerStateError(StateError):
    """A learned-state file written by a later MidStream (its version is above ``STATE_VERSION``)."""


def parse_state(data: object, path: Path) -> tuple | None:
    """(runs, baselines, level 1, history, loop episodes) from what ``read_state`` read (None: nothing there); JSON
    of another shape than MidStream saves is a ``StateError`` (damaged), all or nothing, and a later version's a
    ``NewerStateError``: never taken for nothing learned (the next save would replace it unseen)."""
    if data is None:
        return None
    version = data.get("version") if isinstance(data, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version > STATE_VERSION:
        raise NewerStateError(f"{path}: learned state of a later MidStream (version {version}; this one reads "
                              f"{STATE_VERSION})")
    if version != STATE_VERSION:
        raise StateError(f"{path}: the learned state is damaged (not MidStream's: version {version!r})")
    try:
        runs = int(data.get("runs", 0))
        baselines = {str(key): {str(m): Distribution.from_json(d) for m, d in metrics.items()}
                     for key, metrics in (data.get("baselines") or {}).items()}
        what = WhatMatters()
        what.load(data.get("level1") or {})
        history = [c for c in (data.get("changes") or []) if isinstance(c, dict)]
        episodes = [(int(w), bool(ended)) for w, ended in (data.get("loop_episodes") or [])
                    if isinstance(w, (int, float))][-LOOP_EPISODES_KEPT:]
    except (TypeError, ValueError, AttributeError, OverflowError, KeyError) as exc:
        raise StateError(f"{path}: the learned state is damaged ({type(exc).__name__}: {str(exc)[:80]})") from None
    return runs, baselines, what, history, episodes


def _set_aside(path: Path, why: StateError) -> Path | None:
    """Move an unreadable state file to a free name beside it (``meta.json.bad``, ``meta.json.bad-2``, ...), so
    that the next save does not replace it unseen; says so on stderr. Returns where it went (None: it stayed)."""
    bad, k = path.with_name(f"{path.name}.bad"), 1
    while bad.exists() or bad.is_symlink():
        k += 1
        bad = path.with_name(f"{path.name}.bad-{k}")
    try:
        os.rename(path, bad)
    except OSError as exc:
        _warn(f"warning: {why}; it could not be moved aside ({exc.strerror or exc}): learning starts over")
        return None
    _warn(f"warning: {why}; kept as {bad.name}, learning starts over")
    return bad


def _warn(line: str) -> None:
    try:
        print(f"midstream: {line}", file=sys.stderr, flush=True)
    except (OSError, ValueError):  # no terminal any more (an SSH connection dropped): nobody to tell
        return
