"""Loop detection lead time and false flags of the built-in rules, on simulated streams (virtual time).

For looping streams: words between the loop's onset and (a) the pattern log's
loop entry, (b) the stop-loops rule cancelling the stream. For normal streams:
how many are wrongly flagged by any rule (loop or stall) over a minute each.

    python bench/bench_rules.py [--streams 40]
"""

from __future__ import annotations

import argparse
import re

import numpy as np

from midstream_tui import Hub, VirtualClock, open_sources, run_virtual
from midstream_tui.rules import BUILTIN_RULES, RuleEngine


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=40)
    args = ap.parse_args()
    seeds = range(100, 100 + args.streams)

    clock = VirtualClock()
    hub = Hub(clock)
    engine = RuleEngine(hub, BUILTIN_RULES)
    uris = [f"sim:text?behavior=loop&seed={s}&name=loop{s}" for s in seeds]
    run_virtual(hub, open_sources(uris, clock), 30.0)
    detect, cancel, periods = [], [], []
    loops = {h.stream: h for _, h in hub.patterns_since(0) if h.kind == "loop"}
    for hit in engine.hits:
        loop = loops.get(hit.stream)
        if loop is None:
            continue
        onset = int(re.search(r"from word (\d+)", loop.message).group(1))
        period = int(re.search(r"period (\d+) words", loop.message).group(1))
        repeats = float(re.search(r"x(\d+)", loop.message).group(1))
        detect.append(period * repeats)  # words of loop seen when the loop entry was written
        cancel.append(int(re.search(r"loop of (\d+) words", hit.detail).group(1)))
        periods.append(period)
    cancelled = sum(1 for s in hub.snapshots().values() if s.status == "cancelled")
    print(f"looping streams: {len(uris)}, loop entries {len(loops)}, cancelled by the rule {cancelled}")
    print(f"  loop period: median {np.median(periods):.0f} words (range {min(periods)}-{max(periods)})")
    print(f"  words after onset when the loop is logged: median {np.median(detect):.0f}, max {max(detect):.0f}")
    print(f"  words of loop when the rule cancels:       median {np.median(cancel):.0f}, max {max(cancel)}")

    clock = VirtualClock()
    hub = Hub(clock)
    engine = RuleEngine(hub, BUILTIN_RULES)
    uris = [f"sim:text?seed={s}&name=normal{s}" for s in seeds]
    run_virtual(hub, open_sources(uris, clock), 60.0)
    flagged = {h.stream for h in engine.hits}
    loops = [h for _, h in hub.patterns_since(0) if h.kind == "loop"]
    words = sum(s.metrics["tokens"] for s in hub.snapshots().values())
    print(f"normal streams: {len(uris)} x 60 s ({words} tokens): flagged by a rule {len(flagged)}, "
          f"loop entries {len(loops)}, stall flags {sum(h.rule == 'stall' for h in engine.hits)}")


if __name__ == "__main__":
    main()
