"""Replaying a recorded session: the dashboard (or the NDJSON printer) shown what was seen, as it was seen.

``RecordedHub`` stands in for a live hub: the same read surface the dashboard
and the headless printer use (streams, snapshots, the pattern log, ticks), fed
from a session file instead of sources. At replay time T (seconds into the
session, running at ``speed``) each stream shows its last recorded snapshot at
or before T, its phase portrait redrawn from the recorded signal, the pattern
log up to T, the transcript said by T, the detections and preview frame of T,
and a text stream's output up to T. Nothing is re-analysed: a replay is a
record. (To re-analyse text streams, export the session to JSONL and run it.)
"""

from __future__ import annotations

import asyncio
import bisect
import math
import zlib
from collections.abc import Callable
from types import MappingProxyType

import numpy as np

from ..analysis.dynamics import UNKNOWN, AttractorClass, delay_embed_2d
from ..analyzers.text import WordLengths
from ..clock import Clock, MonotonicClock
from ..perception.speech import TranscriptSegment, Word
from ..perception.vision import Detection
from ..snapshot import PatternHit, SignalView, Snapshot
from .store import Session, StoreError

SERIES_FOR_SIGNAL = {"audio": "level_dbfs", "video": "motion"}
PORTRAIT_POINTS = 300
RECENT = 20


def attractor_from_json(data: dict | None) -> AttractorClass:
    if not data:
        return UNKNOWN

    def num(v):
        return math.nan if v is None else float(v)

    return AttractorClass(data.get("type", "unknown"), num(data.get("confidence")), data.get("reason", ""),
                          num(data.get("lyapunov")), int(data.get("lag") or 0), int(data.get("dim") or 0),
                          dict(data.get("evidence") or {}))


class _Stream:
    """One stream's recorded timeline, indexed by time."""

    def __init__(self, session: Session, row: dict) -> None:
        self.name, self.kind, self.source = row["name"], row["kind"], row["source"] or ""
        snaps = session.snapshots_of(self.name)
        self.snap_t = [r["t"] for r in snaps]
        self.snaps = [self._decoded(session, r) for r in snaps]  # (damage is told now, not half-way through)
        self.signal_t = np.zeros(0)
        self.signal_v = np.zeros(0)
        self.text_t: list[float] = []
        self.text_cum: list[int] = []
        self.text = ""
        if self.kind in SERIES_FOR_SIGNAL:
            self.signal_t, self.signal_v = session.series(self.name, SERIES_FOR_SIGNAL[self.kind])
        elif self.kind == "text":
            parts, times, lengths, total = [], [], [], 0
            word_t, word_len = [], []
            counted, last = WordLengths(), 0.0  # (the words as the live analyzer counts them)
            for t, kind, data in session.output_of(self.name):
                if kind == "request":  # one response per line, as the live text panel shows them
                    piece = "\n" if parts and not parts[-1].endswith("\n") else ""
                    ended = counted.end()  # (the request before ended before it)
                    word_t.extend([last] * len(ended))
                    word_len.extend(ended)
                else:
                    piece = data.get("text", "")
                    read = counted.feed(piece)
                    word_t.extend([t] * len(read))
                    word_len.extend(read)
                    last = t
                parts.append(piece)
                total += len(piece)
                times.append(t)
                lengths.append(total)
            ended = counted.end()
            word_t.extend([last] * len(ended))
            word_len.extend(ended)
            self.text = "".join(parts)
            self.text_t, self.text_cum = times, lengths
            self.signal_t, self.signal_v = np.asarray(word_t, float), np.asarray(word_len, float)
        self.transcript = [self._segment(session, r) for r in session.transcripts_of(self.name)]
        self.detections = [(r["t"], Detection(r["label"], r["x"], r["y"], r["w"], r["h"], r["score"], r["t"]))
                           for r in session.detections_of(self.name)]
        self.previews = session.previews_of(self.name)
        for t, h, w, data in self.previews:  # each is decompressed again when shown (not all kept in memory)
            session.unzip(data, f"preview of stream {self.name!r} at {t} s", h * w * 3)
        self._preview_cache: tuple[int, np.ndarray] | None = None

    @staticmethod
    def _decoded(session: Session, r: dict) -> dict:
        """A snapshot row with its JSON columns read (metrics, attractor, signals' attractors)."""
        where = f"snapshot row {r['id']}"
        try:
            return {**r, "metrics": session.json_of(r["metrics"], where),
                    "attractor": attractor_from_json(session.json_of(r["attractor"], where)),
                    "signals": [(name, attractor_from_json(a))
                                for name, a in session.json_of(r["signals"], where).items()]}
        except StoreError:
            raise
        except (ValueError, TypeError, AttributeError) as exc:  # JSON of another shape than recorded
            raise session.damaged(where, f"unreadable attractor: {exc}") from None

    @staticmethod
    def _segment(session: Session, r: dict) -> TranscriptSegment:
        where = f"transcript row {r['id']}"
        try:
            words = tuple(Word(w, s, e) for w, s, e in session.json_of(r["words"], where, list))
        except StoreError:
            raise
        except (ValueError, TypeError) as exc:  # not [word, start, end] triples
            raise session.damaged(where, f"unreadable words: {exc}") from None
        return TranscriptSegment(r["start"], r["end"], r["text"], True, words, r["engine"] or "")

    def snapshot(self, t: float, patterns: tuple[PatternHit, ...]) -> Snapshot | None:
        k = bisect.bisect_right(self.snap_t, t) - 1
        if k < 0:
            return None
        r = self.snaps[k]
        attractor = r["attractor"]
        upto = int(np.searchsorted(self.signal_t, t, side="right"))
        sig = self.signal_v[max(0, upto - PORTRAIT_POINTS):upto]
        px, py = delay_embed_2d(sig, max(1, attractor.lag)) if sig.size > 2 else (np.zeros(0), np.zeros(0))
        for a in (px, py):
            a.flags.writeable = False
        others = [SignalView(name, a) for name, a in r["signals"]]
        views = (SignalView(r["signal"] or "", attractor, px, py), *others)
        n_text = bisect.bisect_right(self.text_t, t)
        tail = self.text[: self.text_cum[n_text - 1]][-2000:] if n_text else ""
        said = tuple(s for s in self.transcript if s.end <= t)[-50:]
        j = bisect.bisect_right([d[0] for d in self.detections], t)
        seen = tuple(d for dt, d in self.detections[:j] if j and dt == self.detections[j - 1][0] and t - dt < 1.0)
        return Snapshot(stream=self.name, kind=self.kind, seq=int(r["seq"]), t=t, status=r["status"],
                        source=self.source, metrics=MappingProxyType(r["metrics"]),
                        attractor=attractor, signal_name=r["signal"] or "", attractor_seq=k + 1,
                        portrait_x=px, portrait_y=py, signals=views, patterns=patterns, error=r["error"],
                        text_tail=tail, preview=self._preview(t), transcript=said, detections=seen)

    def _preview(self, t: float) -> np.ndarray | None:
        k = bisect.bisect_right([p[0] for p in self.previews], t) - 1
        if k < 0:
            return None
        if self._preview_cache is None or self._preview_cache[0] != k:
            _, h, w, data = self.previews[k]
            image = np.frombuffer(zlib.decompress(data), dtype=np.uint8).reshape(h, w, 3).copy()
            image.flags.writeable = False
            self._preview_cache = (k, image)
        return self._preview_cache[1]


