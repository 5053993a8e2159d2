"""WebRTC 720p30 over loopback: frames per second kept by the receiver, and glass-to-snapshot latency.

Both peers are MidStream's (aiortc): ``publish()`` sends 1280x720 frames at 30 fps
through the signaling server to a hub running the ``webrtc://`` receiver. Each
frame carries its number in a row of black and white blocks; the publisher
notes when it handed the frame over ("glass"), the receiver when the frame was
ingested, and when the first snapshot counting it was published ("snapshot",
analysis at 20 Hz). Goal (issue 5): 30 fps kept, glass-to-snapshot p90 < 100 ms.
Both ends run on this machine, sharing its cores: encode, decode and analysis.

    python bench/bench_webrtc.py [--seconds 20] [--codec vp8|h264] [--size 1280x720]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import AsyncIterator

import numpy as np

from midstream_tui import Hub, open_sources
from midstream_tui.analysis import kernels
from midstream_tui.events import Event, StreamClosed, StreamOpened, VideoFrame
from midstream_tui.servers.signaling import SignalingServer
from midstream_tui.sources.base import Source
from midstream_tui.sources.webrtc import publish

BITS, BLOCK = 16, 32


class NumberedFrames(Source):
    """Frames with their number drawn as blocks; ``sent[n]`` is when frame n was handed over."""

    kind = "video"

    def __init__(self, width: int, height: int, fps: float, seconds: float) -> None:
        super().__init__("bench", "bench:numbered")
        self.width, self.height, self.fps, self.seconds = width, height, fps, seconds
        self.sent: dict[int, float] = {}

    async def events(self) -> AsyncIterator[Event]:
        rng = np.random.default_rng(3)
        base = rng.integers(0, 255, (self.height // 8, self.width // 8, 3), dtype=np.uint8)
        base = base.repeat(8, axis=0).repeat(8, axis=1)
        yield StreamOpened("bench", time.monotonic(), kind="video")
        start = time.monotonic()
        for n in range(int(self.seconds * self.fps)):
            if self.cancelled:
                break
            await asyncio.sleep(max(0.0, start + n / self.fps - time.monotonic()))
            frame = np.roll(base, 6 * n, axis=1)
            for b in range(BITS):
                frame[:BLOCK, b * BLOCK:(b + 1) * BLOCK] = 255 if (n >> b) & 1 else 0
            self.sent[n] = time.monotonic()
            yield VideoFrame("bench", self.sent[n], frame=frame)
        yield StreamClosed("bench", time.monotonic())


def read_number(frame: np.ndarray) -> int:
    row = frame[BLOCK // 2, BLOCK // 2:BITS * BLOCK:BLOCK].mean(axis=1)
    return int(sum(1 << b for b, v in enumerate(row) if v > 128))


async def run(seconds: float, codec: str, width: int, height: int) -> None:
    os.environ["MIDSTREAM_SIGNALING_TOKEN"] = "bench-token"
    server = SignalingServer("127.0.0.1", 0, token=os.environ["MIDSTREAM_SIGNALING_TOKEN"])
    await server.start()
    hub = Hub(analysis_interval=0.05)
    uri = f"webrtc://127.0.0.1:{server.port}/bench?ice=loopback&name=rx"
    receiver = open_sources([uri], hub.clock)[0]
    hub.add_source(receiver)
    ingested: dict[int, float] = {}
    order: list[int] = []
    snapshot_at: dict[int, float] = {}

    pipe = hub.pipeline("rx", "video")
    original = pipe.analyzer.ingest

    def ingest(event):
        if isinstance(event, VideoFrame):
            n = read_number(event.frame)
            ingested[n] = time.monotonic()
            order.append(n)
        original(event)

    pipe.analyzer.ingest = ingest

    def tick(_now: float) -> None:
        snap = hub.snapshot("rx")
        if snap is None:
            return
        now = time.monotonic()
        for n in order[: int(snap.metrics.get("frames", 0))]:
            snapshot_at.setdefault(n, now)

    hub.on_tick(tick)
    run_task = asyncio.ensure_future(hub.run(seconds + 15))
    await asyncio.sleep(0.5)
    source = NumberedFrames(width, height, 30.0, seconds)
    cpu0 = os.times()
    counts = await publish(source, f"webrtc://127.0.0.1:{server.port}/bench?ice=loopback&codec={codec}",
                           duration=seconds + 10, token=os.environ["MIDSTREAM_SIGNALING_TOKEN"])
    await asyncio.sleep(1.0)
    cpu1 = os.times()
    receiver.cancel()
    await run_task
    await server.stop()

    sent = source.sent
    got = [n for n in sent if n in ingested]
    steady = [n for n in got if n >= 60]  # after the first 2 s (ICE, DTLS, first key frame)
    g2i = np.array([ingested[n] - sent[n] for n in steady]) * 1e3
    g2s = np.array([snapshot_at[n] - sent[n] for n in steady if n in snapshot_at]) * 1e3
    span = (max(ingested[n] for n in steady) - min(ingested[n] for n in steady)) if steady else 0
    fps = (len(steady) - 1) / span if span > 0 else 0.0
    print(f"{width}x{height} {codec} over loopback, {seconds:.0f} s: sent {len(sent)} frames, received "
          f"{len(got)} ({100 * len(got) / max(1, len(sent)):.1f} %), offers {counts['offers']}")
    print(f"  receiver frame rate after 2 s: {fps:.1f} fps (goal 30)")
    if g2i.size:
        print(f"  glass-to-ingest   ms: p50 {np.percentile(g2i, 50):.1f}  p90 {np.percentile(g2i, 90):.1f}  "
              f"max {g2i.max():.1f}")
    if g2s.size:
        print(f"  glass-to-snapshot ms: p50 {np.percentile(g2s, 50):.1f}  p90 {np.percentile(g2s, 90):.1f}  "
              f"max {g2s.max():.1f}   (goal p90 < 100)")
    used = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    print(f"  CPU, both peers + analysis in this process: {100 * used / (seconds + 1):.0f} % of one core")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--codec", choices=["vp8", "h264"], default="vp8")
    parser.add_argument("--size", default="1280x720")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    kernels.warm_up()
    asyncio.run(run(args.seconds, args.codec, width, height))


if __name__ == "__main__":
    main()
