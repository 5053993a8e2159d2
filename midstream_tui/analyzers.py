"""Per-kind stream analyzers: events in, ring buffers, metrics and a signal out.

An analyzer belongs to one ``StreamPipeline`` and is only touched by that
pipeline's step (one thread at a time). It keeps bounded numpy ring buffers,
turns events into numbers with the kernels, and names what it noticed as
``PatternHit``s. The signal it exposes is what the attractor is estimated on.
"""

from __future__ import annotations

import math
import re
import zlib
from collections import deque
from typing import Any, ClassVar

import numpy as np

from .analysis import kernels
from .analysis.meta import STALL_FLOOR_S
from .analysis.patterns import RecurringNgrams, compression_ratio, ngram_novelty, seq_rep_n, trailing_loop
from .analysis.stats import rate, summarize
from .events import (
    AudioChunk,
    Event,
    RequestFinished,
    RequestStarted,
    TextDelta,
    Usage,
    VideoFrame,
)
from .snapshot import PatternHit


class Ring:
    """Fixed-capacity numpy ring buffer; ``values()`` returns oldest-first copies.

    The buffer starts small and doubles up to ``capacity`` as values arrive: a session
    of thousands of short streams does not pay every ring's full size up front."""

    __slots__ = ("_buf", "_cap", "_next", "total")
    INITIAL = 64

    def __init__(self, capacity: int, dtype: Any = np.float64) -> None:
        self._buf = np.zeros(min(capacity, self.INITIAL), dtype=dtype)
        self._cap = capacity
        self._next = 0
        self.total = 0
        """How many values were ever appended."""

    @property
    def capacity(self) -> int:
        return self._cap

    def __len__(self) -> int:
        return min(self.total, self._cap)

    def append(self, value: float) -> None:
        i = self._next
        if i == self._buf.size:  # still growing (no wrap before the buffer reaches capacity)
            self._buf = np.concatenate((self._buf, np.zeros(min(self._cap, 2 * i) - i, dtype=self._buf.dtype)))
        self._buf[i] = value
        self._next = i + 1 if i + 1 < self._cap else 0
        self.total += 1

    def values(self, last: int | None = None) -> np.ndarray:
        n = len(self)
        k = n if last is None else max(0, min(last, n))
        if k == 0:
            return self._buf[:0].copy()
        start = (self._next - k) % self.capacity
        if start + k <= self.capacity:
            return self._buf[start:start + k].copy()
        return np.concatenate((self._buf[start:], self._buf[:(start + k) % self.capacity]))

    def last(self, default: float = math.nan) -> float:
        return float(self._buf[(self._next - 1) % self.capacity]) if self.total else default


def db(level: float) -> float:
    """Fraction of full scale to dBFS, floored at -120."""
    return 20.0 * math.log10(level) if level > 1e-6 else -120.0


