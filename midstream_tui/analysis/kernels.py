"""Numba kernels: small pure functions on arrays, compiled once and cached.

Kernels that take milliseconds (the dynamics) are ``@njit(cache=True, nogil=True)``:
the hub runs them in a worker thread without holding the GIL, and the UI keeps
drawing meanwhile. The small ones called per event or per tick (levels,
thumbnails, rates, percentiles: microseconds each) keep the GIL: releasing it
costs more than they run, since taking it back waits for the thread that took it
(the dashboard's, drawing) to hand it over. Measured with a busy second thread:
0.37 ms per 160x90 frame difference with ``nogil`` against 0.02 ms without; on
the first tick, with a backlog of frames, it held up the first numbers by 0.2 s.
Input validation, units and parameter choices live in the Python wrappers
beside this module; kernels assume clean, finite, contiguous input.
"""

from __future__ import annotations

import threading

import numpy as np
from numba import njit, prange

PARALLEL_LOCK = threading.Lock()
"""numba's default thread pool (workqueue) runs one parallel kernel at a time and aborts the process when two
threads enter it at once: every caller of a ``parallel=True`` kernel holds this lock."""

# ---------------------------------------------------------------- statistics


@njit(cache=True)  # small: keeps the GIL (see the module's note)
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


@njit(cache=True)  # small: keeps the GIL (see the module's note)
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


@njit(cache=True)  # small: keeps the GIL (see the module's note)
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


@njit(cache=True)  # small: keeps the GIL (see the module's note)
def weighted_rate(ts, weights, t_from, t_to, end=-1):
    """Sum of weights with timestamp in [t_from, t_to], divided by the span; the times are read newest first
    and the first one before ``t_from`` ends the sum. ``end``: the arrays are a ring's buffer whose newest value
    is at ``end - 1`` (the values before it, then the buffer's end backwards; -1: at its last place)."""
    span = t_to - t_from
    if span <= 0.0:
        return np.nan
    n = ts.shape[0]
    if end < 0 or end > n:
        end = n
    total = 0.0
    for j in range(n):
        i = end - 1 - j
        if i < 0:
            i += n
        if ts[i] < t_from:
            break
        if ts[i] <= t_to:
            total += weights[i]
    return total / span


# ---------------------------------------------------------------- media


@njit(cache=True)  # small: keeps the GIL (see the module's note)
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


@njit(cache=True)  # small: keeps the GIL (see the module's note)
def spectral_shape(power, bin_hz, rolloff_fraction):
    """(centroid, roll-off) in Hz of a one-sided power spectrum with bins ``bin_hz`` apart.

    The roll-off is the frequency below which ``rolloff_fraction`` of the power lies.
    Silence (no power) gives (0, 0).
    """
    total = 0.0
    weighted = 0.0
    for k in range(power.size):
        total += power[k]
        weighted += power[k] * k
    if total <= 0.0:
        return 0.0, 0.0
    target = total * rolloff_fraction
    acc = 0.0
    roll = power.size - 1
    for k in range(power.size):
        acc += power[k]
        if acc >= target:
            roll = k
            break
    return weighted / total * bin_hz, roll * bin_hz


@njit(cache=True)  # small: keeps the GIL (see the module's note)
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


