"""The first attractor estimate against published Lyapunov exponents and known signals."""

import math

import numpy as np
import pytest

from midstream_tui.analysis.dynamics import delay_embed_2d, estimate_attractor


def logistic(n, x=0.3, r=4.0):
    out = np.empty(n)
    for i in range(n):
        x = r * x * (1 - x)
        out[i] = x
    return out


def henon(n, a=1.4, b=0.3):
    x, y = 0.1, 0.1
    out = np.empty(n + 100)
    for i in range(n + 100):
        x, y = 1 - a * x * x + y, b * x
        out[i] = x
    return out[100:]


def test_logistic_map_lyapunov_is_ln2():
    est = estimate_attractor(logistic(600))
    assert est.type == "strange"
    assert est.lyapunov == pytest.approx(math.log(2), abs=0.05)
    assert est.fit_r2 > 0.95


def test_henon_map_lyapunov():
    est = estimate_attractor(henon(600))
    assert est.type == "strange"
    assert est.lyapunov == pytest.approx(0.419, abs=0.05)


@pytest.mark.parametrize("signal", [
    np.sin(np.arange(600) * 2 * np.pi / 37),
    np.sin(np.arange(600) * 0.21) + 0.5 * np.sin(np.arange(600) * 0.21 * math.sqrt(2)),
    np.sin(np.arange(600) * 2 * np.pi / 37) + 0.05 * np.random.default_rng(1).normal(size=600),
], ids=["periodic", "quasi-periodic", "noisy-periodic"])
def test_cycles_are_limit_cycles(signal):
    assert estimate_attractor(signal).type == "limit cycle"


def test_noise_is_noise_not_chaos():
    est = estimate_attractor(np.random.default_rng(2).normal(size=600))
    assert est.type == "noise" and est.perm_entropy > 0.93


def test_constant_is_a_point_attractor():
    est = estimate_attractor(np.full(300, 7.0))
    assert est.type == "point" and est.confidence == 1.0


def test_bad_input_gives_defined_results():
    short = estimate_attractor(np.arange(10.0))
    assert short.type == "unknown" and "insufficient" in short.reason
    assert estimate_attractor(np.array([])).type == "unknown"
    two_cycles = np.repeat([0.0, 1.0, 0.0, 1.0, 0.0], 60)  # on/off twice: too few cycles to judge
    assert "cycles" in estimate_attractor(two_cycles).reason
    with_nans = logistic(700)
    with_nans[::7] = np.nan
    with_nans[3] = np.inf
    est = estimate_attractor(with_nans)
    assert est.type != "unknown" and math.isfinite(est.lyapunov)


def test_delay_embedding_pairs():
    x, y = delay_embed_2d(np.arange(10.0), 3)
    assert list(x) == list(range(7)) and list(y) == list(range(3, 10))
    assert delay_embed_2d(np.arange(2.0), 3)[0].size == 0
