"""PCM audio: levels, chunk timing, bitrate, silence, voice activity (and transcription, when attached)."""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from ..analysis import kernels
from ..analysis.stats import rate, summarize
from ..events import AudioChunk, Event
from ..snapshot import PatternHit
from .base import NOTHING, Measured, Ring, StreamAnalyzer, db


class AudioAnalyzer(StreamAnalyzer):
    """PCM audio: levels, chunk timing, bitrate, silence gaps."""

    kind = "audio"
    signal_name = "RMS level (dBFS)"
    queue_capacity = 512
    SILENCE_DBFS = -60.0
    MIN_SILENCE_S = 0.3

    VAD_FRAME_S = 0.03
    ROLLOFF = 0.85
    # The detector (pocketsphinx's WebRTC-style Vad) hears "speech" in any sound with energy in its bands: a
    # steady tone, a hum, pink and white noise, an 8 Hz tone. Two checks over the last second of its frames keep
    # what it says for sounds that can be speech (measured on 11 recorded human voices, 2 flite voices, noise and
    # synthetic sounds: see the README): speech rises and falls with its syllables, and is not a pure tone most of
    # the time.
    VOICE_WINDOW = 33
    """VAD frames (about 1 s) the two checks look back over."""
    VOICE_SWING_DB = 3.0
    """The level must swing this much in the window (90th minus 10th percentile of the frames' dB): a steady
    sound (a tone, a hum, noise) swings by 0-1 dB, speech by 10-30, and speech over a steady sound as loud as
    itself by 3 or more (at 6 dB, a review found such speech all but lost)."""
    TONE_SHARE = 0.98
    """A frame is a pure tone when one spectral peak (5 bins, Hann window) holds this share of its energy."""
    TONES_MAX = 0.5
    """Of the window's frames within 20 dB of its loudest, at most this share may be pure tones (a voice's
    held vowel is, now and then: up to 13 % of the frames of ALSA's recorded voices)."""

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
        self._vad_db: deque[float] = deque(maxlen=self.VOICE_WINDOW)
        self._vad_tone: deque[bool] = deque(maxlen=self.VOICE_WINDOW)
        self.transcriber = None
        """A perception.speech.Transcriber when this stream is transcribed."""
        self._said = 0
        self.sample_rate = 0
        self.channels = 0
        self.seconds = 0.0
        self._silence_start = math.nan

    def ingest(self, event: Event) -> Measured:
        if not isinstance(event, AudioChunk):
            return NOTHING
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
        peak_db = db(peak)
        self.peak_db.append(peak_db)
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
        return Measured(level_dbfs=level, peak_dbfs=peak_db)

    def _detect_voice(self, mono: np.ndarray, rate: int) -> None:
        """WebRTC-style voice activity (pocketsphinx's Vad) on 30 ms frames."""
        if rate not in (8_000, 16_000, 32_000, 48_000):
            # the detector supports these rates only: others (24 kHz, OpenAI Realtime's voices; 44.1 kHz; 22.05)
            # are brought to 16 kHz, linearly — enough to hear voice (the edges of chunks are not smoothed)
            if mono.size < 2 or rate <= 0:
                return
            n = int(round(mono.size * 16_000 / rate))
            mono = np.interp(np.arange(n) * (rate / 16_000), np.arange(mono.size),
                             mono.astype(np.float64)).astype(np.int16)
            rate = 16_000
        if self._vad is None or rate != self._vad_rate:
            from pocketsphinx import Vad

            self._vad, self._vad_rate = Vad(Vad.LOOSE, rate, self.VAD_FRAME_S), rate
            self._vad_pending = np.zeros(0, dtype=np.int16)
            self._vad_db.clear()
            self._vad_tone.clear()
        step = int(round(rate * self.VAD_FRAME_S))
        pending = np.concatenate((self._vad_pending, mono)) if self._vad_pending.size else mono
        k = 0
        window = np.hanning(step)
        while k + step <= pending.size:
            frame = pending[k:k + step]
            speech = bool(self._vad.is_speech(frame.tobytes())) and self._could_be_voice(frame, window)
            self.voice.append(1.0 if speech else 0.0)
            self.speech_s += self.VAD_FRAME_S if speech else 0.0
            k += step
        self._vad_pending = pending[k:].copy()

    def _could_be_voice(self, frame: np.ndarray, window: np.ndarray) -> bool:
        """Whether the last second, up to this frame, swings like speech and is not mostly a pure tone."""
        x = frame.astype(np.float64)
        self._vad_db.append(10.0 * math.log10(float(np.mean(x * x)) + 1e-9))
        spectrum = np.abs(np.fft.rfft(x * window)) ** 2
        spectrum[0] = 0.0
        k = int(np.argmax(spectrum))
        self._vad_tone.append(bool(spectrum[max(0, k - 2):k + 3].sum() >= self.TONE_SHARE * (spectrum.sum() + 1e-9)))
        if len(self._vad_db) < 5:
            return False  # (a swing needs a few frames to be seen)
        levels = np.fromiter(self._vad_db, float)
        if np.percentile(levels, 90) - np.percentile(levels, 10) < self.VOICE_SWING_DB:
            return False
        active = levels >= levels.max() - 20.0
        return float(np.mean(np.fromiter(self._vad_tone, bool)[active])) <= self.TONES_MAX

    def close(self) -> None:
        if self.transcriber is not None:
            self.transcriber.close()

    def quiet(self) -> bool:
        return self.transcriber is None and super().quiet()  # (its finals can come after the stream's end)

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
            "speech_s": self.speech_s if self.voice.total else math.nan,  # (nothing heard yet: not "no speech")
        } | (self._transcription_metrics() if self.transcriber is not None else {})

    def _transcription_metrics(self) -> dict[str, Any]:
        tr = self.transcriber
        return {"transcribe": tr.engine, "utterances": tr.utterances, "words": tr.words,
                "transcribe_rtf": tr.busy_s / tr.audio_s if tr.audio_s > 0 else math.nan,
                "transcribe_drops": tr.dropped}

    def signal(self) -> np.ndarray:
        return self.rms_db.values(600)

    def signal_points(self) -> dict[str, int]:
        return {self.signal_name: self.rms_db.total}
