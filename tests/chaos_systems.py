"""Chaotic systems with published largest Lyapunov exponents, generated here; one coordinate observed.

Each entry of ``SYSTEMS``: name, generator (n -> series), sampling interval, the exponent per unit
of time used as the reference, and where it comes from. Every reference was computed again on the
equations by ``bench/lyapunov_references.py`` (two trajectories, Benettin's method: 2*10^7 map
iterations, 2*10^4 to 10^6 time units of a flow, 2*10^6 of Mackey-Glass), and the published value
is used where one exists and agrees; "computed here" where none does. The first references here
were computed on runs 16-100 times shorter and were off by up to 3.5 % (Ueda 0.1057, Mackey-Glass 0.0053,
Ikeda 0.5058, sine map 0.6888): longer runs agree with Sprott instead.

Sources: J. C. Sprott, *Chaos and Time-Series Analysis* (Oxford 2003), Appendix A ("Sprott");
A. Wolf, J. B. Swift, H. L. Swinney, J. A. Vastano, Physica D 16 (1985) 285 ("Wolf");
G. Chen, T. Ueta, Int. J. Bifurcation and Chaos 9 (1999) 1465 and later papers quoting 2.027
("Chen"); J. D. Farmer, Physica D 4 (1982) 366 ("Farmer").
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def _field(kind, p, s):
    out = np.empty(s.shape[0])
    if kind == 0:  # Lorenz
        out[0] = p[0] * (s[1] - s[0])
        out[1] = s[0] * (p[1] - s[2]) - s[1]
        out[2] = s[0] * s[1] - p[2] * s[2]
    elif kind == 1:  # Rossler
        out[0] = -s[1] - s[2]
        out[1] = s[0] + p[0] * s[1]
        out[2] = p[1] + s[2] * (s[0] - p[2])
    elif kind == 2:  # Chen
        out[0] = p[0] * (s[1] - s[0])
        out[1] = (p[2] - p[0]) * s[0] - s[0] * s[2] + p[2] * s[1]
        out[2] = s[0] * s[1] - p[1] * s[2]
    elif kind == 3:  # Ueda: x'' + k x' + x^3 = B cos(theta), theta' = 1
        out[0] = s[1]
        out[1] = -p[0] * s[1] - s[0] ** 3 + p[1] * math.cos(s[2])
        out[2] = 1.0
    else:  # forced Van der Pol: x'' - b (1 - x^2) x' + x = A sin(theta), theta' = w
        out[0] = s[1]
        out[1] = p[0] * (1 - s[0] * s[0]) * s[1] - s[0] + p[1] * math.sin(s[2])
        out[2] = p[2]
    return out


@njit(cache=True)
def flow(kind, p, s0, dt, n, substeps, transient):
    """First coordinate of a flow sampled every dt (RK4 with ``substeps`` steps per sample)."""
    s = s0.copy()
    h = dt / substeps
    out = np.empty(n)
    for i in range(-transient, n):
        for _ in range(substeps):
            k1 = _field(kind, p, s)
            k2 = _field(kind, p, s + 0.5 * h * k1)
            k3 = _field(kind, p, s + 0.5 * h * k2)
            k4 = _field(kind, p, s + h * k3)
            s = s + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        if i >= 0:
            out[i] = s[0]
    return out


@njit(cache=True)
def mackey_glass(n, tau=17.0, dt=1.0, h=0.1, transient=5000):
    """x' = 0.2 x(t - tau) / (1 + x(t - tau)^10) - 0.1 x (Heun steps of h), sampled every dt."""
    lag = int(round(tau / h))
    every = int(round(dt / h))
    total = (transient + n) * every + lag + 1
    x = np.empty(total)
    x[: lag + 1] = 1.2
    for i in range(lag, total - 1):
        d0, d1 = x[i - lag], x[i - lag + 1]
        f0 = 0.2 * d0 / (1 + d0 ** 10) - 0.1 * x[i]
        f1 = 0.2 * d1 / (1 + d1 ** 10) - 0.1 * (x[i] + h * f0)
        x[i + 1] = x[i] + 0.5 * h * (f0 + f1)
    return x[lag + 1 + transient * every:: every][:n].copy()


def _map(step, state, n, transient=1000):
    out = np.empty(n)
    for i in range(n + transient):
        state = step(*state)
        if i >= transient:
            out[i - transient] = state[0]
    return out


def logistic(n):
    return _map(lambda x: (4.0 * x * (1 - x),), (0.3,), n)


def sine_map(n):
    return _map(lambda x: (math.sin(math.pi * x),), (0.3,), n)


