"""Soak: all demo streams, accelerated, recorded to a session; memory and queue depths over time.

Two runs in one process:

1. Accelerated (virtual time): the demo streams (2 text, audio, 640x360 video) plus four
   more text streams at 200 tokens/s, driven as fast as the CPU allows for ``--hours`` of
   stream time, with the session recorder attached. RSS is sampled every 10 minutes of
   stream time: it should stay flat once the ring buffers are full.
2. Live (real clock): the same streams at real-time pace through the live hub (ingest
   threads, analysis clock, recorder writer thread) for ``--live`` seconds; every 5 s the
   queue depth of every pipeline, drops and the recorder's backlog are sampled: none
   should grow.

    python bench/bench_soak.py [--hours 1] [--live 120]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from midstream_tui import Hub, VirtualClock, open_sources, run_virtual
from midstream_tui.analysis import kernels
from midstream_tui.rules import BUILTIN_RULES, RuleEngine
from midstream_tui.sessions import Recorder, info

URIS = ["sim:text?name=llm&seed=1", "sim:text?name=llm-loop&behavior=loop&seed=2",
        "sim:audio?name=audio&seed=4", "sim:video?name=video&seed=5&width=640&height=360"] + [
    f"sim:text?name=fast-{k}&seed={10 + k}&rate=200&ttft=100" for k in range(4)]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def accelerated(hours: float, folder: Path) -> None:
    clock = VirtualClock()
    hub = Hub(clock, analysis_interval=0.1)
    RuleEngine(hub, list(BUILTIN_RULES))
    recorder = Recorder(folder / "accelerated.midstream.sqlite", command="bench_soak").attach(hub)
    samples: list[tuple[float, float, float]] = []
    started = time.perf_counter()

    def on_tick(t: float, _snaps) -> None:
        if not samples or t - samples[-1][0] >= 600:
            samples.append((t, rss_mb(), time.perf_counter() - started))

    run_virtual(hub, open_sources(URIS, clock), hours * 3600, on_tick=on_tick)
    recorder.close()
    wall = time.perf_counter() - started
    print(f"accelerated: {hours:g} h of {len(URIS)} streams in {wall:.0f} s wall ({hours * 3600 / wall:.0f}x real time)")
    print("  stream time   RSS MB   wall s")
    for t, rss, w in samples:
        print(f"  {t / 60:8.0f} min {rss:8.1f} {w:8.0f}")
    later = [r for t, r, _ in samples if t >= hours * 3600 / 3]
    if len(later) >= 2:
        slope = np.polyfit([t / 3600 for t, _, _ in samples if t >= hours * 3600 / 3], later, 1)[0]
        print(f"  RSS after the first third: {min(later):.1f}-{max(later):.1f} MB, slope {slope:+.1f} MB/hour")
    meta = info(recorder.path)
    print(f"  session: {meta.size / 1e6:.1f} MB for {meta.duration / 3600:.2f} h, {recorder.rows} rows, "
          f"{recorder.flushes} commits, status {meta.status}")


async def live(seconds: float, folder: Path) -> None:
    hub = Hub(analysis_interval=0.1)
    RuleEngine(hub, list(BUILTIN_RULES))
    recorder = Recorder(folder / "live.midstream.sqlite", command="bench_soak").attach(hub)
    for src in open_sources(URIS, hub.clock):
        hub.add_source(src)
    await hub.start()
    rows = []
    cpu0, t0 = os.times(), time.monotonic()
    try:
        while time.monotonic() - t0 < seconds:
            await asyncio.sleep(5.0)
            pipes = [hub.pipeline(s) for s in hub.streams]
            rows.append((time.monotonic() - t0, rss_mb(), max(p.queue_depth for p in pipes),
                         sum(p.drops for p in pipes), recorder._queue.qsize(), recorder.rows))
    finally:
        await hub.stop()
        recorder.close()
    cpu1 = os.times()
    used = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    print(f"live: {seconds:.0f} s of {len(URIS)} streams at real-time pace, "
          f"{100 * used / seconds:.0f} % of one core in all")
    print("     t s   RSS MB  max queue  drops  recorder backlog  rows written")
    for t, rss, q, d, backlog, written in rows:
        print(f"  {t:6.0f} {rss:8.1f} {q:10d} {d:6d} {backlog:17d} {written:13d}")
    meta = info(recorder.path)
    print(f"  session: {meta.size / 1e6:.1f} MB, status {meta.status}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0, help="stream time of the accelerated run")
    parser.add_argument("--live", type=float, default=120.0, help="seconds of the live run")
    args = parser.parse_args()
    kernels.warm_up()
    with tempfile.TemporaryDirectory() as tmp:
        accelerated(args.hours, Path(tmp))
        asyncio.run(live(args.live, Path(tmp)))


if __name__ == "__main__":
    main()
