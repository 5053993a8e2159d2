"""1080p30 H.264: decode alone versus decode plus all of MidStream's per-frame video analysis, on one core.

Peer: PyAV decoding the same file to RGB frames (what any analysis must start
from), with FFmpeg's decoder limited to one thread. MidStream: the same decode,
each frame then ingested by the hub's video analyzer (luma thumbnail, motion
energy, scene cut, brightness, bitrate, frame timing, preview thumbnail), with
an analysis step (metrics, attractor) every 100 ms of stream time as the live
clock would run it. Goals (issue 5): at least 30 fps, and the analysis adds at
most 25 % to decode-only time.

Then, through a live hub (real clock), how faithfully a small file is paced
by its timestamps (its wall time and fps against the clip's own 30 fps) and how
much faster than real time ``realtime=0`` reads it (peer: the clip's duration).
These were asserted in tests/test_media.py; they measure speed, so they live here.

    python bench/bench_media.py [--seconds 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from midstream_tui import Hub, VirtualClock
from midstream_tui.analysis import kernels
from midstream_tui.events import StreamOpened, VideoFrame


def write_1080p(path: Path, seconds: float, fps: int = 30) -> int:
    """Moving shapes over a textured gradient with grain, a scene change every 3 s: camera-like bitrates."""
    out = av.open(str(path), "w")
    stream = out.add_stream("libx264", rate=fps, options={"preset": "veryfast", "crf": "23"})
    stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
    rng = np.random.default_rng(1)
    n = int(seconds * fps)
    base = None
    for i in range(n):
        if i % (3 * fps) == 0:
            ramp = np.linspace(0, 1, 1080, dtype=np.float32)[:, None, None]
            c0, c1 = rng.integers(0, 255, 3), rng.integers(0, 255, 3)
            texture = rng.integers(-40, 40, (270, 480, 1)).repeat(4, axis=0).repeat(4, axis=1)
            base = np.clip(c0 + (c1 - c0) * ramp + texture, 0, 255).astype(np.int16)
        grain = rng.integers(-6, 7, (540, 960, 1), dtype=np.int16).repeat(2, axis=0).repeat(2, axis=1)
        frame = np.clip(base + grain, 0, 255).astype(np.uint8)
        for k in range(6):
            x = int((i * (7 + 3 * k) + 200 * k) % 1800)
            y = int((i * (3 + k) + 150 * k) % 980)
            frame[y:y + 100, x:x + 120] = (40 * k, 255 - 30 * k, 128)
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    return n


def frames(path: Path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type, stream.codec_context.thread_count = "SLICE", 1  # one core
        for packet in container.demux(stream):
            size = packet.size
            for frame in packet.decode():
                yield frame.to_ndarray(format="rgb24"), frame.time, size
                size = 0


def decode_only(path: Path) -> tuple[float, int]:
    t = time.perf_counter()
    n = sum(1 for _ in frames(path))
    return time.perf_counter() - t, n


def decode_and_analyse(path: Path) -> tuple[float, int, dict]:
    clock = VirtualClock()
    hub = Hub(clock, analysis_interval=0.1, workers=1)
    hub.push(StreamOpened("bench", 0.0, kind="video", source=str(path)))
    next_step = 0.1
    t = time.perf_counter()
    n = 0
    for rgb, ts, size in frames(path):
        clock.advance_to(ts)
        hub.push(VideoFrame("bench", ts, frame=rgb, encoded_bytes=size))
        hub.pipeline("bench").drain()  # ingest now, in this thread: one core, no queue
        if ts >= next_step:
            hub.analyze(ts)
            next_step += 0.1
        n += 1
    hub.analyze(clock.now())
    return time.perf_counter() - t, n, dict(hub.snapshot("bench").metrics)


def pacing(tmp: str) -> None:
    """A 4 s 320x240 H.264+AAC clip played paced, then with realtime=0, through a live hub."""
    import asyncio
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from test_media import write_clip

    from midstream_tui import open_sources

    clip = Path(tmp) / "paced.mp4"
    write_clip(clip, seconds=4.0)

    async def play(uri: str):
        hub = Hub(analysis_interval=0.05)
        for src in open_sources([uri], hub.clock):
            hub.add_source(src)
        t = time.perf_counter()
        await hub.run(60)
        return time.perf_counter() - t, hub.snapshot("paced").metrics

    elapsed, m = asyncio.run(play(str(clip)))
    print(f"paced 4 s clip:      {elapsed:5.2f} s wall ({elapsed / 4.0:.2f}x its duration), fps {m['fps']:.1f} "
          f"(clip: 30), frames {m['frames']}, drops {m['drops']}")
    elapsed, m = asyncio.run(play(f"{clip}?realtime=0"))
    print(f"realtime=0 4 s clip: {elapsed:5.2f} s wall ({4.0 / elapsed:.1f}x faster than real time), "
          f"frames {m['frames']}, drops {m['drops']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    kernels.warm_up()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "1080p30.mp4"
        t = time.perf_counter()
        n = write_1080p(path, args.seconds)
        print(f"clip: {n} frames 1920x1080 H.264, {path.stat().st_size / 1e6:.1f} MB "
              f"(encoded in {time.perf_counter() - t:.1f} s)")
        decode_only(path)  # warm the page cache and FFmpeg
        decode_and_analyse(path)
        bare, full = [], []
        for _ in range(args.repeat):  # interleaved, so drift in machine load hits both
            bare.append(decode_only(path)[0])
            seconds, frames_seen, metrics = decode_and_analyse(path)
            full.append(seconds)
        b, f = statistics.median(bare), statistics.median(full)
        print(f"decode only (PyAV, 1 thread):      {n / b:6.1f} fps  ({b:.2f} s, median of {args.repeat})")
        print(f"decode + MidStream analysis:       {n / f:6.1f} fps  ({f:.2f} s)")
        print(f"analysis overhead vs decode only:  {100 * (f / b - 1):+.1f} %  (goal: <= +25 %; "
              f"fps goal >= 30: {'met' if n / f >= 30 else 'NOT met'})")
        print(f"analysis saw {frames_seen} frames, {metrics['scene_cuts']} scene cuts, "
              f"bitrate {metrics['bitrate_mbps']:.2f} Mbit/s")
        pacing(tmp)


if __name__ == "__main__":
    main()
