"""A recorded session's signals, stream by stream, for the same analysis as a series file (``midstream analyze``)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..analyzers.text import WordLengths
from .replay import SERIES_FOR_SIGNAL
from .store import Session


def recorded_signals(session: Session) -> Iterator[dict]:
    """Per stream: its name, kind, status, pattern counts by kind, last metrics, and its signals by label
    (text: word length and inter-token gap; audio: level; video: motion and brightness)."""
    for stream in session.streams():
        name, kind = stream["name"], stream["kind"]
        signals: dict[str, np.ndarray] = {}
        if kind == "text":
            times, lengths = [], []
            counted = WordLengths()  # (the words as the live analyzer counts them)
            for t, what, data in session.output_of(name):
                if what == "text":
                    times.append(t)
                    lengths.extend(counted.feed(data.get("text", "")))
                else:  # (a request: the one before ended)
                    lengths.extend(counted.end())
            lengths.extend(counted.end())
            signals["word length (chars)"] = np.asarray(lengths, float)
            signals["inter-token gap (ms)"] = np.diff(np.asarray(times, float)) * 1e3
        elif kind in SERIES_FOR_SIGNAL:
            for series in ("level_dbfs",) if kind == "audio" else ("motion", "brightness"):
                signals[series] = session.series(name, series)[1]
        yield {"stream": name, "kind": kind, "status": stream["status"], "patterns": session.pattern_counts(name),
               "metrics": session.last_metrics(name), "signals": signals}
