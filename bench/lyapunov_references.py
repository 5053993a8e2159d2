"""The reference exponents of the literature table, computed on the equations themselves.

    python bench/lyapunov_references.py [--scale 1.0]

For each system of ``tests/chaos_systems.py``: two trajectories a distance 1e-8 apart, the second pulled back
to that distance along their difference after every map iteration or every time unit of a flow (Benettin et
al. 1976), the exponent the mean log stretch per time unit. The run is cut into 40 blocks; the standard error
is their spread over the square root of 40. Defaults: 2*10^7 map iterations; of a flow (RK4, steps of
0.001-0.01), 5*10^4 time units of Lorenz, 2*10^5 of Rössler, 10^6 of Ueda, 2*10^4 of Chen; 2*10^6 of
Mackey-Glass (its own Heun steps of 0.1 on the whole delay state, also at steps of 0.05 and 0.02: the exponent
of the equation, not of its discretisation). ``--scale`` shortens or lengthens every run. About two minutes in all.

The block errors understate the spread a little: runs of Ueda from three starts, 10^6 time units each, gave
0.10307, 0.10348 and 0.10329 (+- 0.0003 each), and 2*10^5 time units gave 0.1042 +- 0.0006.

Each map is written again here, jitted; its first values are checked against the generator of the tests.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from numba import njit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import chaos_systems as cs  # noqa: E402

EPS = 1e-8
BLOCKS = 40

# name, map kind for _map_step, start, the generator in the tests
MAPS = [
    ("logistic map r=4", 0, (0.3, 0.0), cs.logistic),
    ("sine map x -> sin(pi x)", 1, (0.3, 0.0), cs.sine_map),
    ("Henon map (1.4, 0.3)", 2, (0.1, 0.1), cs.henon),
    ("Lozi map (1.7, 0.5)", 3, (0.1, 0.1), cs.lozi),
    ("Ikeda map u=0.9", 4, (0.1, 0.1), cs.ikeda),
    ("Tinkerbell map", 5, (-0.72, -0.64), cs.tinkerbell),
    ("delayed logistic map A=2.27", 6, (0.5, 0.5), cs.delayed_logistic),
]

# name, _field kind, parameters, start, RK4 step, time units
FLOWS = [
    ("Lorenz (10, 28, 8/3)", 0, (10.0, 28.0, 8 / 3), (1.0, 1.0, 1.0), 0.0025, 50_000),
    ("Rossler (0.2, 0.2, 5.7)", 1, (0.2, 0.2, 5.7), (1.0, 1.0, 0.0), 0.01, 200_000),
    ("Rossler (0.15, 0.2, 10)", 1, (0.15, 0.2, 10.0), (1.0, 1.0, 0.0), 0.01, 200_000),
    ("Chen (35, 3, 28)", 2, (35.0, 3.0, 28.0), (-10.0, 0.0, 37.0), 0.001, 20_000),
    ("Ueda forced Duffing (0.05, 7.5)", 3, (0.05, 7.5), (2.5, 0.0, 0.0), 2 * math.pi / 400, 1_000_000),
]


@njit(cache=True)
def _map_step(kind, x, y):
    if kind == 0:
        return 4.0 * x * (1 - x), 0.0
    if kind == 1:
        return math.sin(math.pi * x), 0.0
    if kind == 2:
        return 1 - 1.4 * x * x + y, 0.3 * x
    if kind == 3:
        return 1 - 1.7 * abs(x) + y, 0.5 * x
    if kind == 4:
        t = 0.4 - 6.0 / (1 + x * x + y * y)
        return 1 + 0.9 * (x * math.cos(t) - y * math.sin(t)), 0.9 * (x * math.sin(t) + y * math.cos(t))
    if kind == 5:
        return x * x - y * y + 0.9 * x - 0.6013 * y, 2 * x * y + 2.0 * x + 0.5 * y
    if kind == 6:
        return 2.27 * x * (1 - y), x
    # the held-out maps of bench/lyapunov_heldout.py
    if kind == 7:  # cubic map, A = 3
        return 3.0 * x * (1 - x * x), 0.0
    if kind == 8:  # Holmes' Duffing map, a = 2.75, b = 0.2
        return y, -0.2 * x + 2.75 * y - y ** 3
    return 0.75 * x - y * y, 1.75 * y + x * y  # Burgers' map, a = 0.75, b = 1.75


@njit(cache=True)
def _map_orbit(kind, x, y, n):
    out = np.empty(n)
    for i in range(n):
        x, y = _map_step(kind, x, y)
        out[i] = x
    return out


@njit(cache=True)
def map_exponent(kind, x, y, n):
    for _ in range(10_000):
        x, y = _map_step(kind, x, y)
    a, b = x + EPS, y
    out = np.zeros(BLOCKS)
    per = n // BLOCKS
    for q in range(BLOCKS):
        acc = 0.0
        for _ in range(per):
            x, y = _map_step(kind, x, y)
            a, b = _map_step(kind, a, b)
            d = math.hypot(a - x, b - y)
            if d == 0.0:  # (the logistic map can land both on one float; start the pair again)
                a, b, d = x + EPS, y, EPS
            acc += math.log(d / EPS)
            a = x + (a - x) * EPS / d
            b = y + (b - y) * EPS / d
        out[q] = acc / per
    return out


@njit(cache=True)
def _rk4(kind, p, s, h):
    k1 = cs._field(kind, p, s)
    k2 = cs._field(kind, p, s + 0.5 * h * k1)
    k3 = cs._field(kind, p, s + 0.5 * h * k2)
    k4 = cs._field(kind, p, s + h * k3)
    return s + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


@njit(cache=True)
def flow_exponent(kind, p, s, h, units):
    for _ in range(int(1000 / h)):
        s = _rk4(kind, p, s, h)
    u = s.copy()
    u[0] += EPS  # (Ueda's third coordinate is the forcing's phase: a clock, never perturbed)
    every = max(1, int(round(1.0 / h)))
    per = int(units / BLOCKS / h) // every * every
    out = np.zeros(BLOCKS)
    for q in range(BLOCKS):
        acc = 0.0
        for i in range(per):
            s = _rk4(kind, p, s, h)
            u = _rk4(kind, p, u, h)
            if (i + 1) % every == 0:
                d = math.sqrt(np.sum((u - s) ** 2))
                acc += math.log(d / EPS)
                u = s + (u - s) * (EPS / d)
        out[q] = acc / (per * h)
    return out


@njit(cache=True)
def _mg_step(ring, pos, lag, h):
    """One Heun step of the Mackey-Glass generator in the tests; ``ring`` holds x[i-lag..i], x[i] at ``pos``."""
    n = lag + 1
    xi, d0, d1 = ring[pos], ring[(pos + 1) % n], ring[(pos + 2) % n]
    f0 = 0.2 * d0 / (1 + d0 ** 10) - 0.1 * xi
    f1 = 0.2 * d1 / (1 + d1 ** 10) - 0.1 * (xi + h * f0)
    return xi + 0.5 * h * (f0 + f1)


@njit(cache=True)
def mackey_glass_exponent(h, units):
    lag = int(round(17.0 / h))
    n = lag + 1
    a = np.full(n, 1.2)
    pos = n - 1
    for _ in range(int(5000 / h)):
        v = _mg_step(a, pos, lag, h)
        pos = (pos + 1) % n
        a[pos] = v
    b = a + EPS / math.sqrt(n)  # the whole delay state is the state
    every = int(round(10 / h))
    per = int(units / BLOCKS / h) // every * every
    out = np.zeros(BLOCKS)
    for q in range(BLOCKS):
        acc = 0.0
        for i in range(per):
            va, vb = _mg_step(a, pos, lag, h), _mg_step(b, pos, lag, h)
            pos = (pos + 1) % n
            a[pos], b[pos] = va, vb
            if (i + 1) % every == 0:
                d = math.sqrt(np.sum((b - a) ** 2))
                acc += math.log(d / EPS)
                b = a + (b - a) * (EPS / d)
        out[q] = acc / (per * h)
    return out


def report(name, blocks, table):
    mean, err = float(blocks.mean()), float(blocks.std(ddof=1) / math.sqrt(blocks.size))
    print(f"{name:34s} {mean:.5g} +- {err:.1g}   table {table:.5g} ({(table / mean - 1) * 100:+.1f} %)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="run length as a share of the default")
    scale = ap.parse_args().scale
    table = {name: ref for name, _g, _dt, ref, _src in cs.SYSTEMS}

    def reference(name):
        return next(ref for key, ref in table.items() if key.startswith(name[:12]))

    for name, kind, (x, y), generate in MAPS:
        assert np.allclose(_map_orbit(kind, x, y, 1100)[1000:], generate(100)), name  # the same map
        report(name, map_exponent(kind, x, y, int(2e7 * scale)), reference(name))
    for name, kind, p, s0, h, units in FLOWS:
        report(name, flow_exponent(kind, np.array(p), np.array(s0), h, units * scale), reference(name))
    for h in (0.1, 0.05, 0.02):
        report(f"Mackey-Glass tau=17 (steps of {h})", mackey_glass_exponent(h, 2e6 * scale), reference("Mackey-Glass"))


if __name__ == "__main__":
    main()
