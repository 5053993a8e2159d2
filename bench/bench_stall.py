"""Stall flags per hour on healthy streams, before and after learning, and real stalls still caught.

What a stall is (rules/learning.py): no token, mid-request, for at least max(2.5 s, 10 x the
source's median gap), at most 30 s, once the source has 200 gaps; before that the rule's 5 s.
The previous learned limit was 10 x the median gap within 1 to 30 s: 1.0 s on any fast source.

Streams, in virtual time (deterministic), each a held-out seed not learned from:

- ``llm``: the default demo's normal text stream (``sim:text``, 40 tokens/s), whose generator pauses
  0.6-2 s now and then by design: every flag on it is false;
- ``chat-1``: the ``demo openai`` chat stream, i.e. the emulator's generator for ``emu-normal`` and the
  demo's prompt (50 tokens/s, 300 tokens, requests back to back): every flag on it is false;
- ``stall-prone``: ``sim:text?behavior=stall`` (pauses of 1-3 s on 3 % of tokens): its pauses of
  2.6 s and more (over the floor by a tick) are the stalls to catch, shorter ones are not;
- ``stalling``: the demo's normal stream with real stalls of 4-20 s inserted mid-request
  (one every ~20 s of tokens): each must be caught.

Columns: before learning (no learner: the rule's own 5 s); after learning with the previous
definition; after learning with the current one. Learning: ``--learn`` seconds of every stream
(other seeds), as a user's earlier sessions would have taught.

    python bench/bench_stall.py [--learn 300] [--seconds 600]
"""

from __future__ import annotations

import argparse
import itertools
import math
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from midstream_tui import Hub, VirtualClock, open_sources, run_virtual
from midstream_tui.analysis import kernels
from midstream_tui.rules import MIN_SAMPLES, STALL_FACTOR, STALL_FLOOR_S, MetaLearner
from midstream_tui.events import Event, RequestFinished, RequestStarted, StreamOpened, TextDelta
from midstream_tui.rules import BUILTIN_RULES, RuleEngine
from midstream_tui.servers.emulator import OpenAIEmulator
from midstream_tui.sources.base import ScheduledSource

CHAT_PROMPT = "Tell me about harbours."  # the demo's chat-1 (cli.OPENAI_DEMO)
CHAT_URI = "openai:chat?name=chat-1&model=emu-normal&base_url=http://127.0.0.1:8000/v1"
TICK = 0.1


class EmulatorChat(ScheduledSource):
    """The emulator's chat stream as the demo's openai source sees it: the same request, back to back."""

    kind = "text"

    def schedule(self, t0: float = 0.0) -> Iterator[Event]:
        deltas = OpenAIEmulator()._deltas("normal", CHAT_PROMPT, 300)  # the generator the emulator serves
        yield StreamOpened(self.stream_id, t0, kind="text", source=self.uri)
        t = t0
        for request in itertools.count(1):
            yield RequestStarted(self.stream_id, t, request_id=request)
            for d in deltas:
                yield TextDelta(self.stream_id, t + d.t, text=d.text, tokens=1, request_id=request)
            t += deltas[-1].t
            yield RequestFinished(self.stream_id, t, request_id=request)
            t += 0.005  # the next HTTP request


class Stalling(ScheduledSource):
    """A normal stream with real stalls of 4-20 s inserted after random tokens (about one per 20 s of tokens)."""

    kind = "text"

    def __init__(self, stream_id: str, seed: int) -> None:
        super().__init__(stream_id, "sim:text", None)  # judged against what the normal stream taught
        self.inner = open_sources([f"sim:text?name={stream_id}&seed={seed}"], None)[0]
        self.rng = np.random.default_rng(seed + 1)
        self.stalls: list[tuple[float, float]] = []

    def schedule(self, t0: float = 0.0) -> Iterator[Event]:
        shift = 0.0
        for ev in self.inner.schedule(t0):
            ev = replace(ev, t=ev.t + shift) if shift else ev
            if isinstance(ev, TextDelta) and self.rng.random() < 1 / 800:  # 40 tokens/s: ~1 per 20 s
                stall = float(self.rng.uniform(4.0, 20.0))
                self.stalls.append((ev.t, ev.t + stall))
                shift += stall
            yield ev


class PreviousDefinition(MetaLearner):
    """The learned limit as it was: 10 x the median gap, within rule.seconds / 5 .. rule.seconds x 6."""

    def stall_threshold(self, stream: str, default: float) -> tuple[float, str]:
        key = self.key_of(stream)
        dist = self.baseline(key, "itl_ms") if key else None
        limit = default
        if dist is not None and dist.n >= MIN_SAMPLES:
            limit = min(max(STALL_FACTOR * dist.quantile(0.5) / 1e3, default / 5), default * 6)
        self.stall_decisions[stream] = limit
        return limit, "previous"


