"""`midstream proxy`'s analysis side alone: what the hub's process spends per chunk, by phase, in virtual time.

`bench_proxy.py` measures the whole (relay, hub, load) on shared cores, where one run's p99 moves by a millisecond
or two with the machine. This one replays, in one thread and as fast as the CPU goes, what a relay process sends
the hub's process for N concurrent Chat Completions streams (50 chunks a second each, 10 ms batches: the relay's
own messages — opened, read, each chunk's copy with the time it was forwarded, counters, finished, ended — in the
relay's order), into the parts `midstream proxy` runs there by default: `ProxyProcess`'s reading of the copies, a
hub with the built-in rules and the meta-learner (its state in a temporary folder; no recording), analysis ticks
every 100 ms with the proxy's attractor budget, queue drains every 50 ms. Times are CPU, per chunk forwarded:

- ``read``: the batch unpickled and each message taken (`AnswerReading`: the chunk's events parsed, its deltas
  put into the stream's queue);
- ``drain``: the queued events into the analyzers (and the learner's tap);
- ``tick``: the analysis steps (metrics, loop detection, attractor estimates within the budget, snapshots) and
  the rules;
- ``all``: the process's CPU over the run (the learner's own thread included).

Peer: the same replay with the chunks' copies left unread (``read`` stops at the message: no events, nothing to
drain), the floor of this architecture — what the hub's process costs per chunk for carrying the bytes only.
Where the CPU is spent in the real run, and why it shows in the relay's delay: README, issue 13's section.

    python bench/bench_proxy_hub.py [--streams 200] [--seconds 10] [--rate 50] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pickle
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from midstream_tui.analysis import kernels  # noqa: E402
from midstream_tui.clock import VirtualClock  # noqa: E402
from midstream_tui.events import RequestStarted, StreamOpened  # noqa: E402
from midstream_tui.hub import Hub  # noqa: E402
from midstream_tui.proxy import PROXY_DYNAMICS_PER_S, ProxyOptions, ProxyProcess  # noqa: E402
from midstream_tui.runtime import RunContext, RunOptions  # noqa: E402

WORDS = "the of and a to in is you that it he was for on are as with his they at be this have from".split()
FLUSH_S, METRICS_S, INGEST_S, TICK_S = 0.01, 0.1, 0.05, 0.1


def relay_batches(streams: int, seconds: float, rate: float, seed: int = 1) -> list[tuple[float, bytes]]:
    """(when, pickled batch) as a relay process sends them: streams started over one chunk interval, words that
    never settle into a loop (a loop would be cut, rightly), the chunks of `bench_proxy.py`'s upstream."""
    rng = random.Random(seed)
    due: list[tuple[float, int, str]] = []  # (time, stream, what)
    n = int(rate * seconds)
    for s in range(streams):
        t0 = 1.0 + s / (rate * streams)
        due.append((t0, s, "open"))
        due += [(t0 + 0.005 + i / rate, s, "chunk") for i in range(n)]
        due.append((t0 + 0.005 + n / rate, s, "end"))
    due.sort()
    batches, batch, touched = [], [], set()
    edge, next_metrics = due[0][0] + FLUSH_S, due[0][0] + METRICS_S
    sent = [0] * streams
    for t, s, what in due:
        while t >= edge:
            if edge >= next_metrics:
                batch += [("metrics", f"bench#{k}", {"bytes_out": sent[k], "status": 200, "ttfb_ms": 5.0})
                          for k in sorted(touched)]
                touched.clear()
                next_metrics += METRICS_S
            if batch:
                batches.append((edge, pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)))
                batch = []
            edge += FLUSH_S
        name = f"bench#{s}"
        if what == "open":
            batch += [("open", name, "proxy:chat/bench@127.0.0.1", "proxy:openai/bench@127.0.0.1", t, False),
                      ("event", name, StreamOpened(name, t, kind="text", source="proxy:chat/bench@127.0.0.1",
                                                   identity="proxy:openai/bench@127.0.0.1")),
                      ("event", name, RequestStarted(name, t)),
                      ("read", name, "chat", True, "identity", t)]
        elif what == "chunk":
            chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "bench",
                     "choices": [{"index": 0, "delta": {"content": " " + rng.choice(WORDS)}, "finish_reason": None}]}
            data = f"data: {json.dumps(chunk)}\n\n".encode()
            sent[s] += len(data)
            touched.add(s)
            batch.append(("b", name, t, data))
        else:
            batch += [("b", name, t, b"data: [DONE]\n\n"),
                      ("metrics", name, {"bytes_out": sent[s] + 14, "status": 200, "ttfb_ms": 5.0}),
                      ("finish", name, t, "finished", "", False, None), ("end", name)]
    if batch:
        batches.append((edge, pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)))
    return batches


