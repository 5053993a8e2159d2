"""Kernels against numpy and closed-form values."""

import math

import numpy as np
import pytest

from midstream_tui.analysis import kernels
from midstream_tui.analysis.patterns import seq_rep_n, trailing_loop
from midstream_tui.analysis.stats import rate, summarize


def test_summary_matches_numpy_percentiles():
    rng = np.random.default_rng(3)
    x = rng.lognormal(0, 1, 1001)
    s = summarize(x)
    assert s.count == 1001
    for q, value in ((50, s.p50), (90, s.p90), (95, s.p95), (99, s.p99)):
        assert value == pytest.approx(np.percentile(x, q), rel=1e-12)
    assert s.mean == pytest.approx(x.mean()) and s.max == x.max()


def test_summary_ignores_non_finite_and_handles_empty():
    s = summarize(np.array([1.0, np.nan, 3.0, np.inf]))
    assert s.count == 2 and s.p50 == 2.0
    assert summarize(np.array([])).count == 0 and math.isnan(summarize(np.array([])).p50)


def test_rate_counts_weights_in_window_and_shortens_for_young_streams():
    ts = np.arange(0.0, 10.0, 0.1)  # 10 events per second
    assert rate(ts, None, now=10.0, window=5.0) == pytest.approx(10.0, rel=0.03)
    w = np.full(ts.shape, 2.0)
    assert rate(ts, w, now=10.0, window=5.0) == pytest.approx(20.0, rel=0.03)
    # a stream alive for 1 s is not diluted over a 5 s window
    assert rate(ts[:10], None, now=1.0, window=5.0, since=0.0) == pytest.approx(10.0)


def test_pcm16_levels_of_a_sine():
    t = np.arange(48000) / 48000
    x = (0.5 * np.sin(2 * np.pi * 1000 * t) * 32767).astype(np.int16)
    rms, peak, zcr = kernels.pcm16_levels(x)
    assert rms == pytest.approx(0.5 / math.sqrt(2), rel=1e-3)
    assert peak == pytest.approx(0.5, rel=1e-3)
    assert zcr * 48000 == pytest.approx(2000, rel=0.01)  # two crossings per cycle


def test_luma_thumbnail_and_motion():
    frame = np.zeros((720, 1280, 3), np.uint8)
    frame[:, :640] = 255
    thumb = kernels.luma_thumbnail(frame, 8)
    assert thumb.shape == (90, 160)
    assert thumb.mean() == pytest.approx(0.5, abs=1e-3)
    assert kernels.mean_abs_diff(thumb, np.zeros_like(thumb)) == pytest.approx(0.5, abs=1e-3)


def test_permutation_entropy_extremes():
    assert kernels.permutation_entropy(np.arange(100.0), 4, 1) == pytest.approx(0.0)
    noise = np.random.default_rng(0).normal(size=20000)
    assert kernels.permutation_entropy(noise, 4, 1) > 0.99


def test_trailing_loop_finds_period_and_start():
    rng = np.random.default_rng(1)
    prefix = rng.integers(1000, 2000, 50)
    unit = np.array([1, 2, 3, 4, 5, 6, 7])
    ids = np.concatenate([prefix, np.tile(unit, 5)])
    loop = trailing_loop(ids)
    assert loop is not None and loop.period == 7
    assert loop.start == 50 and loop.repeats == pytest.approx(5)
    assert trailing_loop(prefix) is None
    assert trailing_loop(np.array([1, 1, 1, 1])) is None  # too short to be a loop


def test_seq_rep_n():
    assert seq_rep_n(np.arange(100), 4) == 0.0
    assert seq_rep_n(np.tile(np.arange(5), 40), 4) == pytest.approx(1 - 5 / 197)
    assert math.isnan(seq_rep_n(np.arange(2), 4))


from midstream_tui.analysis.patterns import RecurringNgrams, compression_ratio, ngram_novelty  # noqa: E402


def test_recurring_ngrams_counts_positions_once_each():
    r = RecurringNgrams(n=3, min_count=3)
    seq = [1, 2, 3, 9, 1, 2, 3, 8, 7, 1, 2, 3, 5, 1, 2, 3]
    found = [(i, rec) for i, tok in enumerate(seq) if (rec := r.add(tok))]
    assert len(found) == 1  # reported once, when the third occurrence completes
    i, rec = found[0]
    assert i == 11 and rec.ngram == (1, 2, 3) and rec.positions == (0, 4, 9)
    assert r.count((1, 2, 3)) == 4 and r.most_common(1)[0].count == 4


def test_recurring_ngrams_ignore_self_overlap_and_stay_bounded():
    r = RecurringNgrams(n=3, min_count=2, max_ngrams=100)
    for _ in range(5):
        r.add(7)  # 7 7 7 7 7: overlapping copies of (7, 7, 7) do not count
    assert r.count((7, 7, 7)) == 1
    for tok in range(10_000):
        r.add(tok)
    assert len(r._seen) <= 100


