"""Largest Lyapunov exponents of 25 more flows, none of them in the literature table or the held-out set.

    python bench/lyapunov_review.py [--json out.json] [--references]     (about 3 minutes; --references: 15 more)

Built by an independent review session on 2026-12-05 to test the claim that an exponent given as reliable is
within 20 % (10 % clean): Newton-Leipnik, Rikitake, Hadley, Qi, Sakarya, Bouali, Chen-Lee, the finance system,
Tigan, Coullet, Linz-Sprott's absolute-value jerk, Lorenz-Stenflo, Rossler hyperchaos, Henon-Heiles, a forced
pendulum, a forced Brusselator, Colpitts, Anishchenko-Astakhov, Hastings-Powell, WINDMI, Liu, Yu-Wang,
Pehlivan-Wei, Vano's four-species Lotka-Volterra and Wang-Sun. Each is sampled on its first coordinate (and five on
a second one) at T/35 and T/15, T its mean time between maxima, N = 10,000 after 2,500 time units of transient,
clean and with 1 % noise (seed 12345): 120 series. The references (``REFERENCES``) are Benettin's two-trajectory
method over 2*10^4 time units, the standard error from 20 blocks, checked by the review at half the step from
another start; ``--references`` computes them again.

Its first run (README, "A second fresh review"): 91 of 120 given as reliable, 14 of them more than 20 % off.
Keep it for measuring: a rule chosen on these series is no longer checked by them.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from numba import njit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from midstream_tui.analysis.dynamics import largest_lyapunov  # noqa: E402


@njit(cache=True)
def field(k, s, t, p, out):
    """The right-hand side of system ``k`` at state ``s`` and time ``t`` (forced systems use t) into ``out``."""
    if k == 0:  # Newton-Leipnik
        x, y, z = s[0], s[1], s[2]
        out[0] = -p[0] * x + y + 10 * y * z
        out[1] = -x - 0.4 * y + 5 * x * z
        out[2] = p[1] * z - 5 * x * y
    elif k == 1:  # Rikitake dynamo
        x, y, z = s[0], s[1], s[2]
        out[0] = -p[0] * x + z * y
        out[1] = -p[0] * y + (z - p[1]) * x
        out[2] = 1 - x * y
    elif k == 2:  # Hadley circulation
        x, y, z = s[0], s[1], s[2]
        out[0] = -y * y - z * z - p[0] * x + p[0] * p[2]
        out[1] = x * y - p[1] * x * z - y + p[3]
        out[2] = p[1] * x * y + x * z - z
    elif k == 3:  # Qi (2005)
        x, y, z = s[0], s[1], s[2]
        out[0] = p[0] * (y - x) + y * z
        out[1] = p[2] * x - y - x * z
        out[2] = x * y - p[1] * z
    elif k == 4:  # Sakarya
        x, y, z = s[0], s[1], s[2]
        out[0] = -x + y + y * z
        out[1] = -x - y + p[0] * x * z
        out[2] = z - p[1] * x * y
    elif k == 5:  # Bouali
        x, y, z = s[0], s[1], s[2]
        out[0] = x * (4 - y) + p[0] * z
        out[1] = -y * (1 - x * x)
        out[2] = -x * (1.5 - p[1] * z) - 0.05 * z
    elif k == 6:  # Chen-Lee
        x, y, z = s[0], s[1], s[2]
        out[0] = p[0] * x - y * z
        out[1] = p[1] * y + x * z
        out[2] = p[2] * z + x * y / 3.0
    elif k == 7:  # finance system
        x, y, z = s[0], s[1], s[2]
        out[0] = z + (y - p[0]) * x
        out[1] = 1 - p[1] * y - x * x
        out[2] = -x - p[2] * z
    elif k == 8:  # Tigan (T-system)
        x, y, z = s[0], s[1], s[2]
        out[0] = p[0] * (y - x)
        out[1] = (p[2] - p[0]) * x - p[0] * x * z
        out[2] = -p[1] * z + x * y
    elif k == 9:  # Coullet: x''' = a x + b x' + c x'' + d x^3
        out[0] = s[1]
        out[1] = s[2]
        out[2] = p[0] * s[0] + p[1] * s[1] + p[2] * s[2] + p[3] * s[0] ** 3
    elif k == 10:  # Linz-Sprott: x''' = -A x'' - x' + |x| - 1
        out[0] = s[1]
        out[1] = s[2]
        out[2] = -p[0] * s[2] - s[1] + abs(s[0]) - 1
    elif k == 12:  # Lorenz-Stenflo (4-D)
        x, y, z, w = s[0], s[1], s[2], s[3]
        out[0] = p[0] * (y - x) + p[3] * w
        out[1] = p[2] * x - x * z - y
        out[2] = x * y - p[1] * z
        out[3] = -x - p[0] * w
    elif k == 13:  # Rossler hyperchaos (4-D)
        x, y, z, w = s[0], s[1], s[2], s[3]
        out[0] = -y - z
        out[1] = x + p[0] * y + w
        out[2] = p[1] + x * z
        out[3] = -p[2] * z + p[3] * w
    elif k == 14:  # Henon-Heiles (x, y, px, py)
        x, y = s[0], s[1]
        out[0] = s[2]
        out[1] = s[3]
        out[2] = -x - 2 * x * y
        out[3] = -y - x * x + y * y
    elif k == 15:  # forced damped pendulum (omega, theta)
        out[0] = -s[0] / p[0] - math.sin(s[1]) + p[1] * math.cos(p[2] * t)
        out[1] = s[0]
    elif k == 16:  # forced Brusselator
        x, y = s[0], s[1]
        out[0] = p[0] + x * x * y - (p[1] + 1) * x + p[2] * math.cos(p[3] * t)
        out[1] = p[1] * x - x * x * y
    elif k == 17:  # Colpitts oscillator (Maggio-Kennedy, normalised)
        g, q, kk = p[0], p[1], p[2]
        out[0] = g / (q * (1 - kk)) * (-(math.exp(-s[1]) - 1) + s[2])
        out[1] = g / (q * kk) * s[2]
        out[2] = -q * kk * (1 - kk) / g * (s[0] + s[1]) - s[2] / q
    elif k == 18:  # Anishchenko-Astakhov
        x, y, z = s[0], s[1], s[2]
        on = 1.0 if x > 0 else 0.0
        out[0] = p[0] * x + y - x * z
        out[1] = -x
        out[2] = -p[1] * z + p[1] * on * x * x
    elif k == 19:  # Hastings-Powell food chain
        x, y, z = s[0], s[1], s[2]
        f1 = p[0] * x / (1 + p[1] * x)
        f2 = p[2] * y / (1 + p[3] * y)
        out[0] = x * (1 - x) - f1 * y
        out[1] = f1 * y - f2 * z - p[4] * y
        out[2] = f2 * z - p[5] * z
    elif k == 20:  # WINDMI: x''' = -a x'' - x' + b - exp(x)
        out[0] = s[1]
        out[1] = s[2]
        out[2] = -p[0] * s[2] - s[1] + p[1] - math.exp(s[0])
    elif k == 21:  # Liu (2004)
        x, y, z = s[0], s[1], s[2]
        out[0] = p[0] * (y - x)
        out[1] = p[1] * x - p[3] * x * z
        out[2] = -p[2] * z + p[4] * x * x
    elif k == 22:  # Yu-Wang
        x, y, z = s[0], s[1], s[2]
        out[0] = p[0] * (y - x)
        out[1] = p[1] * x - p[2] * x * z
        out[2] = math.exp(x * y) - p[3] * z
    elif k == 23:  # Pehlivan-Wei
        x, y, z = s[0], s[1], s[2]
        out[0] = y - y * z
        out[1] = y + y * z - 2 * x
        out[2] = 2 - x * y - y * y
    elif k == 24:  # Vano's four-species Lotka-Volterra
        a, b, c, d = s[0], s[1], s[2], s[3]
        out[0] = 1.0 * a * (1 - (a + 1.09 * b + 1.52 * c))
        out[1] = 0.72 * b * (1 - (b + 0.44 * c + 1.36 * d))
        out[2] = 1.53 * c * (1 - (2.33 * a + c + 0.47 * d))
        out[3] = 1.27 * d * (1 - (1.21 * a + 0.51 * b + 0.35 * c + d))
    else:  # Wang-Sun
        x, y, z = s[0], s[1], s[2]
        out[0] = p[0] * x + p[2] * y * z
        out[1] = p[1] * x + p[3] * y - x * z
        out[2] = p[4] * z + p[5] * x * y


@njit(cache=True)
def rk4(k, s, t, h, p, k1, k2, k3, k4, tmp):
    """One classical Runge-Kutta step of system ``k``, in place."""
    n = s.shape[0]
    field(k, s, t, p, k1)
    for i in range(n):
        tmp[i] = s[i] + 0.5 * h * k1[i]
    field(k, tmp, t + 0.5 * h, p, k2)
    for i in range(n):
        tmp[i] = s[i] + 0.5 * h * k2[i]
    field(k, tmp, t + 0.5 * h, p, k3)
    for i in range(n):
        tmp[i] = s[i] + h * k3[i]
    field(k, tmp, t + h, p, k4)
    for i in range(n):
        s[i] += h / 6.0 * (k1[i] + 2 * k2[i] + 2 * k3[i] + k4[i])


@njit(cache=True)
def integrate(k, s0, t0, h, steps, every, p):
    """(state, time, every ``every``-th state) after ``steps`` steps of ``h`` from (s0, t0); every = 0: none kept."""
    n = s0.shape[0]
    s = s0.copy()
    k1, k2, k3, k4, tmp = np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    kept = steps // every if every > 0 else 0
    out = np.empty((kept, n))
    t = t0
    j = 0
    for i in range(steps):
        rk4(k, s, t, h, p, k1, k2, k3, k4, tmp)
        t = t0 + (i + 1) * h
        if every > 0 and (i + 1) % every == 0 and j < kept:
            out[j, :] = s
            j += 1
    return s, t, out


@njit(cache=True)
def benettin(k, s0, t0, h, units, p, d0):
    """Log growth per time unit of a second trajectory d0 away, pulled back to d0 after every time unit."""
    n = s0.shape[0]
    s = s0.copy()
    q = s0.copy()
    q[0] += d0
    k1, k2, k3, k4, tmp = np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    per_unit = int(round(1.0 / h))
    logs = np.empty(units)
    t = t0
    for u in range(units):
        for _ in range(per_unit):
            rk4(k, s, t, h, p, k1, k2, k3, k4, tmp)
            rk4(k, q, t, h, p, k1, k2, k3, k4, tmp)
            t += h
        d = 0.0
        for i in range(n):
            d += (q[i] - s[i]) ** 2
        d = math.sqrt(d)
        logs[u] = math.log(d / d0)
        for i in range(n):
            q[i] = s[i] + (q[i] - s[i]) * d0 / d
    return logs


def _henon_heiles_start(energy, y, py=0.0, x=0.0):
    potential = 0.5 * (x * x + y * y) + x * x * y - y ** 3 / 3
    return [x, y, math.sqrt(2 * (energy - potential) - py * py), py]


# name: kind, parameters, start, RK4 step, reference exponent per time unit, its standard error
REFERENCES = {
    "Newton-Leipnik": (0, [0.4, 0.175], [0.349, 0.0, -0.16], 0.002, 0.14139, 0.00265),
    "Rikitake": (1, [2.0, 5.0], [1.0, 2.0, 3.0], 0.002, 0.12851, 0.00045),
    "Hadley": (2, [0.25, 4.0, 8.0, 1.0], [0.0, 0.0, 1.3], 0.002, 0.16911, 0.00281),
    "Qi": (3, [10.0, 8 / 3, 28.0], [1.0, 1.0, 1.0], 0.001, 1.17742, 0.01732),
    "Sakarya": (4, [0.4, 0.3], [1.0, -1.0, 1.0], 0.002, 0.25772, 0.00357),
    "Bouali": (5, [0.3, 1.0], [1.0, 0.1, 0.1], 0.002, 0.02691, 0.00135),
    "Chen-Lee": (6, [5.0, -10.0, -0.38], [1.0, 1.0, 1.0], 0.001, 0.14195, 0.00149),
    "finance": (7, [0.001, 0.2, 1.1], [-1.5, 0.7, 0.1], 0.005, 0.09255, 0.00155),
    "Tigan": (8, [2.1, 0.6, 30.0], [0.1, 0.1, 0.1], 0.002, 0.37203, 0.00317),
    "Coullet": (9, [0.8, -1.1, -0.45, -1.0], [0.1, 0.0, 0.0], 0.005, 0.01362, 0.00083),
    "Linz-Sprott": (10, [0.6], [0.0, 0.5, 0.0], 0.005, 0.0388, 0.00263),
    "Lorenz-Stenflo": (12, [1.0, 0.7, 26.0, 1.5], [1.0, 1.0, 1.0, 1.0], 0.001, 0.17851, 0.00194),
    "Rossler hyperchaos": (13, [0.25, 3.0, 0.5, 0.05], [-10.0, -6.0, 0.0, 10.0], 0.002, 0.11122, 0.00124),
    "Henon-Heiles": (14, [0.0], _henon_heiles_start(0.15, -0.05), 0.005, 0.09295, 0.00441),
    "forced pendulum": (15, [2.0, 1.5, 2 / 3], [0.0, 0.2], 0.005, 0.1119, 0.00351),
    "forced Brusselator": (16, [0.4, 1.2, 0.05, 0.81], [0.3, 0.3], 0.005, 0.01462, 0.00056),
    "Colpitts": (17, [4.46, 1.35, 0.5], [0.1, 0.1, 0.1], 0.002, 0.08001, 0.00173),
    "Anishchenko-Astakhov": (18, [1.2, 0.5], [1.0, 0.0, 0.0], 0.005, 0.04057, 0.00227),
    "Hastings-Powell": (19, [5.0, 3.0, 0.1, 2.0, 0.4, 0.01], [0.7, 0.2, 8.0], 0.005, 0.00676, 0.00044),
    "WINDMI": (20, [0.7, 2.5], [0.0, 0.8, 0.0], 0.005, 0.0766, 0.00198),
    "Liu": (21, [10.0, 40.0, 2.5, 1.0, 4.0], [1.0, 1.0, 1.0], 0.001, 1.65381, 0.00707),
    "Yu-Wang": (22, [10.0, 40.0, 2.0, 2.5], [2.2, 2.4, 28.0], 0.001, 1.43015, 0.00451),
    "Pehlivan-Wei": (23, [0.0], [1.0, 1.0, 0.0], 0.002, 0.06913, 0.00176),
    "Vano Lotka-Volterra": (24, [0.0], [0.3, 0.2, 0.3, 0.2], 0.005, 0.01985, 0.00073),
    "Wang-Sun": (25, [0.2, -0.01, 1.0, -0.4, -1.0, -1.0], [0.5, 0.1, 0.1], 0.002, 0.06396, 0.00148),
}
SECOND = {"Rikitake": 2, "Hadley": 1, "Tigan": 2, "Rossler hyperchaos": 1, "Colpitts": 1}
"""Systems also observed on a second coordinate."""
TRANSIENT = 2000.0
N = 10_000
SEED = 12345


def settled(name):
    """(kind, parameters, step, state, time) after the transient."""
    k, p, start, h, _ref, _se = REFERENCES[name]
    p = np.array(p, float)
    s, t, _ = integrate(k, np.array(start, float), 0.0, h, int(TRANSIENT / h), 0, p)
    return k, p, h, s, t


def reference(name, units=20_000):
    """(exponent, standard error) computed again on the equations."""
    k, p, h, s, t = settled(name)
    logs = benettin(k, s, t, h, units, p, 1e-8)
    blocks = logs[: logs.size // 20 * 20].reshape(20, -1).mean(axis=1)
    return float(logs.mean()), float(blocks.std(ddof=1) / math.sqrt(20))


def series():
    """(name, coordinate, samples per turn, noise, dt, values) of all 120 series."""
    rng = np.random.default_rng(SEED)
    for name in REFERENCES:
        k, p, h, s, t = settled(name)
        s, t, _ = integrate(k, s, t, h, int(500 / h), 0, p)
        for c in [0] + ([SECOND[name]] if name in SECOND else []):
            every = max(1, int(round(0.01 / h)))
            _, _, fine = integrate(k, s, t, h, int(2000 / h), every, p)
            x = fine[:, c]
            turn = 2000.0 / np.count_nonzero((x[1:-1] > x[:-2]) & (x[1:-1] >= x[2:]))
            for per_turn in (35, 15):
                dt = turn / per_turn
                m = int(math.ceil(dt / h))
                _, _, kept = integrate(k, s, t, dt / m, N * m, m, p)
                y = kept[:, c].copy()
                for noise in (0.0, 0.01):
                    yield name, c, per_turn, noise, dt, (y + noise * y.std() * rng.standard_normal(N) if noise else y)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", help="write every result here")
    ap.add_argument("--references", action="store_true", help="compute the references again (15 minutes or so)")
    args = ap.parse_args()
    if args.references:
        for name, (*_rest, ref, se) in REFERENCES.items():
            got, got_se = reference(name)
            print(f"{name:22s} stored {ref:.5f} +- {se:.5f}  computed {got:.5f} +- {got_se:.5f}", flush=True)
    rows = []
    cpu = 0.0
    for name, c, per_turn, noise, dt, x in series():
        ref = REFERENCES[name][4]
        t = time.process_time()
        res = largest_lyapunov(x, dt)
        cpu += time.process_time() - t
        rows.append(dict(system=name, coordinate=c, per_turn=per_turn, noise=noise, dt=dt, reference=ref,
                         lyapunov=float(res.lyapunov), reliable=res.reliable, unreliable=res.unreliable))
        err = res.lyapunov / ref - 1
        print(f"{name:22s} x{c} T/{per_turn:<2d} {'1 % noise' if noise else 'clean    '} {err:+8.1%} "
              f"{'reliable' if res.reliable else 'unreliable: ' + res.unreliable[:70]}", flush=True)
    reliable = [r for r in rows if r["reliable"]]
    off = [r for r in reliable if abs(r["lyapunov"] / r["reference"] - 1) > 0.2]
    clean_off = [r for r in reliable if not r["noise"] and abs(r["lyapunov"] / r["reference"] - 1) > 0.1]
    print(f"\n{len(rows)} series: {len(reliable)} given as reliable, {len(off)} of them more than 20 % off, "
          f"{len(clean_off)} clean ones more than 10 % off; {cpu:.0f} s of CPU")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
