"""The meta-learning panel: what MidStream has learned about the selected stream's source, and its proposals.

Level 0: the source and its learned gaps, TTFT and the stall limit now in force.
Level 1: the stream's risk of each outcome, and which patterns matter most.
Level 2: rule-change proposals (a accepts the newest, x rejects it, u undoes the last change),
and their measured effect. Redrawn only when what it shows changed.
"""

from __future__ import annotations

import math

from ..terminal_safety import escape

from .base import Panel, View
from .lines import LineStatic


def _ms(v: float) -> str:
    return "–" if not math.isfinite(v) else (f"{v:.0f} ms" if v < 10_000 else f"{v / 1000:.1f} s")


def meta_lines(learner, snap) -> list[str]:
    if learner is None:
        return ["[$text-muted]meta-learning off (--no-learn)[/]"]
    if snap is None:
        return ["[$text-muted]select a stream[/]"]
    info = learner.summary(snap.stream)
    lines = [f"[$text-muted]source[/]  {escape(str(info.get('source')))} · run {info.get('runs', 0)}"]
    # A proposal first, its state on a line of its own: the panel is at most 10 rows high, and a proposal below the
    # rest was cut off — "a" applied a change whose line the user could not see (an independent review).
    for p in learner.tuner.shown():
        state = {"pending": "[$text-warning]pending: a accept · x reject[/]", "applied": "[$text-success]applied[/]",
                 "rolled back": "[$text-error]rolled back[/]"}.get(p.status, escape(p.status))
        lines.append(f"[$text-muted]rule[/]    {escape(p.rule)}.{escape(p.param)} {p.old:g}→{p.new:g}")
        lines.append(f"        {state}")
    gaps, ttft = info.get("itl_ms"), info.get("ttft_ms")
    if gaps:
        lines.append(f"[$text-muted]gaps[/]    n {gaps['n']} · p50 {_ms(gaps['p50'])} · p99 {_ms(gaps['p99'])}")
    if ttft:
        lines.append(f"[$text-muted]ttft[/]    n {ttft['n']} · p50 {_ms(ttft['p50'])}")
    if "stall_s" in info:
        lines.append(f"[$text-muted]stall[/]   limit {info['stall_s']:.2f} s")
        note = info.get("stall_rule") or info.get("stall_why")  # what a stall is, or why the default holds
        if note:
            lines.append(f"[$text-muted]        {escape(note)}[/]")
    risks = learner.what.risks(snap, learner)
    if risks:
        lines.append("[$text-muted]risk[/]    " + " · ".join(f"{k} {v:.2f}" for k, v in risks.items()))
    top = [(k, v) for k, v in learner.what.relevance().items() if v > 0.05][:3]
    if top:
        lines.append("[$text-muted]matters[/] " + " · ".join(f"{k} {v:.2f}" for k, v in top))
    return lines


class MetaPanel(Panel, LineStatic):
    def applies(self, view: View) -> bool:
        return view.hub.meta is not None  # meta-learning is on

    def show(self, view: View) -> None:
        # its height follows its rows: a new layout only when their number changes
        self.set_lines(meta_lines(view.hub.meta, view.snap), layout=True)
