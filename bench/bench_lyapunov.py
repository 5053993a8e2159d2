"""Largest Lyapunov exponent versus nolds.lyap_r (Rosenstein's method), same series, one run.

    python bench/bench_lyapunov.py [--n 10000]     (needs the bench extra)

Accuracy is compared on the x series of the Lorenz system (published 0.906 per
time unit) and the logistic map (ln 2); white noise (no exponent to find: a number is wrong, "unreliable"
is right) shows the cost where neighbour searches are slowest. MidStream runs twice: the divergence
curve alone (Rosenstein, nolds' method) and the default (local maps added). nolds runs once with its defaults and
once with the parameters MidStream chose (same embedding, same Theiler window),
so speed is compared on equal work. Peak memory is measured with tracemalloc.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import tracemalloc
from pathlib import Path

import nolds
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_dynamics import logistic, lorenz_x  # noqa: E402

from midstream_tui.analysis import kernels  # noqa: E402
from midstream_tui.analysis.dynamics import largest_lyapunov  # noqa: E402


def measure(fn, repeat: int = 1):
    """(value, best time of ``repeat`` runs, peak MB). Timed without tracemalloc (it slows the kernels'
    allocations several-fold); the memory peak comes from one more, traced, run."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t)
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return value, min(times), peak / 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    args = ap.parse_args()
    kernels.warm_up()
    largest_lyapunov(logistic(500))  # compile/load everything once
    cases = [("lorenz x, dt=0.01", lorenz_x(args.n), 0.01, 0.906), ("logistic r=4", logistic(args.n), 1.0, math.log(2)),
             ("white noise", np.random.default_rng(1).normal(size=args.n), 1.0, math.nan)]
    print(f"N = {args.n}")
    print(f"{'series':<18} {'method':<28} {'lambda':>8} {'error':>8} {'time s':>8} {'peak MB':>8}")
    for name, x, dt, ref in cases:
        ours, t_ours, m_ours = measure(lambda: largest_lyapunov(x, dt, method="rosenstein"), 3)
        print(f"{name:<18} {'midstream (divergence curve)':<28} {ours.lyapunov:>8.3f} "
              f"{ours.lyapunov / ref - 1:>+8.1%} {t_ours:>8.3f} {m_ours:>8.1f}")
        auto, t_auto, m_auto = measure(lambda: largest_lyapunov(x, dt), 3)
        print(f"{'':<18} {'midstream (default: + maps)':<28} {auto.lyapunov:>8.3f} "
              f"{auto.lyapunov / ref - 1:>+8.1%} {t_auto:>8.3f} {m_auto:>8.1f}"
              f"{'  unreliable: ' + auto.unreliable[:60] if auto.unreliable else ''}")
        lam, t_def, m_def = measure(lambda: nolds.lyap_r(x) / dt)
        print(f"{'':<18} {'nolds lyap_r (defaults)':<28} {lam:>8.3f} {lam / ref - 1:>+8.1%} {t_def:>8.3f} {m_def:>8.1f}")
        same = dict(emb_dim=ours.dim, lag=ours.lag, min_tsep=ours.theiler, trajectory_len=ours.horizon,
                    fit_offset=ours.fit_start)
        lam2, t_same, m_same = measure(lambda: nolds.lyap_r(x, **same) / dt)
        print(f"{'':<18} {'nolds lyap_r (our params)':<28} {lam2:>8.3f} {lam2 / ref - 1:>+8.1%} "
              f"{t_same:>8.3f} {m_same:>8.1f}")
        print(f"{'':<18} speed-up vs nolds: divergence curve {t_def / t_ours:.0f}x (defaults), {t_same / t_ours:.0f}x "
              f"(same parameters); default with local maps {t_def / t_auto:.0f}x, {t_same / t_auto:.0f}x; "
              f"memory {m_def / max(m_auto, 1e-3):.0f}x less")


if __name__ == "__main__":
    main()
