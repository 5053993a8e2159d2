"""Mid-stream rules and the learning that tunes them.

- ``engine``: rules (conditions on a stream's snapshot, actions taken before it ends) and the engine that
  evaluates them after every analysis tick.
- ``learning``: level 0 of meta-learning, what normal looks like per source (``MetaLearner``), kept across runs.
- ``outcomes``: level 1, which signs precede a cancel, an error or a bad mark.
- ``tuner``: level 2, bounded changes to the rules' own parameters, proposed, applied, judged and undone.
"""

from __future__ import annotations

from ..analyzers.base import STALL_FLOOR_S
from .engine import ACTIONS, BUILTIN_RULES, CONDITIONS, Rule, RuleEngine, RuleError, RuleHit, load_rules
from .learning import (
    MIN_SAMPLES,
    STALL_CAP_FACTOR,
    STALL_FACTOR,
    Distribution,
    MetaLearner,
    default_path,
    stall_definition,
)
from .outcomes import FEATURES, OUTCOMES, OutcomeModel, WhatMatters
from .tuner import BOUNDS, Proposal, RuleTuner

__all__ = ["ACTIONS", "BOUNDS", "BUILTIN_RULES", "CONDITIONS", "FEATURES", "MIN_SAMPLES", "OUTCOMES",
           "STALL_CAP_FACTOR", "STALL_FACTOR", "STALL_FLOOR_S", "Distribution", "MetaLearner", "OutcomeModel", "Proposal", "Rule",
           "RuleEngine", "RuleError", "RuleHit", "RuleTuner", "WhatMatters", "default_path", "load_rules",
           "stall_definition"]
