"""Numba kernels for comparing sequences: DTW, LCS, edit distance, distance profiles.

Like ``kernels.py``: ``@njit(cache=True, nogil=True)``, clean contiguous float64
input (token ids are exact in float64 below 2**53), validation in the wrapper
(``temporal.py``). Every result depends on the full input only: nothing here
caches anything.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def dtw_band(n, m, window):
    """The effective Sakoe-Chiba half-width: unbounded if < 0, never narrower
    than |n - m| (otherwise no warping path would reach the corner)."""
    w = max(n, m) if window < 0 else window
    return max(w, abs(n - m))


@njit(cache=True, nogil=True)
def dtw_distance(a, b, window):
    """sqrt of the least total squared difference over warping paths, |i - j| <= band.

    Sweeps anti-diagonals (i + j = k) instead of rows: cells on one diagonal
    depend only on the two previous diagonals, so the inner loop carries no
    dependency and vectorizes, where a row sweep waits on its left neighbour
    at every cell. Diagonals are indexed by i, with ``b`` reversed so every
    access is contiguous. Memory: three diagonals, O(len(a)).
    """
    n, m = a.shape[0], b.shape[0]
    w = dtw_band(n, m, window)
    inf = np.inf
    br = b[::-1].copy()  # b[k - i - 1] == br[m - k + i]
    d2 = np.full(n + 2, inf)  # diagonal k - 2
    d1 = np.full(n + 2, inf)  # diagonal k - 1
    d0 = np.full(n + 2, inf)  # diagonal k
    d2[0] = 0.0  # cell (0, 0) before the first element: the origin (diagonal 0)
    for k in range(2, n + m + 1):
        lo = max(1, k - m, (k - w + 1) // 2)
        hi = min(n, k - 1, (k + w) // 2)
        if lo > hi:
            d2, d1, d0 = d1, d0, d2
            d1[:] = inf
            continue
        d0[lo - 1] = inf
        d0[hi + 1] = inf
        # Views indexed from 0: the index is provably non-negative, so numba
        # emits no wraparound check and LLVM vectorizes the loop.
        width = hi - lo + 1
        xa = a[lo - 1:hi]
        xb = br[m - k + lo:m - k + hi + 1]
        up = d1[lo - 1:hi]
        left = d1[lo:hi + 1]
        diag = d2[lo - 1:hi]
        out = d0[lo:hi + 1]
        for t in range(width):
            diff = xa[t] - xb[t]
            out[t] = diff * diff + min(min(up[t], left[t]), diag[t])
        d2, d1, d0 = d1, d0, d2
    return np.sqrt(d1[n])


@njit(cache=True, nogil=True)
def dtw_mismatches(a, b, window):
    """DTW over token ids with a 0/1 local cost: the fewest unequal pairs on a warping path, |i - j| <= band.

    Token ids are identities, not magnitudes: two tokens either match (cost 0)
    or not (cost 1), however far apart their ids are. Rows of the band only;
    memory O(len(b)).
    """
    n, m = a.shape[0], b.shape[0]
    w = dtw_band(n, m, window)
    big = n + m + 1
    prev = np.full(m + 1, big, dtype=np.int64)
    cur = np.full(m + 1, big, dtype=np.int64)
    prev[0] = 0
    for i in range(1, n + 1):
        lo = max(1, i - w)
        hi = min(m, i + w)
        cur[lo - 1] = big  # the cells next to the band are read by this row and the next: off the path
        if hi < m:
            cur[hi + 1] = big
        ai = a[i - 1]
        for j in range(lo, hi + 1):
            best = prev[j - 1]
            if prev[j] < best:
                best = prev[j]
            if cur[j - 1] < best:
                best = cur[j - 1]
            cur[j] = best + (0 if ai == b[j - 1] else 1)
        prev, cur = cur, prev
    return prev[m]


@njit(cache=True, nogil=True)
def dtw_matrix(a, b, window):
    """The full cumulative-cost matrix (n+1, m+1), for recovering the warping path."""
    n, m = a.shape[0], b.shape[0]
    w = dtw_band(n, m, window)
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(max(1, i - w), min(m, i + w) + 1):
            d = a[i - 1] - b[j - 1]
            acc[i, j] = d * d + min(acc[i - 1, j], acc[i, j - 1], acc[i - 1, j - 1])
    return acc


@njit(cache=True, nogil=True)
def dtw_backtrack(acc):
    """Warping path (pairs of 0-based indices, start to end) through a cost matrix."""
    i, j = acc.shape[0] - 1, acc.shape[1] - 1
    path = np.empty((i + j, 2), dtype=np.int64)
    k = 0
    while i > 0 and j > 0:
        path[k, 0] = i - 1
        path[k, 1] = j - 1
        k += 1
        diag, up, left = acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1]
        if diag <= up and diag <= left:
            i -= 1
            j -= 1
        elif up <= left:
            i -= 1
        else:
            j -= 1
    return path[:k][::-1].copy()


@njit(cache=True, nogil=True)
def lcs_length(a, b, eps):
    """Length of the longest common subsequence; elements match when |a - b| <= eps."""
    n, m = a.shape[0], b.shape[0]
    prev = np.zeros(m + 1, dtype=np.int64)
    cur = np.zeros(m + 1, dtype=np.int64)
    for i in range(1, n + 1):
        ai = a[i - 1]
        for j in range(1, m + 1):
            if abs(ai - b[j - 1]) <= eps:
                cur[j] = prev[j - 1] + 1
            else:
                cur[j] = prev[j] if prev[j] >= cur[j - 1] else cur[j - 1]
        prev, cur = cur, prev
    return prev[m]


@njit(cache=True, nogil=True)
def levenshtein(a, b, eps):
    """Edit distance: fewest insertions, deletions and substitutions turning a into b."""
    n, m = a.shape[0], b.shape[0]
    prev = np.arange(m + 1).astype(np.int64)
    cur = np.zeros(m + 1, dtype=np.int64)
    for i in range(1, n + 1):
        cur[0] = i
        ai = a[i - 1]
        for j in range(1, m + 1):
            sub = prev[j - 1] + (0 if abs(ai - b[j - 1]) <= eps else 1)
            best = prev[j] + 1
            if cur[j - 1] + 1 < best:
                best = cur[j - 1] + 1
            if sub < best:
                best = sub
            cur[j] = best
        prev, cur = cur, prev
    return prev[m]


@njit(cache=True, nogil=True)
def euclidean_profile(haystack, needle, znorm):
    """Euclidean distance of ``needle`` to every window of ``haystack`` (length n - m + 1).

    With ``znorm`` both the needle and each window are z-normalized first (shape,
    not level or scale, is compared); a constant window then has distance
    sqrt(m) to any non-constant needle.
    """
    n, m = haystack.shape[0], needle.shape[0]
    out = np.empty(n - m + 1)
    q = needle.copy()
    if znorm:
        mu = q.mean()
        sd = q.std()
        if sd > 0:
            q = (q - mu) / sd
        else:
            q = q - mu
    for s in range(n - m + 1):
        if znorm:
            mu = 0.0
            for k in range(m):
                mu += haystack[s + k]
            mu /= m
            var = 0.0
            for k in range(m):
                var += (haystack[s + k] - mu) ** 2
            sd = np.sqrt(var / m)
            acc = 0.0
            for k in range(m):
                v = (haystack[s + k] - mu) / sd if sd > 0 else 0.0
                acc += (v - q[k]) ** 2
        else:
            acc = 0.0
            for k in range(m):
                d = haystack[s + k] - q[k]
                acc += d * d
        out[s] = np.sqrt(acc)
    return out


@njit(cache=True, nogil=True)
def dtw_profile(haystack, needle, window):
    """DTW distance of ``needle`` to every window of ``haystack`` of the same length."""
    n, m = haystack.shape[0], needle.shape[0]
    out = np.empty(n - m + 1)
    for s in range(n - m + 1):
        out[s] = dtw_distance(haystack[s:s + m], needle, window)
    return out


@njit(cache=True, nogil=True)
def matrix_profile(x, m, exclusion, flat):
    """Z-normalized Euclidean matrix profile (Yeh et al. 2016), STOMP-style diagonal updates.

    For every subsequence of length m: the distance to its nearest other
    subsequence at least ``exclusion`` starts away, and where that is.
    O(n^2) time, O(n) memory. Subsequences whose std is below ``flat`` have no
    shape: they are sqrt(2m) (uncorrelated) from everything. Squared distances
    are accurate to about 1e-7 (the correlation form cancels for near-identical
    shapes), so distances below about 1e-3 mean "the same shape".
    """
    n = x.shape[0] - m + 1
    mu = np.empty(n)
    sig = np.empty(n)
    for i in range(n):
        s1 = 0.0
        s2 = 0.0
        for k in range(m):
            v = x[i + k]
            s1 += v
            s2 += v * v
        mu[i] = s1 / m
        var = s2 / m - mu[i] * mu[i]
        sd = np.sqrt(var) if var > 0.0 else 0.0
        sig[i] = sd if sd > flat else 0.0
    profile = np.full(n, np.inf)
    index = np.full(n, -1, dtype=np.int64)
    worst = 2.0 * m
    for diag in range(exclusion, n):
        qt = 0.0
        for k in range(m):
            qt += x[k] * x[diag + k]
        for i in range(0, n - diag):
            j = i + diag
            if i > 0:
                qt += x[i + m - 1] * x[j + m - 1] - x[i - 1] * x[j - 1]
            if sig[i] == 0.0 or sig[j] == 0.0:
                d2 = worst
            else:
                corr = (qt - m * mu[i] * mu[j]) / (m * sig[i] * sig[j])
                d2 = 2.0 * m * (1.0 - corr)
                if d2 < 0.0:
                    d2 = 0.0
            if d2 < profile[i]:
                profile[i] = d2
                index[i] = j
            if d2 < profile[j]:
                profile[j] = d2
                index[j] = i
    for i in range(n):
        profile[i] = np.sqrt(profile[i])
    return profile, index


def warm_up() -> None:
    x = np.linspace(0.0, 1.0, 8)
    dtw_distance(x, x[::-1].copy(), -1)
    dtw_backtrack(dtw_matrix(x, x, 2))
    dtw_mismatches(x, x[::-1].copy(), -1)
    lcs_length(x, x, 0.0)
    levenshtein(x, x, 0.0)
    euclidean_profile(x, x[:3].copy(), True)
    dtw_profile(x, x[:3].copy(), 1)
    matrix_profile(x, 3, 1, 1e-9)
