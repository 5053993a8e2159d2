"""Speech: voice activity and transcription of an audio stream, in a worker thread.

``Transcriber`` takes PCM chunks as they arrive (``feed`` never blocks: when the
recognizer falls behind, chunks are dropped and counted), resamples them to
16 kHz mono, finds speech with pocketsphinx's endpointer (a WebRTC-style voice
activity detector), and recognizes each utterance with one of two engines:

- ``sphinx``: pocketsphinx with the English model inside its wheel, offline.
  Partial hypotheses are published while an utterance goes on, a final one
  with word timings when it ends.
- ``openai``: each utterance is sent as a WAV file to the transcription API
  through the official ``openai`` client (``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``;
  the local emulator answers it with pocketsphinx). Finals only, with the
  word timings the server returns.

Times are on the hub's clock: the first chunk's time anchors the audio, and
every later position is that plus the seconds of audio consumed.
"""

from __future__ import annotations

import io
import queue
import re
import threading
import time
import wave
from collections import deque
from dataclasses import dataclass

import av
import numpy as np

ENGINES = ("sphinx", "openai")
RATE = 16_000
PARTIAL_INTERVAL = 0.5  # seconds of audio between partial hypotheses
PRE_ROLL_S = 0.25
HISTORY_BYTES = 2 * RATE * 3  # 3 s
MAX_UTTERANCE_S = 20.0  # a longer utterance is cut (the recognizer's cost grows with it)
_ALT = re.compile(r"\(\d+\)$")
_FILLERS = {"<s>", "</s>", "<sil>", "[NOISE]", "[SPEECH]", "<unk>"}


@dataclass(frozen=True, slots=True)
class Word:
    word: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class TranscriptSegment:
    """One utterance: its text, when it was said (hub clock), and its words with timings."""

    start: float
    end: float
    text: str
    final: bool
    words: tuple[Word, ...] = ()
    engine: str = "sphinx"

    def to_json(self, t0: float = 0.0) -> dict:
        return {"start": round(self.start - t0, 3), "end": round(self.end - t0, 3), "text": self.text,
                "final": self.final, "engine": self.engine,
                "words": [[w.word, round(w.start - t0, 3), round(w.end - t0, 3)] for w in self.words]}


def sphinx_words(decoder, offset: float) -> tuple[Word, ...]:
    """Words of a decoder's best hypothesis, fillers removed, alternates named plainly (10 ms frames)."""
    words = []
    for seg in decoder.seg():
        if seg.word in _FILLERS or seg.word.startswith("++"):
            continue
        words.append(Word(_ALT.sub("", seg.word), offset + seg.start_frame / 100.0, offset + (seg.end_frame + 1) / 100.0))
    return tuple(words)


def new_decoder():
    from pocketsphinx import Decoder

    return Decoder(samprate=RATE, loglevel="FATAL")


def wav_bytes(pcm16: bytes, rate: int = RATE) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm16)
    return buf.getvalue()


