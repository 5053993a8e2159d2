"""Sequence comparison against brute-force definitions (property tests) and dtaidistance."""

import functools
import itertools
import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from midstream_tui.analysis.temporal import (
    SeriesError,
    compare,
    distance_profile,
    dtw,
    edit_distance,
    euclidean,
    find_similar,
    lcs,
    token_dtw,
)

floats = st.floats(-100, 100, allow_nan=False, allow_infinity=False)
small_ints = st.integers(0, 4)


def ref_dtw(a, b, window=None):
    """The recursive definition, memoized: min over warping paths inside the band."""
    n, m = len(a), len(b)
    # The Sakoe-Chiba band of tslearn's sakoe_chiba_mask(radius=window): radius w around the
    # diagonal, stretched by the length difference on the side of the longer sequence.
    below = max(n, m) if window is None else window + max(0, n - m)
    above = max(n, m) if window is None else window + max(0, m - n)

    @functools.lru_cache(maxsize=None)
    def cost(i, j):
        if i - j > below or j - i > above:
            return math.inf
        d = (a[i] - b[j]) ** 2
        if i == 0 and j == 0:
            return d
        options = []
        if i > 0:
            options.append(cost(i - 1, j))
        if j > 0:
            options.append(cost(i, j - 1))
        if i > 0 and j > 0:
            options.append(cost(i - 1, j - 1))
        return d + min(options)

    return math.sqrt(cost(n - 1, m - 1))


def ref_lcs(a, b):
    """Exhaustive: the longest subsequence of a that is also a subsequence of b."""
    def is_subseq(s, t):
        it = iter(t)
        return all(any(x == y for y in it) for x in s)
    for k in range(len(a), 0, -1):
        if any(is_subseq(c, b) for c in itertools.combinations(a, k)):
            return k
    return 0


def ref_edit(a, b):
    @functools.lru_cache(maxsize=None)
    def d(i, j):
        if i == 0:
            return j
        if j == 0:
            return i
        return min(d(i - 1, j) + 1, d(i, j - 1) + 1, d(i - 1, j - 1) + (a[i - 1] != b[j - 1]))
    return d(len(a), len(b))


@settings(max_examples=200, deadline=None)
@given(st.lists(floats, min_size=1, max_size=9), st.lists(floats, min_size=1, max_size=9),
       st.one_of(st.none(), st.integers(0, 10)))
def test_dtw_equals_the_recursive_definition(a, b, window):
    assert dtw(a, b, window=window).distance == pytest.approx(ref_dtw(a, b, window), rel=1e-12, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.lists(floats, min_size=1, max_size=12), st.lists(floats, min_size=1, max_size=12))
