"""`midstream proxy`'s analysis side alone: what the hub's process spends per chunk, by phase, in virtual time.

`bench_proxy.py` measures the whole (relay, hub, load) on shared cores, where one run's p99 moves by a millisecond
or two with the machine. This one replays, in one thread and as fast as the CPU goes (``--paced``: on the wall
clock, as batches arrive live), what a relay process sends the hub's process for N concurrent Chat Completions
streams (50 chunks a second each, in the relay's batches: the relay's messages — opened, read, each chunk's
copy with the time it was forwarded, counters, finished, ended; not the gateway's totals — in the relay's order).
They go into the parts `midstream proxy --headless --no-record` runs there: `ProxyProcess`'s reading of the copies,
the hub's pump for each request, a hub with the built-in rules and the meta-learner (its state in a temporary
folder, empty at each run), analysis ticks every 100 ms with the proxy's attractor budget, queue drains every 50 ms
(of the queues the hub's ingest loop drains), and a second more of both after the last batch (the requests' ends
analysed too). Left out: the recording (on by default), the dashboard, the socket and the event loop, the worker
threads (all here runs in one). CPU µs per content chunk (``data: [DONE]`` not counted):

- ``read``: the batch unpickled and each message taken (`AnswerReading`: the chunk's events parsed, its deltas
  put into the stream's queue through the pump);
- ``drain``: the queued events into the analyzers (and the learner's tap);
- ``tick``: the analysis steps (metrics, loop detection, attractor estimates within the budget, snapshots), the
  rules, and the learner's tick (which runs inline when the hub's loop is not running, as here);
- ``all``: the process's CPU over the replay.

Peer: the same replay with the chunks' copies left unread (``read`` stops at the message: no events, nothing to
drain; the ticks still run over the open streams, with their snapshots, rules and learner). That floor is the
cost of carrying the requests without reading their answers, most of it ticks over idle streams. Of each
configuration the run with the least CPU is shown (all its phases). Where the CPU is spent in the real process,
and why it shows in the relay's delay: README, issue 13's section.

    python bench/bench_proxy_hub.py [--streams 200] [--seconds 10] [--rate 50] [--repeat 3] [--paced]
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
from midstream_tui.hub import INGEST_INTERVAL, Hub  # noqa: E402
from midstream_tui.proxy import PROXY_DYNAMICS_PER_S, ProxyOptions, ProxyProcess  # noqa: E402
from midstream_tui.proxy.relay import FLUSH_BUSY, FLUSH_BUSY_S  # noqa: E402
from midstream_tui.runtime import RunContext, RunOptions  # noqa: E402

WORDS = "the of and a to in is you that it he was for on are as with his they at be this have from".split()
INGEST_S, TICK_S = INGEST_INTERVAL, 0.1
DONE = b"data: [DONE]\n\n"


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
    # The relay sends a batch, with the counters, when the hub asks at each analysis step, or before that once it
    # is long (and 10 ms have passed): here batches of a fixed length of time for the whole run, when that many
    # chunks have come, within those bounds; the counters at each step.
    every = max(FLUSH_BUSY_S, min(TICK_S, FLUSH_BUSY / (streams * rate)))
    edge, next_metrics = due[0][0] + every, due[0][0] + TICK_S
    sent = [0] * streams
    for t, s, what in due:
        while t >= edge:
            if edge >= next_metrics:
                batch += [("metrics", f"bench#{k + 1}", {"bytes_out": sent[k], "status": 200, "ttfb_ms": 5.0})
                          for k in sorted(touched)]
                touched.clear()
                next_metrics += TICK_S
            if batch:
                batches.append((edge, pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)))
                batch = []
            edge += every
        name = f"bench#{s + 1}"
        if what == "open":
            batch += [("open", name, "proxy:chat/bench@127.0.0.1", "proxy:openai/bench@127.0.0.1", t, False),
                      ("event", name, StreamOpened(name, t, kind="text", source="proxy:chat/bench@127.0.0.1",
                                                   identity="proxy:openai/bench@127.0.0.1")),
                      ("event", name, RequestStarted(name, t)),
                      ("read", name, "chat", True, "identity", t, 1)]
        elif what == "chunk":
            chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "bench",
                     "choices": [{"index": 0, "delta": {"content": " " + rng.choice(WORDS)}, "finish_reason": None}]}
            data = f"data: {json.dumps(chunk)}\n\n".encode()
            sent[s] += len(data)
            touched.add(s)
            batch.append(("b", name, t, data))
        else:
            batch += [("b", name, t, DONE),
                      ("metrics", name, {"bytes_out": sent[s] + 14, "status": 200, "ttfb_ms": 5.0}),
                      ("finish", name, t, "finished", "", False, None), ("end", name)]
    if batch:
        batches.append((edge, pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)))
    return batches


async def replay(batches: list[tuple[float, bytes]], read: bool, data: Path, paced: bool = False) -> dict[str, float]:
    """One replay; CPU µs per content chunk by phase. ``paced``: batches handed over on the wall clock (sleeping
    between them, as the live process waits for them), else as fast as the CPU goes."""
    clock = VirtualClock(0.0)
    hub = Hub(clock, analysis_interval=TICK_S)
    hub.dynamics_per_s = PROXY_DYNAMICS_PER_S
    hub.ingest_ready = hub.warm = True
    run = RunContext(RunOptions(record=None, data_dir=data))
    run.__enter__()
    try:
        run.attach(hub)
        proxy = ProxyProcess(hub, ProxyOptions())
        loop = asyncio.get_running_loop()
        plain_add = hub.add_source
        pumps: list[asyncio.Task] = []

        def add_source(source) -> None:  # the hub's own pump for each request, as a started hub runs it
            plain_add(source)
            pumps.append(loop.create_task(hub._pump(source)))
        hub.add_source = add_source  # type: ignore[method-assign]
        spent = dict.fromkeys(("read", "drain", "tick"), 0.0)
        chunks = 0
        t0 = batches[0][0]
        last = batches[-1][0] + 1.0  # (a second more of drains and ticks: the requests' ends analysed too)
        # Drains every 50 ms, ticks every 100 ms, on whole milliseconds (a drain first where both fall)
        step_ms, drain_ms, tick_ms = 1, round(INGEST_S * 1e3), round(TICK_S * 1e3)
        ms = 0

        def due_until(t: float) -> None:
            nonlocal ms
            while t0 + (ms + step_ms) / 1e3 < t - 1e-6:  # (a batch due with a step comes first: the step asked)
                ms += step_ms
                now = t0 + ms / 1e3
                if ms % drain_ms == 0:
                    clock.advance_to(now)
                    a = time.process_time()
                    for pipe in hub._ingest_due(hub._pipeline_list()):  # (the ingest loop's rule)
                        pipe.drain()
                    spent["drain"] += time.process_time() - a
                if ms % tick_ms == 0:
                    clock.advance_to(now)
                    a = time.process_time()
                    pipes = hub._pipeline_list()
                    allowed = hub._dynamics_allowed(pipes, now)  # (the live tick's budget, the same code)
                    for pipe in pipes:
                        hub._publish(pipe.step(now, dynamics=pipe in allowed))
                    for callback in hub._tick_callbacks:  # the rules; the learner's tick (inline: no hub loop)
                        callback(now)
                    spent["tick"] += time.process_time() - a

        wall0 = time.monotonic()
        cpu0 = time.process_time()
        for t, raw in batches:
            if paced:
                wait = wall0 + (t - t0) - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            due_until(t)
            clock.advance_to(t)
            a = time.process_time()
            for message in pickle.loads(raw):  # audit: ignore (made by this script)
                if message[0] == "b":
                    chunks += message[3] != DONE
                    if not read:
                        continue
                proxy._take(message)
            spent["read"] += time.process_time() - a
            await asyncio.sleep(0)  # (new requests' pumps take their sinks)
        due_until(last)
        spent["all"] = time.process_time() - cpu0
        await asyncio.gather(*pumps)
        out = {k: v / chunks * 1e6 for k, v in spent.items()}
        out["core"] = spent["all"] / (last - t0)
        return out
    finally:
        run.__exit__(None, None, None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--paced", action="store_true", help="hand the batches over on the wall clock (see replay)")
    args = ap.parse_args()
    if not (args.streams > 0 and args.seconds > 0 and args.rate > 0 and args.repeat > 0):
        raise SystemExit("--streams, --seconds, --rate and --repeat must be > 0")
    if args.seconds < 1.0 or args.rate * args.seconds < 10:
        raise SystemExit("--seconds must be 1 or more and give each stream 10 chunks or more")
    if args.streams * args.rate * args.seconds > 5e6:
        raise SystemExit("at most 5,000,000 chunks in all (--streams x --rate x --seconds)")
    kernels.warm_up_ingest()
    kernels.warm_up_dynamics()
    batches = relay_batches(args.streams, args.seconds, args.rate)
    print(f"the hub's process of `midstream proxy --headless --no-record`, {args.streams} streams x {args.rate:g} "
          f"chunks/s x {args.seconds:g} s, replayed in virtual time{', paced' if args.paced else ''} (CPU µs per "
          f"chunk; the run of {args.repeat} with the least CPU)")
    results = {}
    for read, label in ((True, "midstream"), (False, "copies unread (floor)")):
        runs = []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as data:
                runs.append(asyncio.run(replay(batches, read, Path(data), args.paced)))
        best = results[read] = min(runs, key=lambda r: r["all"])
        print(f"  {label:22s}: " + " | ".join(f"{k} {best[k]:5.1f}" for k in ("read", "drain", "tick", "all"))
              + f" | {best['core']:.0%} of a core")
    if results[False]["all"] > 0:
        print(f"  reading and analysing the copies: {results[True]['all'] / results[False]['all']:.1f}x the floor")


if __name__ == "__main__":
    main()
