"""Meta-learning at scale: a thousand streams ending at once, live, with the learner attached.

A JSONL session (written to a temporary folder) holds ``--streams`` short text streams that all
close at the same instant (t = 1 s) and one stream that goes on. It is replayed live (real clock)
through the hub with the built-in rules and a MetaLearner, as ``midstream run FILE --headless``
does, for ``--duration`` seconds. Reported:

- time spent learning per learner tick (levels 1 and 2, in the learner's worker thread): median,
  max, and the number of ticks merged because the worker was still busy;
- the largest event-loop stall: a coroutine sleeps 10 ms in a loop and records how late it wakes,
  during the run and during the stop (last analysis step, last learning);
- how long past ``--duration`` the run took to stop, and to save what was learned;
- RSS now and at its peak (VmRSS, VmHWM);
- peer: the previous learner, which refitted each outcome model by 30 SGD passes in Python over
  its memory for every label, timed here on the same labels (the first ``--peer-labels``), and
  what that makes for all of them, on the event loop.

    python bench/bench_meta_scale.py [--streams 1000] [--duration 4] [--peer-labels 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from midstream_tui import Hub, open_sources
from midstream_tui.analysis import kernels
from midstream_tui.rules import FEATURES, MetaLearner, OutcomeModel
from midstream_tui.rules import BUILTIN_RULES, RuleEngine

END_AT = 1.0


def write_session(path: Path, streams: int, seconds: float) -> None:
    lines = []
    for s in range(streams):
        t = 0.2 + (s % 100) * 0.002
        lines += [{"t": t, "stream": f"s{s}", "type": "open"}, {"t": t, "stream": f"s{s}", "type": "request"}]
        lines += [{"t": round(t + 0.05 + 0.03 * k, 4), "stream": f"s{s}", "type": "text", "text": f" w{k}"}
                  for k in range(12)]
        lines += [{"t": END_AT, "stream": f"s{s}", "type": "request_end"},
                  {"t": END_AT, "stream": f"s{s}", "type": "close"}]
    lines += [{"t": 0.0, "stream": "long", "type": "open"}, {"t": 0.0, "stream": "long", "type": "request"}]
    lines += [{"t": k * 0.25, "stream": "long", "type": "text", "text": f" x{k}"} for k in range(1, int(seconds * 4))]
    lines.sort(key=lambda o: o["t"])
    path.write_text("\n".join(json.dumps(o) for o in lines) + "\n")


def rss_mb() -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


class StallProbe:
    """How late the event loop wakes a coroutine that sleeps 10 ms at a time."""

    def __init__(self) -> None:
        self.worst = {"run": 0.0, "stop": 0.0}
        self.phase = "run"

    async def watch(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(0.01)
            late = time.perf_counter() - started - 0.01
            self.worst[self.phase] = max(self.worst[self.phase], late)


async def live(path: Path, duration: float, state: Path | None) -> dict:
    """The live run; with ``state`` None, without a learner (the same run's baseline)."""
    hub = Hub(analysis_interval=0.1)
    engine = RuleEngine(hub, list(BUILTIN_RULES))
    learner = MetaLearner(state).attach(hub, engine) if state is not None else None
    for src in open_sources([str(path)]):
        src.clock = hub.clock
        hub.add_source(src)
    await asyncio.get_running_loop().run_in_executor(None, kernels.warm_up)  # not part of what is measured
    probe = StallProbe()
    watcher = asyncio.get_running_loop().create_task(probe.watch())
    started = time.perf_counter()
    original_stop = hub.stop

    async def stop() -> None:
        probe.phase = "stop"
        await original_stop()

    hub.stop = stop  # type: ignore[method-assign]
    await hub.run(duration)
    stopped = time.perf_counter()
    watcher.cancel()
    if learner is not None:
        learner.save()
    saved = time.perf_counter()
    ended = sum(1 for s in hub.snapshots().values() if s.status != "open")
    return {"learner": learner, "probe": probe, "run_s": stopped - started, "save_s": saved - stopped,
            "ended": ended, "ticks": hub.ticks}


def peer_seconds_per_label(examples: list[tuple[list[float], int]], labels: int) -> float:
    """The previous refit, with its memory full: 30 passes of per-example SGD in Python over the memory,
    once per label. Timed over ``labels`` labels."""
    w = np.zeros(len(FEATURES))
    rng = np.random.default_rng(0)
    memory = list(examples[-OutcomeModel.MEMORY:])
    started = time.perf_counter()
    for k in range(labels):
        memory.append(examples[k % len(examples)])
        del memory[:-OutcomeModel.MEMORY]
        xs = np.asarray([e[0] for e in memory])
        ys = np.asarray([e[1] for e in memory], dtype=float)
        for _ in range(30):
            for i in rng.permutation(len(ys)):
                z = float(np.clip(w @ xs[i], -30, 30))
                err = 1.0 / (1.0 + math.exp(-z)) - ys[i]
                w -= 0.3 * (err * xs[i] + 1e-3 * w)
    return (time.perf_counter() - started) / labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--peer-labels", type=int, default=60)
    args = parser.parse_args()
    kernels.warm_up()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "burst.jsonl"
        write_session(path, args.streams, args.duration + 60)
        rss_before, _ = rss_mb()
        r = asyncio.run(live(path, args.duration, Path(tmp) / "meta.json"))
        rss_now, rss_peak = rss_mb()
        state_kb = (Path(tmp) / "meta.json").stat().st_size / 1024
        bare = asyncio.run(live(path, args.duration, None))
    learner: MetaLearner = r["learner"]
    per_tick = list(learner.learn_seconds)
    labels = sum(m.seen for m in learner.what.models.values())
    peer_full = peer_seconds_per_label(learner.what.models["cancel"].examples, args.peer_labels)
    print(f"{args.streams} streams ending at once (t = {END_AT:g} s) + 1 going on; live, --duration {args.duration:g}")
    print(f"  streams ended {r['ended']}, analysis ticks {r['ticks']}, labels learned {labels}")
    print(f"  learning per learner tick: median {statistics.median(per_tick) * 1e3:.1f} ms, "
          f"max {max(per_tick) * 1e3:.1f} ms over {len(per_tick)} ticks ({learner.ticks_coalesced} merged)")
    print(f"  max event-loop stall: {r['probe'].worst['run'] * 1e3:.1f} ms while running, "
          f"{r['probe'].worst['stop'] * 1e3:.1f} ms during the stop; the same run without a learner: "
          f"{bare['probe'].worst['run'] * 1e3:.1f} ms, {bare['probe'].worst['stop'] * 1e3:.1f} ms")
    print(f"  stopped {r['run_s'] - args.duration:+.2f} s past --duration (without a learner "
          f"{bare['run_s'] - args.duration:+.2f} s); saving meta.json {r['save_s'] * 1e3:.0f} ms")
    print(f"  RSS {rss_before:.0f} MB before, {rss_now:.0f} MB after, peak {rss_peak:.0f} MB "
          f"({(rss_now - rss_before) * 1024 / (args.streams + 1):.0f} kB per stream, the hub's buffers mostly); "
          f"meta.json {state_kb:.0f} kB")
    print(f"  peer (previous learner: 30 SGD passes per label, on the event loop): {peer_full * 1e3:.0f} ms per "
          f"label at a full memory -> about {peer_full * labels:.0f} s for these {labels} labels "
          f"(ratio to the max learning tick here: {peer_full * labels / max(per_tick):.0f}x)")


if __name__ == "__main__":
    main()
