"""DTW versus dtaidistance's C implementation (distance_fast), same inputs, one run.

    python bench/bench_temporal.py        (needs the bench extra: pip install -e '.[bench]')
"""

from __future__ import annotations

import time

import numpy as np
from dtaidistance import dtw as dtai

from midstream_tui.analysis import kernels_temporal
from midstream_tui.analysis.temporal import dtw


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    kernels_temporal.warm_up()
    rng = np.random.default_rng(0)
    print(f"{'n':>6} {'window':>7} {'midstream ms':>13} {'dtaidistance ms':>16} {'ratio':>7}  agree")
    for n in (1000, 5000):
        a, b = rng.normal(size=n), rng.normal(size=n)
        for window in (None, n // 10):
            ours = dtw(a, b, window=window).distance
            theirs = dtai.distance_fast(a, b, window=None if window is None else window + 1)
            repeat = 20 if n == 1000 else 5
            t_ours = best(lambda: dtw(a, b, window=window), repeat)
            t_theirs = best(lambda: dtai.distance_fast(a, b, window=None if window is None else window + 1), repeat)
            print(f"{n:>6} {str(window):>7} {t_ours * 1e3:>13.2f} {t_theirs * 1e3:>16.2f} "
                  f"{t_theirs / t_ours:>6.1f}x  {abs(ours - theirs) < 1e-9 * max(1, ours)}")


if __name__ == "__main__":
    main()