def henon(n):
    return _map(lambda x, y: (1 - 1.4 * x * x + y, 0.3 * x), (0.1, 0.1), n)


def lozi(n):
    return _map(lambda x, y: (1 - 1.7 * abs(x) + y, 0.5 * x), (0.1, 0.1), n)


def ikeda(n, u=0.9):
    def step(x, y):
        t = 0.4 - 6.0 / (1 + x * x + y * y)
        return 1 + u * (x * math.cos(t) - y * math.sin(t)), u * (x * math.sin(t) + y * math.cos(t))
    return _map(step, (0.1, 0.1), n)


def tinkerbell(n):
    return _map(lambda x, y: (x * x - y * y + 0.9 * x - 0.6013 * y, 2 * x * y + 2.0 * x + 0.5 * y), (-0.72, -0.64), n)


def delayed_logistic(n):
    return _map(lambda x, y: (2.27 * x * (1 - y), x), (0.5, 0.5), n)


def lorenz(n, dt):
    return flow(0, np.array([10.0, 28.0, 8 / 3]), np.array([1.0, 1.0, 1.0]), dt, n, 4, 2000)


def rossler(n, dt, a=0.2, b=0.2, c=5.7):
    return flow(1, np.array([a, b, c]), np.array([1.0, 1.0, 0.0]), dt, n, 10, 1000)


def chen(n, dt=0.01):
    return flow(2, np.array([35.0, 3.0, 28.0]), np.array([-10.0, 0.0, 37.0]), dt, n, 10, 2000)


def ueda(n, dt=2 * math.pi / 40):
    return flow(3, np.array([0.05, 7.5]), np.array([2.5, 0.0, 0.0]), dt, n, 10, 2000)


def van_der_pol_forced(n, dt=0.1):
    """Not in the table (no published exponent): b = 3, A = 5, w = 1.788, the held-out set's (0.1929 computed there)."""
    return flow(4, np.array([3.0, 5.0, 1.788]), np.array([0.1, 0.0, 0.0]), dt, n, 20, int(round(1000 / dt)))


SYSTEMS = [
    # name, generator, dt, reference exponent per time unit, source
    ("logistic map r=4", logistic, 1.0, math.log(2), "exact: ln 2"),
    ("sine map x -> sin(pi x)", sine_map, 1.0, 0.6891, "computed here 0.68908; Sprott 0.689"),
    ("Henon map (1.4, 0.3)", henon, 1.0, 0.4192, "Sprott 0.41922; computed here 0.41931"),
    ("Lozi map (1.7, 0.5)", lozi, 1.0, 0.4702, "Sprott 0.47023; computed here 0.47013"),
    ("Ikeda map u=0.9", ikeda, 1.0, 0.5076, "Sprott 0.5076; computed here 0.50769"),
    ("Tinkerbell map", tinkerbell, 1.0, 0.1999, "computed here 0.19986; Sprott lists 0.190"),
    ("delayed logistic map A=2.27", delayed_logistic, 1.0, 0.1831, "Sprott 0.18312; computed here 0.18317"),
    ("Lorenz (10, 28, 8/3), dt 0.01", lambda n: lorenz(n, 0.01), 0.01, 0.9056, "Sprott 0.9056; computed here 0.9067"),
    ("Lorenz, dt 0.05", lambda n: lorenz(n, 0.05), 0.05, 0.9056, "Sprott 0.9056"),
    ("Rossler (0.2, 0.2, 5.7), dt 0.1", lambda n: rossler(n, 0.1), 0.1, 0.0714, "Sprott 0.0714; computed here 0.0711"),
    ("Rossler, dt 0.05", lambda n: rossler(n, 0.05), 0.05, 0.0714, "Sprott 0.0714"),
    ("Rossler, dt 0.2", lambda n: rossler(n, 0.2), 0.2, 0.0714, "Sprott 0.0714"),
    ("Rossler (0.15, 0.2, 10), dt 0.1", lambda n: rossler(n, 0.1, 0.15, 0.2, 10.0), 0.1, 0.090,
     "Wolf 0.090; computed here 0.0891"),
    ("Chen (35, 3, 28), dt 0.01", chen, 0.01, 2.027, "Chen 2.027; computed here 2.033"),
    ("Ueda forced Duffing (0.05, 7.5), 40 samples per forcing period", ueda, 2 * math.pi / 40, 0.1034,
     "Sprott 0.1034; computed here 0.1031-0.1035 from three starts"),
    ("Mackey-Glass tau=17, dt 1", mackey_glass, 1.0, 0.00512,
     "computed here (two trajectories on the delay state, the same at steps of 0.1, 0.05 and 0.02); "
     "Farmer's and later values range 0.005-0.009"),
]