class Transcriber:
    """Voice activity and transcription for one audio stream, in a daemon thread."""

    def __init__(self, stream: str, engine: str = "sphinx", *, model: str = "whisper-1", max_queue: int = 500,
                 keep: int = 50) -> None:
        if engine not in ENGINES:
            raise ValueError(f"transcription engine {engine!r}: expected one of {', '.join(ENGINES)}")
        from pocketsphinx import Endpointer, Vad

        self.stream, self.engine, self.model = stream, engine, model
        self._ep = Endpointer(window=0.3, ratio=0.9, vad_mode=Vad.LOOSE, sample_rate=RATE)
        self._decoder = new_decoder() if engine == "sphinx" else None
        self._client = None
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._lock = threading.Lock()
        self._finals: deque[TranscriptSegment] = deque(maxlen=keep)
        self._partial: TranscriptSegment | None = None
        self._resamplers: dict[int, av.AudioResampler] = {}
        self._pending = b""
        self._history = bytearray()  # the last seconds of 16 kHz audio, for the pre-roll
        self._history_start = 0.0
        self._anchor: float | None = None
        self._audio_s = 0.0
        self._utt: bytearray | None = None
        self._utt_start = 0.0
        self._utt_partial_at = 0.0
        self.dropped = 0
        self.utterances = 0
        self.words = 0
        self.errors: deque[str] = deque(maxlen=10)
        self.busy_s = 0.0
        """Seconds the worker spent recognizing: busy_s / audio_s is the real-time factor."""
        self.in_speech = False
        self.speech_s = 0.0
        self._thread = threading.Thread(target=self._run, name=f"transcribe-{stream}", daemon=True)
        self._thread.start()

    # -- called from the analysis side ----------------------------------------------------

    def feed(self, t: float, samples: np.ndarray, sample_rate: int) -> None:
        try:
            self._queue.put_nowait((t, samples, sample_rate))
        except queue.Full:
            self.dropped += 1

    def close(self) -> None:
        """Finish the utterance under way and stop the thread (waits for queued audio)."""
        self._queue.put(None)
        self._thread.join(30)

    def transcript(self) -> tuple[TranscriptSegment, ...]:
        with self._lock:
            segs = tuple(self._finals)
            return segs + ((self._partial,) if self._partial is not None else ())

    def finals_since(self, count: int) -> tuple[list[TranscriptSegment], int]:
        """The final segments after the first ``count`` utterances (those still kept), and the new count."""
        with self._lock:
            new = min(self.utterances - count, len(self._finals))
            return list(self._finals)[len(self._finals) - new:], self.utterances

    @property
    def audio_s(self) -> float:
        return self._audio_s

    # -- the worker ---------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                break
            t, samples, rate = item
            started = time.perf_counter()
            try:
                self._consume(t, samples, rate)
            except Exception as exc:  # noqa: BLE001 - a bad chunk is recorded, the stream goes on
                self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
            self.busy_s += time.perf_counter() - started
        try:
            # the endpointer holds its window of audio back: flush it, then end the utterance
            rest = self._ep.end_stream(self._pending) if self._utt is not None else None
            if rest:
                self._utt += rest
                if self._decoder is not None:
                    self._decoder.process_raw(rest, False, False)
            self._finish_utterance(self._audio_time())
        except Exception as exc:  # noqa: BLE001
            self.errors.append(f"{type(exc).__name__}: {exc}"[:200])

    def _audio_time(self) -> float:
        return (self._anchor or 0.0) + self._audio_s

    def _consume(self, t: float, samples: np.ndarray, rate: int) -> None:
        pcm = np.ascontiguousarray(samples, dtype=np.int16)
        if pcm.ndim == 2:  # interleaved channels: mix down
            pcm = pcm.mean(axis=1).astype(np.int16)
        if self._anchor is None:
            self._anchor = t - pcm.size / rate
        if rate == RATE:
            data = pcm.tobytes()
        else:
            resampler = self._resamplers.get(rate)
            if resampler is None:
                resampler = self._resamplers[rate] = av.AudioResampler(format="s16", layout="mono", rate=RATE)
            frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = rate
            data = b"".join(bytes(f.planes[0])[: f.samples * 2] for f in resampler.resample(frame))
        self._pending += data
        step = self._ep.frame_bytes
        while len(self._pending) >= step:
            frame_bytes, self._pending = self._pending[:step], self._pending[step:]
            self._history += frame_bytes
            if len(self._history) > HISTORY_BYTES:
                cut = len(self._history) - HISTORY_BYTES
                del self._history[:cut]
                self._history_start += cut // 2 / RATE
            self._audio_s += step / 2 / RATE
            self._vad_frame(frame_bytes)

    def _vad_frame(self, frame: bytes) -> None:
        speech = self._ep.process(frame)
        was = self.in_speech
        self.in_speech = bool(self._ep.in_speech)
        if self.in_speech:
            self.speech_s += self._ep.frame_length
        if speech is None:
            if was and not self.in_speech and self._utt is not None:
                self._finish_utterance(self._audio_time())
            return
        if self._utt is None:  # an utterance begins (the endpointer hands its start late, by its window)
            start = float(self._ep.speech_start)
            # the detector triggers a little after a soft onset ("p" of "please"): take some audio before it
            k0 = max(0, int((start - PRE_ROLL_S - self._history_start) * RATE) * 2)
            k1 = max(k0, int((start - self._history_start) * RATE) * 2)
            pre = bytes(self._history[k0:k1])
            self._utt = bytearray(pre)
            self._utt_start = (self._anchor or 0.0) + start - len(pre) / 2 / RATE
            self._utt_partial_at = 0.0
            if self._decoder is not None:
                self._decoder.start_utt()
                if pre:
                    self._decoder.process_raw(pre, False, False)
        self._utt += speech
        utt_s = len(self._utt) / 2 / RATE
        if self._decoder is not None:
            self._decoder.process_raw(speech, False, False)
            if utt_s - self._utt_partial_at >= PARTIAL_INTERVAL:
                self._utt_partial_at = utt_s
                hyp = self._decoder.hyp()
                if hyp is not None and hyp.hypstr:
                    with self._lock:
                        self._partial = TranscriptSegment(self._utt_start, self._utt_start + utt_s, hyp.hypstr,
                                                          False, engine=self.engine)
        if not self._ep.in_speech or utt_s >= MAX_UTTERANCE_S:
            self._finish_utterance(self._utt_start + utt_s)

    def _finish_utterance(self, end: float) -> None:
        if self._utt is None:
            return
        audio, self._utt = bytes(self._utt), None
        if self._decoder is not None:
            self._decoder.end_utt()
            hyp = self._decoder.hyp()
            words = sphinx_words(self._decoder, self._utt_start)
            text = " ".join(w.word for w in words) if words else (hyp.hypstr if hyp is not None else "")
        else:
            text, words = self._remote(audio)
        with self._lock:
            self._partial = None
            if text.strip():
                self.utterances += 1
                self.words += len(text.split())
                self._finals.append(TranscriptSegment(self._utt_start, max(end, self._utt_start), text.strip(), True,
                                                      words, self.engine))

    def _remote(self, audio: bytes) -> tuple[str, tuple[Word, ...]]:
        """One utterance through the transcription API (the official client, synchronously, in this thread)."""
        import openai

        from ..config import load_settings

        if self._client is None:
            settings = load_settings()
            self._client = openai.OpenAI(api_key=settings.openai_api_key or "not-needed-for-a-local-server",
                                         base_url=settings.openai_base_url, timeout=30.0, max_retries=2)
        try:
            result = self._client.audio.transcriptions.create(
                model=self.model, file=("utterance.wav", wav_bytes(audio), "audio/wav"),
                response_format="verbose_json", timestamp_granularities=["word"])
        except openai.OpenAIError as exc:
            self.errors.append(f"transcription API: {type(exc).__name__}: {str(exc)[:150]}")
            return "", ()
        words = tuple(Word(w.word, self._utt_start + float(w.start), self._utt_start + float(w.end))
                      for w in (getattr(result, "words", None) or []))
        return result.text or "", words


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words: the word-level edit distance."""
    from ..analysis.temporal import edit_distance

    ref, hyp = _words(reference), _words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    ids: dict[str, int] = {}
    as_ids = [[float(ids.setdefault(w, len(ids))) for w in seq] for seq in (ref, hyp)]
    return edit_distance(as_ids[0], as_ids[1]) / len(ref)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def recognize_wav(pcm16_mono_16k: bytes) -> tuple[str, tuple[Word, ...]]:
    """One whole recording through pocketsphinx (the emulator's transcription endpoint uses it)."""
    decoder = new_decoder()
    decoder.start_utt()
    decoder.process_raw(pcm16_mono_16k, False, True)
    decoder.end_utt()
    words = sphinx_words(decoder, 0.0)
    return " ".join(w.word for w in words), words
