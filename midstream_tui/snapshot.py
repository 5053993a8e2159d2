"""What the hub publishes: one immutable Snapshot per stream per analysis tick.

The UI, the headless printer and library users read only these types. Metric
values are plain floats/ints/strings; NaN means "not measurable yet" and is
written as ``null`` in JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from .analysis.dynamics import UNKNOWN, AttractorClass

SOURCE_METRICS = frozenset({
    "chunks", "reasoning_chars", "tool_chars", "other_choices_chars", "bytes_out", "keepalives", "status", "ttfb_ms",
    "audio_ms", "cut",
    "truncated_at_ms", "finish_reason", "output_tokens", "output_tokens_from", "output_tokens_per_s",
    "tokens_counted_minus_usage", "ttft_req_ms", "ttfo_req_ms", "tpot_req_ms", "e2e_req_ms", "cut_tokens_received",
    "cut_tokens_saved_max", "cut_usd_saved_max", "slo_ok", "analysis_dropped", "analysis_dropped_bytes", "end"})
"""Metrics a source adds to its streams' snapshots beside the analyzers' (the proxy's counters and per-request
timings), some only once a request has ended: a rule naming one of them is not misspelt."""
TEXT_METRICS = frozenset({"finish_reason", "output_tokens_from", "resolution", "detect", "transcribe", "end", "cut"})
"""Metrics whose values are words, not numbers (a watcher takes any other metric from an agent as a number or
nothing)."""

EMPTY_ARRAY = np.empty(0)
EMPTY_ARRAY.flags.writeable = False


def json_number(v: Any, digits: int = 6) -> Any:
    if isinstance(v, (bool, str)) or v is None:
        return v
    if isinstance(v, (int, np.integer)):
        return int(v)
    f = float(v)
    return round(f, digits) if math.isfinite(f) else None


@dataclass(frozen=True, slots=True)
class PatternHit:
    """Something the analysis noticed in a stream, for the pattern log."""

    t: float
    stream: str
    kind: str
    """loop, loop-end, stall, burst, silence, scene-cut, error, ..."""
    message: str
    start: float | None = None
    """When the pattern began, if earlier than ``t``."""

    def to_json(self) -> dict:
        return {"t": json_number(self.t, 3), "stream": self.stream, "kind": self.kind,
                "message": self.message, "start": json_number(self.start, 3)}


@dataclass(frozen=True, slots=True)
class SignalView:
    """One signal of a stream: its attractor class and phase portrait."""

    name: str
    attractor: AttractorClass
    portrait_x: np.ndarray = field(default_factory=lambda: EMPTY_ARRAY, repr=False)
    portrait_y: np.ndarray = field(default_factory=lambda: EMPTY_ARRAY, repr=False)


@dataclass(frozen=True, slots=True)
class Snapshot:
    stream: str
    kind: str
    seq: int
    """Increases by one each time this stream's snapshot changes."""
    t: float
    """Hub clock time of the analysis, in seconds."""
    status: str
    """open, closed, cancelled or error."""
    source: str = ""
    metrics: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    attractor: AttractorClass = UNKNOWN
    signal_name: str = ""
    """What the attractor is estimated on, with its unit."""
    portrait_x: np.ndarray = field(default_factory=lambda: EMPTY_ARRAY, repr=False)
    portrait_y: np.ndarray = field(default_factory=lambda: EMPTY_ARRAY, repr=False)
    attractor_seq: int = 0
    """Increases each time the attractor and portrait are re-estimated (at most 2 Hz)."""
    patterns: tuple[PatternHit, ...] = ()
    """The most recent pattern hits of this stream, oldest first."""
    error: str | None = None
    signals: tuple[SignalView, ...] = ()
    """Every signal's dynamics; the first is ``attractor``/``signal_name``/``portrait_*``."""
    text_tail: str = ""
    """Text streams: the newest text (up to 2,000 characters); ``metrics["chars"]`` counts all of it."""
    preview: np.ndarray | None = field(default=None, repr=False)
    """Video streams: a small read-only RGB image of a recent frame."""
    transcript: tuple = ()
    """Audio streams being transcribed: recent final TranscriptSegments, then the partial one if any."""
    detections: tuple = ()
    """Video streams with detection: the newest frame's Detections."""

    def to_json(self, t0: float = 0.0) -> dict:
        out = {
            "t": json_number(self.t - t0, 3), "stream": self.stream, "kind": self.kind,
            "seq": self.seq, "status": self.status,
            "metrics": {k: json_number(v) for k, v in self.metrics.items()},
            "attractor": self.attractor.to_json(), "signal": self.signal_name,
            "signals": {v.name: v.attractor.to_json() for v in self.signals[1:]},
            "error": self.error,
        }
        if self.transcript:  # finals reach the pattern log as "speech" hits; here the utterance under way
            last = self.transcript[-1]
            out["partial"] = None if last.final else last.text
        if self.detections:
            out["detections"] = [d.to_json() for d in self.detections]
        return out
