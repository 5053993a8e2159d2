"""Numba kernels for comparing sequences: DTW, LCS, edit distance, distance profiles.

Like ``kernels.py``: ``@njit(cache=True, nogil=True)``, clean contiguous float64
input (token ids are exact in float64 below 2**53), validation in the wrapper
(``temporal.py``). Every result depends on the full input only: nothing here
caches anything.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .kernels import PARALLEL_LOCK


@njit(cache=True, nogil=True)
def dtw_band(n, m, window):
    """The Sakoe-Chiba band as (below, above): a pair (i, j) may be matched when
    i - j <= below and j - i <= above. Unbounded when ``window`` < 0. Otherwise
    ``window`` is the radius, and for unequal lengths the band is stretched by
    the length difference on the side that needs it (the longer sequence's
    index may run ahead by it), so the corner is always reachable: tslearn's
    ``sakoe_chiba_mask(radius=window)`` and dtaidistance's ``window=window + 1``."""
    if window < 0:
        w = max(n, m)
        return w, w
    return window + max(0, n - m), window + max(0, m - n)


@njit(cache=True, nogil=True)
def _diagonal_cells(xa, xb, up, left, diag, out):
    """One anti-diagonal of the DTW recurrence, on views indexed from 0.

    A function of its own on purpose: inside ``dtw_distance`` the three
    diagonal buffers rotate, LLVM cannot tell them apart and emits scalar code;
    here they are separate arguments and the loop vectorizes (4x faster)."""
    for t in range(out.shape[0]):
        diff = xa[t] - xb[t]
        out[t] = diff * diff + min(min(up[t], left[t]), diag[t])


