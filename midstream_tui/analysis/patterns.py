"""Repetition in token streams: loops, recurring n-grams, and repetition measures.

- ``trailing_loop``: the back-to-back repetition a stream currently ends in;
- ``RecurringNgrams``: exact recurring n-grams with counts and positions, found
  incrementally as tokens arrive (not necessarily back to back);
- ``seq_rep_n`` (Welleck et al. 2020), ``compression_ratio`` (zlib; Whisper's
  2.4 threshold), ``ngram_novelty``: how repetitive a window is.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from dataclasses import dataclass

import numpy as np

from . import kernels
from .validate import whole


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
    max_period = whole("max_period", max_period, 1)
    a = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
    if a.size < 2:
        return None
    period, run = kernels.trailing_period(a, max_period, float(min_repeats), int(min_words))
    if period == 0:
        return None
    loop = Loop(int(period), int(run), int(a.size - run - period))
    if loop.run + loop.period < min_words or loop.repeats < min_repeats:
        return None
    return loop


def seq_rep_n(ids: np.ndarray, n: int = 4) -> float:
    """1 - unique n-grams / n-grams (Welleck et al. 2020); nan if the window is too short."""
    n = whole("n", n, 1)
    a = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
    if a.size < n:
        return math.nan
    return float(kernels.repeated_ngram_fraction(a, n))


def compression_ratio(text: str) -> float:
    """UTF-8 bytes / zlib-compressed bytes, at zlib's default level as Whisper computes it (``whisper/utils.py``),
    which treats > 2.4 as degenerate repetition."""
    import zlib

    raw = text.encode("utf-8", "replace")
    if not raw:
        return math.nan
    return len(raw) / len(zlib.compress(raw))


@dataclass(frozen=True, slots=True)
class Recurrence:
    """An n-gram seen ``count`` times, at these word positions (the first few)."""

    ngram: tuple[int, ...]
    count: int
    positions: tuple[int, ...]


class RecurringNgrams:
    """Exact recurring n-grams of a token stream, found incrementally as tokens arrive.

    ``add(token)`` is O(1); it returns a ``Recurrence`` the moment an n-gram
    reaches ``min_count`` occurrences (once per n-gram). Occurrences that
    overlap the previous one of the same n-gram (as in "a a a a") are not
    counted. Memory is bounded: past ``max_ngrams`` distinct n-grams the least
    recently seen are forgotten, and positions are kept for the first
    ``max_positions`` occurrences.
    """

    def __init__(self, n: int = 6, min_count: int = 3, max_ngrams: int = 30_000,
                 max_positions: int = 8) -> None:
        if n < 1 or min_count < 2:
            raise ValueError("n must be >= 1 and min_count >= 2")
        self.n, self.min_count = n, min_count
        self.max_ngrams, self.max_positions = max_ngrams, max_positions
        self._window: deque[int] = deque(maxlen=n)
        # n-gram hash -> [count, last position, first position or the list of positions, the n-gram once repeated]
        # (a 64-bit hash, not the tuple, is the key: prose is mostly n-grams seen once, ~150 bytes each this way)
        self._seen: OrderedDict[int, list] = OrderedDict()
        self.position = 0
        """Index of the next token."""
        self.total = 0
        self.novel = 0

    def add(self, token: int, look: bool = True) -> Recurrence | None:
        """The next token; ``look=False``: only its place is taken (the n-gram it ends is neither counted nor looked
        up: a text in a loop, whose every n-gram recurs, and is said as a loop)."""
        self._window.append(int(token))
        self.position += 1
        if len(self._window) < self.n or not look:
            return None
        ngram = tuple(self._window)
        key = hash(ngram)
        start = self.position - self.n
        self.total += 1
        entry = self._seen.get(key)
        if entry is None:
            self.novel += 1
            self._seen[key] = [1, start, start, None]
            if len(self._seen) > self.max_ngrams:
                self._seen.popitem(last=False)
            return None
        self._seen.move_to_end(key)
        if start - entry[1] < self.n:  # overlaps its previous occurrence
            return None
        entry[0] += 1
        entry[1] = start
        if not isinstance(entry[2], list):
            entry[2], entry[3] = [entry[2]], ngram
        if len(entry[2]) < self.max_positions:
            entry[2].append(start)
        if entry[0] == self.min_count:
            return Recurrence(ngram, entry[0], tuple(entry[2]))
        return None

    def count(self, ngram: tuple[int, ...]) -> int:
        entry = self._seen.get(hash(tuple(int(t) for t in ngram)))
        return entry[0] if entry else 0

    def most_common(self, k: int = 10) -> list[Recurrence]:
        top = sorted((e for e in self._seen.values() if e[0] > 1), key=lambda e: -e[0])[:k]
        return [Recurrence(e[3], e[0], tuple(e[2])) for e in top]


def ngram_novelty(ids: np.ndarray, n: int = 4) -> float:
    """Share of the window's n-grams that occur only once in it (1: all new, 0: all repeats)."""
    n = whole("n", n, 1)
    a = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
    if a.size < n:
        return math.nan
    return float(kernels.singleton_ngram_fraction(a, n))