@njit(cache=True)  # small: keeps the GIL (see the module's note)
def rgb_thumbnail(frame, out_h, out_w):
    """Nearest-neighbour downscale of an RGB uint8 frame to (out_h, out_w, 3)."""
    h, w = frame.shape[0], frame.shape[1]
    out = np.empty((out_h, out_w, 3), dtype=np.uint8)
    for y in range(out_h):
        sy = min(h - 1, (2 * y + 1) * h // (2 * out_h))
        for x in range(out_w):
            sx = min(w - 1, (2 * x + 1) * w // (2 * out_w))
            for c in range(3):
                out[y, x, c] = frame[sy, sx, c]
    return out


@njit(cache=True)  # small: keeps the GIL (see the module's note)
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
def _box_range(x, offset, m):
    """Lower edge and width of the central ~99 % of x[offset:offset + m], from a sorted sample of 400-800
    values (only the boxes' geometry depends on it; outliers go to the edge boxes, so one spike does not
    squeeze every other value into a single box)."""
    step = max(1, m // 400)
    s = np.sort(x[offset:offset + m:step])
    lo = s[(s.size - 1) // 200]
    hi = s[s.size - 1 - (s.size - 1) // 200]
    if not hi > lo:
        lo = s[0]
        hi = s[-1]
    return lo, hi - lo if hi > lo else 1.0


@njit(cache=True, nogil=True)
def _box_of(v, lo, width, boxes):
    """Which of ``boxes`` boxes of ``width`` from ``lo`` holds v; values beyond either end go to the end box
    (clamped before the conversion to an integer, which would overflow 1e19 widths away)."""
    f = np.floor((v - lo) / width)
    if not f > 0.0:
        return 0
    if f >= boxes - 1:
        return boxes - 1
    return int(f)


@njit(cache=True, nogil=True)
def _scan_index(x, m):
    """``neighbour_grid``'s sorted scan: vectors 0..m-1 in the order of their first coordinate, and each
    one's rank in that order."""
    order = np.argsort(x[:m])
    where = np.empty((m, 2), dtype=np.int64)
    for r in range(m):
        where[order[r], 0] = r
        where[order[r], 1] = 0
    return np.zeros(1, dtype=np.int64), order, where, np.zeros(2, dtype=np.int64), np.zeros(3)


NN_PER_BOX = 2
"""Vectors per occupied box in the neighbour search for one nearest neighbour (k of them: k/2)."""
GRID_MIN = 2_000
"""Fewer vectors than this are searched by the sorted scan: building boxes costs more than it saves."""
CROWDED = 64
"""A box holding more than this many vectors per ``per_box`` (an orbit settling into a point, where
boxes cannot be made small enough) sends the search back to the sorted scan, which adapts to density."""


TREE_LEAF = 16
"""Vectors per leaf of the k-d tree, about (halving leaves between ``leaf`` / 2 and ``leaf`` + 1)."""
TRIAL_SEARCHES = 32
"""Searches ``neighbour_index`` tries on the boxes to count how many vectors a search looks at."""


@njit(cache=True, nogil=True)
def _select_rows(pts, order, dim, lo, hi, kth, col):
    """Reorder rows lo..hi-1 of ``pts`` (``dim`` values a row, flat) and ``order`` alike, so that row kth holds the
    kth smallest value of column ``col``, the rows before it none larger and those after it none smaller (Hoare's
    selection, stopping on equal values, so repeated values cost no more than distinct ones; the pivot is the
    median of three)."""
    left = lo
    right = hi - 1
    while left < right:
        a = pts[left * dim + col]
        b = pts[kth * dim + col]
        c = pts[right * dim + col]
        pivot = max(min(a, b), min(max(a, b), c))
        i = left
        j = right
        while i <= j:
            while pts[i * dim + col] < pivot:
                i += 1
            while pivot < pts[j * dim + col]:
                j -= 1
            if i <= j:
                for q in range(dim):
                    tmp = pts[i * dim + q]
                    pts[i * dim + q] = pts[j * dim + q]
                    pts[j * dim + q] = tmp
                t = order[i]
                order[i] = order[j]
                order[j] = t
                i += 1
                j -= 1
        if j < kth:
            left = i
        if kth < i:
            right = j


@njit(cache=True, nogil=True)
def neighbour_tree(x, dim, lag, m, leaf):
    """A k-d tree over delay vectors 0..m-1 for ``k_nearest``, in the tuple shape of ``neighbour_grid``.

    Balanced and implicit: node n's children are 2n+1 and 2n+2, each with half of its vectors, split at the
    median of the coordinate its vectors spread most along, down to leaves of about ``leaf`` vectors.
    Returns (an empty marker, the vectors in leaf order, each node's [start, stop) in that order, [-1, nodes,
    first leaf, dim], [each node's bounding box (dim lower then dim upper edges) ..., the vectors' coordinates
    in leaf order]). O(m) memory for a given dimension; the coordinates are copies, so distances come out to
    the last bit as from the series."""
    depth = 0
    while (m >> depth) > leaf:
        depth += 1
    nodes = (1 << (depth + 1)) - 1
    first_leaf = (1 << depth) - 1
    order = np.arange(m)
    span = np.empty((nodes, 2), dtype=np.int64)
    geometry = np.empty(nodes * 2 * dim + m * dim)
    pts = geometry[nodes * 2 * dim:]  # the vectors, one row each, moved with ``order`` as the tree is built
    for t in range(m):
        for c in range(dim):
            pts[t * dim + c] = x[t + c * lag]
    span[0, 0] = 0
    span[0, 1] = m
    for n in range(first_leaf):  # parents before children
        lo = span[n, 0]
        hi = span[n, 1]
        # The coordinate to split: the one spread widest over (at most 64 of) the node's vectors.
        step = max(1, (hi - lo) // 64)
        widest = 0
        spread = -1.0
        for c in range(dim):
            low = np.inf
            high = -np.inf
            for t in range(lo, hi, step):
                v = pts[t * dim + c]
                low = min(low, v)
                high = max(high, v)
            if high - low > spread:
                spread = high - low
                widest = c
        mid = (lo + hi) // 2
        if hi - lo > 1:
            _select_rows(pts, order, dim, lo, hi, mid, widest)
        span[2 * n + 1, 0] = lo
        span[2 * n + 1, 1] = mid
        span[2 * n + 2, 0] = mid
        span[2 * n + 2, 1] = hi
    # Bounding boxes from the leaves up: a leaf's from its vectors, a parent's from its two children's.
    for n in range(nodes - 1, -1, -1):
        box = n * 2 * dim
        if n >= first_leaf:
            for c in range(dim):
                geometry[box + c] = np.inf
                geometry[box + dim + c] = -np.inf
            for t in range(span[n, 0], span[n, 1]):
                for c in range(dim):
                    v = pts[t * dim + c]
                    geometry[box + c] = min(geometry[box + c], v)
                    geometry[box + dim + c] = max(geometry[box + dim + c], v)
        else:
            a = (2 * n + 1) * 2 * dim
            b = a + 2 * dim
            for c in range(dim):
                geometry[box + c] = min(geometry[a + c], geometry[b + c])
                geometry[box + dim + c] = max(geometry[a + dim + c], geometry[b + dim + c])
    return (np.zeros(0, dtype=np.int64), order, span, np.array([-1, nodes, first_leaf, dim], dtype=np.int64),
            geometry)


@njit(cache=True, nogil=True, inline="always")
def _box_gap(x, dim, lag, i, geometry, n):
    """Squared distance from delay vector ``i`` to node n's bounding box (0 inside it)."""
    box = n * 2 * dim
    gap = 0.0
    for c in range(dim):  # (without branches: which side of a box a vector lies is a coin toss to a CPU)
        v = x[i + c * lag]
        below = max(geometry[box + c] - v, 0.0)
        above = max(v - geometry[box + dim + c], 0.0)
        gap += below * below + above * above
    return gap


@njit(cache=True, nogil=True)
def _tree_nearest(x, dim, lag, i, k, theiler, tree, out_idx, out_d2):
    """``k_nearest`` on a ``neighbour_tree``: depth first, the nearer child first, skipping every node whose box is
    farther than the k-th nearest found (strictly: an equally distant earlier vector may still be in it)."""
    _marker, items, span, shape, geometry = tree
    first_leaf = shape[2]
    base = shape[1] * 2 * dim
    # Nodes to visit, each with its box's distance, in one array (node numbers are exact as doubles): one
    # allocation per search. A depth-first walk holds at most one node per level besides the current path.
    stack = np.empty(4 * 64)
    stack[0] = 0.0
    stack[1] = 0.0
    top = 1
    found = 0
    while top > 0:
        top -= 1
        n = int(stack[2 * top])
        if found == k and stack[2 * top + 1] > out_d2[k - 1]:
            continue
        if n >= first_leaf:
            for t in range(span[n, 0], span[n, 1]):
                j = items[t]
                if abs(i - j) <= theiler:
                    continue
                d = 0.0
                for c in range(dim):
                    diff = x[i + c * lag] - geometry[base + t * dim + c]
                    d += diff * diff
                # The insertion of ``_scan_box``, written out: through a shared helper (inlined or not) both
                # searches ran 2-3x slower (measured 2026-12-05, alternating, Lorenz and noise in 3-4 dimensions).
                if found < k:
                    p = found
                    found += 1
                elif d < out_d2[k - 1] or (d == out_d2[k - 1] and j < out_idx[k - 1]):
                    p = k - 1
                else:
                    continue
                while p > 0 and (out_d2[p - 1] > d or (out_d2[p - 1] == d and out_idx[p - 1] > j)):
                    out_d2[p] = out_d2[p - 1]
                    out_idx[p] = out_idx[p - 1]
                    p -= 1
                out_d2[p] = d
                out_idx[p] = j
            continue
        left = 2 * n + 1
        gl = _box_gap(x, dim, lag, i, geometry, left)
        gr = _box_gap(x, dim, lag, i, geometry, left + 1)
        if gl <= gr:  # the farther one goes on the stack first, to be taken last
            stack[2 * top] = left + 1
            stack[2 * top + 1] = gr
            stack[2 * top + 2] = left
            stack[2 * top + 3] = gl
        else:
            stack[2 * top] = left
            stack[2 * top + 1] = gl
            stack[2 * top + 2] = left + 1
            stack[2 * top + 3] = gr
        top += 2
    return found


@njit(cache=True, nogil=True)
def neighbour_grid(x, dim, lag, m, per_box):
    """Search structure for ``k_nearest`` over delay vectors 0..m-1.

    Box-assisted (Grassberger 1990; Schreiber 1995): each vector goes into a square box by its first and
    last coordinate (by the first alone when dim = 1), the boxes sized so that those holding any vector
    hold about ``per_box`` on average (a thin curve in the plane needs smaller boxes than noise that fills
    it). Short series, and series whose vectors crowd into a few boxes, get the sorted scan instead: the
    vectors ordered by their first coordinate. Returns (cell starts, vectors by cell (or in scan order),
    each vector's box column and row (or rank in scan order), [columns, rows] ([0, 0] for the scan),
    [box width, lower edges])."""
    if m < GRID_MIN:
        return _scan_index(x, m)
    last = (dim - 1) * lag
    lo0, h0 = _box_range(x, 0, m)
    if dim == 1:
        lo1, h1 = lo0, h0
    else:
        lo1, h1 = _box_range(x, last, m)
    h = max(h0, h1)  # square boxes: one width bounds the distance to every box not searched yet
    if not (np.isfinite(h) and np.isfinite(lo0) and np.isfinite(lo1) and h > 0):
        return _scan_index(x, m)  # a range beyond a double (values near 1e308): no boxes to draw
    # Start from boxes that would hold per_box vectors were the vectors spread evenly, then refine once by
    # the occupancy seen (a curve's occupancy falls as 1/side, a filled plane's as 1/side^2).
    side = max(1.0, np.sqrt(m / per_box)) if dim > 1 else max(1.0, m / per_box)
    where = np.empty((m, 2), dtype=np.int64)
    for attempt in range(2):
        cols = int(side * h0 / h) + 1
        rows = int(side * h1 / h) + 1 if dim > 1 else 1
        width = h / side
        # Boxes narrower than the rounding of the values they sit among (noise lost under huge glitches, the bulk
        # a few ulps apart; a range of a few subnormals) have edges that cannot be placed: the scan instead.
        if not width > 1024 * 2.220446049250313e-16 * max(abs(lo0), abs(lo0 + h0), abs(lo1), abs(lo1 + h1)) \
                or not width > 0.0:
            return _scan_index(x, m)
        cells = np.zeros(cols * rows + 1, dtype=np.int64)
        occupied = 0
        for i in range(m):
            c = _box_of(x[i], lo0, width, cols)
            r = _box_of(x[i + last], lo1, width, rows)
            where[i, 0] = c
            where[i, 1] = r
            if cells[c * rows + r + 1] == 0:
                occupied += 1
            cells[c * rows + r + 1] += 1
        mean = m / max(occupied, 1)
        if attempt == 1 or mean <= 2 * per_box:
            break
        side = min(side * mean / per_box, np.sqrt(8.0 * m) if dim > 1 else 8.0 * m)
    fullest = 0
    for b in range(cols * rows):
        fullest = max(fullest, cells[b + 1])
        cells[b + 1] += cells[b]
    if fullest > CROWDED * per_box:
        return _scan_index(x, m)
    fill = cells[:-1].copy()
    items = np.empty(m, dtype=np.int64)
    for i in range(m):
        b = where[i, 0] * rows + where[i, 1]
        items[fill[b]] = i
        fill[b] += 1
    return cells, items, where, np.array([cols, rows], dtype=np.int64), np.array([width, lo0, lo1])


@njit(cache=True, nogil=True)
def _box_candidates(x, dim, lag, i, d2, grid):
    """How many vectors the box search for vector ``i`` looks at when its k-th nearest is at squared distance d2:
    those in the boxes of every ring it opens (the rings out to that distance)."""
    cells, _items, where, shape, geometry = grid
    cols = shape[0]
    rows = shape[1]
    reach = np.sqrt(d2) / geometry[0] + 1.0
    rings = int(min(reach, max(cols, rows)))
    c0 = where[i, 0]
    r0 = where[i, 1]
    total = 0
    for c in range(max(0, c0 - rings), min(cols, c0 + rings + 1)):
        lo = c * rows + max(0, r0 - rings)
        hi = c * rows + min(rows, r0 + rings + 1)
        total += cells[hi] - cells[lo]
    return total


@njit(cache=True, nogil=True)
def neighbour_index(x, dim, lag, m, k, theiler, searches):
    """The faster search structure for about ``searches`` searches of the ``k`` nearest among delay vectors
    0..m-1: ``neighbour_grid``'s boxes or sorted scan, or a k-d tree (``neighbour_tree``). Boxes and tree find
    the same neighbours (the k nearest, ties to the earlier vector; the scan's own tie rule is kept where it is
    used).

    Boxes drawn on two coordinates are best in two dimensions and on a thin attractor; in three or more
    dimensions, on noise or a wide attractor, a box's vectors are close in those two coordinates only, and a
    search looks at ten to a hundred times more vectors than it keeps. A few trial searches count how many:
    the tree is taken when they would cost more than the tree's searches and its building (measured here on
    Lorenz, the logistic map and white noise in 3-6 dimensions: about 11 ns a vector looked at in the boxes; a tree
    search 0.6 µs plus 0.09 µs per neighbour on an attractor, more on noise, where the boxes are slower still;
    building the tree 0.16 µs a vector, counted twice: it runs on one core). The choice changes how fast, not
    what is found."""
    grid = neighbour_grid(x, dim, lag, m, max(NN_PER_BOX, k // 2))
    if dim < 3 or grid[3][0] == 0:
        return grid
    idx = np.empty(k, dtype=np.int64)
    d2 = np.empty(k)
    looked = 0.0
    tried = 0
    for s in range(TRIAL_SEARCHES):
        i = (s * m) // TRIAL_SEARCHES + m // (2 * TRIAL_SEARCHES)
        if k_nearest(x, dim, lag, i, k, theiler, grid, idx, d2) == k:
            looked += _box_candidates(x, dim, lag, i, d2[k - 1], grid)
            tried += 1
    if tried == 0:
        return grid
    boxes_us = 0.011 * looked / tried * searches
    tree_us = (0.6 + 0.09 * k) * searches + 0.32 * m
    if boxes_us > tree_us:
        return neighbour_tree(x, dim, lag, m, TREE_LEAF)
    return grid


@njit(cache=True, nogil=True)
def nearest_neighbours(x, dim, lag, theiler):
    """Nearest neighbour of every delay vector, at least ``theiler`` samples away in time.

    Delay vectors are (x[i], x[i+lag], ..., x[i+(dim-1)lag]). Exact, O(N) extra memory,
    box-assisted, a sorted scan or a k-d tree (``neighbour_index``): far fewer distance evaluations
    than all pairs. Returns (index or -1, squared distance).
    """
    return nearest_neighbours_every(x, dim, lag, theiler, 1)


@njit(cache=True, nogil=True)
def nearest_neighbours_every(x, dim, lag, theiler, step):
    """``nearest_neighbours`` of vectors 0, step, 2 step, ... only (each still searched among all vectors); the
    others keep -1 and inf."""
    m = x.shape[0] - (dim - 1) * lag
    neighbour = np.full(max(m, 0), -1, dtype=np.int64)
    dist = np.full(max(m, 0), np.inf)
    if m <= 1:
        return neighbour, dist
    grid = neighbour_index(x, dim, lag, m, 1, theiler, (m + step - 1) // step)
    idx = np.empty(1, dtype=np.int64)
    d2 = np.empty(1)
    for i in range(0, m, step):
        if k_nearest(x, dim, lag, i, 1, theiler, grid, idx, d2):
            neighbour[i] = idx[0]
            dist[i] = d2[0]
    return neighbour, dist


@njit(cache=True, nogil=True, parallel=True)
def nearest_neighbours_parallel(x, dim, lag, theiler, step):
    """``nearest_neighbours_every`` on every core (the caller holds ``PARALLEL_LOCK``): the same search structure
    and the same searches, each independent of the others, shared out in blocks, so the same neighbours. Worth it
    for the whole-series analysis (thousands of searches, up to seconds on noise in ten dimensions), not for the
    hub's short windows."""
    m = x.shape[0] - (dim - 1) * lag
    neighbour = np.full(max(m, 0), -1, dtype=np.int64)
    dist = np.full(max(m, 0), np.inf)
    if m <= 1:
        return neighbour, dist
    searches = (m + step - 1) // step
    grid = neighbour_index(x, dim, lag, m, 1, theiler, searches)
    blocks = min(searches, 64)
    for b in prange(blocks):  # (strided: a series whose searches cost more in one part loads both cores alike)
        idx = np.empty(1, dtype=np.int64)
        d2 = np.empty(1)
        for s in range(b, searches, blocks):
            i = s * step
            if k_nearest(x, dim, lag, i, 1, theiler, grid, idx, d2):
                neighbour[i] = idx[0]
                dist[i] = d2[0]
    return neighbour, dist


@njit(cache=True, nogil=True)
def _scan_box(x, dim, lag, i, k, theiler, items, lo, hi, found, out_idx, out_d2):
    """``k_nearest``'s inner loop over the vectors items[lo:hi] of one box; returns the new count found."""
    for q in range(lo, hi):
        j = items[q]
        if abs(i - j) <= theiler:
            continue
        d = 0.0
        for c in range(dim):
            diff = x[i + c * lag] - x[j + c * lag]
            d += diff * diff
        if found < k:
            p = found
            found += 1
        elif d < out_d2[k - 1] or (d == out_d2[k - 1] and j < out_idx[k - 1]):
            p = k - 1
        else:
            continue
        while p > 0 and (out_d2[p - 1] > d or (out_d2[p - 1] == d and out_idx[p - 1] > j)):
            out_d2[p] = out_d2[p - 1]
            out_idx[p] = out_idx[p - 1]
            p -= 1
        out_d2[p] = d
        out_idx[p] = j
    return found


@njit(cache=True, nogil=True)
def k_nearest(x, dim, lag, i, k, theiler, grid, out_idx, out_d2):
    """The ``k`` nearest delay vectors to vector ``i`` among those in ``grid`` (``neighbour_grid``), each
    more than ``theiler`` samples away in time, nearest first. Searches the boxes ring by ring around vector
    ``i``'s box (or the sorted scan outwards from it) and stops once everything not yet searched is farther
    than the k-th nearest found (the scan: no nearer), so of equally distant vectors the boxes keep the
    earlier, the scan the first it meets (exact repeats cost no extra search). Returns how many were found
    (fewer than k only when the series is short)."""
    cells, items, where, shape, geometry = grid
    if shape[0] < 0:
        return _tree_nearest(x, dim, lag, i, k, theiler, grid, out_idx, out_d2)
    cols = shape[0]
    rows = shape[1]
    found = 0
    if cols == 0:  # the sorted scan: outwards from vector i in the order of the first coordinate
        m = items.shape[0]
        for direction in (-1, 1):
            r = where[i, 0] + direction
            while 0 <= r < m:
                gap = x[items[r]] - x[i]
                if found == k and gap * gap >= out_d2[k - 1]:  # (exact repeats: the first met of equals)
                    break
                j = items[r]
                r += direction
                # The same distance and insertion as ``_scan_box``, written out: through a shared helper (with
                # its tie rule) short-series searches ran 2-3x slower (measured on the 47 labelled signals).
                if abs(i - j) <= theiler:
                    continue
                d = 0.0
                for c in range(dim):
                    diff = x[i + c * lag] - x[j + c * lag]
                    d += diff * diff
                if found < k:
                    p = found
                    found += 1
                elif d < out_d2[k - 1]:
                    p = k - 1
                else:
                    continue
                while p > 0 and out_d2[p - 1] > d:
                    out_d2[p] = out_d2[p - 1]
                    out_idx[p] = out_idx[p - 1]
                    p -= 1
                out_d2[p] = d
                out_idx[p] = j
        return found
    h = geometry[0]
    origin = geometry[1:]
    c0 = where[i, 0]
    r0 = where[i, 1]
    # Where vector i sits inside its box: how far it is from the box's four sides.
    lo_c = x[i] - (origin[0] + c0 * h)
    lo_r = x[i + (dim - 1) * lag] - (origin[1] + r0 * h)
    for ring in range(max(cols, rows)):
        if found == k and ring > 0:
            # Every box not searched yet lies beyond one side of the square searched so far.
            gap = np.inf
            if c0 - ring >= 0:
                gap = min(gap, lo_c + (ring - 1) * h)
            if c0 + ring < cols:
                gap = min(gap, ring * h - lo_c)
            if dim > 1 and r0 - ring >= 0:
                gap = min(gap, lo_r + (ring - 1) * h)
            if dim > 1 and r0 + ring < rows:
                gap = min(gap, ring * h - lo_r)
            if gap * gap > out_d2[k - 1]:
                break
        for c in range(max(0, c0 - ring), min(cols, c0 + ring + 1)):
            if abs(c - c0) == ring:  # a side column of the ring: all its rows
                for r in range(max(0, r0 - ring), min(rows, r0 + ring + 1)):
                    b = c * rows + r
                    found = _scan_box(x, dim, lag, i, k, theiler, items, cells[b], cells[b + 1], found, out_idx, out_d2)
            else:  # a middle column: its top and bottom boxes only
                if r0 - ring >= 0:
                    b = c * rows + r0 - ring
                    found = _scan_box(x, dim, lag, i, k, theiler, items, cells[b], cells[b + 1], found, out_idx, out_d2)
                if r0 + ring < rows:
                    b = c * rows + r0 + ring
                    found = _scan_box(x, dim, lag, i, k, theiler, items, cells[b], cells[b + 1], found, out_idx, out_d2)
    return found


@njit(cache=True, nogil=True)
def ridge_solve(a, b, ridge):
    """Least squares a @ coef ~ b with a ridge of ``ridge`` times the mean diagonal of a'a on
    every column but the last (the intercept): directions the neighbours do not span get a
    coefficient near 0 instead of one fitted to rounding. Normal equations, pivoted elimination."""
    p = a.shape[1]
    return _ridge_into(a, b, a.shape[0], ridge, np.empty((p, p)), np.empty(p), np.empty(p))


@njit(cache=True, nogil=True)
def _ridge_into(a, b, rows, ridge, g, r, coef):
    """``ridge_solve`` on the first ``rows`` rows of a and b, in work arrays the caller keeps (g: p x p, r and
    coef: p), so that a local map fitted at every reference point allocates nothing; returns ``coef``."""
    p = a.shape[1]
    # Explicit loops, not ``a.T @ a``: numba's matrix product needs SciPy, which is not a dependency.
    g[:, :] = 0.0
    r[:] = 0.0
    for q in range(rows):
        for c in range(p):
            v = a[q, c]
            r[c] += v * b[q]
            for t in range(c, p):
                g[c, t] += v * a[q, t]
    for c in range(p):
        for t in range(c):
            g[c, t] = g[t, c]
    tr = 0.0
    for c in range(p - 1):
        tr += g[c, c]
    for c in range(p - 1):
        g[c, c] += ridge * tr / max(p - 1, 1) + 1e-300
    for c in range(p):
        piv = c
        for rr in range(c + 1, p):
            if abs(g[rr, c]) > abs(g[piv, c]):
                piv = rr
        if piv != c:
            for t in range(p):
                tmp = g[c, t]
                g[c, t] = g[piv, t]
                g[piv, t] = tmp
            tmp = r[c]
            r[c] = r[piv]
            r[piv] = tmp
        if g[c, c] == 0.0:
            coef[:] = 0.0
            return coef
        for rr in range(c + 1, p):
            f = g[rr, c] / g[c, c]
            for t in range(c, p):
                g[rr, t] -= f * g[c, t]
            r[rr] -= f * r[c]
    coef[:] = 0.0
    for c in range(p - 1, -1, -1):
        acc = r[c]
        for t in range(c + 1, p):
            acc -= g[c, t] * coef[t]
        coef[c] = acc / g[c, c]
    return coef


BATCHES = 10
"""The local-maps exponent is also summed per tenth of the series: how much it varies along it."""


@njit(cache=True, nogil=True)
def _local_map(x, dim, lag, theiler, k, ridge, grid, i, idx, d2, a, b, work):
    """The local linear map at reference point ``i``: its neighbours' offsets from it into ``a`` (with a column of
    ones) and their new values' offsets into ``b``, and the ridge fit of one on the other (in ``work``: the
    (g, r, coef) arrays of ``_ridge_into``). Returns (neighbours found, coefficients: work's coef); fewer than
    dim + 2 neighbours: no fit (the coefficients are not to be used)."""
    g, r, coef = work
    got = k_nearest(x, dim, lag, i, k, theiler, grid, idx, d2)
    if got < dim + 2:
        return got, coef
    for q in range(got):
        j = idx[q]
        for c in range(dim):
            a[q, c] = x[j + c * lag] - x[i + c * lag]
        a[q, dim] = 1.0
        b[q] = x[j + dim * lag] - x[i + dim * lag]
    return got, _ridge_into(a, b, got, ridge, g, r, coef)


@njit(cache=True, nogil=True)
def _chain_plan(m, lag, refs, burn):
    """Where the chains of reference points of the local maps run: ``lag`` interleaved chains (starting at samples
    0..lag-1), each stepping a lag at a time through the whole series, so that every vector is a reference point
    once — at most about ``refs`` of them (fewer chains, then stretches of them spread over the series). Returns
    (starts, stops, steps per unit)."""
    chains = min(lag, max(1, refs // max(1, m // lag)))
    steps_available = m // lag
    if steps_available * chains > refs + refs // 5 and steps_available // BATCHES >= 2 * burn:
        # A long series: the chains cannot run its whole length within ``refs`` reference points, so each
        # runs as ten stretches spread over it (each aligning its vector first) rather than its first part.
        segments = BATCHES
    elif chains == 1 and steps_available >= 8 * burn:
        segments = 2  # one chain (a map): two halves, so that two cores share it
    else:
        segments = 1
    units = chains * segments
    starts = np.empty(units, dtype=np.int64)
    stops = np.empty(units, dtype=np.int64)
    for c in range(chains):
        offset = (c * lag) // chains
        for h in range(segments):
            lo = offset + ((h * (m // segments)) // lag) * lag
            starts[c * segments + h] = lo
            stops[c * segments + h] = m if h == segments - 1 else (h + 1) * (m // segments)
    return starts, stops, refs // units + burn


@njit(cache=True, nogil=True)
def _chain_searches(starts, stops, per_unit, lag):
    """How many reference points (each one neighbour search) the chains of ``_chain_plan`` visit at most."""
    total = 0
    for u in range(starts.shape[0]):
        total += min(per_unit, (stops[u] - starts[u] + lag - 1) // lag)
    return total


@njit(cache=True, nogil=True)
def _jacobian_chain(x, dim, lag, theiler, k, ridge, burn, grid, m, i_start, i_stop, max_steps, out):
    """One chain of ``local_jacobian_exponent``: reference points i_start, i_start + lag, ... (< i_stop, at
    most ``max_steps``); adds to ``out`` = [log growth, steps, misfit^2, spread^2, per-batch sums, per-batch
    counts]."""
    idx = np.empty(k, dtype=np.int64)
    d2 = np.empty(k)
    a = np.empty((k, dim + 1))
    b = np.empty(k)
    work = (np.empty((dim + 1, dim + 1)), np.empty(dim + 1), np.empty(dim + 1))
    u = np.empty(dim)
    new = np.empty(dim)
    for c in range(dim):
        u[c] = 1.0 / np.sqrt(dim)
    i = i_start
    t = 0
    visited = 0
    while i < i_stop and visited < max_steps:
        visited += 1
        got, coef = _local_map(x, dim, lag, theiler, k, ridge, grid, i, idx, d2, a, b, work)
        if got < dim + 2:
            i += lag
            continue
        for q in range(got):
            pred = coef[dim]
            for c in range(dim):
                pred += coef[c] * a[q, c]
            out[2] += (b[q] - pred) ** 2
            out[3] += b[q] * b[q]
        for c in range(dim - 1):
            new[c] = u[c + 1]
        acc = 0.0
        for c in range(dim):
            acc += coef[c] * u[c]
        new[dim - 1] = acc
        g = 0.0
        for c in range(dim):
            g += new[c] * new[c]
        g = np.sqrt(g)
        if not g > 0.0:
            for c in range(dim):  # the tangent vector died (a contracting point): start it afresh
                u[c] = 1.0 / np.sqrt(dim)
            t = 0
            i += lag
            continue
        if t >= burn:
            lg = np.log(g)
            out[0] += lg
            out[1] += 1
            where = (i * BATCHES) // m
            out[4 + where] += lg
            out[4 + BATCHES + where] += 1
        for c in range(dim):
            u[c] = new[c] / g
        t += 1
        i += lag


@njit(cache=True, nogil=True, parallel=True)
def local_jacobian_exponent(x, dim, lag, theiler, k, ridge, refs, burn):
    """Largest Lyapunov exponent per sample from local linear maps (Eckmann & Ruelle 1985; Sano &
    Sawada 1985), in the delay embedding with evolution time ``lag``.

    One lag on, a delay vector is the same vector shifted by one coordinate plus one new value,
    so the map's Jacobian is a companion matrix whose last row is fitted, at each reference
    point, by ridge least squares on its ``k`` nearest neighbours (outside the Theiler window):
    how their new values differ from the point's, against how their vectors differ. A tangent
    vector is carried through these matrices along the trajectory and renormalised every step;
    its mean log growth is the exponent. The first ``burn`` steps of each chain only align the
    vector with the most unstable direction. Returns (exponent per sample, misfit, standard error):
    the misfit is the RMS misfit of the local maps over the RMS of what they predict (near 0 for
    deterministic data, near 1 when the neighbours say nothing about the future, as with noise);
    the standard error comes from how the exponent varies over ten stretches of the series.
    """
    m = x.shape[0] - dim * lag  # vectors with a successor one lag on
    if m < 2 * k + 2 * theiler + 2:
        return np.nan, np.nan, np.nan
    starts, stops, per_unit = _chain_plan(m, lag, refs, burn)
    units = starts.shape[0]
    grid = neighbour_index(x, dim, lag, m, k, theiler, _chain_searches(starts, stops, per_unit, lag))
    acc = np.zeros((units, 4 + 2 * BATCHES))
    for w in prange(units):
        _jacobian_chain(x, dim, lag, theiler, k, ridge, burn, grid, m, starts[w], stops[w], per_unit, acc[w])
    tot = np.zeros(4 + 2 * BATCHES)
    for w in range(units):
        for c in range(4 + 2 * BATCHES):
            tot[c] += acc[w, c]
    steps = tot[1]
    misfit = np.sqrt(tot[2] / tot[3]) if tot[3] > 0 else np.nan
    if steps == 0:
        return np.nan, misfit, np.nan
    # Standard error of the exponent from the spread of its value over the ten stretches.
    used = 0
    mean = 0.0
    for q in range(BATCHES):
        if tot[4 + BATCHES + q] > 0:
            used += 1
            mean += tot[4 + q] / tot[4 + BATCHES + q]
    stderr = np.nan
    if used >= 2:
        mean /= used
        var = 0.0
        for q in range(BATCHES):
            if tot[4 + BATCHES + q] > 0:
                var += (tot[4 + q] / tot[4 + BATCHES + q] - mean) ** 2
        stderr = np.sqrt(var / (used - 1) / used) / lag
    return tot[0] / (steps * lag), misfit, stderr


@njit(cache=True, nogil=True)
def _orthogonalise(q, w, col, dim):
    """Column ``col`` of ``w`` made square to columns 0..col-1 of ``q`` (modified Gram-Schmidt, in place)."""
    for p in range(col):
        dot = 0.0
        for row in range(dim):
            dot += q[row, p] * w[row, col]
        for row in range(dim):
            w[row, col] -= dot * q[row, p]


@njit(cache=True, nogil=True)
def _spectrum_chain(x, dim, lag, theiler, k, ridge, burn, grid, m, i_start, i_stop, max_steps, out):
    """One chain of ``local_jacobian_spectrum``: as ``_jacobian_chain``, but carrying a whole orthonormal basis
    through the local maps (re-orthonormalised by Gram-Schmidt every step, Benettin et al. 1980 / Eckmann &
    Ruelle 1985); adds each direction's log stretch to out[0:dim] and the steps counted to out[dim]."""
    idx = np.empty(k, dtype=np.int64)
    d2 = np.empty(k)
    a = np.empty((k, dim + 1))
    b = np.empty(k)
    work = (np.empty((dim + 1, dim + 1)), np.empty(dim + 1), np.empty(dim + 1))
    q = np.eye(dim)
    w = np.empty((dim, dim))
    stretch = np.empty(dim)
    i = i_start
    t = 0
    visited = 0
    while i < i_stop and visited < max_steps:
        visited += 1
        got, coef = _local_map(x, dim, lag, theiler, k, ridge, grid, i, idx, d2, a, b, work)
        if got < dim + 2:
            i += lag
            continue
        # W = J Q, J the companion matrix: rows shift up by one, the last row is the fitted map
        for col in range(dim):
            for row in range(dim - 1):
                w[row, col] = q[row + 1, col]
            acc = 0.0
            for c in range(dim):
                acc += coef[c] * q[c, col]
            w[dim - 1, col] = acc
        dead = False
        for col in range(dim):  # modified Gram-Schmidt: Q R = W, the stretches are R's diagonal
            _orthogonalise(q, w, col, dim)
            norm = 0.0
            for row in range(dim):
                norm += w[row, col] * w[row, col]
            norm = np.sqrt(norm)
            if not norm > 1e-300:
                # A direction collapsed (the fitted map is singular there: quantised or exact data). It is replaced
                # by a unit vector square to the others and this step is not counted; the other directions keep
                # their alignment (a fresh basis would have to be aligned again, losing the burn-in).
                dead = True
                for e in range(dim):
                    for row in range(dim):
                        w[row, col] = 1.0 if row == e else 0.0
                    _orthogonalise(q, w, col, dim)
                    norm = 0.0
                    for row in range(dim):
                        norm += w[row, col] * w[row, col]
                    norm = np.sqrt(norm)
                    if norm > 1e-6:
                        break
            stretch[col] = norm
            for row in range(dim):
                q[row, col] = w[row, col] / norm
        if dead:
            i += lag
            continue
        if t >= burn:
            for col in range(dim):
                out[col] += np.log(stretch[col])
            out[dim] += 1
        t += 1
        i += lag


@njit(cache=True, nogil=True, parallel=True)
def local_jacobian_spectrum(x, dim, lag, theiler, k, ridge, refs, burn):
    """All ``dim`` Lyapunov exponents per sample from the same local linear maps as ``local_jacobian_exponent``
    (its reference points, neighbours and ridge fit), each chain carrying a full basis. Returns the exponents in
    the basis' order (the first is the largest) and the steps they average; nan when too short."""
    out_nan = np.full(dim, np.nan)
    m = x.shape[0] - dim * lag
    if m < 2 * k + 2 * theiler + 2:
        return out_nan, 0
    starts, stops, per_unit = _chain_plan(m, lag, refs, burn)
    units = starts.shape[0]
    grid = neighbour_index(x, dim, lag, m, k, theiler, _chain_searches(starts, stops, per_unit, lag))
    acc = np.zeros((units, dim + 1))
    for u in prange(units):
        _spectrum_chain(x, dim, lag, theiler, k, ridge, burn, grid, m, starts[u], stops[u], per_unit, acc[u])
    tot = np.zeros(dim + 1)
    for u in range(units):
        for c in range(dim + 1):
            tot[c] += acc[u, c]
    steps = int(tot[dim])
    if steps == 0:
        return out_nan, 0
    exps = np.empty(dim)
    for c in range(dim):
        exps[c] = tot[c] / (steps * lag)
    return exps, steps


@njit(cache=True, nogil=True)
def divergence_curve(x, dim, lag, neighbour, horizon, paired=False):
    """Mean ln distance after k steps between each point and its neighbour (k < horizon).

    ``paired``: the mean of each pair's growth since its start instead, plus the mean starting ln distance of
    all pairs. Pairs leave as their trajectories reach the series' end, and a mean of plain distances over a
    shrinking set moves with who is left: a sawtooth whose exact repeats lie early in a short window rose
    smoothly by a factor of 1,000 while no pair moved apart. (Rosenstein's estimate keeps the plain mean: on
    the literature's flows at 10^4 points the paired one was no closer.)

    The logarithm is the costly part: the squared distances of a block of pairs are multiplied per step
    and the product's logarithm taken once (the same sum of logarithms, to rounding). Fifteen on z-scored
    data; fewer when the largest possible distance would take the product out of a double's range.
    A pair's squared distances are built from its squared differences coordinate by coordinate (each
    difference is computed once, not once per delay coordinate), in loops without branches that the
    compiler vectorises: 4-10x faster than a step-by-step loop, measured on Lorenz and logistic series."""
    m = x.shape[0] - (dim - 1) * lag
    span = x.max() - x.min() if x.size else 0.0
    largest = dim * span * span
    digits = max(18.0, np.log10(largest) if largest > 1.0 else 0.0)  # factors lie in [1e-18, largest]
    block = max(1, min(15, int(280.0 / digits)))
    curve = np.zeros(horizon)
    ends = np.zeros(horizon + 1, dtype=np.int64)  # pairs whose trajectories run exactly k steps
    first = np.zeros(horizon + 1)  # their ln distances at the start
    product = np.ones(horizon)
    sq = np.empty(horizon + (dim - 1) * lag)
    d = np.empty(horizon)
    in_block = 0
    longest = 0
    for i in range(m):
        j = neighbour[i]
        if j < 0:
            continue
        steps = min(horizon, m - max(i, j))
        ends[steps] += 1
        for t in range(steps + (dim - 1) * lag):
            diff = x[i + t] - x[j + t]
            sq[t] = diff * diff
        for t in range(steps):
            d[t] = sq[t]
        for c in range(1, dim):
            for t in range(steps):
                d[t] += sq[t + c * lag]
        # Floor at 1e-9 (on z-scored data): exact repeats of a periodic
        # signal must read as "no divergence", not as rounding noise.
        for t in range(steps):
            product[t] *= max(d[t], 1e-18)
        first[steps] += 0.5 * np.log(max(d[0], 1e-18))
        longest = max(longest, steps)
        in_block += 1
        if in_block == block:
            for t in range(longest):
                curve[t] += 0.5 * np.log(product[t])
                product[t] = 1.0
            in_block = 0
            longest = 0
    pairs = np.zeros(horizon, dtype=np.int64)
    running = 0
    started = 0.0
    for t in range(horizon - 1, -1, -1):
        if product[t] != 1.0:
            curve[t] += 0.5 * np.log(product[t])
        running += ends[t + 1]
        started += first[t + 1]
        pairs[t] = running
        if paired:
            curve[t] -= started
        curve[t] = curve[t] / running if running > 0 else np.nan
    if paired and pairs[0] > 0:
        level = started / pairs[0]
        for t in range(horizon):
            curve[t] += level
    return curve, pairs


@njit(cache=True, nogil=True)
def rosenstein_divergence(x, dim, lag, theiler, horizon):
    """Rosenstein et al. (1993): the divergence curve of nearest-neighbour trajectories.

    Returns (curve, pairs): curve[k] is the mean of ln(distance after k steps)
    over the pairs still inside the series. Memory O(N).
    """
    neighbour, _dist = nearest_neighbours(x, dim, lag, theiler)
    return divergence_curve(x, dim, lag, neighbour, horizon)


@njit(cache=True, nogil=True)
def _segment_sse(px, py, pxx, pxy, pyy, a, b):
    n = b - a
    sx = px[b] - px[a]
    sy = py[b] - py[a]
    sxx = pxx[b] - pxx[a] - sx * sx / n
    sxy = pxy[b] - pxy[a] - sx * sy / n
    syy = pyy[b] - pyy[a] - sy * sy / n
    if sxx <= 0.0:
        return syy, 0.0
    return syy - sxy * sxy / sxx, sxy / sxx


@njit(cache=True, nogil=True)
def three_segment_fit(y, min_len):
    """Split y into transient | linear | plateau lines with the least total squared error.

    Exact search over both breakpoints (O(n^2) with prefix sums). Returns
    (b1, b2, slope of the middle segment y[b1:b2]).
    """
    n = y.shape[0]
    px = np.zeros(n + 1)
    py = np.zeros(n + 1)
    pxx = np.zeros(n + 1)
    pxy = np.zeros(n + 1)
    pyy = np.zeros(n + 1)
    for i in range(n):
        px[i + 1] = px[i] + i
        py[i + 1] = py[i] + y[i]
        pxx[i + 1] = pxx[i] + i * i
        pxy[i + 1] = pxy[i] + i * y[i]
        pyy[i + 1] = pyy[i] + y[i] * y[i]
    best = np.inf
    best_b1, best_b2 = 0, n
    for b1 in range(0, n - 2 * min_len + 1):
        e1 = 0.0
        if b1 >= 2:
            e1, _ = _segment_sse(px, py, pxx, pxy, pyy, 0, b1)
        elif b1 == 1:
            continue
        for b2 in range(b1 + min_len, n - min_len + 1):
            e2, _ = _segment_sse(px, py, pxx, pxy, pyy, b1, b2)
            e3, _ = _segment_sse(px, py, pxx, pxy, pyy, b2, n)
            total = e1 + e2 + e3
            if total < best:
                best = total
                best_b1, best_b2 = b1, b2
    _, slope = _segment_sse(px, py, pxx, pxy, pyy, best_b1, best_b2)
    return best_b1, best_b2, slope


@njit(cache=True, nogil=True)
def average_mutual_information(x, max_lag, bins, first=0):
    """I(x_t; x_{t+lag}) in nats for lag = first..max_lag (out[lag - first]), equal-width histogram estimate."""
    n = x.shape[0]
    lo, hi = x.min(), x.max()
    out = np.zeros(max(0, max_lag + 1 - first))
    if hi <= lo:
        return out
    idx = np.empty(n, dtype=np.int64)
    for i in range(n):
        b = int((x[i] - lo) / (hi - lo) * bins)
        idx[i] = min(b, bins - 1)
    joint = np.zeros((bins, bins))
    pa = np.zeros(bins)
    pb = np.zeros(bins)
    for lag in range(first, max_lag + 1):
        joint[:, :] = 0.0
        pa[:] = 0.0
        pb[:] = 0.0
        cnt = n - lag
        for i in range(cnt):
            joint[idx[i], idx[i + lag]] += 1.0
            pa[idx[i]] += 1.0
            pb[idx[i + lag]] += 1.0
        mi = 0.0
        for u in range(bins):
            for v in range(bins):
                if joint[u, v] > 0:
                    mi += joint[u, v] / cnt * np.log(joint[u, v] * cnt / (pa[u] * pb[v]))
        out[lag - first] = mi
    return out


FNN_REFS = 10_000
"""Vectors the false-neighbour share is counted over at most: on a long series of noise in ten dimensions every
nearest-neighbour search looks at a large part of the series (a minute for 100,000 points, a tenth of it now)."""


@njit(cache=True, nogil=True)
def false_neighbour_fraction(x, dim, lag, theiler, rtol, atol):
    """Share of nearest neighbours in ``dim`` dimensions that are false (Kennel et al. 1992).

    A neighbour is false when adding the next delay coordinate stretches the
    distance by more than ``rtol`` times, or beyond ``atol`` standard deviations.
    Counted over at most about ``FNN_REFS`` vectors spread evenly over the series (a share: 10,000 give it
    with a standard error of half a percentage point at most), each one's neighbour searched among all.
    """
    m = x.shape[0] - dim * lag  # vectors that have a (dim+1)-th coordinate
    if m <= 1:
        return np.nan
    step = fnn_step(m)
    neighbour, dist = nearest_neighbours_every(x[: m + (dim - 1) * lag], dim, lag, theiler, step)
    return false_share(x, dim, lag, rtol, atol, step, neighbour, dist)


@njit(cache=True, nogil=True)
def fnn_step(m):
    """Every how many vectors ``false_neighbour_fraction`` counts, of m with a next coordinate."""
    return (m + FNN_REFS - 1) // FNN_REFS


@njit(cache=True, nogil=True)
def false_share(x, dim, lag, rtol, atol, step, neighbour, dist):
    """``false_neighbour_fraction`` from the nearest neighbours of vectors 0, step, 2 step, ... (of those with a
    (dim+1)-th coordinate), found by ``nearest_neighbours_every`` or ``nearest_neighbours_parallel``."""
    m = x.shape[0] - dim * lag
    sd = x.std()
    false = 0
    total = 0
    for i in range(0, m, step):
        j = neighbour[i]
        if j < 0:
            continue
        total += 1
        extra = abs(x[i + dim * lag] - x[j + dim * lag])
        d = np.sqrt(dist[i])
        if (d > 0 and extra / d > rtol) or np.sqrt(dist[i] + extra * extra) / sd > atol:
            false += 1
    return false / total if total else np.nan


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


@njit(cache=True)  # small: keeps the GIL (see the module's note)
def trailing_period(ids, max_period, min_repeats=0.0, min_words=0):
    """Shortest period p whose repetition explains the longest tail of ``ids``.

    Returns (period, run): ids[n-run-p:] repeats with period p, i.e.
    ids[i] == ids[i-p] for the last ``run`` positions. (0, 0) if none.
    Prefers the longest run; among equal runs, the shortest period. Only a
    period whose unit is repeated ``min_repeats`` times, ``(run + p) / p``, over
    ``min_words`` words at least counts: a longer period that repeats in part
    (a passage said once before, a loop's first words) hid a loop of a shorter
    one before (nothing was then found).

    The run of period p is the Z-function of the reversed window at p (the longest common prefix of the window read
    backwards and of itself p further back): all periods in O(n). Walking back from the end for each period took
    O(n) per period that matches, n x max_period on a long loop of a short unit (166 µs a call at 1,024 words).
    """
    n = ids.shape[0]
    top = min(max_period, n // 2)
    best_p = 0
    best_run = 0
    if top < 1:
        return best_p, best_run
    z = np.zeros(top + 1, dtype=np.int64)
    left = 0
    right = 0  # the window [left, right) of the reversed ids that matches its own start
    for p in range(1, top + 1):
        run = 0
        if p < right:
            run = min(right - p, z[p - left])  # (p - left < p: known)
        while p + run < n and ids[n - 1 - run] == ids[n - 1 - p - run]:
            run += 1
        z[p] = run
        if p + run > right:
            left = p
            right = p + run
        if run > best_run and run + p >= min_repeats * p and run + p >= min_words:
            best_run = run
            best_p = p
    return best_p, best_run


@njit(cache=True)  # small: keeps the GIL (see the module's note)
def sorted_ngram_hashes(ids, n):
    """FNV-1a hashes of every n-gram of ``ids``, sorted (equal n-grams end up adjacent)."""
    total = max(0, ids.shape[0] - n + 1)
    hashes = np.empty(total, dtype=np.int64)
    for i in range(total):
        h = np.int64(1469598103934665603)
        for k in range(n):
            h = (h ^ ids[i + k]) * np.int64(1099511628211)
        hashes[i] = h
    hashes.sort()
    return hashes


@njit(cache=True)  # small: keeps the GIL (see the module's note)
def repeated_ngram_fraction(ids, n):
    """seq-rep-n (Welleck et al. 2020): 1 - unique n-grams / total n-grams."""
    hashes = sorted_ngram_hashes(ids, n)
    total = hashes.shape[0]
    if total == 0:
        return np.nan
    unique = 1
    for i in range(1, total):
        if hashes[i] != hashes[i - 1]:
            unique += 1
    return 1.0 - unique / total


@njit(cache=True)  # small: keeps the GIL (see the module's note)
def singleton_ngram_fraction(ids, n):
    """Share of the n-grams of ``ids`` that occur exactly once among them."""
    hashes = sorted_ngram_hashes(ids, n)
    total = hashes.shape[0]
    if total == 0:
        return np.nan
    once = 0
    i = 0
    while i < total:
        j = i
        while j + 1 < total and hashes[j + 1] == hashes[i]:
            j += 1
        if j == i:
            once += 1
        i = j + 1
    return once / total


@njit(cache=True, nogil=True)
def nn_prediction_error(x, dim, lag, theiler, ahead):
    """RMS error of predicting x ``ahead`` steps on from the nearest neighbour's future.

    Delay vectors end at their last coordinate; the neighbour (outside the
    Theiler window) must itself have a successor. Deterministic dynamics are
    predictable this way; noise, white or coloured, is not.
    """
    m = x.shape[0] - (dim - 1) * lag - ahead  # vectors with a future
    if m <= 2:
        return np.nan
    neighbour, _dist = nearest_neighbours(x[: m + (dim - 1) * lag], dim, lag, theiler)
    acc = 0.0
    count = 0
    last = (dim - 1) * lag
    for i in range(m):
        j = neighbour[i]
        if j < 0:
            continue
        err = x[i + last + ahead] - x[j + last + ahead]
        acc += err * err
        count += 1
    return np.sqrt(acc / count) if count else np.nan


@njit(cache=True, nogil=True)
def zero_one_test(x, cs, ncut):
    """The 0-1 test for chaos (Gottwald & Melbourne 2004, 2009), modified mean square displacement.

    For each frequency c, K_c is the correlation of n with the mean square
    displacement M_c(n) of the translation variables p, q. Returns the median
    K over ``cs``: near 0 for regular dynamics, near 1 for chaotic ones (and for noise).
    """
    n = x.shape[0]
    mean = x.mean()
    ks = np.empty(cs.shape[0])
    ncut = min(ncut, n // 2)
    if ncut < 3:
        return np.nan
    ns = np.arange(1, ncut + 1).astype(np.float64)
    for ci in range(cs.shape[0]):
        c = cs[ci]
        p = np.empty(n)
        q = np.empty(n)
        sp = 0.0
        sq = 0.0
        for j in range(n):
            sp += x[j] * np.cos((j + 1) * c)
            sq += x[j] * np.sin((j + 1) * c)
            p[j] = sp
            q[j] = sq
        msd = np.empty(ncut)
        for k in range(1, ncut + 1):
            acc = 0.0
            for j in range(n - k):
                dp = p[j + k] - p[j]
                dq = q[j + k] - q[j]
                acc += dp * dp + dq * dq
            # subtract the oscillatory term so K converges faster (the modified test)
            msd[k - 1] = acc / (n - k) - mean * mean * (1 - np.cos(k * c)) / (1 - np.cos(c))
        mn = ns.mean()
        mm = msd.mean()
        cov = 0.0
        vn = 0.0
        vm = 0.0
        for k in range(ncut):
            cov += (ns[k] - mn) * (msd[k] - mm)
            vn += (ns[k] - mn) ** 2
            vm += (msd[k] - mm) ** 2
        ks[ci] = cov / np.sqrt(vn * vm) if vm > 0 else 0.0
    return np.median(ks)


def warm_up_ingest() -> None:
    """Compile (or load from cache) the kernels that ingest and the metrics need.

    These are few and small (a few seconds cold): once they are ready the hub takes
    events and publishes metrics while the dynamics kernels still compile.
    """
    f = np.linspace(0.0, 1.0, 64)
    summarize(f, np.array([0.5, 0.9]))
    count_at_or_after(f, 0.5)
    weighted_rate(f, f, 0.2, 0.8)
    pcm16_levels(np.zeros(16, dtype=np.int16))
    pcm16_levels(np.zeros((16, 2), dtype=np.int16))
    spectral_shape(f, 10.0, 0.85)
    thumb = luma_thumbnail(np.zeros((16, 16, 3), dtype=np.uint8), 4)
    rgb_thumbnail(np.zeros((16, 16, 3), dtype=np.uint8), 4, 4)
    mean_abs_diff(thumb, thumb)
    ids = np.arange(32, dtype=np.int64) % 5
    trailing_period(ids, 8, 3.0, 16)
    repeated_ngram_fraction(ids, 3)
    singleton_ngram_fraction(ids, 3)
    sorted_ngram_hashes(ids, 3)


def warm_up_dynamics() -> None:
    """Compile (or load from cache) the kernels of the attractor estimate (the slow part, ~15 s cold)."""
    f = np.linspace(0.0, 1.0, 64)
    autocorr_decay_lag(f, 4)
    permutation_entropy(f, 4, 1)
    neighbour, _ = nearest_neighbours(np.sin(f * 20), 2, 1, 2)
    curve, _ = divergence_curve(np.sin(f * 20), 2, 1, neighbour, 4)
    divergence_curve(np.sin(f * 20), 2, 1, neighbour, 4, True)
    line_fit(curve, 0, 4)
    three_segment_fit(np.sin(f), 3)
    average_mutual_information(f, 4, 8, 0)
    false_neighbour_fraction(np.sin(f * 20), 2, 1, 2, 15.0, 2.0)
    nn_prediction_error(np.sin(f * 20), 2, 1, 2, 1)
    zero_one_test(np.sin(f * 20), np.array([1.0, 2.0]), 4)


def warm_up_analysis() -> None:
    """Compile (or load from cache) the kernels only ``midstream analyze`` and the library use (not the hub)."""
    f = np.linspace(0.0, 1.0, 64)
    with PARALLEL_LOCK:
        local_jacobian_exponent(np.sin(f * 20), 2, 1, 2, 6, 1e-3, 20, 2)
        local_jacobian_spectrum(np.sin(f * 20), 2, 1, 2, 6, 1e-3, 20, 2)
        nearest_neighbours_parallel(np.sin(f * 20), 2, 1, 2, 1)


def warm_up() -> None:
    """Compile (or load from cache) every kernel: the hub's and the series analysis's."""
    warm_up_ingest()
    warm_up_dynamics()
    warm_up_analysis()