@njit(cache=True, nogil=True)
def dtw_distance(a, b, window):
    """sqrt of the least total squared difference over warping paths inside the band (``dtw_band``).

    Sweeps anti-diagonals (i + j = k) instead of rows: cells on one diagonal
    depend only on the two previous diagonals, so the inner loop carries no
    dependency and vectorizes, where a row sweep waits on its left neighbour
    at every cell. Diagonals are indexed by i, with ``b`` reversed so every
    access is contiguous. Memory: three diagonals, O(len(a)).
    """
    n, m = a.shape[0], b.shape[0]
    below, above = dtw_band(n, m, window)
    inf = np.inf
    br = b[::-1].copy()  # b[k - i - 1] == br[m - k + i]
    d2 = np.full(n + 2, inf)  # diagonal k - 2
    d1 = np.full(n + 2, inf)  # diagonal k - 1
    d0 = np.full(n + 2, inf)  # diagonal k
    d2[0] = 0.0  # cell (0, 0) before the first element: the origin (diagonal 0)
    for k in range(2, n + m + 1):
        lo = max(1, k - m, (k - above + 1) // 2)  # j - i <= above, with j = k - i
        hi = min(n, k - 1, (k + below) // 2)  # i - j <= below
        if lo > hi:
            d2, d1, d0 = d1, d0, d2
            d1[:] = inf
            continue
        d0[lo - 1] = inf
        d0[hi + 1] = inf
        _diagonal_cells(a[lo - 1:hi], br[m - k + lo:m - k + hi + 1], d1[lo - 1:hi], d1[lo:hi + 1],
                        d2[lo - 1:hi], d0[lo:hi + 1])
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
    below, above = dtw_band(n, m, window)
    big = n + m + 1
    prev = np.full(m + 1, big, dtype=np.int64)
    cur = np.full(m + 1, big, dtype=np.int64)
    prev[0] = 0
    for i in range(1, n + 1):
        lo = max(1, i - below)
        hi = min(m, i + above)
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
    below, above = dtw_band(n, m, window)
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(max(1, i - below), min(m, i + above) + 1):
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
def window_stats(x, m, flat):
    """Mean and 1/norm (1/sqrt of the sum of squared deviations) of every length-m window.

    Two passes per window (mean, then deviations), never E[x^2] - E[x]^2, which
    cancels to noise when the level is large against the variation (1e8 + a
    random walk). A window whose std is below ``flat`` has no shape: 1/norm 0.
    """
    n = x.shape[0] - m + 1
    mu = np.empty(n)
    inv = np.empty(n)
    for i in range(n):
        s = 0.0
        for k in range(m):
            s += x[i + k]
        mu[i] = s / m
        ss = 0.0
        for k in range(m):
            d = x[i + k] - mu[i]
            ss += d * d
        inv[i] = 1.0 / np.sqrt(ss) if np.sqrt(ss / m) > flat else 0.0
    return mu, inv


@njit(cache=True, nogil=True, inline="always")
def _closer(r, best, gap, w, partner):
    """Does correlation ``r`` with a partner ``gap`` starts from window ``w`` beat the best so far? A higher
    correlation wins; an equal one when the partner is nearer in time (so the result does not depend on
    the order diagonals are visited in, nor on how they are cut into parallel runs)."""
    return r > best or (r == best and partner >= 0 and gap < abs(w - partner))


@njit(cache=True, nogil=True)
def _diagonal(x, m, mu, inv, df, dg, diag, i_from, c, best, index, rough):
    """Continue one diagonal from row ``i_from`` (``c``: its centred cross-product at row
    ``i_from - 1``, or at row 0 when ``i_from`` is 0), keeping each window's best correlation in ``best`` and its partner in ``index``.
    Where the last ``rough`` window of a pair has just left it, the cross-product is computed anew (see ROUGH)."""
    n = mu.shape[0]
    for i in range(i_from, n - diag):
        j = i + diag
        if i > 0:
            if (rough[i - 1] or rough[j - 1]) and not (rough[i] or rough[j]):
                c = 0.0
                for k in range(m):
                    c += (x[i + k] - mu[i]) * (x[j + k] - mu[j])
            else:
                c += df[i] * dg[j] + df[j] * dg[i]
        r = c * inv[i] * inv[j]
        if _closer(r, best[i], diag, i, index[i]):
            best[i] = r
            index[i] = j
        if _closer(r, best[j], diag, j, index[j]):
            best[j] = r
            index[j] = i


@njit(cache=True, nogil=True)
def _profile_diagonals(x, m, mu, inv, df, dg, rough, d_from, d_to, best, index):
    """Fold diagonals [d_from, d_to) of the correlation matrix into ``best`` and ``index``.

    Along a diagonal the windows' centred cross-product is updated in O(1) per
    step (the SCAMP recurrence, Zimmerman et al. 2019): with
    df[i] = (x[i+m-1] - x[i-1]) / 2 and dg[i] = (x[i+m-1] - mu[i]) + (x[i-1] - mu[i-1]),
    C(i, j) = C(i-1, j-1) + df[i] dg[j] + df[j] dg[i]. Every term is centred,
    so nothing cancels the way raw dot products minus m mu_i mu_j do. That
    update is a chain each step waits on, so four diagonals run side by side
    (four independent chains keep the core busy). Ties go to the partner nearest in time.
    """
    n = mu.shape[0]
    d = d_from
    while d + 3 < d_to:
        c0 = 0.0
        c1 = 0.0
        c2 = 0.0
        c3 = 0.0
        for k in range(m):
            v = x[k] - mu[0]
            c0 += v * (x[d + k] - mu[d])
            c1 += v * (x[d + 1 + k] - mu[d + 1])
            c2 += v * (x[d + 2 + k] - mu[d + 2])
            c3 += v * (x[d + 3 + k] - mu[d + 3])
        steps = n - d - 3  # rows all four diagonals have
        for i in range(steps):
            j = i + d
            if i > 0:
                a = df[i]
                b = dg[i]
                c0 += a * dg[j] + df[j] * b
                c1 += a * dg[j + 1] + df[j + 1] * b
                c2 += a * dg[j + 2] + df[j + 2] * b
                c3 += a * dg[j + 3] + df[j + 3] * b
            w = inv[i]
            r0 = c0 * w * inv[j]
            r1 = c1 * w * inv[j + 1]
            r2 = c2 * w * inv[j + 2]
            r3 = c3 * w * inv[j + 3]
            if _closer(r0, best[i], d + 0, i, index[i]):
                best[i] = r0
                index[i] = j
            if _closer(r1, best[i], d + 1, i, index[i]):
                best[i] = r1
                index[i] = j + 1
            if _closer(r2, best[i], d + 2, i, index[i]):
                best[i] = r2
                index[i] = j + 2
            if _closer(r3, best[i], d + 3, i, index[i]):
                best[i] = r3
                index[i] = j + 3
            if _closer(r0, best[j], d + 0, j, index[j]):
                best[j] = r0
                index[j] = i
            if _closer(r1, best[j + 1], d + 1, j + 1, index[j + 1]):
                best[j + 1] = r1
                index[j + 1] = i
            if _closer(r2, best[j + 2], d + 2, j + 2, index[j + 2]):
                best[j + 2] = r2
                index[j + 2] = i
            if _closer(r3, best[j + 3], d + 3, j + 3, index[j + 3]):
                best[j + 3] = r3
                index[j + 3] = i
        # The three longer diagonals have rows left: finish them one by one.
        if steps > 0:  # (``c`` is the cross-product at the row before ``i_from``)
            _diagonal(x, m, mu, inv, df, dg, d, steps, c0, best, index, rough)
            _diagonal(x, m, mu, inv, df, dg, d + 1, steps, c1, best, index, rough)
            _diagonal(x, m, mu, inv, df, dg, d + 2, steps, c2, best, index, rough)
        d += 4
    while d < d_to:
        c = 0.0
        for k in range(m):
            c += (x[k] - mu[0]) * (x[d + k] - mu[d])
        _diagonal(x, m, mu, inv, df, dg, d, 0, c, best, index, rough)
        d += 1


ROUGH = 65536.0
"""A window whose spread is this many times the series' typical spread (a spike, a step of the level) leaves, in a
diagonal's running cross-product, rounding of the order of its square times 2^-52 once it has passed: more than a
typical pair's whole cross-product past about 2^26 (a spike of 1e11 on a random walk made every later pair
correlate to 1, distance 0). Past this ratio the diagonals are computed anew where such a window leaves them
(the rounding left is then at most 2^-20 of a typical pair's)."""


@njit(cache=True, nogil=True)
def _profile_rough(x, m, mu, inv, df, dg, rough, d_from, d_to, best, index):
    """``_profile_diagonals`` for a series with rough windows (``rough``): one diagonal at a time, its cross-product
    computed directly again at each row where the last rough window of the pair has just left it."""
    for d in range(d_from, d_to):
        c = 0.0
        for k in range(m):
            c += (x[k] - mu[0]) * (x[d + k] - mu[d])
        _diagonal(x, m, mu, inv, df, dg, d, 0, c, best, index, rough)


@njit(cache=True, nogil=True, parallel=True)
def matrix_profile(x, m, exclusion, flat, chunks, rough_std=np.inf):
    """Z-normalized Euclidean matrix profile (Yeh et al. 2016), diagonal updates, on every core.

    For every subsequence of length m: the distance to its nearest other
    subsequence at least ``exclusion`` starts away, and where that is (-1 and
    inf when there is none). O(n^2) time. The diagonals are cut into
    ``chunks`` runs of equal work, computed in parallel into profiles of their
    own, then merged (ties to the partner nearest in time, so the result is the
    same however the work is cut): memory O(n * chunks). ``x`` should be centred (its level subtracted):
    the result does not depend on it, the rounding does. Subsequences whose
    std is below ``flat`` have no shape: sqrt(2m) (uncorrelated) from everything. Those whose std is above
    ``rough_std`` are rough (see ROUGH).
    """
    n = x.shape[0] - m + 1
    mu, inv = window_stats(x, m, flat)
    chunks = max(1, chunks)
    # Chunk boundaries: diagonal d has n - d cells; split the total evenly.
    total = 0.0
    for d in range(exclusion, n):
        total += n - d
    bounds = np.empty(chunks + 1, dtype=np.int64)
    bounds[0] = exclusion
    acc = 0.0
    c = 1
    for d in range(exclusion, n):
        acc += n - d
        while c < chunks and acc >= total * c / chunks:
            bounds[c] = d + 1
            c += 1
    while c <= chunks:
        bounds[c] = max(n, exclusion)
        c += 1
    # df, dg: the SCAMP update terms (row 0 has none).
    df = np.zeros(n)
    dg = np.zeros(n)
    for i in range(1, n):
        df[i] = 0.5 * (x[i + m - 1] - x[i - 1])
        dg[i] = (x[i + m - 1] - mu[i]) + (x[i - 1] - mu[i - 1])
    # Best Pearson correlation per window (a flat window has 1/norm 0: correlation 0,
    # distance sqrt(2m), no branch needed); converted to distances at the end.
    # Windows far rougher than the typical one (see ROUGH): the diagonals are then followed with care.
    rough = np.zeros(n, dtype=np.uint8)
    any_rough = False
    limit = 1.0 / (rough_std * np.sqrt(m))  # (1/norm of a window whose std is rough_std)
    for i in range(n):
        if 0.0 < inv[i] < limit:
            rough[i] = 1
            any_rough = True
    bests = np.full((chunks, n), -np.inf)
    indices = np.full((chunks, n), -1, dtype=np.int64)
    for c in prange(chunks):
        if any_rough:
            _profile_rough(x, m, mu, inv, df, dg, rough, bounds[c], bounds[c + 1], bests[c], indices[c])
        else:
            _profile_diagonals(x, m, mu, inv, df, dg, rough, bounds[c], bounds[c + 1], bests[c], indices[c])
    profile = np.full(n, np.inf)
    index = np.full(n, -1, dtype=np.int64)
    for i in prange(n):
        best = -np.inf
        where = -1
        for c in range(chunks):
            if indices[c, i] >= 0 and _closer(bests[c, i], best, abs(i - indices[c, i]), i, where):
                best = bests[c, i]
                where = indices[c, i]
        if where >= 0:
            d2 = 2.0 * m * (1.0 - min(best, 1.0))
            profile[i] = np.sqrt(d2)
            index[i] = where
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
    with PARALLEL_LOCK:
        matrix_profile(x - x.mean(), 3, 1, 1e-9, 2)
