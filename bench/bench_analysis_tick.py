"""Per-window analysis cost, and 16 live streams analysed every 100 ms on 2 cores.

1. Cost of one analysis step of one stream with full ring buffers: the metrics
   step alone, and the attractor classification of a 600-point window
   (done at most twice a second per stream).
2. 16 streams at real-time pace through the hub (8 text, 4 audio, 4 video
   640x360@30), analysed every 100 ms: tick wall time p50/p99/max against the
   100 ms budget, drops, and CPU.

    python bench/bench_analysis_tick.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import numpy as np

from midstream_tui import Hub, VirtualClock, open_sources, run_virtual
from midstream_tui.analysis import kernels
from midstream_tui.analysis.dynamics import classify_attractor

KINDS = {"text": "sim:text?seed=1", "audio": "sim:audio?seed=2", "video": "sim:video?seed=3&width=640&height=360"}


def per_window() -> None:
    print("per-window cost (one stream, full buffers), median of 50:")
    for kind, uri in KINDS.items():
        clock = VirtualClock()
        hub = Hub(clock)
        run_virtual(hub, open_sources([uri], clock), 30.0)
        pipe = hub.pipeline(hub.streams[0])
        steps, now = [], 30.0
        for _ in range(50):
            now += 0.1
            pipe.analyzer.signal_changed = False  # metrics only
            t = time.perf_counter()
            pipe.step(now)
            steps.append(time.perf_counter() - t)
        signal = pipe.analyzer.signal()
        classes = []
        for _ in range(50):
            t = time.perf_counter()
            result = classify_attractor(signal, max_points=600)
            classes.append(time.perf_counter() - t)
        print(f"  {kind:<6} metrics step {np.median(steps) * 1e3:6.2f} ms   "
              f"classify 600 points {np.median(classes) * 1e3:6.2f} ms  ({result.type})")


def live(seconds: float) -> None:
    uris = ([f"sim:text?seed={i}&name=text{i}" for i in range(8)]
            + [f"sim:audio?seed={i}&name=audio{i}" for i in range(4)]
            + [f"sim:video?seed={i}&width=640&height=360&name=video{i}" for i in range(4)])

    async def run() -> Hub:
        hub = Hub(analysis_interval=0.1)
        for src in open_sources(uris, hub.clock):
            hub.add_source(src)
        await hub.run(seconds)
        return hub

    cpu = time.process_time()
    hub = asyncio.run(run())
    cpu = time.process_time() - cpu
    ticks = np.array(list(hub.tick_seconds)[5:]) * 1e3  # skip the warm-up ticks
    snaps = hub.snapshots()
    drops = sum(s.metrics["drops"] for s in snaps.values())
    print(f"\n16 live streams (8 text, 4 audio, 4 video 640x360@30) for {seconds:.0f} s, 10 Hz analysis:")
    print(f"  tick wall time: p50 {np.percentile(ticks, 50):.1f} ms, p99 {np.percentile(ticks, 99):.1f} ms, "
          f"max {ticks.max():.1f} ms of the 100 ms budget ({len(ticks)} ticks)")
    print(f"  drops {drops}, CPU {cpu / seconds:.0%} of one core (sources, hub and analysis)")
    print("  attractors: " + ", ".join(sorted({s.attractor.type for s in snaps.values()})))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    kernels.warm_up()
    per_window()
    live(args.seconds)


if __name__ == "__main__":
    main()
