"""Simulated streams: seeded, deterministic, offline stand-ins for live streams.

``sim:text``  an LLM-like token stream: words from a bundled corpus chained by a
              bigram model, a time to first token, log-normal inter-token gaps,
              bursts (tokens coalesced by the network) and stalls. ``behavior=``
              ``normal`` | ``loop`` (falls into repeating a phrase) | ``drift``
              (the pace slows steadily) | ``stall`` (frequent long pauses).
``sim:audio`` 48 kHz mono PCM16 in 20 ms chunks: tremolo tones, chirps, noise
              and silence gaps.
``sim:video`` RGB frames (1280x720 at 30 fps by default): bouncing shapes on a
              gradient, with a scene cut every few seconds.

All randomness comes from ``numpy.random.default_rng(seed)``, so the same URI
gives the same events with the same timestamps.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from ..clock import Clock
from ..events import (
    AudioChunk,
    Event,
    RequestFinished,
    RequestStarted,
    StreamClosed,
    StreamOpened,
    TextDelta,
    Usage,
    VideoFrame,
)
from .base import ScheduledSource, SourceError
from .params import param, reject_unknown

TEXT_BEHAVIORS = ("normal", "loop", "drift", "stall")


@lru_cache(maxsize=1)
def _corpus_chain() -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """Bigram successor table over the bundled corpus (words and punctuation)."""
    text = resources.files("midstream_tui.data").joinpath("corpus.txt").read_text("utf-8")
    starts: list[str] = []
    chain: dict[str, list[str]] = {}
    for line in text.splitlines():
        words = line.replace(",", " ,").replace(".", " .").split()
        if not words:
            continue
        starts.append(words[0])
        for a, b in zip(words, words[1:]):
            chain.setdefault(a, []).append(b)
    return tuple(starts), {k: tuple(v) for k, v in chain.items()}


def _word_pieces(word: str, first: bool) -> list[str]:
    """Split a word like a BPE tokenizer roughly would: leading space, long words in two."""
    if word in {",", "."}:
        return [word]
    lead = "" if first else " "
    if len(word) > 8:
        cut = len(word) - 4
        return [lead + word[:cut], word[cut:]]
    return [lead + word]


class SimTextSource(ScheduledSource):
    kind = "text"

    def __init__(self, stream_id: str, uri: str = "sim:text", clock: Clock | None = None,
                 *, rate: float = 40.0, seed: int = 0, behavior: str = "normal",
                 ttft_ms: float = 400.0, requests: int = 0, max_tokens: int = 0,
                 think: float = 0.8) -> None:
        super().__init__(stream_id, uri, clock)
        if behavior not in TEXT_BEHAVIORS:
            raise SourceError(f"behavior={behavior!r}: expected one of {', '.join(TEXT_BEHAVIORS)}")
        self.rate, self.seed, self.behavior = rate, seed, behavior
        self.ttft_ms, self.requests, self.max_tokens, self.think = ttft_ms, requests, max_tokens, think

    @classmethod
    def from_params(cls, stream_id: str, uri: str, params: dict[str, str], clock: Clock | None):
        pos = lambda v: v > 0  # noqa: E731
        nonneg = lambda v: v >= 0  # noqa: E731
        src = cls(
            stream_id, uri, clock,
            rate=param(params, "rate", float, 40.0, pos, "a number of tokens/s > 0"),
            seed=param(params, "seed", int, 0, lambda v: 0 <= v < 2**64, "an integer from 0 to 2^64 - 1"),
            behavior=param(params, "behavior", str, "normal", lambda v: v in TEXT_BEHAVIORS,
                           "one of " + ", ".join(TEXT_BEHAVIORS)),
            ttft_ms=param(params, "ttft", float, 400.0, nonneg, "milliseconds >= 0"),
            requests=param(params, "requests", int, 0, nonneg, "an integer >= 0 (0: endless)"),
            max_tokens=param(params, "max_tokens", int, 0, nonneg, "an integer >= 0 (0: random)"),
            think=param(params, "think", float, 0.8, nonneg, "seconds >= 0"),
        )
        reject_unknown(params, uri)
        return src

    def _words(self, rng: np.random.Generator) -> Iterator[str]:
        starts, chain = _corpus_chain()
        first = True
        while True:
            word = starts[rng.integers(len(starts))]
            while True:
                yield from _word_pieces(word, first)
                first = False
                nxt = chain.get(word)
                if word == "." or not nxt:
                    break
                word = nxt[rng.integers(len(nxt))]

    def schedule(self, t0: float = 0.0) -> Iterator[Event]:
        rng = np.random.default_rng(self.seed)
        sid = self.stream_id
        yield StreamOpened(sid, t0, kind="text", source=self.uri, identity=self.identity("text"))
        t = t0
        request = 0
        stall_p, stall_range = (0.03, (1.0, 3.0)) if self.behavior == "stall" else (0.003, (0.6, 2.0))
        while self.requests == 0 or request < self.requests:
            request += 1
            yield RequestStarted(sid, t, request_id=request)
            t += self.ttft_ms / 1000.0 * float(rng.lognormal(0.0, 0.3))
            looping = self.behavior == "loop"
            n_tokens = self.max_tokens or (600 if looping else int(rng.integers(150, 400)))
            loop_at = int(rng.integers(40, 100)) if looping else -1
            words = self._words(rng)
            history: list[str] = []
            phrase: list[str] = []
            burst_left = 0
            for i in range(n_tokens):
                if i == loop_at:
                    # Repeat the last clause-sized span, starting on a word boundary.
                    span = int(rng.integers(6, 13))
                    tail = history[-span:]
                    k = next((j for j, tok in enumerate(tail) if tok.startswith(" ")), 0)
                    phrase = tail[k:] or tail
                token = phrase[(i - loop_at) % len(phrase)] if phrase else next(words)
                history.append(token)
                if i > 0:
                    base = 1.0 / self.rate
                    if self.behavior == "drift":
                        base *= 1.0 + (t - t0) / 30.0
                    if burst_left > 0:
                        gap = float(rng.uniform(0.001, 0.004))
                        burst_left -= 1
                    elif phrase:
                        gap = base * float(rng.lognormal(0.0, 0.1))
                    elif rng.random() < 0.06:
                        burst_left = int(rng.integers(2, 7))
                        gap = base * float(rng.lognormal(0.0, 0.35))
                    elif rng.random() < stall_p:
                        gap = float(rng.uniform(*stall_range))
                    else:
                        gap = base * float(rng.lognormal(0.0, 0.35))
                    t += gap
                yield TextDelta(sid, t, text=token, tokens=1, request_id=request)
            yield RequestFinished(sid, t, request_id=request, reason="length" if phrase else "stop")
            yield Usage(sid, t, prompt_tokens=int(rng.integers(20, 200)), completion_tokens=n_tokens)
            t += self.think
        yield StreamClosed(sid, t, reason="finished")


class SimAudioSource(ScheduledSource):
    kind = "audio"
    CHUNK_SECONDS = 0.02

    def __init__(self, stream_id: str, uri: str = "sim:audio", clock: Clock | None = None,
                 *, sample_rate: int = 48_000, seed: int = 0, duration: float = 0.0) -> None:
        super().__init__(stream_id, uri, clock)
        self.sample_rate, self.seed, self.duration = sample_rate, seed, duration

    @classmethod
    def from_params(cls, stream_id: str, uri: str, params: dict[str, str], clock: Clock | None):
        src = cls(
            stream_id, uri, clock,
            sample_rate=param(params, "rate", int, 48_000, lambda v: 8000 <= v <= 192_000,
                               "a sample rate in Hz between 8000 and 192000"),
            seed=param(params, "seed", int, 0, lambda v: 0 <= v < 2**64, "an integer from 0 to 2^64 - 1"),
            duration=param(params, "duration", float, 0.0, lambda v: v >= 0, "seconds >= 0 (0: endless)"),
        )
        reject_unknown(params, uri)
        return src

    def schedule(self, t0: float = 0.0) -> Iterator[Event]:
        rng = np.random.default_rng(self.seed)
        sid, sr = self.stream_id, self.sample_rate
        n = int(round(sr * self.CHUNK_SECONDS))
        yield StreamOpened(sid, t0, kind="audio", source=self.uri, identity=self.identity("audio"))
        phase = 0.0
        k = 0  # chunk index
        seg_kind, seg_left, seg_len = "silence", 0, 1
        params: dict[str, float] = {}
        while self.duration <= 0 or k * self.CHUNK_SECONDS < self.duration:
            if seg_left <= 0:
                seg_kind = ("tone", "chirp", "noise", "silence", "tone")[int(rng.integers(5))]
                seconds = float(rng.uniform(0.3, 1.2) if seg_kind == "silence" else rng.uniform(1.0, 3.0))
                seg_len = seg_left = max(1, int(seconds / self.CHUNK_SECONDS))
                params = {
                    "f0": float(rng.uniform(200, 900)), "f1": float(rng.uniform(900, 3000)),
                    "amp": float(rng.uniform(0.2, 0.6)), "trem": float(rng.uniform(1.5, 5.0)),
                }
            s0 = k * n  # absolute sample index of this chunk
            ts = (s0 + np.arange(n)) / sr
            if seg_kind == "silence":
                x = rng.normal(0.0, 1e-4, n)  # dither floor, about -80 dBFS
            elif seg_kind == "noise":
                x = rng.normal(0.0, params["amp"] / 2, n)
            else:
                pos = (seg_len - seg_left + np.arange(n) / n) / seg_len
                freq = params["f0"] if seg_kind == "tone" else params["f0"] + (params["f1"] - params["f0"]) * pos
                steps = 2 * np.pi * freq / sr * np.ones(n)
                phases = phase + np.cumsum(steps)
                phase = float(phases[-1] % (2 * np.pi))
                env = 1.0 - 0.5 * (0.5 + 0.5 * np.sin(2 * np.pi * params["trem"] * ts))
                x = params["amp"] * env * np.sin(phases)
            samples = np.clip(x * 32767.0, -32768, 32767).astype(np.int16)
            seg_left -= 1
            k += 1
            jitter = float(rng.exponential(0.0004))
            yield AudioChunk(sid, t0 + k * self.CHUNK_SECONDS + min(jitter, 0.005), samples=samples, sample_rate=sr)
        yield StreamClosed(sid, t0 + k * self.CHUNK_SECONDS + 0.005, reason="finished")


@lru_cache(maxsize=64)
def _disk(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return (xx * xx + yy * yy) <= radius * radius


class SimVideoSource(ScheduledSource):
    kind = "video"

    def __init__(self, stream_id: str, uri: str = "sim:video", clock: Clock | None = None,
                 *, width: int = 1280, height: int = 720, fps: float = 30.0, seed: int = 0,
                 duration: float = 0.0) -> None:
        super().__init__(stream_id, uri, clock)
        self.width, self.height, self.fps, self.seed, self.duration = width, height, fps, seed, duration

    @classmethod
    def from_params(cls, stream_id: str, uri: str, params: dict[str, str], clock: Clock | None):
        src = cls(
            stream_id, uri, clock,
            width=param(params, "width", int, 1280, lambda v: 16 <= v <= 7680, "a width in pixels, 16..7680"),
            height=param(params, "height", int, 720, lambda v: 16 <= v <= 4320, "a height in pixels, 16..4320"),
            fps=param(params, "fps", float, 30.0, lambda v: 0 < v <= 240, "frames/s in (0, 240]"),
            seed=param(params, "seed", int, 0, lambda v: 0 <= v < 2**64, "an integer from 0 to 2^64 - 1"),
            duration=param(params, "duration", float, 0.0, lambda v: v >= 0, "seconds >= 0 (0: endless)"),
        )
        reject_unknown(params, uri)
        return src

    def _scene(self, rng: np.random.Generator) -> tuple[np.ndarray, list[dict[str, Any]]]:
        h, w = self.height, self.width
        c0 = rng.integers(0, 120, 3).astype(np.float32)
        c1 = rng.integers(60, 200, 3).astype(np.float32)
        ramp = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
        background = np.broadcast_to((c0 + (c1 - c0) * ramp).astype(np.uint8), (h, w, 3)).copy()
        shapes = []
        for _ in range(int(rng.integers(2, 6))):
            size = int(rng.integers(max(4, h // 24), max(6, h // 6)))
            speed = rng.uniform(0.1, 0.5, 2) * np.array([w, h]) * rng.choice([-1, 1], 2)
            shapes.append({
                "round": bool(rng.random() < 0.5), "r": size,
                "pos": rng.uniform([size, size], [w - size, h - size]),
                "vel": speed, "color": rng.integers(0, 256, 3).astype(np.uint8),
            })
        return background, shapes

    def _draw(self, background: np.ndarray, shapes: list[dict[str, Any]]) -> np.ndarray:
        frame = background.copy()
        h, w = self.height, self.width
        for s in shapes:
            r = s["r"]
            cx, cy = int(s["pos"][0]), int(s["pos"][1])
            x0, x1, y0, y1 = max(cx - r, 0), min(cx + r + 1, w), max(cy - r, 0), min(cy + r + 1, h)
            if x0 >= x1 or y0 >= y1:
                continue
            if s["round"]:
                mask = _disk(r)[y0 - (cy - r):y1 - (cy - r), x0 - (cx - r):x1 - (cx - r)]
                frame[y0:y1, x0:x1][mask] = s["color"]
            else:
                frame[y0:y1, x0:x1] = s["color"]
        return frame

    def schedule(self, t0: float = 0.0) -> Iterator[Event]:
        rng = np.random.default_rng(self.seed)
        sid, dt = self.stream_id, 1.0 / self.fps
        yield StreamOpened(sid, t0, kind="video", source=self.uri, identity=self.identity("video"))
        k = 0
        next_cut = 0
        background, shapes = None, []
        while self.duration <= 0 or k * dt < self.duration:
            if k >= next_cut:
                background, shapes = self._scene(rng)
                next_cut = k + int(rng.uniform(3.0, 6.0) * self.fps)
            for s in shapes:
                s["pos"] = s["pos"] + s["vel"] * dt
                for axis, limit in ((0, self.width), (1, self.height)):
                    if s["pos"][axis] < s["r"] or s["pos"][axis] > limit - s["r"]:
                        s["vel"][axis] = -s["vel"][axis]
                        s["pos"][axis] = min(max(s["pos"][axis], s["r"]), limit - s["r"])
            frame = self._draw(background, shapes)
            k += 1
            jitter = float(rng.exponential(0.001))
            yield VideoFrame(sid, t0 + k * dt + min(jitter, 0.008), frame=frame)
        yield StreamClosed(sid, t0 + k * dt + 0.01, reason="finished")
