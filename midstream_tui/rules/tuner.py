"""Meta-learning, level 2: changing its own rules, within limits — proposals, applied, judged, undone.

The tuner owns every change to a rule: it proposes bounded parameter changes from what was learned,
applies them (when the user accepts, or automatically with ``--meta-auto``), rejects or undoes them,
and judges each applied change after ``EVALUATE_AFTER`` seconds.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..analyzers.base import STALL_FLOOR_S
from .outcomes import _finite

if TYPE_CHECKING:
    from .learning import MetaLearner

# -- level 2: changing its own rules, within limits -------------------------------------------------------

BOUNDS = {("stop-loops", "min_words"): (20, 200), ("stall", "seconds"): (STALL_FLOOR_S, 60.0)}
"""The only parameters proposals may change, and how far."""
SAFETY_RULES = ("stop-loops",)
"""Rules that act to protect: their action and existence never change (only bounded parameters)."""
MAX_CHANGES = 3
"""Changes applied per session at most (accepted or automatic)."""
MIN_LOOP_EPISODES = 5
LOOP_EPISODES_KEPT = 200  # across runs: how loops ended is learned knowledge too
LOOP_OVER_S = 3.0  # seconds without a loop before an episode counts as ended by itself
EVALUATE_AFTER = 300.0  # seconds of session after a change before its effect is judged


@dataclass
class Proposal:
    id: int
    rule: str
    param: str
    old: float
    new: float
    reason: str
    status: str = "pending"
    """pending, applied, rejected, rolled back, or refused (a constraint said no)."""
    applied_at: float | None = None
    before: dict | None = None
    """Rule firings per stream-minute before the change, and how many of them were false alarms."""
    effect: str = ""

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in ("id", "rule", "param", "old", "new", "reason", "status", "applied_at",
                                              "effect")}


class RuleTuner:
    """Level 2: proposals to change rule thresholds, checked against bounds, applied, measured, rolled back."""

    def __init__(self, engine=None, *, auto: bool = False) -> None:
        self.engine = engine
        self.auto = auto
        self.proposals: list[Proposal] = []
        self.applied_this_session = 0
        self.loop_episodes: list[tuple[int, bool]] = []
        """(longest loop in words, whether it ended before the cancel threshold) per loop episode seen."""
        self._episode: dict[str, tuple[int, float | None]] = {}
        """stream -> (longest loop so far in this episode, since when no loop has been seen)"""
        self.alarms = {"fired": 0, "false": 0, "minutes": 0.0}
        self.last_decided: Proposal | None = None
        """The proposal decided last (applied, refused, rejected or rolled back), for display."""
        self._lock = threading.RLock()

    def _rule(self, name: str):
        for rule in self.engine.rules if self.engine else ():
            if rule.name == name:
                return rule
        return None

    def observe_loops(self, snap) -> None:
        words = int(_finite(snap.metrics.get("loop_words")))
        current, quiet_since = self._episode.get(snap.stream, (0, None))
        if snap.status != "open":
            if current > 0:  # the stream ended (a rule, the user, the model) while looping
                # a loop a rule cut did not end by itself, even if the cut's last words broke the repetition
                cut = self.engine is not None and snap.stream in self.engine.cancelled
                self.loop_episodes.append((current, quiet_since is not None and not cut))
            self._episode.pop(snap.stream, None)
        elif words > 0:
            self._episode[snap.stream] = (max(current, words), None)
        elif current > 0:
            if quiet_since is None:
                self._episode[snap.stream] = (current, snap.t)
            elif snap.t - quiet_since >= LOOP_OVER_S:  # no loop for a while: it ended by itself
                self.loop_episodes.append((current, True))
                self._episode.pop(snap.stream, None)

    # Each public method holds the (re-entrant) lock: the learner's worker proposes and evaluates while the
    # user accepts, rejects and undoes from the UI thread.

    def propose(self, learner: MetaLearner) -> list[Proposal]:
        """New proposals from what levels 0 and 1 know; each checked against the constraints."""
        with self._lock:
            new: list[Proposal] = []
            loops = self._rule("stop-loops")
            recovered = [w for w, ended in self.loop_episodes if ended]
            went_on = [w for w, ended in self.loop_episodes if not ended]
            if loops is not None and len(self.loop_episodes) >= MIN_LOOP_EPISODES and len(went_on) >= 3:
                # half again the longest loop that still ended by itself: cancelling there stops no stream that
                # would have recovered (as far as seen), and cuts the loops that went on sooner
                safe = int(math.ceil(1.5 * max(recovered))) if recovered else 0
                target = max(BOUNDS[("stop-loops", "min_words")][0], safe)
                if target < loops.min_words * 0.9:
                    new.append(self._make("stop-loops", "min_words", loops.min_words, target,
                                          f"{len(self.loop_episodes)} loops seen, the longest that ended by itself "
                                          f"had {max(recovered) if recovered else 0} words: cancel sooner"))
            # No proposal changes the stall rule's own limit: it is what applies to sources not learned yet,
            # and a benchmark showed a learned median of fast sources (1 s) flooding a slow unlearned one with
            # false stalls. Level 0 adapts the limit per source instead, within the rule's bounds.
            for p in new:
                if self.auto and p.status == "pending":
                    self.apply(p, now=learner.now)
            return new

    def _make(self, rule: str, param: str, old: float, new: float, reason: str) -> Proposal:
        with self._lock:
            for p in self.proposals:  # one open proposal per parameter
                if p.rule == rule and p.param == param and p.status == "pending":
                    p.new, p.reason = new, reason
                    return p
            p = Proposal(len(self.proposals) + 1, rule, param, old, new, reason)
            low, high = BOUNDS.get((rule, param), (None, None))
            if low is None:
                p.status, p.effect = "refused", "not a tunable parameter"
            elif not low <= new <= high:
                p.status, p.effect = "refused", f"outside the bounds {low}..{high}"
            if p.status != "pending":
                self.last_decided = p
            self.proposals.append(p)
            return p

    def apply(self, p: Proposal, now: float) -> bool:
        with self._lock:
            if p.status != "pending":
                return False
            self.last_decided = p
            if self.applied_this_session >= MAX_CHANGES:
                p.status, p.effect = "refused", f"at most {MAX_CHANGES} changes per session"
                return False
            rule = self._rule(p.rule)
            if rule is None:
                p.status, p.effect = "refused", "no such rule in use"
                return False
            self.engine.rules = [replace(r, **{p.param: type(getattr(r, p.param))(p.new)}) if r is rule else r
                                 for r in self.engine.rules]
            p.status, p.applied_at, p.before = "applied", now, dict(self.alarms)
            self.applied_this_session += 1
            return True

    def undo(self, p: Proposal, why: str = "undone by the user") -> bool:
        with self._lock:
            if p.status != "applied":
                return False
            self.engine.rules = [replace(r, **{p.param: type(getattr(r, p.param))(p.old)}) if r.name == p.rule
                                 else r for r in self.engine.rules]
            p.status, p.effect = "rolled back", why
            self.last_decided = p
            return True

    def reject(self, p: Proposal) -> None:
        with self._lock:
            if p.status == "pending":
                p.status = "rejected"
                self.last_decided = p

    def evaluate(self, now: float) -> None:
        """After a while, judge each applied change by false alarms per firing; roll back what made it worse."""
        with self._lock:
            for p in self.proposals:
                if p.status != "applied" or p.applied_at is None or now - p.applied_at < EVALUATE_AFTER or p.effect:
                    continue
                before = p.before or {"fired": 0, "false": 0}
                fired = self.alarms["fired"] - before["fired"]
                false = self.alarms["false"] - before["false"]
                rate_before = before["false"] / before["fired"] if before["fired"] else 0.0
                rate_after = false / fired if fired else 0.0
                if fired and rate_after > rate_before + 0.1:
                    self.undo(p, f"rolled back: false alarms {rate_before:.0%} -> {rate_after:.0%} of firings")
                else:
                    p.effect = (f"kept: {fired} firings since, {false} false ({rate_after:.0%}; "
                                f"before {rate_before:.0%})")

    def pending(self) -> list[Proposal]:
        return [p for p in self.proposals if p.status == "pending"]

    # -- what a user decides: the tuner says which proposal a decision is about

    def current(self) -> Proposal | None:
        """The proposal a user's accept or reject is about: the newest pending one."""
        pending = self.pending()
        return pending[-1] if pending else None

    def shown(self) -> list[Proposal]:
        """What a user is shown, oldest first: the current proposal and the one decided last."""
        current, decided = self.current(), self.last_decided
        return sorted([p for p in (current, decided) if p is not None], key=self.proposals.index)

    def accept_current(self, now: float) -> tuple[Proposal | None, bool]:
        """Apply the current proposal: (it, whether it was applied; if not, ``effect`` says why)."""
        p = self.current()
        return p, p is not None and self.apply(p, now)

    def reject_current(self) -> Proposal | None:
        p = self.current()
        if p is not None:
            self.reject(p)
        return p

    def undo_last(self) -> Proposal | None:
        """Undo the last change applied (by the user or automatically); None if there is none."""
        applied = [p for p in self.proposals if p.status == "applied"]
        return applied[-1] if applied and self.undo(applied[-1]) else None
