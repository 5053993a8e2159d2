"""Speech: voice activity and transcription of an audio stream, beside the ingest.

``Transcriber`` takes PCM chunks as they arrive (``feed`` never blocks: when the
recognizer falls behind, chunks are dropped and counted), resamples them to
16 kHz mono in a thread of its own, finds speech with pocketsphinx's endpointer
(a WebRTC-style voice activity detector), cuts utterances at pauses, and
recognizes each utterance with one of two engines:

- ``sphinx``: pocketsphinx with the English model inside its wheel, offline,
  in a child process (``sphinx_worker.py``): its Python binding holds the GIL
  while it decodes, which would stall the hub's other threads. Partial
  hypotheses come from a fast live decode while an utterance goes on; when it
  ends, the whole utterance is decoded again in one call, normalised over all
  of it, and that is the final text, with word timings.
- ``openai``: each utterance is sent as a WAV file to the transcription API
  through the official ``openai`` client (``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``;
  the local emulator answers it with pocketsphinx). Finals only, with the
  word timings the server returns.

Audio heard before is not recognized again: what the recognizer made of an
utterance (partials, final, word timings) is kept with the utterance's exact
audio, and an utterance whose audio is the same, byte for byte, gets those
results back without a decode (a clip played in a loop is recognized once).
While an utterance goes on, it is compared with the kept ones as its audio
arrives; at the first byte that differs, the audio so far goes to the
recognizer and the utterance is decoded as any other.

Times are on the hub's clock: the first chunk's time anchors the audio, and
every later position is that plus the seconds of audio consumed.
"""

from __future__ import annotations

import fcntl
import io
import json
import math
import queue
import re
import struct
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from .sphinx_worker import RATE, decode_whole, new_decoder, words_of

ENGINES = ("sphinx", "openai")
PRE_ROLL_S = 0.25
HISTORY_BYTES = 2 * RATE * 3  # 3 s
MAX_UTTERANCE_S = 20.0  # a longer utterance is cut (the recognizer's cost grows with it)
PAUSE_S = 0.24
"""A pause this long inside speech ends the utterance. The endpointer's loose detector hears
the room sound of a short pause between sentences as speech; a strict one does not."""
MIN_CUT_SPEECH_S = 1.0
"""...but only after this much speech: a pause after a word or two is more likely one between the
words of a phrase ("rear ... right"), and decoding a lone word loses the words around it."""
RESUME_S = 0.06
"""After such a pause, strict-detector speech this long begins the next utterance."""
MIN_LEVEL_SPREAD_DB = 6.0
"""Speech rises and falls by syllables; an utterance whose 30 ms levels (10th to 90th
percentile) spread less than this is steady noise, not speech, and is not recognized."""
WORKER = Path(__file__).with_name("sphinx_worker.py")
_PIPE_BYTES = 1 << 20  # 32 s of 16 kHz audio may wait in the pipe to the recognizer
HEARD_MAX = 64
HEARD_MAX_BYTES = 16 << 20
"""Utterances whose results are kept for reuse: at most this many, this much audio (8 minutes)."""


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


@dataclass(frozen=True, slots=True)
class _Heard:
    """What the recognizer made of one utterance's exact audio (times from the utterance start)."""

    audio: bytes
    partials: tuple[tuple[float, str], ...]  # (seconds of audio when it came, text)
    final: str
    words: tuple[tuple[str, float, float], ...]


def sphinx_words(decoder, offset: float) -> tuple[Word, ...]:
    """Words of a decoder's best hypothesis, fillers removed, alternates named plainly (10 ms frames)."""
    return tuple(Word(w, offset + s, offset + e) for w, s, e in words_of(decoder))


def wav_bytes(pcm16: bytes, rate: int = RATE) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm16)
    return buf.getvalue()


def level_spread_db(levels) -> float:
    """10th to 90th percentile of frame levels (dB): how much the loudness moves (0 for under 3 frames)."""
    if len(levels) < 3:
        return 0.0
    lo, hi = np.percentile(np.asarray(levels, dtype=np.float64), [10, 90])
    return float(hi - lo)