class _ReplayClock:
    def __init__(self, hub: RecordedHub) -> None:
        self._hub = hub

    def now(self) -> float:
        return self._hub.position


class RecordedHub:
    """The read side of a hub, played back from a session at ``speed`` times real time."""

    replay = True
    """What the dashboard says in its subtitle: a record being played, not live streams."""
    warm = True  # nothing to compile: a replay is a record
    meta = None  # no learning from a record

    def __init__(self, session: Session, *, speed: float = 1.0, clock: Clock | None = None,
                 analysis_interval: float = 0.1) -> None:
        if not speed > 0 or not math.isfinite(speed):
            raise ValueError(f"--speed {speed}: expected a number > 0")
        self.session, self.speed = session, speed
        self._wall = clock or MonotonicClock()
        self._start = self._wall.now()
        self.clock = _ReplayClock(self)
        """Reads the replay position: the session's own seconds, so times print as they were recorded."""
        self.t0 = 0.0
        self.analysis_interval = analysis_interval
        self._streams = [_Stream(session, row) for row in session.streams()]
        self._hits = [PatternHit(r["t"], r["stream"], r["kind"], r["message"], r["start"])
                      for r in session.patterns()]
        self._hit_t = [h.t for h in self._hits]
        self.end = max([s.snap_t[-1] for s in self._streams if s.snap_t] + [h.t for h in self._hits] + [0.0])
        self._callbacks: list[Callable[[float], None]] = []
        self.ticks = 0
        self.running = False
        self._task: asyncio.Task | None = None
        self.perception = None
        self.recorder = None

    # -- what the dashboard and the printer read -------------------------------------------

    @property
    def position(self) -> float:
        """Seconds into the recorded session."""
        return min(self.end, (self._wall.now() - self._start) * self.speed)

    @property
    def streams(self) -> list[str]:
        return [s.name for s in self._streams]

    def snapshots(self) -> dict[str, Snapshot]:
        t = self.position
        out = {}
        for s in self._streams:
            recent = tuple(h for h in self._hits[max(0, bisect.bisect_right(self._hit_t, t) - 500):
                                                  bisect.bisect_right(self._hit_t, t)] if h.stream == s.name)
            snap = s.snapshot(t, recent[-RECENT:])
            if snap is not None:
                out[s.name] = snap
        return out

    def snapshot(self, stream: str) -> Snapshot | None:
        return self.snapshots().get(stream)

    def patterns_since(self, seq: int = 0) -> list[tuple[int, PatternHit]]:
        k = bisect.bisect_right(self._hit_t, self.position)
        return [(i + 1, self._hits[i]) for i in range(seq, k)]

    # -- the hub's control surface, for a record ------------------------------------------

    def add_source(self, source) -> None:  # a replay has no sources
        raise ValueError("a replayed session takes no sources")

    def cancel(self, stream: str) -> bool:
        return False  # what was recorded already happened

    def on_tick(self, callback: Callable[[float], None]) -> None:
        self._callbacks.append(callback)

    def sources_done(self) -> bool:
        return self.position >= self.end

    async def start(self) -> None:
        if self._task is None:
            self.running = True
            self._task = asyncio.ensure_future(self._clock())

    async def _clock(self) -> None:
        while True:
            await asyncio.sleep(self.analysis_interval)
            self.ticks += 1
            for cb in self._callbacks:
                cb(self.clock.now())

    async def stop(self) -> None:
        self.running = False
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def run(self, duration: float | None = None) -> None:
        await self.start()
        try:
            deadline = None if duration is None else self._wall.now() + duration
            while not self.sources_done() and (deadline is None or self._wall.now() < deadline):
                await asyncio.sleep(0.05)
            await asyncio.sleep(self.analysis_interval * 1.5)  # one last tick at the end
        finally:
            await self.stop()
