"""Per-kind stream analyzers: events in, ring buffers, metrics and signals out.

- ``base``: ``Ring`` (a bounded numpy ring buffer) and ``StreamAnalyzer``, the contract every kind keeps:
  ``ingest(event)`` per event (returning what it ``Measured``, for the hub's taps), ``update(now)`` once per analysis step (detection: loops, thresholds),
  ``metrics(now, since)`` (reads only), ``signals()`` for the attractor, ``take_hits()`` for the pattern log.
- ``text``, ``audio``, ``video``: one analyzer per kind of stream.
"""

from __future__ import annotations

from .audio import AudioAnalyzer
from .base import NOTHING, STALL_FLOOR_S, Measured, Ring, StreamAnalyzer, db
from .text import TextAnalyzer
from .video import VideoAnalyzer

ANALYZERS: dict[str, type[StreamAnalyzer]] = {a.kind: a for a in (TextAnalyzer, AudioAnalyzer, VideoAnalyzer)}
"""Stream kind -> its analyzer class."""

__all__ = ["ANALYZERS", "NOTHING", "STALL_FLOOR_S", "AudioAnalyzer", "Measured", "Ring", "StreamAnalyzer", "TextAnalyzer",
           "VideoAnalyzer", "db"]