class _SphinxProcess:
    """The recognizer's child process: utterances go in, partial and final hypotheses come out."""

    def __init__(self, on_message) -> None:
        self._on_message = on_message
        self._stderr = tempfile.TemporaryFile()
        self.closing = False
        self.dead = False
        try:
            self.proc = subprocess.Popen([sys.executable, "-u", str(WORKER)], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=self._stderr, close_fds=True)
        except OSError as exc:
            self.proc, self.dead = None, True
            on_message({"error": f"recognizer process could not start: {exc}"[:200]})
            return
        try:
            fcntl.fcntl(self.proc.stdin.fileno(), 1031, _PIPE_BYTES)  # F_SETPIPE_SZ: room for a backlog
        except OSError:
            pass
        self._reader = threading.Thread(target=self._read, name="transcribe-results", daemon=True)
        self._reader.start()

    def send(self, kind: bytes, payload: bytes = b"") -> None:
        if self.dead:
            return
        try:
            self.proc.stdin.write(kind + struct.pack("<I", len(payload)) + payload)
        except OSError:
            self.dead = True  # the reader says why, once

    def flush(self) -> None:
        if self.dead:
            return
        try:
            self.proc.stdin.flush()
        except OSError:
            self.dead = True

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            self._on_message(msg)
        code = self.proc.wait()
        self.dead = True
        if not self.closing or code != 0:
            self._stderr.seek(0)
            last = ([ln for ln in self._stderr.read().decode("utf-8", "replace").splitlines() if ln.strip()]
                    or ["no message"])[-1]
            self._on_message({"error": f"recognizer process exited (code {code}): {last[:150]}"})

    def close(self, timeout: float) -> None:
        self.closing = True
        if self.proc is None:
            return
        self.send(b"Q")
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        self._reader.join(timeout)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()