async def replay(batches: list[tuple[float, bytes]], read: bool, data: Path) -> dict[str, float]:
    clock = VirtualClock(0.0)
    hub = Hub(clock, analysis_interval=TICK_S)
    hub.dynamics_per_s = PROXY_DYNAMICS_PER_S
    hub.ingest_ready = hub.warm = True
    run = RunContext(RunOptions(record=None, data_dir=data))
    run.__enter__()
    try:
        run.attach(hub)
        proxy = ProxyProcess(hub, ProxyOptions())
        plain_add = hub.add_source

        def add_source(source) -> None:  # (the hub's pump, wired at once: events go straight to the pipeline)
            plain_add(source)
            pipe = hub.pipeline(source.stream_id)
            source.sink = lambda event: pipe.offer(event)
        hub.add_source = add_source  # type: ignore[method-assign]
        spent = dict.fromkeys(("read", "drain", "tick"), 0.0)
        chunks = 0
        next_drain, next_tick = batches[0][0] + INGEST_S, batches[0][0] + TICK_S
        cpu0 = time.process_time()
        for t, raw in batches:
            while t >= min(next_drain, next_tick):
                if next_drain <= next_tick:
                    clock.advance_to(next_drain)
                    a = time.process_time()
                    for pipe in hub._pipeline_list():
                        if pipe.queue_depth:
                            pipe.drain()
                    spent["drain"] += time.process_time() - a
                    next_drain += INGEST_S
                else:
                    clock.advance_to(next_tick)
                    a = time.process_time()
                    pipes = hub._pipeline_list()
                    due = sorted((p for p in pipes if p.dynamics_due(next_tick)), key=lambda p: p._attractor_t)
                    allowed = set(due[:max(1, round(hub.dynamics_per_s * TICK_S))])
                    for pipe in pipes:
                        hub._publish(pipe.step(next_tick, dynamics=pipe in allowed))
                    for callback in hub._tick_callbacks:
                        callback(next_tick)
                    spent["tick"] += time.process_time() - a
                    next_tick += TICK_S
            clock.advance_to(t)
            a = time.process_time()
            for message in pickle.loads(raw):  # audit: ignore (made by this script)
                if message[0] == "b":
                    chunks += 1
                    if not read:
                        continue
                proxy._take(message)
            spent["read"] += time.process_time() - a
        spent["all"] = time.process_time() - cpu0
        return {k: v / chunks * 1e6 for k, v in spent.items()}
    finally:
        run.__exit__(None, None, None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if not (args.streams > 0 and args.seconds > 0 and args.rate > 0 and args.repeat > 0):
        raise SystemExit("--streams, --seconds, --rate and --repeat must be > 0")
    kernels.warm_up_ingest()
    kernels.warm_up_dynamics()
    batches = relay_batches(args.streams, args.seconds, args.rate)
    print(f"the hub's process of `midstream proxy`, {args.streams} streams x {args.rate:g} chunks/s x "
          f"{args.seconds:g} s, replayed in virtual time (CPU µs per chunk; best of {args.repeat})")
    results = {}
    for read, label in ((True, "midstream (defaults)"), (False, "copies unread (floor)")):
        runs = []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as data:
                runs.append(asyncio.run(replay(batches, read, Path(data))))
        best = results[read] = {k: min(r[k] for r in runs) for k in runs[0]}
        print(f"  {label:22s}: " + " | ".join(f"{k} {v:5.1f}" for k, v in best.items())
              + f" | {best['all'] * args.rate * args.streams / 1e4:.0f} % of a core")
    print(f"  reading and analysing the copies: {results[True]['all'] / results[False]['all']:.1f}x the floor")


if __name__ == "__main__":
    main()
