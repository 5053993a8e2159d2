"""Meta-learning, level 1: what matters — which signs precede an outcome (a cancel, an error, a bad mark).

One logistic model per outcome over a stream's features (repetition, loops, slow gaps, pattern
counts), fitted off the event loop at most once per ``REFIT_EVERY_S``; its weights say which signs
matter for this user's streams.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .learning import MetaLearner

REFIT_EVERY_S = 1.0
"""Seconds of analysis clock between two refits of one outcome model (labels in between are batched)."""


# -- level 1: what matters -----------------------------------------------------------------------------

OUTCOMES = ("cancel", "error", "bad")
"""cancelled by a rule (or by the user); ended in an error; marked bad by the user (``g``/``b`` keys)."""
PATTERN_KINDS = ("loop", "recurring", "stall", "silence", "scene-cut", "error", "detection", "speech")
FEATURES = ("bias", "rep4", "loop", "compression", "low_novelty", "slow_gaps", "waiting",
            *(f"hits:{k}" for k in PATTERN_KINDS))
SAMPLE_EVERY = 0.5  # seconds between feature samples of a stream
SAMPLES_KEPT = 2
"""What a stream looked like as it ended (and just before) is what is taken to precede its outcome."""


def _finite(v, default: float = 0.0) -> float:
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else default


class OutcomeModel:
    """Logistic regression of one outcome on the features, refitted over a bounded memory of examples.

    New labels join the last ``MEMORY`` examples (``add``: O(1)); ``refit`` fits all of them at once, so the
    newest streams do not wash out what earlier ones taught (plain one-pass SGD did exactly that: streams end
    in bursts of one kind). The fit is L2-regularised (a Gaussian prior on the weights, the bias nearly
    free) and found by at most ``ITERATIONS`` damped Newton steps on arrays: a few milliseconds, whatever
    the number of labels since the last fit.
    """

    MEMORY = 400
    ITERATIONS = 12
    MAX_STEP = 4.0
    """Largest change of any weight per Newton step: separable data cannot throw the weights far at once."""

    def __init__(self, l2: float = 1.0) -> None:
        self.w = np.zeros(len(FEATURES))
        self.l2 = l2
        self.seen = 0
        self.positives = 0
        self.examples: list[tuple[list[float], int]] = []
        self.dirty = False
        """Examples were added since the weights were last fitted."""
        self.refitted_at = -math.inf

    def predict(self, x: np.ndarray) -> float:
        z = float(np.clip(self.w @ x, -30, 30))
        return 1.0 / (1.0 + math.exp(-z))

    def add(self, samples: list[np.ndarray], label: int) -> None:
        for x in samples:
            self.examples.append(([float(v) for v in x], int(label)))
        del self.examples[:-self.MEMORY]
        self.seen += 1
        self.positives += label
        self.dirty = True

    def relabel(self, x: list[float], label: int) -> bool:
        """Change the label of the newest example equal to ``x`` (False if it left the memory)."""
        for i in range(len(self.examples) - 1, -1, -1):
            if self.examples[i][0] == x:
                old = self.examples[i][1]
                self.examples[i] = (x, int(label))
                self.positives += int(label) - old
                self.dirty = True
                return True
        return False

    def refit(self) -> None:
        """Fit the weights to the examples in memory (warm start from the current weights)."""
        self.dirty = False
        if not self.examples:
            return
        xs = np.asarray([e[0] for e in self.examples], dtype=float)
        ys = np.asarray([e[1] for e in self.examples], dtype=float)
        penalty = np.full(xs.shape[1], self.l2)
        penalty[0] = 1e-3  # the bias: nearly free, but finite when every label is the same
        w = self.w.copy()
        for _ in range(self.ITERATIONS):
            p = 1.0 / (1.0 + np.exp(-np.clip(xs @ w, -30, 30)))
            grad = xs.T @ (p - ys) + penalty * w
            hess = (xs * (p * (1.0 - p))[:, None]).T @ xs + np.diag(penalty)
            step = np.linalg.solve(hess, grad)
            biggest = float(np.max(np.abs(step)))
            if biggest > self.MAX_STEP:
                step *= self.MAX_STEP / biggest
            w -= step
            if biggest < 1e-6:
                break
        self.w = w  # one assignment: readers (the panel) see the old weights or the new ones

    def learn(self, samples: list[np.ndarray], label: int) -> None:
        """Add one label and refit at once (library use; the learner batches labels instead)."""
        self.add(samples, label)
        self.refit()

    def to_json(self) -> dict:
        return {"w": [round(float(v), 6) for v in self.w], "seen": self.seen, "positives": self.positives,
                "examples": [[[round(v, 4) for v in x], y] for x, y in self.examples]}

    @classmethod
    def from_json(cls, data: dict) -> OutcomeModel:
        m = cls()
        w = data.get("w") or []
        if len(w) == len(FEATURES) and all(isinstance(v, (int, float)) and math.isfinite(v) for v in w):
            m.w = np.asarray(w, dtype=float)
        m.seen, m.positives = int(data.get("seen", 0)), int(data.get("positives", 0))
        m.examples = [(list(map(float, x)), int(y)) for x, y in (data.get("examples") or [])
                      if isinstance(x, list) and len(x) == len(FEATURES)][-cls.MEMORY:]
        return m


def features(snap, learner: MetaLearner | None = None) -> np.ndarray:
    """What the outcome models look at in a snapshot (all roughly 0..3)."""
    m = snap.metrics
    key = learner.key_of(snap.stream) if learner else None
    base = learner.gap_quantiles(key) if (learner and key) else None
    slow = waiting = 0.0
    if base is not None and snap.status == "open":  # an ended stream is not waiting
        p99, p999 = base
        slow = min(max(math.log(max(_finite(m.get("itl_p99_ms"), p99), 1e-3) / max(p99, 1e-3)), -2.0), 3.0)
        since_ms = max(0.0, _finite(m.get("since_token_s"))) * 1e3  # live, a token can postdate the tick's clock
        waiting = min(math.log1p(since_ms / max(p999, 1e-3)), 3.0)
    hits: dict[str, int] = {}
    for hit in snap.patterns:
        kind = "stall" if hit.kind == "stall-end" else hit.kind  # a stall a rule flagged ends as stall-end
        hits[kind] = hits.get(kind, 0) + 1
    x = [1.0, _finite(m.get("rep4")), _finite(m.get("loop_words")) / 40.0,
         (_finite(m.get("compression"), 1.0) - 1.0) / 2.0, 1.0 - _finite(m.get("novelty4"), 1.0), slow, waiting,
         *(math.log1p(hits.get(k, 0)) for k in PATTERN_KINDS)]
    return np.asarray([min(max(v, -3.0), 3.0) for v in x])  # bounded: one odd number must not swing the model


class WhatMatters:
    """Level 1: outcome models trained when a stream's outcome is known; risks and pattern relevance."""

    def __init__(self) -> None:
        self.models = {o: OutcomeModel() for o in OUTCOMES}
        self._samples: dict[str, list[np.ndarray]] = {}
        self._sampled_at: dict[str, float] = {}
        self._labelled: dict[tuple[str, str], tuple[list[float], int]] = {}
        """(stream, outcome) -> the example it was labelled with, so a user can change a mark (g, then b)."""

    def observe(self, snap, now: float, learner: MetaLearner, final: bool = False) -> None:
        """Sample the stream's features (every SAMPLE_EVERY s while open, and once as it ends)."""
        if final or (snap.status == "open" and now - self._sampled_at.get(snap.stream, -math.inf) >= SAMPLE_EVERY):
            self._sampled_at[snap.stream] = now
            samples = self._samples.setdefault(snap.stream, [])
            samples.append(features(snap, learner))
            del samples[:-SAMPLES_KEPT]

    def outcome(self, stream: str, outcome: str, label: int) -> bool:
        """Train ``outcome`` on what the stream looked like as it ended; once per stream and outcome."""
        samples = self._samples.get(stream)
        if not samples:
            return False
        known = self._labelled.get((stream, outcome))
        if known is not None:  # labelled before: a user's changed mark replaces it, the same label is a no-op
            x, was = known
            if was == label or not self.models[outcome].relabel(x, label):
                return False
            self._labelled[(stream, outcome)] = (x, int(label))
            return True
        x = samples[-1]
        self._labelled[(stream, outcome)] = ([float(v) for v in x], int(label))
        self.models[outcome].add([x], label)
        return True

    def forget(self, stream: str) -> None:
        """Drop what was kept about one stream (its samples, its labels' examples); the models keep what they
        learned from it."""
        self._samples.pop(stream, None)
        self._sampled_at.pop(stream, None)
        for outcome in OUTCOMES:
            self._labelled.pop((stream, outcome), None)

    def refit(self, now: float, force: bool = False) -> None:
        """Refit the models with new labels: each at most once per REFIT_EVERY_S of ``now`` (or now, ``force``)."""
        for model in self.models.values():
            if model.dirty and (force or now - model.refitted_at >= REFIT_EVERY_S):
                model.refitted_at = now
                model.refit()

    def risks(self, snap, learner: MetaLearner) -> dict[str, float]:
        """Each outcome's probability for this stream, from models that have seen both answers a few times."""
        x = features(snap, learner)
        return {o: m.predict(x) for o, m in self.models.items() if m.seen >= 5 and 0 < m.positives < m.seen}

    def relevance(self) -> dict[str, float]:
        """How much each pattern kind raises the odds of trouble (0..1), from the trained weights."""
        out = {}
        for k in PATTERN_KINDS:
            i = FEATURES.index(f"hits:{k}")
            w = max((m.w[i] for m in self.models.values() if m.seen), default=0.0)
            out[k] = 1.0 / (1.0 + math.exp(-3.0 * w)) * 2 - 1 if w > 0 else 0.0
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def to_json(self) -> dict:
        return {o: m.to_json() for o, m in self.models.items()}

    def load(self, data: dict) -> None:
        for o in OUTCOMES:
            if isinstance(data.get(o), dict):
                self.models[o] = OutcomeModel.from_json(data[o])
