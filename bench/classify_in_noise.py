"""Attractor classification of chaos in observation noise, of noise of many kinds, and of cycles: the development
sets of the 2026-12-05 changes (how sure a "noise" verdict is; chaos that neighbours do not help with asked of
surrogates, on ranks).

    python bench/classify_in_noise.py [--part chaos|noise|heavy|cycles|all]     (about a minute in all)

- chaos: 30 chaotic systems (the 16 of tests/chaos_systems.py, the 5 maps of bench/lyapunov_heldout.py, its 9
  flows at 12, 25 and 50 samples per mean orbit: 48 series) in 0, 1, 3, 5 and 10 % Gaussian observation noise (of
  the series' std), 300, 600 and 1,000 points, two windows each: 1,440 windows, all "strange". Prints how many are
  called strange per noise level and length, and the results given with confidence >= 0.9 that are wrong.
- noise: 24 kinds (the 8 of tests/test_classification_set.py and 16 more: white, uniform, AR(1) 0.5/0.95,
  resonant AR(2), pink, random walks, integrated AR, smoothed white, a seasonal walk, Cauchy, |AR(1)|, tanh of an
  AR(2)), 300-1,000 points, 4 x 8 seeds: 2,304 windows. Prints what they are called, and the smallest surrogate
  ratios where surrogates were asked.
- heavy: Cauchy, Student t (2 and 1.5), lognormal (sigma 2), Pareto 1.2, spiky: 60 seeds x 3 lengths each.
- cycles: 7 waveforms of random non-integer period 8-80 (tests/test_classification_set.py), a frequency-modulated
  tone (index 2) and a golden-ratio two-tone signal, clean and in 1 / 5 / 10 % noise, 3 lengths, 12 seeds: 1,296
  windows, all "limit cycle".
"""

from __future__ import annotations

import argparse
import collections
import math
import sys
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))
import chaos_systems as cs  # noqa: E402
import lyapunov_heldout as lh  # noqa: E402
from test_classification_set import CYCLES, NOISES, _ar1, _cycle  # noqa: E402

from midstream_tui.analysis.dynamics import classify_attractor  # noqa: E402

LENGTHS = (300, 600, 1000)


def chaos() -> None:
    series = [(name, make(3000)) for name, make, _dt, _ref, _src in cs.SYSTEMS]
    for k, start in ((0, (0.3, 0.0)), (1, (0.1, 0.1)), (2, (-0.1, 0.1))):
        series.append((f"map kind {k}", lh.map_series(k, start[0], start[1], 3000)))
    series += [("Gauss map", lh.gauss_series(0.3183, 3000)), ("Kaplan-Yorke map", lh.ky_series(3000))]
    for name, k, p, _ptxt, s0, h, _pub, _src in lh.FLOWS:
        orbit, _amp = lh.orbit_time(k, p, s0, h)
        for per_orbit in (12, 25, 50):
            dt = orbit / per_orbit
            x = lh.flow_series(k, np.array(p, float), np.array(s0, float), dt, 3000, max(1, math.ceil(dt / h - 1e-9)),
                               1000.0)
            series.append((f"{name}, {per_orbit} samples an orbit", x))
    levels = (0.0, 0.01, 0.03, 0.05, 0.1)
    said: dict[tuple, collections.Counter] = collections.defaultdict(collections.Counter)
    confident_wrong = []
    for name, x in series:
        for level in levels:
            for n in LENGTHS:
                for w, offset in enumerate((0, 1500)):
                    rng = np.random.default_rng(zlib.crc32(f"{name}{level}{n}{w}".encode()))
                    res = classify_attractor(x[offset:offset + n] + level * np.std(x) * rng.standard_normal(n))
                    said[(level, n)][res.type] += 1
                    if res.confidence >= 0.9 and res.type != "strange":
                        confident_wrong.append((name, level, n, res.type, round(res.confidence, 2)))
    print(f"{len(series)} chaotic series; windows called strange, of {2 * len(series)} per cell")
    print("noise  " + "".join(f"{n:>10}" for n in LENGTHS))
    for level in levels:
        print(f"{level:5.0%}  " + "".join(f"{said[(level, n)]['strange']:>10}" for n in LENGTHS))
    total = sum(c["strange"] for c in said.values())
    print(f"strange {total} of {sum(sum(c.values()) for c in said.values())}; given with confidence >= 0.9 and "
          f"wrong: {len(confident_wrong)}")
    for row in confident_wrong:
        print("   ", *row)


def _ar(rng, n, coefs, burn=300):
    e = rng.normal(size=n + burn)
    x = np.zeros(n + burn)
    for i in range(len(coefs), n + burn):
        x[i] = sum(c * x[i - 1 - k] for k, c in enumerate(coefs)) + e[i]
    return x[burn:]


def _pink(rng, n):
    f = np.fft.rfftfreq(n)
    s = rng.normal(size=f.size) + 1j * rng.normal(size=f.size)
    s[1:] /= np.sqrt(f[1:])
    s[0] = 0
    return np.fft.irfft(s, n)