def test_dtw_path_is_a_valid_warping_path_with_the_same_cost(a, b):
    res = dtw(a, b, path=True)
    p = res.path
    assert tuple(p[0]) == (0, 0) and tuple(p[-1]) == (len(a) - 1, len(b) - 1)
    steps = np.diff(p, axis=0)
    assert np.all((steps >= 0) & (steps <= 1)) and np.all(steps.sum(axis=1) >= 1)
    cost = math.sqrt(sum((a[i] - b[j]) ** 2 for i, j in p))
    assert cost == pytest.approx(res.distance, rel=1e-12, abs=1e-12)
    assert res.distance == pytest.approx(dtw(a, b).distance, rel=1e-12, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(st.lists(small_ints, max_size=8), st.lists(small_ints, max_size=8))
def test_lcs_and_edit_distance_equal_the_definitions(a, b):
    if a and b:
        assert lcs(a, b) == ref_lcs(a, b)
    assert edit_distance(a, b) == ref_edit(tuple(a), tuple(b))


def test_known_values():
    assert edit_distance(list(b"kitten"), list(b"sitting")) == 3
    assert lcs(list(b"ABCBDAB"), list(b"BDCABA")) == 4
    assert euclidean([0, 0], [3, 4]) == 5.0
    assert dtw([1, 2, 3], [1, 2, 2, 3]).distance == 0.0  # warping absorbs the repeat
    assert lcs([1.0, 2.0], [1.05, 2.2], eps=0.1) == 1


def test_agrees_with_dtaidistance():
    from dtaidistance import dtw as dtai
    rng = np.random.default_rng(7)
    for _ in range(200):
        n, m = int(rng.integers(2, 60)), int(rng.integers(2, 60))
        a, b = rng.normal(size=n), rng.normal(size=m)
        assert dtw(a, b).distance == pytest.approx(dtai.distance(a, b), rel=1e-9)
        fast = dtai.distance_fast(a, b)
        if math.isfinite(fast):  # distance_fast gives inf for some inputs; its reference does not
            assert dtw(a, b).distance == pytest.approx(fast, rel=1e-9)


def test_banded_dtw_agrees_with_dtaidistance_pair_by_pair_for_unequal_lengths():
    """1,000 random banded pairs of any lengths: dtaidistance's window counts the diagonal, so its
    w + 1 is our radius w; for unequal lengths both stretch the band on the longer sequence's side."""
    from dtaidistance import dtw as dtai
    rng = np.random.default_rng(8)
    unequal = 0
    for _ in range(1000):
        n, m = int(rng.integers(2, 50)), int(rng.integers(2, 50))
        unequal += n != m
        a, b = rng.normal(size=n), rng.normal(size=m)
        w = int(rng.integers(0, 12))
        ours = dtw(a, b, window=w).distance
        assert ours == pytest.approx(dtai.distance(a, b, window=w + 1, use_c=True), rel=1e-9), (n, m, w)
        assert dtw(a, b, window=w, path=True).distance == pytest.approx(ours, rel=1e-12)
    assert unequal > 900


def test_find_similar_locates_planted_copies():
    rng = np.random.default_rng(3)
    hay = rng.normal(0, 1, 2000)
    needle = np.sin(np.linspace(0, 4 * np.pi, 50)) * 3
    for pos in (100, 900, 1500):
        hay[pos:pos + 50] = needle + rng.normal(0, 0.05, 50)
    matches = find_similar(hay, needle, threshold=1.0)
    assert sorted(m.position for m in matches) == [100, 900, 1500]
    assert all(m.distance < 1.0 for m in matches)
    # shape search finds a rescaled, shifted copy only with z-normalization
    hay2 = hay.copy()
    hay2[1200:1250] = needle * 10 + 50
    assert 1200 not in [m.position for m in find_similar(hay2, needle, threshold=1.0)]
    assert 1200 in [m.position for m in find_similar(hay2, needle, threshold=1.0, znorm=True)]
    dtw_hits = find_similar(hay, needle, threshold=1.0, metric="dtw", window=3)
    assert sorted(m.position for m in dtw_hits) == [100, 900, 1500]


@pytest.mark.parametrize("call, message", [
    (lambda: dtw([1, np.nan], [1, 2]), "NaN/inf"),
    (lambda: dtw([], [1, 2]), "empty"),
    (lambda: dtw(["a", "b"], [1, 2]), "expected numbers"),
    (lambda: dtw(np.ones((3, 3)), [1, 2]), "1-D"),
    (lambda: dtw([1, 2], [1, 2], window=-1), "window"),
    (lambda: euclidean([1, 2], [1, 2, 3]), "equal lengths"),
    (lambda: find_similar([1, 2], [1, 2, 3], 1.0), "longer than haystack"),
    (lambda: find_similar([1, 2, 3], [1, 2], float("nan")), "threshold"),
    (lambda: compare([1], [1], "cosine"), "algorithm"),
])
def test_bad_input_gives_one_clear_error(call, message):
    with pytest.raises(SeriesError, match=message):
        call()


def test_results_depend_on_the_whole_input_not_a_cache():
    a = np.arange(10.0)
    first = dtw(a, a[::-1]).distance
    b = a.copy()
    b[5] += 100  # same length, different content
    assert dtw(b, a[::-1]).distance != first
    assert dtw(a, a[::-1]).distance == first


from midstream_tui.analysis import kernels_temporal  # noqa: E402
from midstream_tui.analysis.temporal import find_motifs  # noqa: E402


def ref_matrix_profile(x, m, exclusion):
    x = np.asarray(x, float)
    n = len(x) - m + 1
    subs = [x[i:i + m] for i in range(n)]
    flat = 1e-8 * max(x.std(), 1e-300)
    z = [(s - s.mean()) / s.std() if s.std() > flat else None for s in subs]
    prof = np.full(n, np.inf)
    for i in range(n):
        for j in range(n):
            if abs(i - j) < exclusion:
                continue
            d = math.sqrt(2 * m) if z[i] is None or z[j] is None else float(np.linalg.norm(z[i] - z[j]))
            prof[i] = min(prof[i], d)
    return prof


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-10, 10, allow_nan=False), min_size=12, max_size=40), st.integers(3, 6),
       st.sampled_from([1, 2, 3, 8]))
