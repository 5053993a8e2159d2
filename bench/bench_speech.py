"""Transcription: real-time factor and word error rate on the shipped speech recordings.

Peer: pocketsphinx decoding each whole recording in one call (no voice activity
detection, no streaming), the best it can do offline. MidStream: the same audio
streamed in 20 ms chunks at 48 kHz through the hub's transcriber (resampling,
voice activity, utterance cutting, partial hypotheses), as from a live stream.
Also the ``openai`` engine, through the official client against the local
emulator (which recognizes with pocketsphinx: this measures the plumbing, not
OpenAI's model). Goal (issue 5): real-time factor under 0.3.

    python bench/bench_speech.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

import av
import numpy as np

from midstream_tui.demo_media import MEDIA
from midstream_tui.perception.speech import RATE, Transcriber, new_decoder, sphinx_words, word_error_rate
from midstream_tui.servers.emulator import OpenAIEmulator

FIXTURES = {
    "speech_fox": "the quick brown fox jumps over the lazy dog",
    "speech_stella": "please call stella and ask her to bring these things with her from the store",
}


def pcm(name: str, rate: int) -> np.ndarray:
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
    with av.open(str(MEDIA / f"{name}.wav")) as container:
        return np.concatenate([f.to_ndarray().reshape(-1) for frame in container.decode(audio=0)
                               for f in resampler.resample(frame)])


def whole_file(name: str) -> tuple[str, float]:
    audio = pcm(name, RATE)
    decoder = new_decoder()  # loading the model is not recognition: both sides load it before timing
    t = time.perf_counter()
    decoder.start_utt()
    decoder.process_raw(audio.tobytes(), False, True)
    decoder.end_utt()
    elapsed = time.perf_counter() - t
    text = " ".join(w.word for w in sphinx_words(decoder, 0.0))
    return text, elapsed / (audio.size / RATE)


def streamed(name: str, engine: str) -> tuple[str, float]:
    audio = np.concatenate([np.zeros(24_000, np.int16), pcm(name, 48_000), np.zeros(24_000, np.int16)])
    tr = Transcriber(name, engine)
    t = 0.0
    started = time.perf_counter()
    for k in range(0, audio.size, 960):
        t += 0.02
        tr.feed(t, audio[k:k + 960], 48_000)
    tr.close()
    wall = time.perf_counter() - started
    text = " ".join(s.text for s in tr.transcript() if s.final)
    busy = tr.busy_s if engine == "sphinx" else wall  # the API engine waits on HTTP: count the wall time
    return text, busy / tr.audio_s


async def with_emulator(repeat: int) -> dict:
    emulator = OpenAIEmulator(port=0)
    await emulator.start()
    os.environ["OPENAI_BASE_URL"] = emulator.base_url
    os.environ.setdefault("OPENAI_API_KEY", "sk-local-emulator")
    try:
        return {name: await asyncio.to_thread(lambda n=name: [streamed(n, "openai") for _ in range(repeat)])
                for name in FIXTURES}
    finally:
        await emulator.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = []
    api = asyncio.run(with_emulator(args.repeat))
    for name, reference in FIXTURES.items():
        peer = [whole_file(name) for _ in range(args.repeat)]
        ours = [streamed(name, "sphinx") for _ in range(args.repeat)]
        for label, runs in (("pocketsphinx, whole file (peer)", peer), ("MidStream streamed, sphinx", ours),
                            ("MidStream streamed, openai->emulator", api[name])):
            rows.append((name, label, word_error_rate(reference, runs[0][0]), statistics.median(r[1] for r in runs),
                         runs[0][0]))
    print(f"{'recording':<14} {'engine':<38} {'WER':>6} {'RTF':>6}  text")
    for name, label, wer, rtf, text in rows:
        print(f"{name:<14} {label:<38} {wer:6.3f} {rtf:6.3f}  {text}")
    print("goal: RTF < 0.3 (median of", args.repeat, "runs)")


if __name__ == "__main__":
    main()
