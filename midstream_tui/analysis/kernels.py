"""Numba kernels: small pure functions on arrays, compiled once and cached.

Every kernel is ``@njit(cache=True, nogil=True)`` so the hub can run it in a
worker thread without holding the GIL (the UI keeps drawing meanwhile). Input
validation, units and parameter choices live in the Python wrappers beside this
module; kernels assume clean, finite, contiguous input.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# ---------------------------------------------------------------- statistics


@njit(cache=True, nogil=True)
def quantile_sorted(xs, q):
    """Linear-interpolated quantile of an ascending array (numpy's default method)."""
    n = xs.shape[0]
    if n == 0:
        return np.nan
    pos = q * (n - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    return xs[lo] * (1.0 - frac) + xs[hi] * frac


@njit(cache=True, nogil=True)
def summarize(values, qs):
    """[count, mean, max, quantiles...] of a 1-D float array."""
    out = np.full(3 + qs.shape[0], np.nan)
    n = values.shape[0]
    out[0] = n
    if n == 0:
        return out
    xs = np.sort(values)
    out[1] = xs.mean()
    out[2] = xs[n - 1]
    for i in range(qs.shape[0]):
        out[3 + i] = quantile_sorted(xs, qs[i])
    return out


@njit(cache=True, nogil=True)
def count_at_or_after(ts, t_from):
    """How many entries of an ascending array are >= t_from (binary search)."""
    lo, hi = 0, ts.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if ts[mid] < t_from:
            lo = mid + 1
        else:
            hi = mid
    return ts.shape[0] - lo


@njit(cache=True, nogil=True)
def weighted_rate(ts, weights, t_from, t_to):
    """Sum of weights with timestamp in [t_from, t_to], divided by the span."""
    span = t_to - t_from
    if span <= 0.0:
        return np.nan
    total = 0.0
    for i in range(ts.shape[0] - 1, -1, -1):
        if ts[i] < t_from:
            break
        if ts[i] <= t_to:
            total += weights[i]
    return total / span


# ---------------------------------------------------------------- media


@njit(cache=True, nogil=True)
def pcm16_levels(samples):
    """(rms, peak, zero_crossing_rate) of int16 PCM, levels as fractions of full scale."""
    n = samples.size
    if n == 0:
        return 0.0, 0.0, 0.0
    flat = samples.ravel()
    acc = 0.0
    peak = 0.0
    crossings = 0
    prev = flat[0]
    for i in range(n):
        v = float(flat[i])
        acc += v * v
        a = abs(v)
        if a > peak:
            peak = a
        if (flat[i] >= 0) != (prev >= 0):
            crossings += 1
        prev = flat[i]
    return np.sqrt(acc / n) / 32768.0, peak / 32768.0, crossings / n


@njit(cache=True, nogil=True)
def luma_thumbnail(frame, step):
    """Rec. 601 luma of an RGB uint8 frame, sampled every ``step`` pixels, in [0, 1]."""
    h = frame.shape[0] // step
    w = frame.shape[1] // step
    out = np.empty((h, w), dtype=np.float32)
    for y in range(h):
        for x in range(w):
            px = frame[y * step, x * step]
            out[y, x] = (0.299 * px[0] + 0.587 * px[1] + 0.114 * px[2]) / 255.0
    return out


@njit(cache=True, nogil=True)
def mean_abs_diff(a, b):
    """Mean absolute difference of two equal-shape 2-D float arrays."""
    acc = 0.0
    for y in range(a.shape[0]):
        for x in range(a.shape[1]):
            acc += abs(a[y, x] - b[y, x])
    return acc / max(1, a.size)


# ---------------------------------------------------------------- dynamics


@njit(cache=True, nogil=True)
def autocorr_decay_lag(x, max_lag):
    """First lag where the autocorrelation of ``x`` drops below 1/e (>= 1)."""
    n = x.shape[0]
    mean = x.mean()
    var = 0.0
    for i in range(n):
        var += (x[i] - mean) ** 2
    if var == 0.0:
        return 1
    threshold = np.exp(-1.0)
    for lag in range(1, max_lag + 1):
        acc = 0.0
        for i in range(n - lag):
            acc += (x[i] - mean) * (x[i + lag] - mean)
        if acc / var < threshold:
            return lag
    return max_lag


@njit(cache=True, nogil=True)
def permutation_entropy(x, order, delay):
    """Normalized permutation entropy (Bandt & Pompe 2002), in [0, 1].

    Ordinal patterns are encoded by their Lehmer code; ties are broken by
    position. 1 means every ordinal pattern is equally likely (noise); a
    deterministic signal visits few patterns and scores lower.
    """
    n = x.shape[0] - (order - 1) * delay
    if n <= 0:
        return np.nan
    fact = 1
    for k in range(2, order + 1):
        fact *= k
    counts = np.zeros(fact, dtype=np.int64)
    window = np.empty(order)
    for i in range(n):
        for k in range(order):
            window[k] = x[i + k * delay]
        code = 0
        for k in range(order):
            smaller = 0
            for m in range(k + 1, order):
                if window[m] < window[k]:
                    smaller += 1
            base = 1
            for m in range(2, order - k):
                base *= m
            code += smaller * base
        counts[code] += 1
    h = 0.0
    for c in range(fact):
        if counts[c] > 0:
            p = counts[c] / n
            h -= p * np.log(p)
    return h / np.log(fact)


@njit(cache=True, nogil=True)
def rosenstein_divergence(x, dim, lag, theiler, horizon):
    """Mean log distance between nearest-neighbour trajectories (Rosenstein et al. 1993).

    Embeds ``x`` with (dim, lag); for each point finds its nearest neighbour
    at least ``theiler`` samples away in time, then follows both for
    ``horizon`` steps. Returns (curve, pairs): curve[k] is the mean of
    ln(distance after k steps) over the pairs still inside the series.
    Memory is O(N); the neighbour search prunes on the first coordinate
    (worst case O(N^2) distances, typically a small multiple of N).
    """
    m = x.shape[0] - (dim - 1) * lag
    curve = np.zeros(horizon)
    pairs = np.zeros(horizon, dtype=np.int64)
    if m <= 1:
        return curve, pairs
    # Nearest neighbours by scanning outward in the order of the first
    # coordinate, stopping once that coordinate alone is farther than the best
    # match: exact, O(N) extra memory, far fewer distances than all pairs.
    first = np.empty(m)
    for i in range(m):
        first[i] = x[i]
    order = np.argsort(first)
    rank = np.empty(m, dtype=np.int64)
    for r in range(m):
        rank[order[r]] = r
    neighbour = np.full(m, -1, dtype=np.int64)
    for i in range(m):
        best = np.inf
        for direction in (-1, 1):
            r = rank[i] + direction
            while 0 <= r < m:
                j = order[r]
                gap = first[j] - first[i]
                if gap * gap >= best:
                    break
                r += direction
                if abs(i - j) <= theiler:
                    continue
                d = 0.0
                for k in range(dim):
                    diff = x[i + k * lag] - x[j + k * lag]
                    d += diff * diff
                if d < best:
                    best = d
                    neighbour[i] = j
    for i in range(m):
        j = neighbour[i]
        if j < 0:
            continue
        for step in range(horizon):
            if i + step >= m or j + step >= m:
                break
            d = 0.0
            for k in range(dim):
                diff = x[i + step + k * lag] - x[j + step + k * lag]
                d += diff * diff
            # Floor at 1e-9 (on z-scored data): exact repeats of a periodic
            # signal must read as "no divergence", not as rounding noise.
            curve[step] += 0.5 * np.log(max(d, 1e-18))
            pairs[step] += 1
    for step in range(horizon):
        if pairs[step] > 0:
            curve[step] /= pairs[step]
        else:
            curve[step] = np.nan
    return curve, pairs


@njit(cache=True, nogil=True)
def line_fit(y, start, stop):
    """Least-squares slope, intercept and r^2 of y[start:stop] against its index."""
    n = stop - start
    if n < 2:
        return np.nan, np.nan, np.nan
    sx = sy = sxx = sxy = syy = 0.0
    for i in range(start, stop):
        xi = float(i)
        sx += xi
        sy += y[i]
        sxx += xi * xi
        sxy += xi * y[i]
        syy += y[i] * y[i]
    denom = n * sxx - sx * sx
    if denom == 0.0:
        return np.nan, np.nan, np.nan
    slope = (n * sxy - sx * sy) / denom
    intercept = (sy - slope * sx) / n
    vy = n * syy - sy * sy
    r2 = 1.0 if vy <= 0.0 else (n * sxy - sx * sy) ** 2 / (denom * vy)
    return slope, intercept, r2


# ---------------------------------------------------------------- token sequences


@njit(cache=True, nogil=True)
def trailing_period(ids, max_period):
    """Shortest period p whose repetition explains the longest tail of ``ids``.

    Returns (period, run): ids[n-run-p:] repeats with period p, i.e.
    ids[i] == ids[i-p] for the last ``run`` positions. (0, 0) if none.
    Prefers the longest run; among equal runs, the shortest period.
    """
    n = ids.shape[0]
    best_p = 0
    best_run = 0
    for p in range(1, min(max_period, n // 2) + 1):
        run = 0
        i = n - 1
        while i - p >= 0 and ids[i] == ids[i - p]:
            run += 1
            i -= 1
        if run > best_run:
            best_run = run
            best_p = p
    return best_p, best_run


@njit(cache=True, nogil=True)
def repeated_ngram_fraction(ids, n):
    """seq-rep-n (Welleck et al. 2020): 1 - unique n-grams / total n-grams."""
    total = ids.shape[0] - n + 1
    if total <= 0:
        return np.nan
    hashes = np.empty(total, dtype=np.int64)
    for i in range(total):
        h = np.int64(1469598103934665603)
        for k in range(n):
            h = (h ^ ids[i + k]) * np.int64(1099511628211)
        hashes[i] = h
    hashes.sort()
    unique = 1
    for i in range(1, total):
        if hashes[i] != hashes[i - 1]:
            unique += 1
    return 1.0 - unique / total


def warm_up() -> None:
    """Compile (or load from cache) every kernel with the dtypes the hub uses."""
    f = np.linspace(0.0, 1.0, 64)
    summarize(f, np.array([0.5, 0.9]))
    count_at_or_after(f, 0.5)
    weighted_rate(f, f, 0.2, 0.8)
    pcm16_levels(np.zeros(16, dtype=np.int16))
    pcm16_levels(np.zeros((16, 2), dtype=np.int16))
    thumb = luma_thumbnail(np.zeros((16, 16, 3), dtype=np.uint8), 4)
    mean_abs_diff(thumb, thumb)
    autocorr_decay_lag(f, 4)
    permutation_entropy(f, 4, 1)
    curve, _ = rosenstein_divergence(np.sin(f * 20), 2, 1, 2, 4)
    line_fit(curve, 0, 4)
    ids = np.arange(32, dtype=np.int64) % 5
    trailing_period(ids, 8)
    repeated_ngram_fraction(ids, 3)
