"""Meta-learning: the default rules against the rules after learning from 20 sessions, on held-out sessions.

The streams come from the generator the OpenAI emulator also serves (``sim:text``): scenarios
normal (at 80, 40 and 0.4 tokens/s), loop, stall and drift, in virtual time. Learning: 20
sessions (seeds 0-19) through one MetaLearner that is saved and loaded between sessions, as
across restarts, with rule proposals applied automatically (``--meta-auto``). Evaluation: 10
sessions with seeds never learned from (100-109), once with the default rules and no learner,
once with what was learned (the baselines, and the rules as changed). Reported:

- loop lead time: words of the loop when the stream was cancelled (fewer: cancelled sooner);
  false cancellations of streams that were not looping;
- stall detection: a true stall is a gap of at least max(2.5 s, ten times the stream's own median
  gap) (from the generator's schedule: the definition in rules/learning.py) that outlasts that
  limit by an analysis tick; caught if a stall flag fires during it; the delay from its start to
  the flag;
- false stall flags per hour: flags outside any true stall, per scenario.

    python bench/bench_meta.py [--learn 20] [--held-out 10] [--seconds 120]
"""

from __future__ import annotations

import argparse
import itertools
import re
import statistics
import tempfile
from pathlib import Path

import numpy as np

from midstream_tui import Hub, VirtualClock, open_sources, run_virtual
from midstream_tui.analysis import kernels
from midstream_tui.rules import STALL_FACTOR, STALL_FLOOR_S, MetaLearner
from midstream_tui.events import TextDelta
from midstream_tui.rules import BUILTIN_RULES, RuleEngine

SCENARIOS = {
    "fast": "sim:text?name=fast&rate=80&ttft=150&seed={seed}",
    "medium": "sim:text?name=medium&rate=40&seed={seed}",
    "slow": "sim:text?name=slow&rate=0.4&ttft=3000&seed={seed}",
    "loop": "sim:text?name=loop&behavior=loop&seed={seed}",
    "stall": "sim:text?name=stall&behavior=stall&seed={seed}",
    "drift": "sim:text?name=drift&behavior=drift&seed={seed}",
}


def session(seed: int, seconds: float, learner: MetaLearner | None, rules, auto: bool):
    clock = VirtualClock()
    hub = Hub(clock, analysis_interval=0.1)
    engine = RuleEngine(hub, list(rules))
    if learner is not None:
        learner.attach(hub, engine, auto=auto)
    uris = [u.format(seed=seed * 10 + k) for k, u in enumerate(SCENARIOS.values())]
    run_virtual(hub, open_sources(uris, clock), seconds)
    return hub, engine


def true_stalls(uri: str, seconds: float) -> list[tuple[float, float, bool]]:
    """(start, end, detectable) of the gaps that are stalls for this stream, from its own schedule
    (detectable: it outlasts the limit by an analysis tick)."""
    src = open_sources([uri], VirtualClock())[0]
    times = [e.t for e in itertools.takewhile(lambda e: e.t <= seconds, src.schedule(0.0))  # endless source
             if isinstance(e, TextDelta)]
    gaps = np.diff(times)
    if gaps.size < 10:
        return []
    limit = max(STALL_FLOOR_S, STALL_FACTOR * float(np.median(gaps)))
    return [(times[i], times[i + 1], g >= limit + 0.1) for i, g in enumerate(gaps) if g >= limit]


def evaluate(seeds, seconds, learner_path: Path | None, rules) -> dict:
    loop_words, false_cancels, delays, caught, missed = [], 0, [], 0, 0
    false_flags = {name: 0 for name in SCENARIOS}
    for seed in seeds:
        learner = MetaLearner(learner_path) if learner_path else None
        _hub, engine = session(seed, seconds, learner, rules, auto=False)
        for hit in engine.hits:
            if hit.rule == "stop-loops":
                if hit.stream == "loop":
                    m = re.search(r"loop of (\d+) words", hit.detail)
                    loop_words.append(int(m.group(1)) if m else 0)
                else:
                    false_cancels += 1
        for k, (name, template) in enumerate(SCENARIOS.items()):
            stalls = true_stalls(template.format(seed=seed * 10 + k), seconds)
            flags = [h.t for h in engine.hits if h.rule == "stall" and h.stream == name]
            for start, end, detectable in stalls:
                if not detectable:
                    continue
                during = [t for t in flags if start <= t <= end + 0.15]  # the analysis clock ticks at 0.1 s
                if during:
                    caught += 1
                    delays.append(during[0] - start)
                else:
                    missed += 1
            false_flags[name] += sum(not any(start <= t <= end + 0.15 for start, end, _ in stalls) for t in flags)
    hours = len(seeds) * seconds / 3600
    return {"loop_words": loop_words, "false_cancels": false_cancels, "caught": caught, "missed": missed,
            "delays": delays, "false_flags_per_hour": {k: v / hours for k, v in false_flags.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learn", type=int, default=20)
    parser.add_argument("--held-out", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=120.0)
    args = parser.parse_args()
    kernels.warm_up()
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "meta.json"
        rules = list(BUILTIN_RULES)
        for seed in range(args.learn):  # learning, with restarts between sessions
            learner = MetaLearner(state)
            _hub, engine = session(seed, args.seconds, learner, rules, auto=True)
            rules = engine.rules  # changes applied (and kept) carry into the next session
            learner.save()
        learned = MetaLearner(state)
        changed = [c for c in learned.history if c["status"] == "applied"]
        held_out = range(100, 100 + args.held_out)
        default = evaluate(held_out, args.seconds, None, BUILTIN_RULES)
        after = evaluate(held_out, args.seconds, state, rules)
    print(f"learned from {args.learn} sessions x {len(SCENARIOS)} streams x {args.seconds:g} s; "
          f"evaluated on {args.held_out} held-out sessions (seeds 100+)")
    for key, metrics in sorted(learned.baselines.items()):
        d = metrics.get("itl_ms")
        if d:
            print(f"  baseline {key:<22} gaps n {d.n:>7}  p50 {d.quantile(0.5):8.1f} ms  p99.9 {d.quantile(0.999):9.1f} ms")
    for c in changed:
        print(f"  rule change kept: {c['rule']}.{c['param']} {c['old']:g} -> {c['new']:g} ({c['reason']})")
    print(f"{'':<34}{'default rules':>18}{'after learning':>18}")

    def row(label, a, b):
        print(f"  {label:<32}{a:>18}{b:>18}")

    def med(v):
        return f"{statistics.median(v):.0f}" if v else "–"

    row("loop words at cancellation (med)", med(default["loop_words"]), med(after["loop_words"]))
    row("loops cancelled", f"{len(default['loop_words'])}/{args.held_out}", f"{len(after['loop_words'])}/{args.held_out}")
    row("false cancellations", default["false_cancels"], after["false_cancels"])
    for r in (default, after):
        r["stall_text"] = f"{r['caught']}/{r['caught'] + r['missed']}"
        r["delay_text"] = f"{statistics.median(r['delays']):.2f} s" if r["delays"] else "–"
    row("true stalls caught", default["stall_text"], after["stall_text"])
    row("stall detection delay (med)", default["delay_text"], after["delay_text"])
    for name in SCENARIOS:
        row(f"false stall flags/hour, {name}", f"{default['false_flags_per_hour'][name]:.0f}",
            f"{after['false_flags_per_hour'][name]:.0f}")


if __name__ == "__main__":
    main()
