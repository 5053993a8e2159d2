"""Signals kept out of the tuning of ``classify_attractor``: 30 signals of the same four kinds as the labelled
set (tests/labelled_signals.py), other periods, noise levels, parameters and sampling intervals, written to see
how far the thresholds carry beyond the set they were chosen on. Nothing here is asserted; it is measured
(`python bench/bench_classify.py --set heldout`, README "Dynamics").
"""

from __future__ import annotations

import math

import numpy as np

import chaos_systems as cs
from labelled_signals import _ar, _noisy, _t


def _tone(period):
    return lambda n: np.sin(2 * math.pi * _t(n) / period)


SIGNALS = [
    *[(f"sine, period {p}, {level:.0%} noise", _noisy(_tone(p), level, p), "limit cycle")
      for p in (9, 23, 55) for level in (0.03, 0.07, 0.15, 0.25)],
    ("amplitude-modulated sine", lambda n: (1 + 0.5 * np.sin(2 * math.pi * _t(n) / 173)) * _tone(17)(n),
     "limit cycle"),
    ("quasi-periodic through tanh", lambda n: np.tanh(2 * (_tone(19)(n) + np.sin(2 * math.pi * _t(n) * 0.068))),
     "limit cycle"),
    ("quasi-periodic 2 tones, 5 % noise",
     _noisy(lambda n: _tone(13)(n) + 0.7 * _tone(13 * 1.618)(n), 0.05, 3), "limit cycle"),
    ("Rossler c = 4 (period 4), dt 0.2", lambda n: cs.rossler(n, 0.2, 0.2, 0.2, 4.0), "limit cycle"),
    ("Rossler, dt 0.1", lambda n: cs.rossler(n, 0.1), "strange"),
    ("Rossler, dt 0.3", lambda n: cs.rossler(n, 0.3), "strange"),
    ("Chen, dt 0.03", lambda n: cs.chen(n, 0.03), "strange"),
    ("Chen, dt 0.02, 3 % noise", _noisy(lambda n: cs.chen(n, 0.02), 0.03, 5), "strange"),
    ("Ueda, 30 samples per period", lambda n: cs.ueda(n, 2 * math.pi / 30), "strange"),
    ("Mackey-Glass tau=17, dt 3", lambda n: cs.mackey_glass(n, 17.0, 3.0), "strange"),
    ("Mackey-Glass tau=30, dt 2", lambda n: cs.mackey_glass(n, 30.0, 2.0), "strange"),
    ("Henon, 10 % noise", _noisy(cs.henon, 0.10, 5), "strange"),
    *[(f"AR(2) r={r}, {th} rad", (lambda r, th: lambda n: _ar(n, [2 * r * math.cos(th), -r * r], 11))(r, th),
       "noise") for r, th in ((0.95, 0.3), (0.98, 0.2), (0.99, 0.1), (0.9, 0.5))],
    ("random walk", lambda n: np.cumsum(np.random.default_rng(9).normal(size=n)), "noise"),
    ("AR(1) 0.9", lambda n: _ar(n, [0.9], 12), "noise"),
]
