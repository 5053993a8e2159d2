"""Attractor classification on a labelled set (tests/labelled_signals.py): accuracy and confusion per length.

    python bench/bench_classify.py [--lengths 300,600,1000] [--misses] [--set labelled|heldout|literature]

Also the calibration: of the results given with confidence >= 0.9, how many are right. ``--set heldout``
measures the same on signals the thresholds were not chosen on (tests/heldout_signals.py); ``--set literature``
on three consecutive windows of each of the 16 systems of the Lyapunov table (tests/chaos_systems.py) at their own
sampling, all chaotic.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import chaos_systems  # noqa: E402
import heldout_signals  # noqa: E402
import labelled_signals  # noqa: E402
from labelled_signals import LABELS  # noqa: E402

from midstream_tui.analysis.dynamics import classify_attractor  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lengths", default="300,600,1000")
    ap.add_argument("--misses", action="store_true")
    ap.add_argument("--set", choices=("labelled", "heldout", "literature"), default="labelled")
    args = ap.parse_args()
    if args.set == "literature":
        literature(args.lengths)
        return
    signals = (labelled_signals if args.set == "labelled" else heldout_signals).SIGNALS
    print(f"{args.set} set: {len(signals)} signals")
    classify_attractor(signals[0][1](300))
    confident = right_confident = 0
    for n in (int(v) for v in args.lengths.split(",")):
        confusion = {a: {b: 0 for b in (*LABELS, "unknown")} for a in LABELS}
        right = 0
        t = time.perf_counter()
        misses = []
        for name, make, label in signals:
            res = classify_attractor(make(n))
            confusion[label][res.type] += 1
            right += res.type == label
            if res.confidence >= 0.9:
                confident += 1
                right_confident += res.type == label
            if res.type != label:
                misses.append(f"    {name}: {res.type} ({res.confidence:.2f}) {res.reason}")
        elapsed = (time.perf_counter() - t) / len(signals)
        strange = confusion["strange"]["strange"] / sum(confusion["strange"].values())
        print(f"n = {n}: {right}/{len(signals)} right ({right / len(signals):.0%}), strange recall {strange:.0%}, "
              f"{elapsed * 1e3:.1f} ms per signal")
        print(f"    {'true/said':<12}" + "".join(f"{b:>12}" for b in (*LABELS, "unknown")))
        for a in LABELS:
            print(f"    {a:<12}" + "".join(f"{confusion[a][b]:>12}" for b in (*LABELS, "unknown")))
        if args.misses:
            print("\n".join(misses))
    print(f"confidence >= 0.9: {right_confident}/{confident} right ({right_confident / max(confident, 1):.0%})")


def literature(lengths: str) -> None:
    systems = chaos_systems.SYSTEMS
    for n in (int(v) for v in lengths.split(",")):
        said: dict[str, int] = {}
        for _name, generate, _dt, _ref, _source in systems:
            x = generate(3 * n)
            for w in range(3):
                kind = classify_attractor(x[w * n:(w + 1) * n]).type
                said[kind] = said.get(kind, 0) + 1
        print(f"n = {n}: strange {said.get('strange', 0)}/{3 * len(systems)}; said "
              + ", ".join(f"{k} {v}" for k, v in sorted(said.items())))


if __name__ == "__main__":
    main()
