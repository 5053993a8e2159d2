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
the stall rule: with ``adaptive`` (the built-in stall rule has it), a stall is a
gap longer than ``STALL_FACTOR`` times the source's 99.9th percentile gap, within
``[rule.seconds / 5, rule.seconds * 6]``, once the source has ``MIN_SAMPLES`` gaps;
before that the rule's own ``seconds`` apply. A slow model whose normal gaps reach
6 s stops being flagged at 5 s; a fast one is flagged well before 5 s.

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
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from ..events import AudioChunk, RequestFinished, RequestStarted, StreamOpened, TextDelta, VideoFrame

LOG_MIN, LOG_MAX, BINS_PER_DECADE = -4.0, 6.0, 40
N_BINS = int((LOG_MAX - LOG_MIN) * BINS_PER_DECADE)
MIN_SAMPLES = 200
STALL_FACTOR = 3.0
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
    if parts.scheme == "sim":
        return f"sim:{parts.path}/{params.get('behavior', 'normal')}"
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

    def to_json(self) -> dict:
        with self._lock:
            return {"version": STATE_VERSION, "saved": time.time(), "runs": self.runs,
                    "baselines": {key: {m: d.to_json() for m, d in metrics.items()}
                                  for key, metrics in self.baselines.items()}}

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json()), "utf-8")
        os.replace(tmp, self.path)  # never a half-written state under the real name

    # -- learning (from the ingest workers) ------------------------------------------------------

    def attach(self, hub) -> MetaLearner:
        hub.add_tap(self)
        self.runs += 1
        hub.meta = self
        return self

    def observe(self, key: str, metric: str, value: float) -> None:
        with self._lock:
            self.baselines.setdefault(key, {}).setdefault(metric, Distribution()).add(value)

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

    def stall_threshold(self, stream: str, default: float) -> tuple[float, str]:
        """Seconds without a token that make a stall for this stream's source, and why."""
        key = self._stream_key.get(stream)
        dist = self.baseline(key, "itl_ms") if key else None
        if dist is None or dist.n < MIN_SAMPLES:
            seen = dist.n if dist else 0
            self.stall_decisions[stream] = default
            return default, f"default {default:g} s ({seen}/{MIN_SAMPLES} gaps seen for this source)"
        p999 = dist.quantile(0.999) / 1e3
        learned = min(max(STALL_FACTOR * p999, default / 5), default * 6)
        self.stall_decisions[stream] = learned
        return learned, f"{learned:.2f} s = {STALL_FACTOR:g} x p99.9 gap {p999:.2f} s of {dist.n} ({key})"

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
        return out


def default_path() -> Path:
    """Beside the recorded sessions (MIDSTREAM_DATA_DIR or the XDG data folder)."""
    from ..store import data_dir

    return data_dir() / "meta.json"
