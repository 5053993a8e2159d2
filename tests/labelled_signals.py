"""A labelled set of signals for attractor classification: 47 signals, each generated at any length.

Labels: "point", "limit cycle" (periodic, quasi-periodic, period-n maps), "strange" (chaotic maps and
flows, also with a little observational noise) and "noise" (white, coloured, 1/f, random walks).
Each entry: (name, generator n -> series, label). Seeds are fixed: the same set every run.
"""

from __future__ import annotations

import math

import numpy as np

import chaos_systems as cs


def _rng(seed):
    return np.random.default_rng(seed)


def _ar(n, coefs, seed, burn=500):
    e = _rng(seed).normal(size=n + burn)
    x = np.zeros(n + burn)
    p = len(coefs)
    for i in range(p, n + burn):
        x[i] = sum(c * x[i - 1 - k] for k, c in enumerate(coefs)) + e[i]
    return x[burn:]


def _pink(n, seed):
    """1/f noise: white noise shaped in the frequency domain."""
    f = np.fft.rfftfreq(2 * n)
    spec = _rng(seed).normal(size=f.size) + 1j * _rng(seed + 1).normal(size=f.size)
    spec[1:] /= np.sqrt(f[1:])
    spec[0] = 0
    return np.fft.irfft(spec, 2 * n)[:n]


def _logistic(r, x=0.3, burn=1000):
    def make(n):
        out = np.empty(n)
        v = x
        for i in range(n + burn):
            v = r * v * (1 - v)
            if i >= burn:
                out[i - burn] = v
        return out
    return make


def _noisy(make, level, seed):
    def noisy(n):
        x = make(n)
        return x + level * x.std() * _rng(seed).normal(size=n)
    return noisy


def _t(n):
    return np.arange(n, dtype=float)


SIGNALS = [
    # periodic flows and waveforms
    ("sine, period 37", lambda n: np.sin(_t(n) * 2 * np.pi / 37), "limit cycle"),
    ("sine, period 12", lambda n: np.sin(_t(n) * 2 * np.pi / 12), "limit cycle"),
    ("sine, period 90", lambda n: np.sin(_t(n) * 2 * np.pi / 90), "limit cycle"),
    ("two harmonics, period 50", lambda n: np.sin(_t(n) * 2 * np.pi / 50) + 0.6 * np.sin(_t(n) * 4 * np.pi / 50 + 1),
     "limit cycle"),
    ("square-ish wave, period 40", lambda n: np.tanh(4 * np.sin(_t(n) * 2 * np.pi / 40)), "limit cycle"),
    ("sawtooth, period 25", lambda n: (_t(n) % 25) / 25.0, "limit cycle"),
    ("sine + 5 % noise", lambda n: np.sin(_t(n) * 2 * np.pi / 37) + 0.05 * _rng(11).normal(size=n), "limit cycle"),
    ("sine + 10 % noise", lambda n: np.sin(_t(n) * 2 * np.pi / 20) + 0.1 * _rng(12).normal(size=n), "limit cycle"),
    ("van der Pol-like relaxation", lambda n: np.sign(np.sin(_t(n) * 2 * np.pi / 60)) * (1 - np.exp(-(_t(n) % 30) / 4)),
     "limit cycle"),
    # quasi-periodic
    ("quasi-periodic, 2 tones", lambda n: np.sin(_t(n) * 0.21) + 0.5 * np.sin(_t(n) * 0.21 * math.sqrt(2)),
     "limit cycle"),
    ("quasi-periodic, golden ratio", lambda n: np.sin(_t(n) * 0.3) + np.sin(_t(n) * 0.3 * (1 + 5 ** 0.5) / 2),
     "limit cycle"),
    ("quasi-periodic, 3 tones", lambda n: np.sin(_t(n) * 0.17) + 0.7 * np.sin(_t(n) * 0.17 * math.sqrt(3))
     + 0.4 * np.sin(_t(n) * 0.17 * math.pi), "limit cycle"),
    # period-n maps
    ("logistic r=3.2 (period 2)", _logistic(3.2), "limit cycle"),
    ("logistic r=3.5 (period 4)", _logistic(3.5), "limit cycle"),
    ("logistic r=3.83 (period 3)", _logistic(3.83), "limit cycle"),
    ("logistic r=3.56 (period 8)", _logistic(3.5669), "limit cycle"),
    # settling to a fixed point
    ("damped oscillation", lambda n: 5 + np.exp(-_t(n) / 5) * np.sin(_t(n)), "point"),
    ("slowly damped oscillation", lambda n: 2 + np.exp(-_t(n) / (n / 8)) * np.sin(_t(n) * 0.3), "point"),
    ("logistic r=2.8 (fixed point)", _logistic(2.8, burn=0), "point"),
    ("exponential approach", lambda n: 10 - 3 * np.exp(-_t(n) / 20), "point"),
    # chaotic maps
    ("logistic r=4", _logistic(4.0), "strange"),
    ("logistic r=3.9", _logistic(3.9), "strange"),
    ("logistic r=3.7", _logistic(3.7), "strange"),
    ("Henon", cs.henon, "strange"),
    ("Lozi", cs.lozi, "strange"),
    ("Ikeda", cs.ikeda, "strange"),
    ("sine map", cs.sine_map, "strange"),
    ("Tinkerbell", cs.tinkerbell, "strange"),
    ("delayed logistic", cs.delayed_logistic, "strange"),
    # chaotic flows
    ("Lorenz, dt 0.05", lambda n: cs.lorenz(n, 0.05), "strange"),
    ("Lorenz, dt 0.1", lambda n: cs.lorenz(n, 0.1), "strange"),
    ("Rossler, dt 0.2", lambda n: cs.rossler(n, 0.2), "strange"),
    ("Rossler (0.15, 0.2, 10), dt 0.3", lambda n: cs.rossler(n, 0.3, 0.15, 0.2, 10.0), "strange"),
    ("Chen, dt 0.02", lambda n: cs.chen(n, 0.02), "strange"),
    ("Ueda, 20 samples per period", lambda n: cs.ueda(n, 2 * math.pi / 20), "strange"),
    ("Mackey-Glass tau=17, dt 2", lambda n: cs.mackey_glass(n, 17.0, 2.0), "strange"),
    # chaos with observational noise
    ("logistic r=4 + 5 % noise", _noisy(_logistic(4.0), 0.05, 21), "strange"),
    ("Henon + 5 % noise", _noisy(cs.henon, 0.05, 22), "strange"),
    ("Lorenz dt 0.05 + 5 % noise", _noisy(lambda n: cs.lorenz(n, 0.05), 0.05, 23), "strange"),
    # noise
    ("white Gaussian", lambda n: _rng(31).normal(size=n), "noise"),
    ("white uniform", lambda n: _rng(32).uniform(size=n), "noise"),
    ("AR(1) 0.5", lambda n: _ar(n, [0.5], 33), "noise"),
    ("AR(1) 0.9", lambda n: _ar(n, [0.9], 34), "noise"),
    ("AR(1) 0.99", lambda n: _ar(n, [0.99], 35), "noise"),
    ("AR(2) resonant (period 20)", lambda n: _ar(n, [1.8 * math.cos(2 * math.pi / 20), -0.81], 36), "noise"),
    ("1/f noise", lambda n: _pink(n, 37), "noise"),
    ("random walk", lambda n: np.cumsum(_rng(38).normal(size=n)), "noise"),
]

LABELS = ("point", "limit cycle", "strange", "noise")