class StreamAnalyzer:
    kind: ClassVar[str] = ""
    signal_name: ClassVar[str] = ""
    queue_capacity: ClassVar[int] = 1024
    """Events the pipeline may hold before dropping data events."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self.hits: list[PatternHit] = []
        self.signal_changed = False
        self.bytes = Ring(4096)
        self.byte_times = Ring(4096)
        self.last_t = math.nan

    def ingest(self, event: Event) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _count_bytes(self, t: float, n: int) -> None:
        self.bytes.append(n)
        self.byte_times.append(t)
        self.last_t = t

    def bytes_per_s(self, now: float, window: float, since: float) -> float:
        return rate(self.byte_times.values(), self.bytes.values(), now, window, since)

    def metrics(self, now: float, since: float) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

    def signal(self) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def signals(self) -> dict[str, np.ndarray]:
        """Every signal whose dynamics are estimated, the primary one first."""
        return {self.signal_name: self.signal()}

    def text_tail(self) -> str:
        return ""

    def preview_image(self) -> np.ndarray | None:
        return getattr(self, "preview", None)

    def transcript(self) -> tuple:
        return ()

    def detections(self) -> tuple:
        return ()

    def close(self) -> None:
        """The stream ended: finish background work (transcription, detection)."""

    def take_hits(self) -> list[PatternHit]:
        hits, self.hits = self.hits, []
        return hits


_WORD = re.compile(r"\w+|[^\w\s]")


class TextAnalyzer(StreamAnalyzer):
    """LLM token streams: TTFT, inter-token latency, throughput, repetition loops."""

    kind = "text"
    signal_name = "word length (chars)"
    """Content: a repetition loop makes it periodic, so a loop is a limit cycle."""
    timing_signal_name = "inter-token gap (ms)"
    queue_capacity = 8192
    RATE_WINDOW = 5.0
    PHRASE_WORDS = 6
    TAIL_CHARS = 2000

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.delta_t = Ring(8192)
        self.delta_tokens = Ring(8192)
        self.itl = Ring(4096)  # seconds between chunks of one request
        self.ttft = Ring(512)
        self.e2e = Ring(512)
        self.tpot = Ring(512)
        self.word_ids = Ring(1024, np.int64)
        self.word_len = Ring(1024)
        self.word_t = Ring(1024)
        self.words: deque[str] = deque(maxlen=1024)
        self.tokens = 0
        self.tokens_reported = 0
        self.requests = 0
        self.requests_done = 0
        self._carry = ""
        self._req_start = math.nan
        self._req_first = math.nan
        self._req_last = math.nan
        self._req_tokens = 0
        self._stall_threshold = STALL_FLOOR_S
        self._in_loop = False
        self._loop_words = 0
        self._new_words = False
        self.recurring = RecurringNgrams(n=self.PHRASE_WORDS, min_count=3)
        self._last_recurring: tuple[int, ...] = ()
        self.recent_text: deque[str] = deque(maxlen=256)  # the last deltas, for the compression ratio
        self.tail = ""
        self.chars = 0
        self._content_at = -1
        self._content: dict[str, float] = {}

    # -- ingest

    def ingest(self, event: Event) -> None:
        if isinstance(event, TextDelta):
            self._delta(event)
        elif isinstance(event, RequestStarted):
            self._flush_words(event.t)
            if self.tail and not self.tail.endswith("\n"):  # one response per line in the text panel
                self.tail += "\n"
                self.chars += 1
            self.requests += 1
            self._req_start, self._req_first, self._req_last, self._req_tokens = event.t, math.nan, math.nan, 0
        elif isinstance(event, RequestFinished):
            self._flush_words(event.t)
            self._finish_request(event.t)
        elif isinstance(event, Usage):
            self.tokens_reported += max(0, int(event.completion_tokens))

    def _delta(self, ev: TextDelta) -> None:
        tokens = max(0, int(ev.tokens))
        self.tokens += tokens
        self._req_tokens += tokens
        self.delta_t.append(ev.t)
        self.delta_tokens.append(tokens)
        self._count_bytes(ev.t, len(ev.text.encode("utf-8", "replace")))
        if math.isnan(self._req_start):  # pushed without RequestStarted: the stream is the request
            self.requests += 1
            self._req_start = ev.t
        if not ev.text:
            return
        if math.isnan(self._req_first):
            self._req_first = ev.t
            self.ttft.append(ev.t - self._req_start)
        else:
            gap = ev.t - self._req_last
            self.itl.append(gap)
            self.signal_changed = True
            if gap > self._stall_threshold:
                self.hits.append(PatternHit(ev.t, self.stream, "stall",
                                            f"stall of {gap:.2f} s before token {self.tokens}",
                                            start=self._req_last))
        self._req_last = ev.t
        self.recent_text.append(ev.text)
        self.tail += ev.text
        if len(self.tail) > 4 * self.TAIL_CHARS:
            self.tail = self.tail[-self.TAIL_CHARS:]
        self.chars += len(ev.text)
        self._carry += ev.text
        cut = max(self._carry.rfind(" "), self._carry.rfind("\n"))
        if cut > 0:
            self._add_words(self._carry[:cut], ev.t)
            self._carry = self._carry[cut:]

    def _flush_words(self, t: float) -> None:
        if self._carry.strip():
            self._add_words(self._carry, t)
        self._carry = ""

    def _add_words(self, text: str, t: float) -> None:
        for w in _WORD.findall(text):
            word_id = zlib.crc32(w.lower().encode("utf-8", "replace"))
            self.word_ids.append(word_id)
            self.word_len.append(len(w))
            self.word_t.append(t)
            self.signal_changed = True
            self.words.append(w)
            self._new_words = True
            found = self.recurring.add(word_id)
            if found:
                self._recurring_hit(found, t)

    def _recurring_hit(self, found, t: float) -> None:
        gaps = np.diff(found.positions)
        if gaps.size and np.all(gaps == gaps[0]) and gaps[0] <= 64:
            return  # back-to-back with a fixed period: a loop, reported as such
        last = self._last_recurring
        self._last_recurring = found.positions
        if len(last) == len(found.positions) and all(
                0 < p - q < self.PHRASE_WORDS for p, q in zip(found.positions, last)):
            return  # the same recurring passage, one word further on: already reported
        first_kept = self.word_ids.total - len(self.words)
        start = found.positions[-1] - first_kept
        words = list(self.words)[start:start + self.PHRASE_WORDS] if start >= 0 else []
        phrase = re.sub(r" ([^\w\s])", r"\1", " ".join(words)) if words else "…"
        where = ", ".join(str(p) for p in found.positions)
        self.hits.append(PatternHit(t, self.stream, "recurring",
                                    f'recurring phrase "{phrase}" x{found.count} (at words {where})'))

    def _finish_request(self, t: float) -> None:
        if math.isnan(self._req_start):
            return
        self.requests_done += 1
        if not math.isnan(self._req_first):
            e2e = self._req_last - self._req_start
            self.e2e.append(e2e)
            if self._req_tokens > 1:
                self.tpot.append((e2e - (self._req_first - self._req_start)) / (self._req_tokens - 1))
        self._req_start = math.nan

    # -- analysis

    def _detect_loop(self) -> None:
        if not self._new_words:
            return
        self._new_words = False
        ids = self.word_ids.values(512)
        loop = trailing_loop(ids)
        if loop and not self._in_loop:
            self._in_loop = True
            words = list(self.words)[-len(ids):]
            unit = re.sub(r" ([^\w\s])", r"\1", " ".join(words[loop.start:loop.start + loop.period]))
            if len(unit) > 60:
                unit = unit[:57] + "..."
            first_word = self.word_ids.total - len(ids) + loop.start
            start_t = float(self.word_t.values(len(ids))[loop.start])
            self.hits.append(PatternHit(
                self.word_t.last(), self.stream, "loop",
                f'repetition loop "{unit}" x{loop.repeats:.0f} (period {loop.period} words, from word {first_word})',
                start=start_t))
        elif not loop and self._in_loop:
            self._in_loop = False
            self.hits.append(PatternHit(self.word_t.last(), self.stream, "loop-end",
                                        f"loop ended after {self._loop_words} words"))
        self._loop_words = (loop.run + loop.period) if loop else 0

    def metrics(self, now: float, since: float) -> dict[str, Any]:
        self._detect_loop()
        itl = summarize(self.itl.values(1024))
        if itl.count >= 16:
            # A gap is a stall when it is far outside this stream's own pace.
            self._stall_threshold = max(STALL_FLOOR_S, 8.0 * itl.p50)  # the stall rule's floor: one meaning of "stall"
        ttft = summarize(self.ttft.values())
        since_last = now - self._req_last if not math.isnan(self._req_last) else math.nan
        return {
            "tokens_per_s": rate(self.delta_t.values(), self.delta_tokens.values(), now, self.RATE_WINDOW, since),
            "ttft_ms": self.ttft.last() * 1e3,
            "ttft_p50_ms": ttft.p50 * 1e3,
            "itl_p50_ms": itl.p50 * 1e3,
            "itl_p90_ms": itl.p90 * 1e3,
            "itl_p99_ms": itl.p99 * 1e3,
            "tpot_ms": summarize(self.tpot.values()).p50 * 1e3,
            "e2e_p50_s": summarize(self.e2e.values()).p50,
            "requests": self.requests,
            "tokens": self.tokens,
            "tokens_reported": self.tokens_reported,
            "bytes_per_s": self.bytes_per_s(now, self.RATE_WINDOW, since),
            **self._content_metrics(),
            "loop_words": self._loop_words,
            "chars": self.chars,
            "since_token_s": since_last,
            # 0 between requests, 1 waiting for a request's first token, 2 streaming it
            "request_phase": 0 if math.isnan(self._req_start) else (1 if math.isnan(self._req_first) else 2),
        }

    def _content_metrics(self) -> dict[str, float]:
        """Repetition measures: they change only with new words, so computed only then."""
        if self._content_at != self.word_ids.total:
            self._content_at = self.word_ids.total
            window = self.word_ids.values(200)
            self._content = {"rep4": seq_rep_n(window, 4), "novelty4": ngram_novelty(window, 4),
                             "compression": compression_ratio("".join(self.recent_text))}
        return self._content

    def signal(self) -> np.ndarray:
        return self.word_len.values(600)

    def signals(self) -> dict[str, np.ndarray]:
        return {self.signal_name: self.signal(), self.timing_signal_name: self.itl.values(600) * 1e3}

    def text_tail(self) -> str:
        return self.tail[-self.TAIL_CHARS:]


class AudioAnalyzer(StreamAnalyzer):
    """PCM audio: levels, chunk timing, bitrate, silence gaps."""

    kind = "audio"
    signal_name = "RMS level (dBFS)"
    queue_capacity = 512
    SILENCE_DBFS = -60.0
    MIN_SILENCE_S = 0.3

    VAD_FRAME_S = 0.03
    ROLLOFF = 0.85

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.chunk_t = Ring(4096)
        self.rms_db = Ring(4096)
        self.peak_db = Ring(4096)
        self.silent_s = Ring(4096)
        self.duration_s = Ring(4096)
        self.zcr = Ring(4096)
        self.centroid = Ring(4096)
        self.rolloff = Ring(4096)
        self.voice = Ring(4096)
        """Per VAD frame (30 ms): 1 where the voice activity detector hears speech."""
        self.speech_s = 0.0
        self._vad = None
        self._vad_rate = 0
        self._vad_pending = np.zeros(0, dtype=np.int16)
        self.transcriber = None
        """A perception.speech.Transcriber when this stream is transcribed."""
        self._said = 0
        self.sample_rate = 0
        self.channels = 0
        self.seconds = 0.0
        self._silence_start = math.nan

    def ingest(self, event: Event) -> None:
        if not isinstance(event, AudioChunk):
            return
        samples = event.samples
        if samples.dtype != np.int16:
            x = np.nan_to_num(np.asarray(samples, dtype=np.float64), nan=0.0, posinf=1.0, neginf=-1.0)
            samples = np.clip(x * 32767, -32768, 32767).astype(np.int16)
        samples = np.ascontiguousarray(samples)
        rms, peak, zcr = kernels.pcm16_levels(samples)
        level = db(rms)
        self.sample_rate, self.channels = event.sample_rate, event.channels
        mono = samples if samples.ndim == 1 else samples.mean(axis=1).astype(np.int16)
        spectrum = np.abs(np.fft.rfft(mono.astype(np.float32))) ** 2 if mono.size >= 32 else np.zeros(1)
        centroid, rolloff = kernels.spectral_shape(spectrum, event.sample_rate / max(2, mono.size), self.ROLLOFF)
        self.zcr.append(zcr)
        self.centroid.append(centroid)
        self.rolloff.append(rolloff)
        self._detect_voice(mono, event.sample_rate)
        if self.transcriber is not None:
            self.transcriber.feed(event.t, mono, event.sample_rate, event.discontinuity)
        self.seconds += event.duration
        self.chunk_t.append(event.t)
        self.rms_db.append(level)
        self.peak_db.append(db(peak))
        self._count_bytes(event.t, event.nbytes)
        self.signal_changed = True
        silent = level < self.SILENCE_DBFS
        self.silent_s.append(event.duration if silent else 0.0)
        self.duration_s.append(event.duration)
        if silent and math.isnan(self._silence_start):
            self._silence_start = event.t - event.duration
        elif not silent and not math.isnan(self._silence_start):
            length = event.t - event.duration - self._silence_start
            if length >= self.MIN_SILENCE_S:
                self.hits.append(PatternHit(event.t, self.stream, "silence",
                                            f"silence of {length:.2f} s", start=self._silence_start))
            self._silence_start = math.nan

    def _detect_voice(self, mono: np.ndarray, rate: int) -> None:
        """WebRTC-style voice activity (pocketsphinx's Vad) on 30 ms frames."""
        if rate not in (8_000, 16_000, 32_000, 48_000):
            return  # the detector supports these rates exactly; others get no voice metric
        if self._vad is None or rate != self._vad_rate:
            from pocketsphinx import Vad

            self._vad, self._vad_rate = Vad(Vad.LOOSE, rate, self.VAD_FRAME_S), rate
            self._vad_pending = np.zeros(0, dtype=np.int16)
        step = int(round(rate * self.VAD_FRAME_S))
        pending = np.concatenate((self._vad_pending, mono)) if self._vad_pending.size else mono
        k = 0
        while k + step <= pending.size:
            speech = bool(self._vad.is_speech(pending[k:k + step].tobytes()))
            self.voice.append(1.0 if speech else 0.0)
            self.speech_s += self.VAD_FRAME_S if speech else 0.0
            k += step
        self._vad_pending = pending[k:].copy()

    def close(self) -> None:
        if self.transcriber is not None:
            self.transcriber.close()

    def take_hits(self) -> list[PatternHit]:
        tr = self.transcriber
        if tr is not None:  # what was said goes to the pattern log as it is recognized
            new, self._said = tr.finals_since(self._said)
            for seg in new:
                self.hits.append(PatternHit(seg.end, self.stream, "speech", f"“{seg.text}”", start=seg.start))
            while tr.errors:
                self.hits.append(PatternHit(self.last_t, self.stream, "error", f"transcription: {tr.errors.popleft()}"))
        return super().take_hits()

    def transcript(self):
        return self.transcriber.transcript() if self.transcriber is not None else ()

    def metrics(self, now: float, since: float) -> dict[str, Any]:
        ts = self.chunk_t.values()
        recent = max(1, kernels.count_at_or_after(ts, now - 0.5)) if ts.size else 0
        intervals = np.diff(self.chunk_t.values(512))
        interval = summarize(intervals)
        window = min(10.0, max(1e-9, now - since))
        n_window = kernels.count_at_or_after(ts, now - window) if ts.size else 0
        silent = float(self.silent_s.values(n_window).sum()) if n_window else 0.0
        heard = float(self.duration_s.values(n_window).sum()) if n_window else 0.0
        levels = self.rms_db.values(recent)
        return {
            "chunks_per_s": rate(ts, None, now, 2.0, since),
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "bitrate_kbps": self.bytes_per_s(now, 2.0, since) * 8 / 1e3,
            "level_dbfs": db(float(np.sqrt(np.mean(10 ** (levels / 10))))) if levels.size else math.nan,
            "peak_dbfs": float(self.peak_db.values(recent).max()) if recent else math.nan,
            "interval_p50_ms": interval.p50 * 1e3,
            "interval_p99_ms": interval.p99 * 1e3,
            "silence_pct": 100.0 * silent / heard if heard > 0 else math.nan,
            "audio_s": self.seconds,
            "zcr": float(self.zcr.values(recent).mean()) if recent else math.nan,
            "centroid_hz": float(self.centroid.values(recent).mean()) if recent else math.nan,
            "rolloff_hz": float(self.rolloff.values(recent).mean()) if recent else math.nan,
            "voice_pct": 100.0 * float(self.voice.values(66).mean()) if self.voice.total else math.nan,
            "speech_s": self.speech_s,
        } | (self._transcription_metrics() if self.transcriber is not None else {})

    def _transcription_metrics(self) -> dict[str, Any]:
        tr = self.transcriber
        return {"transcribe": tr.engine, "utterances": tr.utterances, "words": tr.words,
                "transcribe_rtf": tr.busy_s / tr.audio_s if tr.audio_s > 0 else math.nan,
                "transcribe_drops": tr.dropped}

    def signal(self) -> np.ndarray:
        return self.rms_db.values(600)


class VideoAnalyzer(StreamAnalyzer):
    """Video frames: frame rate and timing, bitrate, brightness, motion, scene cuts."""

    kind = "video"
    signal_name = "motion energy (cuts removed)"
    queue_capacity = 16  # raw 720p frames are 2.7 MB each: keep the queue short
    THUMB_WIDTH = 160
    PREVIEW_WIDTH = 160
    PREVIEW_INTERVAL = 0.2

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.frame_t = Ring(2048)
        self.motion = Ring(2048)
        self.brightness = Ring(2048)
        self.frames = 0
        self.scene_cuts = 0
        self.late_frames = 0
        self.width = 0
        self.height = 0
        self.thumbnail: np.ndarray | None = None
        self.preview: np.ndarray | None = None
        """A small RGB copy of the newest frame (refreshed a few times a second) for the dashboard."""
        self._preview_t = -math.inf
        self._interval_p50 = math.nan
        self.detector = None
        """A perception.vision.Detector when this stream is watched for faces/bodies."""

    def ingest(self, event: Event) -> None:
        if not isinstance(event, VideoFrame):
            return
        frame = event.frame
        if frame.ndim != 3 or frame.shape[2] < 3 or frame.dtype != np.uint8:
            self.hits.append(PatternHit(event.t, self.stream, "error",
                                        f"unsupported frame {frame.shape} {frame.dtype}: expected HxWx3 uint8"))
            return
        self.height, self.width = int(frame.shape[0]), int(frame.shape[1])
        step = max(1, self.width // self.THUMB_WIDTH)
        thumb = kernels.luma_thumbnail(frame, step)
        prev = self.thumbnail
        motion = float(kernels.mean_abs_diff(thumb, prev)) if prev is not None and prev.shape == thumb.shape else 0.0
        recent = self.motion.values(30)
        typical = float(np.median(recent)) if recent.size else 0.0
        if prev is not None and motion > 0.08 and motion > 5.0 * typical:
            self.scene_cuts += 1
            self.hits.append(PatternHit(event.t, self.stream, "scene-cut",
                                        f"scene cut at frame {self.frames + 1} (change {motion:.2f})"))
            # A cut is an event, not motion: keep it out of the motion signal.
            motion = typical
        if self.frame_t.total and not math.isnan(self._interval_p50):
            if event.t - self.frame_t.last() > 1.5 * self._interval_p50:
                self.late_frames += 1
        self.thumbnail = thumb
        if event.t - self._preview_t >= self.PREVIEW_INTERVAL:
            self._preview_t = event.t
            width = min(self.PREVIEW_WIDTH, self.width)
            height = max(1, round(width * self.height / self.width))
            preview = kernels.rgb_thumbnail(frame, height, width)
            preview.flags.writeable = False
            self.preview = preview
        if self.detector is not None:
            self.detector.offer(event.t, frame, event.media_t, event.discontinuity)
        self.frames += 1
        self.frame_t.append(event.t)
        self.motion.append(motion)
        self.brightness.append(float(thumb.mean()))
        self._count_bytes(event.t, event.nbytes)
        self.signal_changed = True

    def metrics(self, now: float, since: float) -> dict[str, Any]:
        gaps = np.diff(self.frame_t.values(300))
        interval = summarize(gaps)
        self._interval_p50 = interval.p50
        # inter-frame jitter: mean deviation of the gaps from their median (RFC 3550's idea, per frame)
        jitter = float(np.mean(np.abs(gaps - interval.p50))) * 1e3 if gaps.size >= 2 else math.nan
        return {
            "fps": rate(self.frame_t.values(), None, now, 2.0, since),
            "resolution": f"{self.width}x{self.height}" if self.frames else "",
            "interval_p50_ms": interval.p50 * 1e3,
            "interval_p99_ms": interval.p99 * 1e3,
            "jitter_ms": jitter,
            "bitrate_mbps": self.bytes_per_s(now, 2.0, since) * 8 / 1e6,
            "brightness": self.brightness.last(),
            "motion": self.motion.last(),
            "frames": self.frames,
            "scene_cuts": self.scene_cuts,
            "late_frames": self.late_frames,
        } | (self._detection_metrics() if self.detector is not None else {})

    def _detection_metrics(self) -> dict[str, Any]:
        det = self.detector
        found = det.latest()
        took = np.fromiter(det.seconds, float) if det.seconds else np.zeros(0)
        return {"detect": det.what, "detected": len(found),
                "faces": sum(d.label == "face" for d in found),
                "bodies": sum(d.label != "face" for d in found),
                "detect_runs": det.runs, "detect_p50_ms": float(np.median(took)) * 1e3 if took.size else math.nan}

    def detections(self) -> tuple:
        return self.detector.latest() if self.detector is not None else ()

    def close(self) -> None:
        if self.detector is not None:
            self.detector.close()

    def take_hits(self) -> list[PatternHit]:
        det = self.detector
        if det is not None:
            while det.changes:
                t, message = det.changes.popleft()
                self.hits.append(PatternHit(t, self.stream, "detection", message))
            while det.errors:
                self.hits.append(PatternHit(self.last_t, self.stream, "error", f"detection: {det.errors.popleft()}"))
        return super().take_hits()

    def signal(self) -> np.ndarray:
        return self.motion.values(600)[1:]  # the first frame has no predecessor


ANALYZERS: dict[str, type[StreamAnalyzer]] = {a.kind: a for a in (TextAnalyzer, AudioAnalyzer, VideoAnalyzer)}
