"""Attractor classification on a labelled set of 47 signals (tests/labelled_signals.py) at 300, 600 and 1,000
points: accuracy, strange-attractor recall and calibration, as reached (README "Dynamics"; bench/bench_classify.py
prints the confusion matrices)."""

import pytest

from labelled_signals import SIGNALS
from midstream_tui.analysis.dynamics import classify_attractor

REACHED = {300: (0.85, 0.70), 600: (0.87, 0.70), 1000: (0.95, 0.90)}  # accuracy, strange recall


@pytest.fixture(scope="module")
def results():
    return {n: [(label, classify_attractor(make(n))) for _name, make, label in SIGNALS] for n in REACHED}


@pytest.mark.parametrize("n", sorted(REACHED))
def test_accuracy_and_strange_recall(results, n):
    rows = results[n]
    accuracy = sum(label == res.type for label, res in rows) / len(rows)
    strange = [res.type == "strange" for label, res in rows if label == "strange"]
    assert len(rows) >= 40 and len(strange) >= 15
    want_accuracy, want_recall = REACHED[n]
    assert accuracy >= want_accuracy and sum(strange) / len(strange) >= want_recall, (accuracy, strange)


def test_noise_is_never_called_chaos_and_confident_results_are_right(results):
    rows = [row for n in REACHED for row in results[n]]
    assert not [res for label, res in rows if label == "noise" and res.type != "noise"]
    confident = [label == res.type for label, res in rows if res.confidence >= 0.9]
    assert len(confident) >= 60 and sum(confident) / len(confident) >= 0.9


@pytest.mark.parametrize("n", [300, 600, 1000])
def test_random_walks_are_noise(n):
    """A drifting walk is linearly predictable a lag ahead but nothing in it repeats: never a cycle."""
    import numpy as np

    said = [classify_attractor(np.cumsum(np.random.default_rng(seed).normal(size=n))).type
            for seed in range(1000, 1060)]
    assert said.count("noise") == len(said), said