def test_repetition_measures():
    assert compression_ratio("the same words " * 100) > 2.4 > compression_ratio(
        "Tides follow the moon, but the height of the water also depends on the coast.")
    assert ngram_novelty(np.arange(50), 4) == 1.0
    assert ngram_novelty(np.tile([1, 2, 3], 20), 4) == 0.0
    assert math.isnan(compression_ratio(""))
    # Whisper's definition (whisper/utils.py): bytes over zlib.compress at its default level (on this text level 9
    # makes one byte more, with this machine's zlib)
    import random
    import zlib
    words = "the of and a to in is you that it he was for on are as with his they at be this have from".split()
    pick = random.Random(2)
    text = "".join(" " + pick.choice(words) for _ in range(400))
    assert compression_ratio(text) == len(text.encode()) / len(zlib.compress(text.encode()))


def test_bit_rates_keep_their_digits():
    from midstream_tui.display import bit_rate

    assert bit_rate(0.031) == "31 kbit/s" and bit_rate(4.25) == "4.2 Mbit/s" and bit_rate(663.6) == "663.6 Mbit/s"
    assert bit_rate(1990.0) == "2.0 Gbit/s" and bit_rate(float("nan")) == "–"


def test_small_per_event_kernels_keep_the_gil_and_the_heavy_ones_release_it():
    """A kernel of microseconds that releases the GIL waits to get it back from the dashboard's thread (0.37 ms
    against 0.02 ms for a frame difference, measured): those called per event or per tick keep it; the dynamics,
    which run for milliseconds beside the drawing, release it."""
    from midstream_tui.analysis import kernels

    small = [kernels.quantile_sorted, kernels.sorted_ngram_hashes, kernels.summarize, kernels.count_at_or_after,
             kernels.weighted_rate, kernels.pcm16_levels, kernels.spectral_shape, kernels.luma_thumbnail,
             kernels.rgb_thumbnail, kernels.mean_abs_diff, kernels.trailing_period, kernels.repeated_ngram_fraction,
             kernels.singleton_ngram_fraction]
    heavy = [kernels.rosenstein_divergence, kernels.average_mutual_information, kernels.false_neighbour_fraction,
             kernels.nearest_neighbours, kernels.local_jacobian_exponent, kernels.nn_prediction_error]
    assert [k.__name__ for k in small if k.targetoptions.get("nogil")] == []
    assert [k.__name__ for k in heavy if not k.targetoptions.get("nogil")] == []


def test_the_trailing_period_is_the_one_a_walk_back_from_the_end_finds():
    """The loop search's kernel reads every period's run from the Z-function of the reversed window (it walked back
    from the end once per period: 10x the CPU on a long loop of a short unit); the same answer, on random windows
    and loops. Asked for a loop (its unit three times, over 16 words), only the periods that make one count: the
    longest run of a longer period that repeats in part (a passage said once before) hid a loop of a shorter one."""
    def walked(ids, max_period, min_repeats=0.0, min_words=0):
        best = (0, 0)
        for p in range(1, min(max_period, len(ids) // 2) + 1):
            run = 0
            while run + p < len(ids) and ids[-1 - run] == ids[-1 - run - p]:
                run += 1
            if run > best[1] and run + p >= min_repeats * p and run + p >= min_words:
                best = (p, run)
        return best

    rng = np.random.default_rng(3)
    for _ in range(3000):
        ids = rng.integers(0, int(rng.integers(1, 5)), int(rng.integers(0, 90)))
        if rng.random() < 0.5:
            unit = rng.integers(0, 4, int(rng.integers(1, 9)))
            ids = np.concatenate([ids, np.tile(unit, 40)[:int(rng.integers(1, 120))]])
        ids = ids.astype(np.int64)
        max_period = int(rng.integers(1, 70))
        assert tuple(int(v) for v in kernels.trailing_period(ids, max_period)) == walked(ids.tolist(), max_period)
        assert tuple(int(v) for v in kernels.trailing_period(ids, max_period, 3.0, 16)) == \
            walked(ids.tolist(), max_period, 3.0, 16)
    # a passage of 40 words said twice, then a loop of 7 words five times: the passage's period has the longest run
    rng = np.random.default_rng(5)
    passage, unit = rng.integers(100, 10_000, 40), rng.integers(100, 10_000, 7)
    ids = np.concatenate([passage, np.tile(unit, 5), passage, np.tile(unit, 5)]).astype(np.int64)
    loop = trailing_loop(ids, max_period=len(ids) // 3)
    assert loop is not None and loop.period == 7 and loop.run == 28, loop