class Transcriber:
    """Voice activity and transcription for one audio stream, in a daemon thread (and a child process)."""

    def __init__(self, stream: str, engine: str = "sphinx", *, model: str = "whisper-1", max_queue: int = 500,
                 keep: int = 50, settings=None, not_before: float = -math.inf) -> None:
        """``settings``: the run's (the API's key and base URL for ``openai``); None: read when first needed.
        ``not_before``: when the stream opened (hub clock): its audio cannot have begun earlier."""
        if engine not in ENGINES:
            raise ValueError(f"transcription engine {engine!r}: expected one of {', '.join(ENGINES)}")
        self.stream, self.engine, self.model = stream, engine, model
        self.not_before = not_before
        self._new_detectors()
        self._client = None
        self._settings = settings
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
        self._utt_id = 0
        self._open: dict[str, tuple[float, float | None]] = {}  # utterance id -> (start, end once it ended)
        self._partial_id = ""
        self._levels: list[float] = []  # levels (dB) of the utterance's frames that the strict detector calls speech
        self._last_end = -1.0  # audio time where the last utterance ended
        self._out_t = 0.0  # audio time of the endpointer's next speech frame
        self._ep_offset = 0.0  # audio time when the endpointer started (its times count from there)
        self._quiet = 0  # strict-detector silent frames in a row, inside the utterance
        self._loud = 0  # strict-detector speech frames in a row, after a pause
        self._paused = False  # a pause ended the utterance; the endpointer still hears speech
        self.dropped = 0
        self.utterances = 0
        self.words = 0
        self.partials = 0
        """Partial hypotheses published."""
        self.noise_utterances = 0
        """Utterances not recognized because their level was steady (noise, not speech)."""
        self.recognized = 0
        """Utterances the engine decoded."""
        self.reused = 0
        """Utterances whose audio was heard before: their results were reused, not decoded again."""
        self._heard: OrderedDict[bytes, _Heard] = OrderedDict()  # oldest first
        self._heard_bytes = 0
        self._heard_lock = threading.Lock()
        self._candidates: list[_Heard] | None = None  # kept utterances the audio so far matches; None: decoding
        self._replayed = 0  # kept partials of the candidate shown so far
        self._decoding: dict[str, list] = {}  # utterance id -> [its audio once it ended, its partials]
        self.errors: deque[str] = deque(maxlen=10)
        self._busy_s = 0.0
        self._worker_cpu_s = 0.0
        self.in_speech = False
        self.speech_s = 0.0
        self._proc = _SphinxProcess(self._on_result) if engine == "sphinx" else None
        self._thread = threading.Thread(target=self._run, name=f"transcribe-{stream}", daemon=True)
        self._thread.start()

    # -- called from the analysis side ----------------------------------------------------

    def feed(self, t: float, samples: np.ndarray, sample_rate: int, discontinuity: bool = False) -> None:
        """One chunk of audio; ``discontinuity``: it does not continue the chunk before (see AudioChunk)."""
        try:
            self._queue.put_nowait((t, samples, sample_rate, discontinuity))
        except queue.Full:
            self.dropped += 1

    def close(self) -> None:
        """Finish the utterance under way and stop the thread (waits for queued audio and its results)."""
        self._queue.put(None)
        self._thread.join(60)

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

    @property
    def busy_s(self) -> float:
        """CPU seconds spent on transcription (this stream's thread and its recognizer process):
        busy_s / audio_s is the real-time factor."""
        return self._busy_s + self._worker_cpu_s

    # -- the worker ---------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                break
            t, samples, rate, discontinuity = item
            started = time.thread_time() if self._proc is not None else time.perf_counter()
            try:
                if discontinuity:
                    self._restart(t - len(samples) / rate)
                self._consume(t, samples, rate)
                if self._proc is not None:
                    self._proc.flush()
            except Exception as exc:  # noqa: BLE001 - a bad chunk is recorded, the stream goes on
                self._error(exc)
            self._busy_s += (time.thread_time() if self._proc is not None else time.perf_counter()) - started
        try:
            self._end_audio()
        except Exception as exc:  # noqa: BLE001
            self._error(exc)
        if self._proc is not None:
            self._proc.close(timeout=60)

    def _new_detectors(self) -> None:
        from pocketsphinx import Endpointer, Vad

        self._ep = Endpointer(window=0.3, ratio=0.9, vad_mode=Vad.LOOSE, sample_rate=RATE)
        self._strict = Vad(Vad.STRICT, RATE, self._ep.frame_length)

    def _end_audio(self) -> None:
        """The audio ends here: the endpointer holds its window back, so flush it, then end the utterance."""
        # (pocketsphinx's end_stream raises on an empty buffer: one sample of silence flushes the window all the same)
        rest = self._ep.end_stream(self._pending or b"\x00\x00") if self._utt is not None else None
        if rest:
            self._utt_audio(rest)
        self._pending = b""
        self._finish_utterance(self._audio_time())

    def _restart(self, t: float) -> None:
        """The next audio, from hub time ``t``, does not continue this (a file played again from its start): no
        utterance is carried across, and the voice detectors, the resampler and the pre-roll start afresh, as for
        a new stream. A clip played in a loop is then cut into the same utterances, byte for byte, each time, and
        its results are reused."""
        self._end_audio()
        if self._anchor is not None:  # the new audio begins at hub time t (positions follow its clock again)
            self._anchor = t - self._audio_s
        self._new_detectors()
        self._ep_offset = self._audio_s
        self._resamplers = {}
        self._history, self._history_start = bytearray(), self._audio_s
        self.in_speech, self._paused, self._quiet, self._loud = False, False, 0, 0

    def _error(self, exc: BaseException) -> None:
        self.errors.append(f"{type(exc).__name__}: {exc}"[:200])

    def _audio_time(self) -> float:
        return (self._anchor or 0.0) + self._audio_s

    def _consume(self, t: float, samples: np.ndarray, rate: int) -> None:
        pcm = np.ascontiguousarray(samples, dtype=np.int16)
        if pcm.ndim == 2:  # interleaved channels: mix down
            pcm = pcm.mean(axis=1).astype(np.int16)
        if self._anchor is None:
            # a chunk is stamped when it was had: captured live, its audio began a chunk's length earlier. A file
            # paced by its timestamps hands a chunk over as it begins, a chunk's length before its end: the stream's
            # opening bounds it, so that no word is said to start before the stream did.
            self._anchor = max(t - pcm.size / rate, self.not_before)
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
            if was and not self.in_speech:
                self._paused = False
                self._finish_utterance(self._audio_time())
            return
        frame_s = len(speech) / 2 / RATE
        if not was:  # speech begins (the endpointer hands its start late, by its window)
            self._finish_utterance(self._audio_time())
            self._out_t = self._ep_offset + float(self._ep.speech_start)
            self._paused, self._loud = False, 0
        t = self._out_t
        self._out_t += frame_s
        voiced = bool(self._strict.is_speech(speech))
        if voiced:
            x = np.frombuffer(speech, dtype=np.int16).astype(np.float64)
            self._levels.append(10 * np.log10(float(np.mean(x * x)) + 1.0))
        if self._paused:  # a pause ended the last utterance: wait for speech to come back
            self._loud = self._loud + 1 if voiced else 0
            if self._loud * frame_s < RESUME_S - 1e-9:
                return
            self._paused = False
            t = self._out_t - self._loud * frame_s  # the resumed speech's first frame
            self._begin_utterance(t, self._history_slice(t, self._out_t - frame_s))
        elif self._utt is None:
            self._begin_utterance(t, b"")
        self._utt_audio(speech)
        self._quiet = 0 if voiced else self._quiet + 1
        utt_s = len(self._utt) / 2 / RATE
        if (self._quiet * frame_s >= PAUSE_S - 1e-9 and self._ep.in_speech
                and len(self._levels) * frame_s >= MIN_CUT_SPEECH_S - 1e-9):
            self._finish_utterance(self._utt_start + utt_s)
            self._paused, self._loud = True, 0
        elif not self._ep.in_speech or utt_s >= MAX_UTTERANCE_S:
            self._finish_utterance(self._utt_start + utt_s)

    def _history_slice(self, t0: float, t1: float) -> bytes:
        k0 = max(0, int(round((t0 - self._history_start) * RATE)) * 2)
        k1 = max(k0, int(round((t1 - self._history_start) * RATE)) * 2)
        return bytes(self._history[k0:k1])

    def _begin_utterance(self, start: float, held: bytes) -> None:
        # the detector triggers a little after a soft onset ("p" of "please"): take some audio before it
        pre = self._history_slice(max(start - PRE_ROLL_S, self._last_end), start)
        self._utt = bytearray()
        self._utt_start = (self._anchor or 0.0) + start - len(pre) / 2 / RATE
        self._quiet = 0
        self._levels = []
        self._utt_id += 1
        uid = str(self._utt_id)
        self._open[uid] = (self._utt_start, None)
        self._replayed = 0
        with self._heard_lock:
            self._candidates = list(self._heard.values())
        if not self._candidates:
            self._decode()
        if pre or held:
            self._utt_audio(pre + held)

    def _decode(self, audio: bytes | None = None) -> None:
        """The utterance under way is new: the recognizer takes it from here, with its audio so far (``audio``:
        all of it, once it ended)."""
        uid = str(self._utt_id)
        self._candidates = None
        self._decoding[uid] = [None, []]
        if self._proc is not None:
            self._proc.send(b"S", uid.encode())
            data = audio if audio is not None else bytes(self._utt or b"")
            if data:
                self._proc.send(b"A", data)

    def _utt_audio(self, data: bytes) -> None:
        n0 = len(self._utt)
        self._utt += data
        if self._candidates is None:
            if self._proc is not None:
                self._proc.send(b"A", data)
            return
        n1 = len(self._utt)
        self._candidates = [c for c in self._candidates if c.audio[n0:n1] == data]
        if not self._candidates:
            self._decode()
            return
        partials, dur = self._candidates[0].partials, n1 / 2 / RATE
        while self._replayed < len(partials) and partials[self._replayed][0] <= dur + 1e-9:
            at, text = partials[self._replayed]
            self._replayed += 1
            self._reply(id=str(self._utt_id), partial=text, dur=at)

    def _reply(self, **msg) -> None:
        """A result heard before, in order with the recognizer's (through its process, when there is one)."""
        msg["reused"] = True
        if self._proc is not None and not self._proc.dead:
            self._proc.send(b"R", json.dumps(msg).encode())
        else:
            self._on_result(msg)

    def _heard_before(self, audio: bytes) -> _Heard | None:
        for c in self._candidates or ():
            if len(c.audio) == len(audio):  # every byte matched on the way
                with self._heard_lock:
                    if c.audio in self._heard:
                        self._heard.move_to_end(c.audio)
                return c
        return None

    def _remember(self, heard: _Heard) -> None:
        with self._heard_lock:
            old = self._heard.pop(heard.audio, None)
            self._heard_bytes -= len(old.audio) if old is not None else 0
            self._heard[heard.audio] = heard
            self._heard_bytes += len(heard.audio)
            while self._heard and (len(self._heard) > HEARD_MAX or self._heard_bytes > HEARD_MAX_BYTES):
                _, dropped = self._heard.popitem(last=False)
                self._heard_bytes -= len(dropped.audio)

    def _finish_utterance(self, end: float) -> None:
        if self._utt is None:
            return
        audio, self._utt = bytes(self._utt), None
        self._last_end = self._utt_start - (self._anchor or 0.0) + len(audio) / 2 / RATE
        uid = str(self._utt_id)
        # no word in it for the strict detector, or a level as steady as noise: not speech
        speech = level_spread_db(self._levels) >= MIN_LEVEL_SPREAD_DB
        if not speech:
            self.noise_utterances += 1
        heard = self._heard_before(audio) if speech else None
        if speech and heard is None and self._candidates is not None:
            self._decode(audio)  # the start of an utterance heard before, but not all of it
        decoding = self._candidates is None
        self._candidates = None
        if self._proc is not None:
            if speech:
                self._open[uid] = (self._utt_start, max(end, self._utt_start))
                if heard is not None:
                    self.reused += 1
                    self._reply(id=uid, final=heard.final, words=heard.words)
                else:
                    self.recognized += 1
                    if not self._proc.dead:  # (a dead recognizer returns nothing to keep it for)
                        self._decoding[uid][0] = audio
                    self._proc.send(b"E")
            else:
                self._open.pop(uid, None)
                self._decoding.pop(uid, None)
                if decoding:
                    self._proc.send(b"X")
                self._drop_partial(uid)
            self._proc.flush()
            return
        self._open.pop(uid, None)
        self._decoding.pop(uid, None)
        if speech:
            start = self._utt_start
            if heard is not None:
                self.reused += 1
                text, words = heard.final, heard.words
            else:
                self.recognized += 1
                text, words = self._remote(audio)
                if text is None:
                    return  # the error is recorded; nothing to keep
                self._remember(_Heard(audio, (), text, words))
            self._add_final(start, end, text, tuple(Word(w, start + s, start + e) for w, s, e in words))

    def _drop_partial(self, uid: str) -> None:
        with self._lock:
            if self._partial_id == uid:
                self._partial, self._partial_id = None, ""

    def _add_final(self, start: float, end: float, text: str, words: tuple[Word, ...]) -> None:
        with self._lock:
            if text.strip():
                self.utterances += 1
                self.words += len(text.split())
                self._finals.append(TranscriptSegment(start, max(end, start), text.strip(), True, words,
                                                      self.engine))

    def _on_result(self, msg: dict) -> None:
        """A message of the recognizer process (in its reader thread)."""
        if "error" in msg:
            self.errors.append(msg["error"])
            return
        self._worker_cpu_s = float(msg.get("cpu", self._worker_cpu_s))
        uid = str(msg.get("id"))
        decoding = None if msg.get("reused") else self._decoding.get(uid)
        if "partial" in msg:
            if decoding is not None:
                decoding[1].append((float(msg["dur"]), str(msg["partial"])))
            start, end = self._open.get(uid, (None, None))
            if start is not None:  # shown until its final replaces it
                with self._lock:
                    self.partials += 1
                    self._partial_id = uid
                    self._partial = TranscriptSegment(start, start + float(msg["dur"]), msg["partial"], False,
                                                      engine=self.engine)
        elif "final" in msg:
            start, end = self._open.pop(uid, (None, None))
            self._drop_partial(uid)
            if decoding is not None:
                self._decoding.pop(uid, None)
                if decoding[0] is not None:
                    self._remember(_Heard(decoding[0], tuple(decoding[1]), str(msg["final"]),
                                          tuple((str(w), float(s), float(e)) for w, s, e in msg["words"])))
            if start is not None and end is not None:
                words = tuple(Word(w, start + s, start + e) for w, s, e in msg["words"])
                self._add_final(start, end, msg["final"], words)
        elif "dropped" in msg:
            self._decoding.pop(uid, None)

    def _remote(self, audio: bytes) -> tuple[str | None, tuple[tuple[str, float, float], ...]]:
        """One utterance through the transcription API (the official client, synchronously, in this thread):
        its text (None when the call failed) and words with times from the utterance start."""
        import openai

        from ..config import load_settings

        if self._client is None:
            settings = self._settings or load_settings()
            self._client = openai.OpenAI(api_key=settings.openai_api_key or "not-needed-for-a-local-server",
                                         base_url=settings.openai_base_url, timeout=30.0, max_retries=2)
        try:
            result = self._client.audio.transcriptions.create(
                model=self.model, file=("utterance.wav", wav_bytes(audio), "audio/wav"),
                response_format="verbose_json", timestamp_granularities=["word"])
        except openai.OpenAIError as exc:
            self.errors.append(f"transcription API: {type(exc).__name__}: {str(exc)[:150]}")
            return None, ()
        words = tuple((str(w.word), float(w.start), float(w.end)) for w in (getattr(result, "words", None) or []))
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
    words = tuple(Word(w, s, e) for w, s, e in decode_whole(new_decoder(), pcm16_mono_16k))
    return " ".join(w.word for w in words), words
