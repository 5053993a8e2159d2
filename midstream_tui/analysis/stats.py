"""Rolling rate and latency statistics over timestamp and interval windows."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import kernels
from .validate import SeriesError

QUANTILES = np.array([0.5, 0.9, 0.95, 0.99])


@dataclass(frozen=True, slots=True)
class Summary:
    """Distribution of a window of values (seconds, bytes, ...; the caller knows)."""

    count: int = 0
    mean: float = math.nan
    max: float = math.nan
    p50: float = math.nan
    p90: float = math.nan
    p95: float = math.nan
    p99: float = math.nan


EMPTY = Summary()


def summarize(values: np.ndarray) -> Summary:
    """Count, mean, max and p50/p90/p95/p99 (linear interpolation) of the finite values."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return EMPTY
    c, mean, mx, p50, p90, p95, p99 = kernels.summarize(np.ascontiguousarray(v), QUANTILES)
    return Summary(int(c), mean, mx, p50, p90, p95, p99)


def rate(times: np.ndarray, weights: np.ndarray | None, now: float, window: float,
         since: float | None = None) -> float:
    """Weighted events per second over the last ``window`` seconds before ``now``.

    ``since`` (the stream's start) shortens the window while the stream is
    younger than it, so the first seconds are not diluted.
    """
    ts = np.ascontiguousarray(times, dtype=np.float64).reshape(-1)
    if ts.size == 0 or window <= 0:
        return 0.0
    start = now - window
    if since is not None:
        start = max(start, since)
    if now - start <= 1e-9:
        return math.nan
    w = np.ones_like(ts) if weights is None else np.ascontiguousarray(weights, dtype=np.float64).reshape(-1)
    if w.shape != ts.shape:  # the kernel reads weights[i] for every time: a shorter array reads past its end
        raise SeriesError(f"weights: {w.size} values for {ts.size} times")
    return float(kernels.weighted_rate(ts, w, start, now))
