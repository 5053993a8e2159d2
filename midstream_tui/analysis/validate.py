"""Input validation for the analysis wrappers: one clear error, never a silent wrong number."""

from __future__ import annotations

import numpy as np


class SeriesError(ValueError):
    """A series cannot be analysed as given; the message says why, in one line."""


def as_series(x, name: str = "series", *, min_len: int = 1, finite: bool = True,
              level_free: bool = False) -> np.ndarray:
    """``x`` as a contiguous 1-D float64 array, or ``SeriesError``.

    Accepts sequences and arrays of bools, ints and floats. Refuses strings and
    objects, more than one dimension (a single column/row is flattened),
    fewer than ``min_len`` values and, when ``finite``, NaN or infinity. ``level_free``: the caller is blind to
    the series' level (its dynamics, its motifs), so whole numbers past 2^53 may come as their differences from
    the smallest (not for comparing two series: each would be moved by its own).
    """
    try:
        a = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise SeriesError(f"{name}: not a numeric sequence ({exc})") from None
    if a.dtype.kind not in "biuf":
        raise SeriesError(f"{name}: expected numbers, got {a.dtype} values")
    if a.ndim > 1:
        if sum(d > 1 for d in a.shape) > 1:
            raise SeriesError(f"{name}: expected a 1-D series, got shape {a.shape}")
        a = a.ravel()
    if level_free and a.dtype.kind in "iu" and a.size and (int(a.max()) > 1 << 53 or int(a.min()) < -(1 << 53)):
        # Whole numbers past 2^53 have no float64 of their own: 914 distinct values at 2^62 + k were 2 floats,
        # "constant". Their differences from the smallest (exact, as unsigned 64-bit numbers) are kept instead.
        a = (a.astype(np.uint64) - np.uint64(int(a.min()) % (1 << 64))).astype(np.float64)
    a = np.ascontiguousarray(a, dtype=np.float64).reshape(-1)
    if a.size < min_len:
        what = "empty" if a.size == 0 else f"too short ({a.size} values, need at least {min_len})"
        raise SeriesError(f"{name}: {what}")
    if finite:
        bad = ~np.isfinite(a)
        if bad.any():
            where = np.flatnonzero(bad)
            first = ", ".join(str(i) for i in where[:3])
            raise SeriesError(f"{name}: {where.size} NaN/inf value(s), first at index {first}")
    return a


def whole(name: str, value, lo: int, hi: int | None = None) -> int:
    """``value`` as an int in [lo, hi], or ``SeriesError`` (a ValueError).

    The analysis wrappers pass lags, dimensions, windows and lengths straight
    into numba kernels, which index arrays with them unchecked: a negative or
    oversized one reads out of bounds (or crashes the process). Every such
    parameter goes through here first.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float, np.floating)):
        raise SeriesError(f"{name} must be a whole number, got {value!r}")
    if isinstance(value, (float, np.floating)) and not (np.isfinite(value) and float(value).is_integer()):
        raise SeriesError(f"{name} must be a whole number, got {value!r}")
    v = int(value)
    if v < lo or (hi is not None and v > hi):
        allowed = f">= {lo}" if hi is None else f"between {lo} and {hi}"
        raise SeriesError(f"{name} must be {allowed}, got {v}")
    return v


def real(name: str, value, lo: float = 0.0, *, above: bool = False) -> float:
    """``value`` as a finite float >= lo (> lo when ``above``), or ``SeriesError``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SeriesError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(v) or v < lo or (above and v == lo):
        raise SeriesError(f"{name} must be a finite number {'>' if above else '>='} {lo:g}, got {value!r}")
    return v


def standardized(a: np.ndarray, name: str = "x") -> np.ndarray:
    """``a`` shifted to mean 0 and scaled to std 1, computed without overflow or underflow.

    Values near 1e300 square to infinity and values near 1e-300 to zero, so the
    series is first divided by its largest magnitude (exact for any finite
    scale), then centred and scaled. The result is the same for ``a``, ``c*a``
    and ``a + d`` (up to rounding) for any finite c != 0 and d. A series whose
    variation is lost in floating-point rounding of its level (std below 1e-13
    of it) is constant as far as any method can tell: ``SeriesError``.
    """
    a = np.asarray(a, dtype=np.float64)
    peak = float(np.max(np.abs(a))) if a.size else 0.0
    if not np.isfinite(peak):
        raise SeriesError(f"{name}: NaN/inf values")
    if peak == 0.0:
        raise SeriesError(f"{name} is constant: no dynamics to measure (a point attractor)")
    b = a / peak
    b = b - b.mean()
    sd = float(b.std())
    if not sd > 1e-13:
        raise SeriesError(f"{name} is constant: no dynamics to measure (a point attractor)"
                          if sd == 0.0 else f"{name} is constant within floating-point rounding (variation "
                          f"{sd:.1e} of its level): no dynamics to measure")
    return np.ascontiguousarray(b / sd)
