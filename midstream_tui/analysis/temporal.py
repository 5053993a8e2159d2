"""Comparing sequences: DTW, LCS, edit distance, Euclidean, and subsequence search.

All functions take numeric arrays (or token-id arrays: any integers) and
validate them (``SeriesError`` on NaN/inf, empty, non-numeric input).

- ``dtw(a, b, window=None, path=False)``: dynamic time warping with squared
  differences as the local cost, returning the square root of the least total
  cost (the definition dtaidistance uses, so results agree). ``window`` is the
  Sakoe-Chiba radius: for equal lengths matched indices satisfy |i - j| <= window;
  when the lengths differ, the longer sequence's index may also run ahead by the
  difference (a[i] with b[j] when -window <= j - i <= window + len(b) - len(a) for
  a shorter a), so a path always exists. This is tslearn's
  ``sakoe_chiba_mask(radius=window)`` and dtaidistance's ``window=window + 1``
  (tested pair by pair against dtaidistance). Values are rescaled by their
  largest magnitude before squaring (the distance scales with the data), so
  1e160 or 1e-300 give finite, exact results.
- ``lcs(a, b, eps=0)``: longest common subsequence length; elements match when
  |x - y| <= eps (0: exactly, for token ids).
- ``edit_distance(a, b, eps=0)``: Levenshtein distance (unit costs).
- ``euclidean(a, b)``: for equal lengths.
- ``find_similar(haystack, needle, threshold)``: every place the needle
  occurs within ``threshold``, best first, non-overlapping.
- ``token_dtw(a, b, window=None)``: DTW over token ids with a 0/1 local cost
  (ids are identities, not magnitudes): the fewest unequal aligned pairs.

Every window, length, eps and count is range-checked here (``SeriesError``, a
``ValueError``): the kernels index arrays with them unchecked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from . import kernels_temporal as kt
from .kernels import PARALLEL_LOCK
from .validate import SeriesError, as_series, real, whole

ALGORITHMS = ("dtw", "lcs", "edit", "euclidean")
FLAT = 1e-8
"""A subsequence whose std is below FLAT times the typical subsequence's has no shape, and is no motif."""


@dataclass(frozen=True, slots=True)
class DTWResult:
    distance: float
    path: np.ndarray | None = None
    """(k, 2) array of matched index pairs, start to end, when asked for."""


def _window(window: int | None, longest: int = 0) -> int:
    """The kernels' band half-width: -1 for none; a band as wide as the longer series is none either (kept to
    that width: a huge one would overflow the kernels' int64 index arithmetic)."""
    return -1 if window is None else min(whole("window", window, 0), max(longest, 1))


def _common_level(a, b):
    """Two series of whole numbers, either past 2^53, as their exact differences from the least value of both.

    float64 has no value of its own for most whole numbers past 2^53 (2^60 + 1 is 2^60), and the distances here
    do not see a level both series share: moved together, 2^60 + k and 2^60 + k + 1 stay one apart. (Each moved by
    its own least value, they would not: 2^60 + k would be 0 away from k.) Anything else comes back as it came."""
    try:
        ra, rb = np.asarray(a), np.asarray(b)
    except (TypeError, ValueError):
        return a, b  # (as_series says why)
    if not (ra.dtype.kind in "biu" and rb.dtype.kind in "biu" and ra.size and rb.size):
        return a, b
    lo, hi = min(int(ra.min()), int(rb.min())), max(int(ra.max()), int(rb.max()))
    if -(1 << 53) <= lo and hi <= 1 << 53 or hi - lo >= 1 << 64:  # (within float64's whole numbers, or too far
        return a, b                                                  # apart for 64 bits: rounded, as floats)
    level = np.uint64(lo % (1 << 64))  # (differences from it are below 2^64: exact in unsigned arithmetic)
    return ra.astype(np.uint64) - level, rb.astype(np.uint64) - level


def dtw(a, b, *, window: int | None = None, path: bool = False) -> DTWResult:
    a, b = _common_level(a, b)
    x, y = as_series(a, "a"), as_series(b, "b")
    w = _window(window, max(x.size, y.size))
    x, y, scale = _rescaled(x, y)
    if not path:
        return DTWResult(float(kt.dtw_distance(x, y, w)) * scale)
    acc = kt.dtw_matrix(x, y, w)
    return DTWResult(float(np.sqrt(acc[-1, -1])) * scale, kt.dtw_backtrack(acc))


