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
from .validate import SeriesError, as_series

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


# ---------------------------------------------------------------- the analysis core API


def delay_embed(x, dim: int, lag: int) -> np.ndarray:
    """Delay vectors (x[t], x[t+lag], ..., x[t+(dim-1)lag]) as an (N-(dim-1)lag, dim) array."""
    a = as_series(x, "x")
    if dim < 1 or lag < 1:
        raise SeriesError(f"dim and lag must be >= 1, got dim={dim}, lag={lag}")
    m = a.size - (dim - 1) * lag
    if m < 1:
        raise SeriesError(f"x: too short ({a.size} values) for dim={dim}, lag={lag}")
    return np.stack([a[k * lag: k * lag + m] for k in range(dim)], axis=1)


def select_lag(x, *, max_lag: int | None = None, method: str = "ami", bins: int = 32) -> int:
    """Embedding lag: first minimum of the average mutual information (Fraser & Swinney
    1986), or the first lag where it drops below 1/e of the entropy if that comes
    sooner (maps); with ``method="autocorr"`` the first drop of the autocorrelation
    below 1/e. Falls back to the autocorrelation rule when neither happens in range."""
    a = as_series(x, "x", min_len=16)
    max_lag = int(max_lag or max(2, min(200, a.size // 10)))
    z = (a - a.mean()) / (a.std() or 1.0)
    if method == "ami":
        if kernels.autocorr_decay_lag(z, 1) == 1 and np.corrcoef(z[:-1], z[1:])[0, 1] < 1 / math.e:
            return 1  # not smoothly sampled (a map, or noise): consecutive samples are the delay
        ami = kernels.average_mutual_information(z, max_lag, bins)
        for k in range(1, max_lag):
            if ami[k] < ami[0] / math.e:
                return k
            # A real minimum: the lowest so far, and followed by a rise of at least
            # 5% of the entropy (binning makes wiggles of ~3% on smooth signals).
            after = ami[k + 1: min(2 * k + 2, max_lag + 1)]
            if (ami[k] <= ami[1:k + 1].min() and after.size
                    and after.max() - ami[k] > 0.05 * ami[0]):
                return k
    elif method != "autocorr":
        raise SeriesError(f"method {method!r}: expected 'ami' or 'autocorr'")
    return int(kernels.autocorr_decay_lag(z, max_lag))


def select_dimension(x, lag: int, *, max_dim: int = 10, threshold: float = 0.01,
                     theiler: int | None = None) -> tuple[int, list[float]]:
    """Embedding dimension by false nearest neighbours (Kennel, Brown & Abarbanel 1992):
    the smallest dimension whose false-neighbour share is below ``threshold``
    (rtol 15, atol 2, the paper's values). Returns (dimension, share per dimension)."""
    a = as_series(x, "x", min_len=32)
    z = (a - a.mean()) / (a.std() or 1.0)
    theiler = lag if theiler is None else theiler
    fractions: list[float] = []
    for dim in range(1, max_dim + 1):
        if a.size - dim * lag < 16:
            break
        f = float(kernels.false_neighbour_fraction(z, dim, lag, theiler, 15.0, 2.0))
        fractions.append(f)
        if f < threshold:
            return dim, fractions
    best = int(np.nanargmin(fractions)) + 1 if fractions else 1
    return best, fractions


@dataclass(frozen=True, slots=True)
class LyapunovResult:
    """Largest Lyapunov exponent by Rosenstein's method, with everything needed to judge it."""

    lyapunov: float
    """Per unit of time (per sample times 1/dt), natural log."""
    per_sample: float
    dt: float
    dim: int
    lag: int
    theiler: int
    horizon: int
    fit_start: int
    fit_stop: int
    fit_r2: float
    curve: np.ndarray
    """Mean ln divergence after k steps, k = 0..horizon-1."""
    points: int

    def to_json(self) -> dict:
        def num(v):
            return None if not math.isfinite(v) else round(float(v), 6)
        return {"lyapunov": num(self.lyapunov), "per_sample": num(self.per_sample), "dt": self.dt,
                "dim": self.dim, "lag": self.lag, "theiler": self.theiler, "horizon": self.horizon,
                "fit": {"start": self.fit_start, "stop": self.fit_stop, "r2": num(self.fit_r2),
                        "start_time": self.fit_start * self.dt, "stop_time": self.fit_stop * self.dt},
                "points": self.points}


def lyapunov_fit_region(curve: np.ndarray) -> tuple[int, int]:
    """The straight part of a divergence curve, between whatever comes first and saturation.

    Divergence curves show up to four regimes: a flat noise floor (noisy data),
    a steep transient while neighbours align with the unstable direction
    (flows), the exponential (straight) part, and the plateau at the size of
    the attractor. The plateau level is the median of the last third of the
    curve; the straight part ends where the curve comes within 1 (a factor e)
    of it. Its slope just before that end is the reference; the region grows
    backwards while the local slope stays within [2/3, 3/2] of the reference,
    so it stops at a steeper transient and at a flat noise floor alike.
    """
    finite = np.isfinite(curve)
    c = np.ascontiguousarray(curve[: int(np.argmin(finite)) if not finite.all() else curve.size])
    n = c.size
    if n < 6:
        return 0, n
    plateau = float(np.median(c[2 * n // 3:]))
    above = np.flatnonzero(c >= plateau - 1.0)
    stop = max(int(above[0]) if above.size else n, 3)
    width = max(3, stop // 4)
    ref = float(kernels.line_fit(c, stop - width, stop)[0])
    start = stop - width
    if not ref > 0:
        return start, stop
    w = max(3, width // 2)
    k = start
    while k - 1 >= 0:
        local = float(kernels.line_fit(c, k - 1, min(k - 1 + w, stop))[0])
        if not (ref / 1.5 <= local <= ref * 1.5):
            break
        k -= 1
    return k, stop


def largest_lyapunov(x, dt: float = 1.0, *, dim: int | None = None, lag: int | None = None,
                     theiler: int | None = None, horizon: int | None = None,
                     fit: tuple[int, int] | None = None) -> LyapunovResult:
    """Largest Lyapunov exponent (Rosenstein, Collins & De Luca 1993).

    Parameters left out are chosen from the data: ``lag`` by the first AMI
    minimum, ``dim`` by false nearest neighbours, ``theiler`` as one orbital
    period (estimated as 4 lags), ``horizon`` long enough to
    reach saturation (twenty orbital periods, at most N/4), and the ``fit`` region by
    ``lyapunov_fit_region``. ``dt`` is the sampling interval: the result is per
    unit of time. Memory O(N): no distance matrix.
    """
    a = as_series(x, "x", min_len=100)
    if not (math.isfinite(dt) and dt > 0):
        raise SeriesError(f"dt must be a number > 0, got {dt!r}")
    sd = a.std()
    if sd == 0:
        raise SeriesError("x is constant: no dynamics to measure (a point attractor)")
    z = np.ascontiguousarray((a - a.mean()) / sd)
    lag = select_lag(z) if lag is None else int(lag)
    dim = select_dimension(z, lag)[0] if dim is None else int(dim)
    # The first AMI minimum sits near a quarter of the orbital period; mean
    # crossings would measure lobe switching on two-lobed attractors instead.
    period = 4 * lag
    theiler = int(period) if theiler is None else int(theiler)
    m = z.size - (dim - 1) * lag
    if m < 2 * theiler + 10:
        raise SeriesError(f"x: too short ({a.size} values) for dim={dim}, lag={lag}, theiler={theiler}")
    horizon = int(min(max(40, 20 * period), m // 4)) if horizon is None else int(horizon)
    curve, _pairs = kernels.rosenstein_divergence(z, dim, lag, theiler, horizon)
    start, stop = lyapunov_fit_region(curve) if fit is None else (int(fit[0]), int(fit[1]))
    slope, _icpt, r2 = kernels.line_fit(curve, start, stop)
    return LyapunovResult(float(slope) / dt, float(slope), float(dt), dim, lag, theiler, horizon,
                          start, stop, float(r2), curve, int(a.size))
