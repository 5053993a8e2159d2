"""Repetition in token streams: trailing loops and repeated n-gram fractions."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import kernels


@dataclass(frozen=True, slots=True)
class Loop:
    period: int
    """Length of the repeated unit, in words."""
    run: int
    """How many words at the end of the window continue the repetition."""
    start: int
    """Index (in the window) where the first copy of the unit begins."""

    @property
    def repeats(self) -> float:
        return (self.run + self.period) / self.period


def trailing_loop(ids: np.ndarray, *, max_period: int = 64, min_words: int = 16,
                  min_repeats: float = 3.0) -> Loop | None:
    """The repetition loop the window ends in, if any.

    A loop is a unit of ``period`` words repeated back to back at least
    ``min_repeats`` times and spanning at least ``min_words`` words, so that
    "very very" or a repeated list marker does not count.
    """
    a = np.ascontiguousarray(ids, dtype=np.int64)
    if a.size < 2:
        return None
    period, run = kernels.trailing_period(a, max_period)
    if period == 0:
        return None
    loop = Loop(int(period), int(run), int(a.size - run - period))
    if loop.run + loop.period < min_words or loop.repeats < min_repeats:
        return None
    return loop


def seq_rep_n(ids: np.ndarray, n: int = 4) -> float:
    """1 - unique n-grams / n-grams (Welleck et al. 2020); nan if the window is too short."""
    a = np.ascontiguousarray(ids, dtype=np.int64)
    if n < 1 or a.size < n:
        return math.nan
    return float(kernels.repeated_ngram_fraction(a, n))
