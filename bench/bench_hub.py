"""Hub throughput versus a bare loop that only drains the same sources.

Peer: a bare loop that drains the same seeded simulated sources and does
nothing with the events.

1. Throughput, virtual time (as fast as the CPU allows): the peer iterates the
   events; MidStream pushes them through the hub with an analysis step every
   100 ms of stream time, as the live clock would. Overhead = hub time / bare
   time - 1.
2. Live, real-time pace: CPU used by draining the async sources bare versus
   running them through the hub headless (ingest threads, 10 Hz analysis).

    python bench/bench_hub.py [--seconds 60] [--repeat 3] [--live 20]
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import time

from midstream_tui import Hub, MonotonicClock, VirtualClock, open_sources, run_virtual
from midstream_tui.analysis import kernels

CASES = {
    "text x4": ["sim:text?seed=1", "sim:text?seed=2&behavior=loop", "sim:text?seed=3", "sim:text?seed=4"],
    "audio": ["sim:audio?seed=1"],
    "video 720p": ["sim:video?seed=1"],
    "demo all": ["sim:text?seed=1", "sim:text?seed=2&behavior=loop", "sim:audio?seed=4", "sim:video?seed=5"],
}


def bare(uris: list[str], seconds: float) -> tuple[float, int]:
    sources = open_sources(uris, VirtualClock())
    t = time.perf_counter()
    n = 0
    for event in heapq.merge(*(s.schedule(0.0) for s in sources), key=lambda e: e.t):
        if event.t > seconds:
            break
        n += 1
    return time.perf_counter() - t, n


def hub(uris: list[str], seconds: float) -> tuple[float, int]:
    clock = VirtualClock()
    h = Hub(clock, analysis_interval=0.1)
    sources = open_sources(uris, clock)
    t = time.perf_counter()
    snaps = run_virtual(h, sources, seconds)
    elapsed = time.perf_counter() - t
    return elapsed, sum(s.metrics["events"] for s in snaps.values())


async def _drain(sources) -> int:
    async def one(src) -> int:
        n = 0
        async for _event in src:
            n += 1
        return n
    tasks = [asyncio.ensure_future(one(s)) for s in sources]
    return tasks


def live_bare(uris: list[str], seconds: float) -> tuple[float, int]:
    """CPU seconds to drain the sources at real-time pace, doing nothing with the events."""
    async def run() -> int:
        sources = open_sources(uris, MonotonicClock())
        tasks = await _drain(sources)
        await asyncio.sleep(seconds)
        for s in sources:
            s.cancel()
        return sum(await asyncio.gather(*tasks))
    cpu = time.process_time()
    n = asyncio.run(run())
    return time.process_time() - cpu, n


def live_hub(uris: list[str], seconds: float) -> tuple[float, int]:
    """CPU seconds (all threads) for the same sources through the hub, analysed at 10 Hz."""
    async def run() -> int:
        h = Hub(analysis_interval=0.1)
        for src in open_sources(uris, h.clock):
            h.add_source(src)
        await h.run(seconds)
        return sum(s.metrics["events"] for s in h.snapshots().values())
    cpu = time.process_time()
    n = asyncio.run(run())
    return time.process_time() - cpu, n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0, help="stream time per case")
    ap.add_argument("--repeat", type=int, default=3, help="best of N")
    ap.add_argument("--live", type=float, default=20.0, help="seconds of real-time run for the CPU comparison")
    args = ap.parse_args()
    kernels.warm_up()
    print(f"{'case':<12} {'events':>8} {'bare ev/s':>12} {'hub ev/s':>12} {'overhead':>9}  (x real time)")
    for name, uris in CASES.items():
        tb, n = min(bare(uris, args.seconds) for _ in range(args.repeat))
        th, nh = min(hub(uris, args.seconds) for _ in range(args.repeat))
        print(f"{name:<12} {n:>8} {n / tb:>12,.0f} {nh / th:>12,.0f} {th / tb - 1:>8.1%}  "
              f"({args.seconds / th:,.0f}x)")
    if args.live > 0:
        print(f"\nlive, real-time pace, {args.live:.0f} s: CPU % of one core (process, all threads)")
        print(f"{'case':<12} {'bare drain':>11} {'hub':>8} {'hub extra':>10}")
        for name, uris in CASES.items():
            cb, _ = live_bare(uris, args.live)
            ch, _ = live_hub(uris, args.live)
            print(f"{name:<12} {cb / args.live:>10.1%} {ch / args.live:>8.1%} {(ch - cb) / args.live:>9.1%}")


if __name__ == "__main__":
    main()