def streams(seed: int) -> list[ScheduledSource]:
    clock = None
    srcs = open_sources([f"sim:text?name=llm&seed={seed}", f"sim:text?name=stall-prone&behavior=stall&seed={seed}"],
                        clock)
    return [*srcs, EmulatorChat("chat-1", CHAT_URI, clock), Stalling("stalling", seed)]


def gaps(src: ScheduledSource, seconds: float) -> list[tuple[float, float]]:
    """(start, end) of every gap inside a request, from the source's own schedule."""
    out, last = [], None
    for ev in itertools.takewhile(lambda e: e.t <= seconds, src.schedule(0.0)):
        if isinstance(ev, RequestStarted | RequestFinished):
            last = None
        elif isinstance(ev, TextDelta):
            if last is not None:
                out.append((last, ev.t))
            last = ev.t
    return out


def session(learner: MetaLearner | None, seed: int, seconds: float):
    clock = VirtualClock()
    hub = Hub(clock, analysis_interval=TICK)
    engine = RuleEngine(hub, list(BUILTIN_RULES))
    if learner is not None:
        learner.attach(hub, engine)
    srcs = streams(seed)
    for src in srcs:
        src.clock = clock
    run_virtual(hub, srcs, seconds)
    return engine, srcs


def evaluate(learner: MetaLearner | None, seed: int, seconds: float) -> dict:
    engine, _ = session(learner, seed, seconds)
    out = {}
    for src in streams(seed):
        flags = [h.t for h in engine.hits if h.rule == "stall" and h.stream == src.stream_id]
        all_gaps = gaps(src, seconds)
        if isinstance(src, Stalling):
            stalls = detectable = src.stalls
        elif src.stream_id == "stall-prone":  # a pause of 2.5 s or more is a stall; caught if it outlasts a tick
            stalls = [(a, b) for a, b in all_gaps if b - a >= STALL_FLOOR_S]
            detectable = [(a, b) for a, b in stalls if b - a >= STALL_FLOOR_S + TICK]
        else:  # a healthy stream: none
            stalls = detectable = []
        caught = sum(any(a <= t <= b + TICK for t in flags) for a, b in detectable)
        false = sum(not any(a <= t <= b + TICK for a, b in stalls) for t in flags)
        limit = learner.stall_decisions.get(src.stream_id, math.nan) if learner else BUILTIN_RULES[1].seconds
        out[src.stream_id] = {"false_per_hour": false * 3600 / seconds, "caught": caught,
                              "stalls": len(detectable), "limit": limit}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learn", type=float, default=300.0)
    parser.add_argument("--seconds", type=float, default=600.0)
    args = parser.parse_args()
    kernels.warm_up()
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "meta.json"
        teacher = MetaLearner(state)
        session(teacher, seed=50, seconds=args.learn)  # what earlier sessions taught, other seeds
        teacher.save()
        held_out = 7
        results = {
            "before learning": evaluate(None, held_out, args.seconds),  # nothing learned: the rule's 5 s
            "learned, previous rule": evaluate(PreviousDefinition(state), held_out, args.seconds),
            "learned, current rule": evaluate(MetaLearner(state), held_out, args.seconds),
        }
    print(f"stall flags, {args.seconds:g} s of each stream (virtual time, held-out seed) "
          f"after {args.learn:g} s learned")
    print(f"current rule: no token for max({STALL_FLOOR_S:g} s, {STALL_FACTOR:g} x median gap), at most 30 s; "
          f"previous: 10 x median gap, at least 1 s")
    cols = list(results)
    print(f"  {'':<34}" + "".join(f"{c:>24}" for c in cols))
    for name in ("llm", "chat-1", "stall-prone", "stalling"):
        print(f"  {name + ': limit (s)':<34}" + "".join(f"{results[c][name]['limit']:>24.2f}" for c in cols))
        print(f"  {name + ': false flags per hour':<34}"
              + "".join(f"{results[c][name]['false_per_hour']:>24.0f}" for c in cols))
        if results[cols[0]][name]["stalls"]:
            print(f"  {name + ': stalls caught':<34}"
                  + "".join(f"{results[c][name]['caught']:>18}/{results[c][name]['stalls']:<5}" for c in cols))


if __name__ == "__main__":
    main()
