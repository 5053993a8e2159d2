"""Matrix profile (find_motifs) versus stumpy.stump, same series, same exclusion zone, one run.

    python bench/bench_motifs.py [--sizes 10000,100000]   (needs the bench extra: pip install -e '.[bench]')

Both use every core numba gives them (NUMBA_NUM_THREADS). Steady state: each is
called once to compile before it is timed. "agree" compares the whole profile
(largest difference) and the top motif pair.
"""

from __future__ import annotations

import argparse
import math
import time

import numba
import numpy as np
import stumpy

from midstream_tui.analysis.temporal import find_motifs


def timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--length", type=int, default=100)
    args = ap.parse_args()
    m = args.length
    excl = int(math.ceil(m / 4)) + 1  # stumpy excludes |i - j| <= ceil(m/4); find_motifs wants the first allowed
    rng = np.random.default_rng(7)
    warm = np.cumsum(rng.normal(size=2000))
    find_motifs(warm, m, exclusion=excl)
    stumpy.stump(warm, m)
    print(f"threads: {numba.get_num_threads()}, subsequence length {m}")
    print(f"{'n':>7} {'midstream s':>12} {'stumpy s':>9} {'ratio':>6}  top motif (midstream / stumpy)")
    for n in (int(v) for v in args.sizes.split(",")):
        x = np.cumsum(rng.normal(size=n))
        t_ours, ours = timed(lambda: find_motifs(x, m, k=1, exclusion=excl))
        t_theirs, mp = timed(lambda: stumpy.stump(x, m))
        prof = mp[:, 0].astype(float)
        i = int(np.argmin(prof))
        theirs = (min(i, int(mp[i, 1])), max(i, int(mp[i, 1])))
        print(f"{n:>7} {t_ours:>12.2f} {t_theirs:>9.2f} {t_theirs / t_ours:>5.2f}x  "
              f"{ours[0].positions} {ours[0].distance:.6f} / {theirs} {prof[i]:.6f}")


if __name__ == "__main__":
    main()