def _rescaled(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Both series divided by a power of two near their largest magnitude (exact), and that factor.

    Squared differences of values near 1e160 overflow and near 1e-160 underflow;
    the distances here are homogeneous (d(c a, c b) = c d(a, b)), so they are
    computed on the rescaled values and multiplied back."""
    peak = max(float(np.abs(x).max(initial=0.0)), float(np.abs(y).max(initial=0.0)))
    if peak == 0.0:
        return x, y, 1.0
    scale = math.ldexp(1.0, math.frexp(peak)[1] - 1)  # 2**(e-1) <= peak < 2**e: values below 2, never inf
    return x / scale, y / scale, scale


def token_dtw(a, b, *, window: int | None = None) -> int:
    """DTW of two token-id sequences, cost 1 per aligned pair of unequal tokens (0 when equal)."""
    a, b = _common_level(a, b)
    x, y = as_series(a, "a"), as_series(b, "b")
    return int(kt.dtw_mismatches(x, y, _window(window, max(x.size, y.size))))


def lcs(a, b, *, eps: float = 0.0) -> int:
    a, b = _common_level(a, b)
    return int(kt.lcs_length(as_series(a, "a"), as_series(b, "b"), real("eps", eps)))


def edit_distance(a, b, *, eps: float = 0.0) -> int:
    a, b = _common_level(a, b)
    return int(kt.levenshtein(as_series(a, "a", min_len=0), as_series(b, "b", min_len=0), real("eps", eps)))


def euclidean(a, b) -> float:
    a, b = _common_level(a, b)
    x, y = as_series(a, "a"), as_series(b, "b")
    if x.size != y.size:
        raise SeriesError(f"euclidean needs equal lengths, got {x.size} and {y.size} (use dtw)")
    x, y, scale = _rescaled(x, y)
    return float(np.sqrt(np.sum((x - y) ** 2))) * scale


@dataclass(frozen=True, slots=True)
class Match:
    position: int
    """Start index of the match in the haystack."""
    distance: float


def distance_profile(haystack, needle, *, metric: str = "euclidean", znorm: bool = False,
                     window: int | None = None) -> np.ndarray:
    """Distance of ``needle`` to every same-length window of ``haystack``."""
    h, q = as_series(haystack, "haystack"), as_series(needle, "needle")
    if q.size > h.size:
        raise SeriesError(f"needle ({q.size}) is longer than haystack ({h.size})")
    h, q, scale = _rescaled(h, q)
    if metric == "euclidean":
        return kt.euclidean_profile(h, q, bool(znorm)) * (1.0 if znorm else scale)
    if metric == "dtw":
        if znorm:
            raise SeriesError("znorm is available with metric='euclidean' only")
        return kt.dtw_profile(h, q, _window(window, q.size)) * scale
    raise SeriesError(f"metric {metric!r}: expected 'euclidean' or 'dtw'")


def find_similar(haystack, needle, threshold: float, *, metric: str = "euclidean", znorm: bool = False,
                 window: int | None = None, max_matches: int | None = None) -> list[Match]:
    """Non-overlapping windows within ``threshold`` of the needle, best first.

    A match excludes every other start closer than half the needle's length,
    so one occurrence is reported once, at its best alignment.
    """
    threshold = real("threshold", threshold)
    if max_matches is not None:
        max_matches = whole("max_matches", max_matches, 0)
    profile = distance_profile(haystack, needle, metric=metric, znorm=znorm, window=window)
    m = np.asarray(needle).size
    exclusion = max(1, m // 2)
    order = np.argsort(profile, kind="stable")
    taken = np.zeros(profile.size, dtype=bool)
    matches: list[Match] = []
    for pos in order:
        d = float(profile[pos])
        if d > threshold or (max_matches is not None and len(matches) >= max_matches):
            break
        if taken[pos]:
            continue
        matches.append(Match(int(pos), d))
        taken[max(0, pos - exclusion + 1): pos + exclusion] = True
    return matches


def cells(n: int, m: int, algorithm: str, window: int | None = None) -> int:
    """How many cells of the n x m table ``algorithm`` fills (DTW: those in its band; Euclidean: n): its work."""
    if algorithm == "euclidean":
        return n
    if algorithm == "dtw" and window is not None:
        below, above = kt.dtw_band(n, m, window)
        return min(n * m, n * (below + above + 1))
    return n * m


def compare(a, b, algorithm: str, *, window: int | None = None, eps: float = 0.0, tokens: bool = False,
            max_cells: float | None = None) -> dict:
    """One comparison as a JSON-ready dict (used by ``midstream compare``).

    With ``tokens`` the values are token ids (identities): DTW counts unequal
    aligned pairs (0/1 cost), LCS and edit match tokens exactly (``eps`` must be
    0), and Euclidean, which needs magnitudes, is refused. With ``max_cells``, a
    comparison that would fill more cells (``cells``) is refused before it starts:
    the kernels cannot be interrupted, and 10^6 x 10^6 values run for an hour.
    """
    a, b = _common_level(a, b)
    x, y = as_series(a, "A"), as_series(b, "B")
    eps = real("eps", eps)
    _window(window)
    work = cells(int(x.size), int(y.size), algorithm, window)
    if max_cells is not None and work > real("max_cells", max_cells):
        raise SeriesError(f"{algorithm} of {x.size:,} x {y.size:,} values fills {work:,} cells, over the limit of "
                          f"{max_cells:,.0f} (0.4 to 2.5 s of CPU per 10^9 on a 2020s core, and it cannot be "
                          "interrupted): "
                          + ("band it with --window W (n x (2W + 1 + |n - m|) cells), " if algorithm == "dtw" else "")
                          + "compare shorter pieces, or raise --max-cells")
    if tokens:
        if eps != 0:
            raise SeriesError(f"eps {eps:g}: tokens match only when identical (eps applies to numeric series)")
        if algorithm == "dtw":
            return {"algorithm": algorithm, "value": token_dtw(x, y, window=window), "len_a": int(x.size),
                    "len_b": int(y.size), "window": window, "cost": "tokens: 1 per unequal aligned pair"}
        if algorithm == "euclidean":
            raise SeriesError("euclidean compares magnitudes, and token ids have none: "
                              "use dtw, edit or lcs for tokens")
    if algorithm == "dtw":
        value: float = dtw(x, y, window=window).distance
        extra = {"window": window}
    elif algorithm == "lcs":
        value = lcs(x, y, eps=eps)
        extra = {"similarity": value / max(x.size, y.size), "eps": eps}
    elif algorithm == "edit":
        value = edit_distance(x, y, eps=eps)
        extra = {"similarity": 1.0 - value / max(x.size, y.size), "eps": eps}
    elif algorithm == "euclidean":
        value = euclidean(x, y)
        extra = {}
    else:
        raise SeriesError(f"algorithm {algorithm!r}: expected one of {', '.join(ALGORITHMS)}")
    return {"algorithm": algorithm, "value": value, "len_a": int(x.size), "len_b": int(y.size), **extra}


@dataclass(frozen=True, slots=True)
class Motif:
    """A pair of similar subsequences: the shape that recurs, and where."""

    positions: tuple[int, int]
    distance: float
    """Z-normalized Euclidean distance (0: identical shape; sqrt(2m) is uncorrelated)."""
    length: int


def find_motifs(x, length: int, *, k: int = 3, exclusion: int | None = None) -> list[Motif]:
    """The ``k`` best non-overlapping motif pairs of ``length`` samples (by shape).

    Uses the matrix profile: each subsequence's distance to its nearest match
    at least ``exclusion`` (default ``length // 2``) starts away. Motifs are
    taken best first; a motif excludes both of its occurrences' neighbourhoods.
    """
    a = as_series(x, "x", level_free=True)
    if a.size < 6:
        raise SeriesError(f"x: too short for motifs ({a.size} values, need at least 6)")
    length = whole("motif length", length, 3, a.size // 2)
    k = whole("k", k, 0)
    excl = max(1, length // 2) if exclusion is None else whole("exclusion", exclusion, 1, a.size)
    peak = float(np.abs(a).max())
    c = a / peak if peak > 0 else a  # shape is scale-free; this keeps squares finite at 1e+-300
    # Centred on its median, and "flat" judged against its typical spread (the median absolute deviation), not
    # the mean and the std: one spike of 1e11 on a random walk made every other window read as shapeless, and
    # the mean it moved left an offset whose rounding, times the spike's step, swamped the others' products.
    c = np.ascontiguousarray(c - np.median(c))
    # ... or against the typical window's own spread, whichever is less: a step of the level by 1e11 half-way
    # through a random walk made the median absolute deviation half the step, and every window of the walk flat;
    # in a short series most windows can hold one spike, and the median window is one of them.
    inv = kt.window_stats(c, length, 0.0)[1]
    shaped = inv[inv > 0.0]
    spreads = [s for s in (1.4826 * float(np.median(np.abs(c))),
                           float(np.median(1.0 / shaped)) / math.sqrt(length) if shaped.size else 0.0) if s > 0]
    spread = min(spreads) if spreads else float(c.std())
    flat = FLAT * max(spread, 1e-300)
    with PARALLEL_LOCK:
        # Twice as many runs as threads balances the load; at most 8 bounds the memory (16 bytes per window
        # and run).
        profile, index = kt.matrix_profile(c, length, excl, flat, min(8, 2 * numba.get_num_threads()),
                                           kt.ROUGH * max(spread, 1e-300))
    shapeless = kt.window_stats(c, length, flat)[1] == 0.0  # a flat window is nobody's motif
    taken = np.zeros(profile.size, dtype=bool)
    motifs: list[Motif] = []
    for i in np.argsort(profile, kind="stable"):
        j = int(index[i])
        if len(motifs) >= k or not np.isfinite(profile[i]) or j < 0:
            break
        if taken[i] or taken[j] or shapeless[i] or shapeless[j]:
            continue
        motifs.append(Motif((int(min(i, j)), int(max(i, j))), float(profile[i]), length))
        for p in (i, j):
            taken[max(0, p - excl + 1): p + excl] = True
    return motifs
