"""What every stream analyzer shares: bounded ring buffers and the ``StreamAnalyzer`` contract.

An analyzer belongs to one ``StreamPipeline`` and is only touched by that
pipeline's step (one thread at a time). It keeps bounded numpy ring buffers,
turns events into numbers with the kernels (``ingest``), looks over what arrived
for patterns once per step (``update``), and reports its numbers (``metrics``,
which only reads). What it noticed is a list of ``PatternHit``s; the signal it
exposes is what the attractor is estimated on.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, NamedTuple

import numpy as np

from ..analysis.kernels import weighted_rate
from ..analysis.stats import rate
from ..events import Event
from ..snapshot import PatternHit

STALL_FLOOR_S = 2.5
"""The one floor of what a stall is (the text analyzer, the stall rule and the learner use it): no learned
stall limit goes below this (or below the rule's own ``seconds``, if that is lower). Pauses shorter than this
are ordinary for healthy models and not worth a flag."""
STALL_FACTOR = 10.0
"""A stall is a gap this many times the median gap. The median, not a high percentile: a source
that stalls often would otherwise learn its stalls as normal."""


def stall_limit(median_gap_s: float, floor: float = STALL_FLOOR_S, cap: float = math.inf) -> float:
    """What a stall is, everywhere (the text analyzer on its stream's own gaps, the learner on a source's): no
    token for max(``floor``, STALL_FACTOR x the median gap), at most ``cap``."""
    return min(max(STALL_FACTOR * median_gap_s, floor), cap)


class Measured(NamedTuple):  # (a tuple: one is made for every event, at a fraction of a frozen dataclass's cost)
    """What an analyzer measured from one event (None: not measured), handed to the taps (the session
    recorder, the meta-learner) so that nothing else measures it again or reads the analyzer's buffers."""

    ttft_s: float | None = None
    """Time to the first token of a request that began with a RequestStarted."""
    gap_s: float | None = None
    """Inter-token gap: since the request's previous text, inside one request."""
    level_dbfs: float | None = None
    peak_dbfs: float | None = None
    motion: float | None = None
    brightness: float | None = None


NOTHING = Measured()


class Ring:
    """Fixed-capacity numpy ring buffer; ``values()`` returns oldest-first copies.

    The buffer starts small and doubles up to ``capacity`` as values arrive: a session
    of thousands of short streams does not pay every ring's full size up front."""

    __slots__ = ("_buf", "_cap", "_next", "total")
    INITIAL = 64

    def __init__(self, capacity: int, dtype: Any = np.float64) -> None:
        self._buf = np.zeros(min(capacity, self.INITIAL), dtype=dtype)
        self._cap = capacity
        self._next = 0
        self.total = 0
        """How many values were ever appended."""

    @property
    def capacity(self) -> int:
        return self._cap

    def __len__(self) -> int:
        return min(self.total, self._cap)

    def append(self, value: float) -> None:
        i = self._next
        if i == self._buf.size:  # still growing (no wrap before the buffer reaches capacity)
            self._buf = np.concatenate((self._buf, np.zeros(min(self._cap, 2 * i) - i, dtype=self._buf.dtype)))
        self._buf[i] = value
        self._next = i + 1 if i + 1 < self._cap else 0
        self.total += 1

    def values(self, last: int | None = None) -> np.ndarray:
        n = len(self)
        k = n if last is None else max(0, min(last, n))
        if k == 0:
            return self._buf[:0].copy()
        start = (self._next - k) % self.capacity
        if start + k <= self.capacity:
            return self._buf[start:start + k].copy()
        return np.concatenate((self._buf[start:], self._buf[:(start + k) % self.capacity]))

    def buffer(self) -> tuple[np.ndarray, int]:
        """(a view of the buffer's filled part, the place just after the newest value): the values where they
        are, without ``values()``'s copy, to be read at once and not kept (the buffer is written in place)."""
        n = len(self)
        return self._buf[:n], (self._next or n)

    def last(self, default: float = math.nan) -> float:
        return float(self._buf[(self._next - 1) % self.capacity]) if self.total else default


def ring_rate(times: Ring, weights: Ring, now: float, window: float, since: float | None = None) -> float:
    """``stats.rate`` of two rings appended together (a time and its weight at the same place in each), read
    where they are: the same sum in the same order, without copying up to their capacity at every step."""
    t, end = times.buffer()
    w, w_end = weights.buffer()
    if t.shape != w.shape or end != w_end:  # (not appended together: read in order)
        return rate(times.values(), weights.values(), now, window, since)
    if t.size == 0 or window <= 0:
        return 0.0
    start = now - window if since is None else max(now - window, since)
    if now - start <= 1e-9:
        return math.nan
    return float(weighted_rate(t, w, start, now, end))


def db(level: float) -> float:
    """Fraction of full scale to dBFS, floored at -120."""
    return 20.0 * math.log10(level) if level > 1e-6 else -120.0


class StreamAnalyzer:
    kind: ClassVar[str] = ""
    signal_name: ClassVar[str] = ""
    queue_capacity: ClassVar[int] = 1024
    """Events the pipeline may hold before dropping data events."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self.hits: list[PatternHit] = []
        self.signal_changed = False
        self.bytes = Ring(4096)
        self.byte_times = Ring(4096)
        self.last_t = math.nan

    def ingest(self, event: Event) -> Measured:  # pragma: no cover - abstract
        raise NotImplementedError

    def _count_bytes(self, t: float, n: int) -> None:
        self.bytes.append(n)
        self.byte_times.append(t)
        self.last_t = t

    def bytes_per_s(self, now: float, window: float, since: float) -> float:
        return ring_rate(self.byte_times, self.bytes, now, window, since)

    def update(self, now: float) -> None:
        """Look over what arrived since the last step (loops, adaptive thresholds); the hub calls it once per
        analysis step, before ``metrics``. Hits go to ``self.hits``."""

    def flagged(self, condition: str, t: float, since: float) -> None:
        """A rule judged this stream on ``condition`` (``stall``, ``loop``...) at ``t`` and flagged it (a stall:
        the pause that began at ``since``); the hub passes it on so that one event is not logged twice."""

    def metrics(self, now: float, since: float) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

    def signal(self) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def signals(self) -> dict[str, np.ndarray]:
        """Every signal whose dynamics are estimated, the primary one first."""
        return {self.signal_name: self.signal()}

    def signal_points(self) -> dict[str, int]:
        """How many points each signal has taken in so far (its ring's total): how much of it is new since an
        estimate. A signal not named here is taken to grow by one point per event."""
        return {}

    def text_tail(self) -> str:
        return ""

    def preview_image(self) -> np.ndarray | None:
        return getattr(self, "preview", None)

    def transcript(self) -> tuple:
        return ()

    def detections(self) -> tuple:
        return ()

    def close(self) -> None:
        """The stream ended: finish background work (transcription, detection)."""

    def quiet(self) -> bool:
        """Whether a step could find nothing new here without a new event: no hit waiting, no background work
        (transcription, detection) that may still add one."""
        return not self.hits

    def take_hits(self) -> list[PatternHit]:
        hits, self.hits = self.hits, []
        return hits
