"""A first attractor estimate for a scalar signal, cheap enough to run every tick.

``estimate_attractor(x)`` delay-embeds the newest window of ``x`` and reports
what kind of set the trajectory lives on:

- ``point``: the signal has settled (relative spread below ``point_tolerance``);
- ``noise``: ordinal patterns are nearly uniform (normalized permutation
  entropy >= ``noise_entropy``, Bandt & Pompe 2002) - stochastic, no structure;
- ``strange``: structured (low entropy) and nearby trajectories diverge
  exponentially (largest Lyapunov exponent > 0, Rosenstein et al. 1993) by at
  least ``min_rise`` in log distance, along a straight line (r^2 >= 0.8);
- ``limit cycle``: structured and not diverging - periodic or quasi-periodic.

Parameters, chosen for short live windows (64-1000 points):

- lag: first lag where the autocorrelation drops below 1/e;
- dimension: 3 (the analysis core adds false-nearest-neighbour selection);
- Theiler window: the larger of the lag and the mean period estimated from
  zero crossings, so that neighbours are never taken from the same orbit pass;
- fit region: from step 0 up to where the mean log divergence has covered
  60% of its rise to saturation. A fixed, long fit range would average the
  saturated plateau in and underestimate the exponent badly.

The Lyapunov value is per sample, natural log. Confidence is a heuristic in
[0, 1] saying how far the evidence is from the decision thresholds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import kernels

ATTRACTOR_TYPES = ("point", "limit cycle", "strange", "noise", "unknown")
MIN_POINTS = 64
MIN_CYCLES = 3


@dataclass(frozen=True, slots=True)
class AttractorEstimate:
    type: str = "unknown"
    lyapunov: float = math.nan
    """Largest Lyapunov exponent, natural log per sample (nan when not computed)."""
    confidence: float = 0.0
    lag: int = 0
    dim: int = 0
    perm_entropy: float = math.nan
    fit_start: int = 0
    fit_stop: int = 0
    fit_r2: float = math.nan
    points: int = 0
    reason: str = "insufficient data"

    def to_json(self) -> dict:
        def num(v: float, nd: int = 4):
            return None if v is None or not math.isfinite(v) else round(float(v), nd)

        return {
            "type": self.type, "lyapunov": num(self.lyapunov), "confidence": num(self.confidence, 3),
            "lag": self.lag, "dim": self.dim, "perm_entropy": num(self.perm_entropy),
            "fit": [self.fit_start, self.fit_stop], "fit_r2": num(self.fit_r2), "points": self.points,
            "reason": self.reason,
        }


UNKNOWN = AttractorEstimate()


def delay_embed_2d(x: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """The (x[t], x[t+lag]) pairs used to draw a phase portrait."""
    x = np.asarray(x, dtype=np.float64)
    lag = max(1, int(lag))
    if x.shape[0] <= lag:
        return np.empty(0), np.empty(0)
    return x[:-lag], x[lag:]


def _fit_region(curve: np.ndarray) -> tuple[int, int]:
    finite = np.isfinite(curve)
    if finite.sum() < 3:
        return 0, 0
    last = int(np.argmax(~finite)) if not finite.all() else curve.shape[0]
    c = curve[:last]
    start = 0
    rise = float(np.max(c) - c[start])
    if rise <= 0:
        return 0, min(last, 4)
    target = c[start] + 0.6 * rise
    stop = int(np.argmax(c >= target)) + 1
    return start, max(stop, start + 3)


def estimate_attractor(x: np.ndarray, *, max_points: int = 600, dim: int = 3,
                       point_tolerance: float = 1e-3, noise_entropy: float = 0.93,
                       min_rise: float = 1.0) -> AttractorEstimate:
    """Classify the newest ``max_points`` of ``x``; never raises on bad values.

    Non-finite values are dropped. Fewer than 64 finite points, or fewer
    than 3 mean-crossing cycles, give ``unknown`` with the reason.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    x = x[np.isfinite(x)][-max_points:]
    n = x.shape[0]
    if n < MIN_POINTS:
        return AttractorEstimate(points=n, reason=f"insufficient data ({n} < {MIN_POINTS} points)")
    mean = float(x.mean())
    std = float(x.std())
    scale = max(abs(mean), std, 1e-300)
    if std <= point_tolerance * scale:
        conf = 1.0 if std == 0 else min(1.0, 0.5 + 0.5 * (1 - std / (point_tolerance * scale)))
        return AttractorEstimate("point", 0.0 if std == 0 else math.nan, conf, 0, 0, 0.0,
                                 points=n, reason=f"spread {std / scale:.2e} of level")
    z = np.ascontiguousarray((x - mean) / std)
    lag = int(kernels.autocorr_decay_lag(z, max(1, min(50, n // 10))))
    pe = float(kernels.permutation_entropy(z, 4, 1))
    # Count oscillations around a local mean (window about one period), so a
    # signal that switches between regimes still shows the cycles inside each.
    w = min(4 * lag + 1, n // 2)
    local = z - np.convolve(z, np.ones(w) / w, mode="same")
    core = local[w // 2: n - w // 2]
    crossings = int(np.count_nonzero(np.diff(np.signbit(core))))
    if crossings < 2 * MIN_CYCLES:
        # Too few oscillations (or a trend) for any of the tests to mean anything.
        return AttractorEstimate(perm_entropy=pe, lag=lag, points=n,
                                 reason=f"fewer than {MIN_CYCLES} cycles in {n} points")
    mean_period = 2.0 * core.shape[0] / crossings
    theiler = int(min(max(lag, round(mean_period)), n // 4))
    horizon = int(min(max(12, 4 * lag), n // 4))
    curve, _pairs = kernels.rosenstein_divergence(z, dim, lag, theiler, horizon)
    start, stop = _fit_region(curve)
    slope, _icpt, r2 = kernels.line_fit(curve, start, stop) if stop - start >= 2 else (math.nan, 0, math.nan)
    slope = float(slope)

    common = dict(lyapunov=slope, lag=lag, dim=dim, perm_entropy=pe, fit_start=start,
                  fit_stop=stop, fit_r2=float(r2), points=n)
    if pe >= noise_entropy:
        conf = min(1.0, 0.5 + (pe - noise_entropy) / (1 - noise_entropy) * 0.5)
        return AttractorEstimate("noise", confidence=conf, reason=f"permutation entropy {pe:.2f}", **common)
    # Per-lag divergence makes the test independent of how finely a flow is sampled.
    per_lag = slope * lag if math.isfinite(slope) else 0.0
    finite = curve[np.isfinite(curve)]
    rise = float(finite.max() - finite[0]) if finite.size else 0.0
    # Chaos separates neighbours by orders of magnitude; noise on a cycle makes one
    # jump to the noise level and stops; quasi-periodic drift rises slowly and little.
    if per_lag > 0.05 and rise >= min_rise and float(r2) >= 0.8:
        conf = min(1.0, 0.4 + per_lag) * (0.5 + 0.5 * min(1.0, max(0.0, float(r2))))
        return AttractorEstimate("strange", confidence=conf,
                                 reason=f"diverging neighbours, lambda {slope:.3f}/sample", **common)
    conf = min(1.0, 0.5 + (noise_entropy - pe)) * (1.0 - min(0.5, max(0.0, per_lag) * 10))
    return AttractorEstimate("limit cycle", confidence=conf,
                             reason=f"structured, non-diverging (entropy {pe:.2f})", **common)