NOISE_KINDS = dict(NOISES)
NOISE_KINDS.update({
    "white": lambda rng, n: rng.normal(size=n),
    "uniform": lambda rng, n: rng.uniform(size=n),
    "AR(1) 0.5": lambda rng, n: _ar1(rng, n, 0.5),
    "AR(1) 0.95": lambda rng, n: _ar1(rng, n, 0.95),
    "AR(2) resonant, period 20": lambda rng, n: _ar(rng, n, [1.8 * math.cos(2 * math.pi / 20), -0.81]),
    "AR(2) r 0.95, period 10": lambda rng, n: _ar(rng, n, [1.9 * math.cos(2 * math.pi / 10), -0.9025]),
    "AR(2) r 0.97, period 40": lambda rng, n: _ar(rng, n, [1.94 * math.cos(2 * math.pi / 40), -0.9409]),
    "pink": _pink,
    "random walk": lambda rng, n: np.cumsum(rng.normal(size=n)),
    "integrated AR(1) 0.7": lambda rng, n: np.cumsum(_ar1(rng, n, 0.7)),
    "moving average of 10 white": lambda rng, n: np.convolve(rng.normal(size=n + 9), np.ones(10) / 10, "valid"),
    "Gaussian-filtered white": lambda rng, n: np.convolve(rng.normal(size=n + 40),
                                                          np.exp(-0.5 * (np.arange(-20, 21) / 5) ** 2), "valid"),
    "seasonal walk": lambda rng, n: (np.cumsum(rng.normal(size=n)) * 0.2 + _ar1(rng, n, 0.5)
                                     + 0.5 * rng.normal() * np.sin(2 * np.pi * np.arange(n) / 24)),
    "Cauchy": lambda rng, n: rng.standard_cauchy(size=n),
    "|AR(1) 0.9|": lambda rng, n: np.abs(_ar1(rng, n, 0.9)),
    "tanh of an AR(2)": lambda rng, n: np.tanh(_ar(rng, n, [1.8 * math.cos(2 * math.pi / 15), -0.81]) / 3),
})


def noise() -> None:
    said, not_noise, ratios = collections.Counter(), collections.Counter(), []
    for kind, make in NOISE_KINDS.items():
        for n in LENGTHS:
            for seed in [s for base in (7000, 9100, 9200, 9300) for s in range(base, base + 8)]:
                res = classify_attractor(make(np.random.default_rng(seed), n))
                said[res.type] += 1
                if res.type != "noise":
                    not_noise[(kind, res.type)] += 1
                if math.isfinite(res.evidence.get("surrogate_ratio", math.nan)):
                    ratios.append((round(res.evidence["surrogate_ratio"], 3), kind, n))
    print(f"{sum(said.values())} noise windows of {len(NOISE_KINDS)} kinds: {dict(said)}")
    for (kind, label), count in sorted(not_noise.items()):
        print(f"    {kind}: {count} {label}")
    ratios.sort()
    print(f"surrogates asked for {len(ratios)}; smallest ratios: {ratios[:5]}")


HEAVY = {"Cauchy": lambda rng, n: rng.standard_cauchy(n), "Student t 2": lambda rng, n: rng.standard_t(2, n),
         "Student t 1.5": lambda rng, n: rng.standard_t(1.5, n),
         "lognormal sigma 2": lambda rng, n: np.exp(2 * rng.normal(size=n)),
         "Pareto 1.2": lambda rng, n: rng.pareto(1.2, n),
         "spiky": lambda rng, n: rng.normal(size=n) * (rng.uniform(size=n) < 0.05) * 20 + rng.normal(size=n)}


def heavy() -> None:
    for kind, make in HEAVY.items():
        said, ratios = collections.Counter(), []
        for n in LENGTHS:
            for seed in range(50000, 50060):
                res = classify_attractor(make(np.random.default_rng(seed), n))
                said[res.type] += 1
                if math.isfinite(res.evidence.get("surrogate_ratio", math.nan)):
                    ratios.append(round(res.evidence["surrogate_ratio"], 3))
        print(f"{kind}: {dict(said)}; surrogates asked for {len(ratios)}, smallest ratios {sorted(ratios)[:3]}")


def _two(shape, n, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(n) + rng.uniform(0, 100)
    p = rng.uniform(8, 80)
    if shape == "frequency-modulated":
        x = np.sin(2 * np.pi * t / p + 2.0 * np.sin(2 * np.pi * t / (p * 6.3)))
    else:
        x = np.sin(2 * np.pi * t / p) + 0.7 * np.sin(2 * np.pi * t / (p * 1.618034) + 1.0)
    return (x - x.mean()) / x.std(), rng


def cycles() -> None:
    total = collections.Counter()
    for shape in CYCLES + ["frequency-modulated", "two tones, golden ratio"]:
        said = collections.Counter()
        for n in LENGTHS:
            for seed in range(300, 312):
                x, rng = _cycle(shape, n, seed) if shape in CYCLES else _two(shape, n, seed)
                for level in (0.0, 0.01, 0.05, 0.1):
                    said[classify_attractor(x + level * rng.normal(size=n)).type] += 1
        total.update(said)
        print(f"    {shape}: {dict(said)}")
    print(f"{sum(total.values())} cycle windows: {dict(total)}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=("chaos", "noise", "heavy", "cycles", "all"), default="all")
    part = ap.parse_args().part
    for name, run in (("chaos", chaos), ("noise", noise), ("heavy", heavy), ("cycles", cycles)):
        if part in (name, "all"):
            print(f"== {name}")
            run()


if __name__ == "__main__":
    main()