@example(values=[7.0, 2.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 7.777455687459112e-05, 0.0, 6.103515625e-05, 0.0], m=3,
         chunks=1)
def test_matrix_profile_equals_brute_force(values, m, chunks):
    x = np.array(values)
    excl = max(1, m // 2)
    # chunks: the diagonals are cut into this many parallel runs, then merged
    prof, idx = kernels_temporal.matrix_profile(x - x.mean(), m, excl, 1e-8 * max(x.std(), 1e-300), chunks)
    # the same partners however the work is cut (ties go to the partner nearest in time)
    _p1, idx1 = kernels_temporal.matrix_profile(x - x.mean(), m, excl, 1e-8 * max(x.std(), 1e-300), 1)
    assert np.array_equal(idx, idx1)
    # the correlation form sqrt(2m(1 - corr)) cancels for near-identical shapes:
    # squared distances agree to ~1e-7, so distances below ~1e-3 are at its precision limit; and its rounding
    # grows as (values' scale / a subsequence's spread)^2: a shape 1e-5 high among values of 7 (Hypothesis found
    # [7, 2, 1, 0, 0, 0, 0, 0, 7.8e-5, 0, 6.1e-5, 0]: exactly 0 apart, 1.3e-3 by the kernel) is rounded accordingly
    xc = x - x.mean()
    spreads = [xc[i:i + m].std() for i in range(x.size - m + 1)]
    flat = 1e-8 * max(x.std(), 1e-300)
    narrowest = min([v for v in spreads if v > flat], default=1.0)
    scale = max(float(np.abs(xc).max()), 1e-300)
    tolerance = 1e-6 + 2 * m * 64 * np.finfo(float).eps * (scale / narrowest) ** 2
    assert np.allclose(prof ** 2, ref_matrix_profile(x, m, excl) ** 2, atol=tolerance)


def test_find_motifs_recovers_a_planted_shape():
    rng = np.random.default_rng(11)
    x = rng.normal(0, 1, 3000)
    shape = np.sin(np.linspace(0, 3 * np.pi, 60)) * np.linspace(1, 3, 60)
    x[400:460] = shape * 5 + 20 + rng.normal(0, 0.05, 60)  # level and scale differ: shape counts
    x[2100:2160] = shape + rng.normal(0, 0.05, 60)
    best = find_motifs(x, 60, k=2)[0]
    assert best.positions == (400, 2100) and best.distance < 1.0
    with pytest.raises(SeriesError, match="motif length"):
        find_motifs(x, 2)


# ---------------------------------------------------------------- numerically hostile input


@settings(max_examples=60, deadline=None)
@given(st.lists(floats, min_size=1, max_size=20), st.lists(floats, min_size=1, max_size=20),
       st.integers(-300, 300), st.one_of(st.none(), st.integers(0, 5)))
def test_distances_scale_with_the_data_at_any_magnitude(a, b, exponent, window):
    """d(c a, c b) = c d(a, b) for c from 1e-300 to 1e300: no overflow to inf, no underflow to 0."""
    c = 10.0 ** exponent
    base = dtw(a, b, window=window).distance
    scaled = dtw(np.array(a) * c, np.array(b) * c, window=window).distance
    assert math.isfinite(scaled)
    assert scaled == pytest.approx(base * c, rel=1e-9, abs=1e-300)
    if len(a) == len(b):
        assert euclidean(np.array(a) * c, np.array(b) * c) == pytest.approx(euclidean(a, b) * c, rel=1e-9,
                                                                             abs=1e-300)


def test_motifs_do_not_depend_on_level_or_scale():
    rng = np.random.default_rng(5)
    walk = np.cumsum(rng.normal(size=3000))
    want = find_motifs(walk, 50)
    for variant in (walk + 1e8, walk * 1e160, walk * 1e-300, walk * -3.0 + 7.0):
        got = find_motifs(variant, 50)
        assert [m.positions for m in got] == [m.positions for m in want]
        assert [m.distance for m in got] == pytest.approx([m.distance for m in want], abs=1e-4)


def test_one_spike_does_not_make_the_rest_shapeless():
    """A spike of 1e11 on a random walk made every other window "flat" against the inflated std (the top motif
    was two shapeless windows at sqrt(2m)), and the mean it moved left an offset whose rounding, times the
    spike's step, gave a motif at distance 0 (found by review). The walk's own motifs away from the spike stay."""
    walk = np.cumsum(np.random.default_rng(0).normal(size=3000))
    want = find_motifs(walk, 50, k=1)
    assert want[0].positions == (938, 1665)
    for spike in (1e9, 1e11):
        y = walk.copy()
        y[10] = spike
        got = find_motifs(y, 50, k=1)
        assert got[0].positions == want[0].positions
        assert got[0].distance == pytest.approx(want[0].distance, abs=1e-4)
    # Away from the start (a second review): the diagonals where both windows held the spike kept the rounding
    # of its square once it had passed, larger than the walk's own products, and every later pair correlated to
    # 1 — motifs at distance 0 right after the spike, as stumpy 1.14 gives too. A step of the level by 1e11 made
    # every window of the walk flat (against the median absolute deviation: half the step).
    want = find_motifs(walk, 16)
    for where in (700, 1500, 2900):
        y = walk.copy()
        y[where] = 1e11
        got = find_motifs(y, 16)
        assert [m.positions for m in got] == [m.positions for m in want], (where, got)
        assert [m.distance for m in got] == pytest.approx([m.distance for m in want], abs=1e-4)
    got = find_motifs(np.r_[walk[:1500], walk[1500:] + 1e11], 16)
    assert [m.positions for m in got] == [m.positions for m in want], got
    # Short series where most windows hold the spike (a third review): the median window was one of them, and the
    # others were flat (no motif, or the wrong one); the best pair is the brute force's.
    rng = np.random.default_rng(7)
    for m, n, where in ((15, 31, 10), (20, 41, 19), (30, 61, 29), (30, 80, 40)):
        y = np.cumsum(rng.normal(size=n))
        y[where] = 1e11
        best = find_motifs(y, m, k=1)
        z = [(w - w.mean()) / w.std() for w in (y[i:i + m] for i in range(n - m + 1))]  # (none is flat)
        ref = min(float(np.linalg.norm(z[i] - z[j])) for i in range(len(z)) for j in range(i + m // 2, len(z)))
        assert best and best[0].distance == pytest.approx(ref, abs=1e-6), (m, n, best, ref)


def test_whole_numbers_past_two_to_the_53_are_compared_as_they_are():
    """Series of int64 values past 2^53 are read as their differences from the smallest only where the level does
    not matter (dynamics, motifs): two such series compared were each moved by their own, and 2^60 + k was 0
    away from k (a third review)."""
    big = np.arange(4, dtype=np.int64) + 2 ** 60
    assert euclidean(big, np.arange(4)) == pytest.approx(2.0 ** 61, rel=1e-12)
    assert dtw(big, np.arange(4)).distance > 1e18 and lcs(big, np.arange(4)) == 0
    # two of them are compared at their common level: neighbours past 2^53 stay apart
    k = np.arange(50) % 7
    x, y = (2 ** 60 + k).astype(np.int64), (2 ** 60 + (k + 1) % 7).astype(np.uint64)
    assert edit_distance(x, y) == edit_distance(k, (k + 1) % 7) == 2  # (a rotation: one out, one in)
    assert lcs(x, y) == lcs(k, (k + 1) % 7) and token_dtw(x, y) == token_dtw(k, (k + 1) % 7)
    assert dtw(x, y).distance == dtw(k, (k + 1) % 7).distance and euclidean(x, y) == euclidean(k, (k + 1) % 7)
    # further apart than 64 bits hold: as floats (rounded), never wrapped around
    top = np.array([2 ** 64 - 1, 2 ** 64 - 2], dtype=np.uint64)
    assert euclidean(top, np.array([-2 ** 63, 0])) == pytest.approx(math.hypot(2.0 ** 64 + 2.0 ** 63, 2.0 ** 64))


def test_a_shapeless_series_has_no_motifs():
    """Every window of a constant series (or one with a single blip) is flat: no motif, rather than two flat
    windows reported at sqrt(2m), the distance of uncorrelated shapes."""
    assert find_motifs(np.ones(500), 50) == []
    assert find_motifs(np.r_[np.ones(300), 5.0, np.ones(300)], 20) == []


def test_tiny_variation_on_a_level_is_still_shape_not_zero_distance():
    """1 + 1e-12 * noise: the noise is resolved (1e-12 is ~4,500 rounding steps of 1.0); white noise
    has no motif closer than a few units, never the 0 that cancellation in E[x^2] - E[x]^2 gives."""
    rng = np.random.default_rng(6)
    x = 1.0 + 1e-12 * rng.normal(size=2000)
    motifs = find_motifs(x, 40)
    assert motifs and all(m.distance > 3.0 for m in motifs)
    noise = find_motifs(rng.normal(size=2000), 40)
    assert motifs[0].distance == pytest.approx(noise[0].distance, rel=0.25)


@pytest.mark.parametrize("chunks", [2, 3, 8, 32])
def test_matrix_profile_partners_do_not_depend_on_the_thread_count(chunks):
    """Flat stretches and exact repeats tie; the nearest partner wins, so every machine gives the same motifs."""
    rng = np.random.default_rng(0)
    for x in (np.r_[rng.normal(size=100), np.zeros(60), rng.normal(size=100)], np.sin(np.arange(400) * 2 * np.pi / 25)):
        c = x - x.mean()
        serial = kernels_temporal.matrix_profile(c, 8, 4, 1e-8 * c.std(), 1)
        cut = kernels_temporal.matrix_profile(c, 8, 4, 1e-8 * c.std(), chunks)
        assert np.array_equal(serial[0], cut[0]) and np.array_equal(serial[1], cut[1])


def test_distances_at_the_edge_of_the_float_range():
    assert dtw([1e308, 0.0], [1e308, 1e308]).distance == pytest.approx(1e308)
    assert euclidean([1.5e308], [-1.5e308]) == math.inf  # 3e308 is beyond the largest float: inf, no error
    assert euclidean([1.5e308], [1.0]) == pytest.approx(1.5e308)
    assert math.isfinite(distance_profile([1e308, 1.0, 2.0, 3.0], [1.0, 2.0]).max())
    assert dtw([5e-324, 0.0], [0.0, 5e-324]).distance > 0.0  # sqrt(2) x the smallest float: no underflow to 0


@pytest.mark.parametrize("window", [7, 2**31, 2**63 - 2, 2**63 - 1, 2**63, 2**64, 10**23])
def test_a_band_wider_than_the_series_is_no_band(window):
    # (2**63 - 1 wrapped around in the kernels' index arithmetic: a wrong distance, or a segmentation fault)
    a, b = np.array([1.0, 2, 3, 4, 5, 6, 7]), np.array([1.0, 2, 3, 4, 6, 9])
    assert dtw(a, b, window=window).distance == dtw(a, b).distance
    assert token_dtw([1, 2, 3, 4, 5, 6], [1, 2, 3, 9, 5], window=window) == token_dtw([1, 2, 3, 4, 5, 6],
                                                                                     [1, 2, 3, 9, 5])
    assert np.array_equal(distance_profile(a, b[:3], metric="dtw", window=window),
                          distance_profile(a, b[:3], metric="dtw"))
