"""Transcription: word error rate and real-time factor on real recordings, and whether ingest keeps up.

Recordings (about 130 words of real speech, none synthetic, plus pink noise):
- Debian ``alsa-utils``: ``/usr/share/sounds/alsa/*.wav`` ("front center", ...) and its ``Noise.wav``;
- Debian ``sound-theme-freedesktop``: ``audio-channel-*.oga``;
- pocketsphinx's sdist ``test/data/``: ``goforward.raw``, ``cards/``, ``librivox/`` (read-aloud book
  sentences, LibriVox, public domain) with the transcripts it ships (``--sdist DIR``; fetched with
  ``pip download`` into ~/.cache/midstream when not given).
The flite-voiced fixtures shipped with MidStream are reported too, apart (synthetic speech).

Peer: pocketsphinx decoding each whole recording in one call (``full_utt=True``, no voice
activity detection, no streaming), the best it can do offline. MidStream: the same audio streamed
in 20 ms chunks at 48 kHz through the transcriber, as from a live stream (resampling, voice
activity, utterance cutting, partial hypotheses, final re-decode), fed as fast as it is taken.
WER is over all words of the set (edits / reference words); RTF is CPU seconds per second of
audio (MidStream: its thread and its recognizer process; the peer: the decode call).

Continuous: every recording of the set one after another with 0.4 s (pauses between sentences)
or 1 s (between recordings) of silence, about 45 s, paced at real time through the hub
(``file?realtime=1``) with transcription on: the transcript's WER, the hub's ``transcribe_rtf``,
and whether ingest is starved — the largest gap between consecutive audio chunks seen by the
analysis, with and without transcription, and the same with pocketsphinx decoding whole sentences
in a thread of the hub's process instead (what the final re-decode would do there: the binding
holds the GIL for the whole of each call).

    python bench/bench_speech.py [--sdist DIR] [--repeat 1] [--no-continuous] [--openai]

Goals (issue 11, item 14): WER no worse than the whole-file peer; RTF < 0.3.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import wave
from importlib.metadata import version
from pathlib import Path

import av
import numpy as np

from midstream_tui.data.demo_media import MEDIA
from midstream_tui.perception.speech import RATE, Transcriber, _words, word_error_rate
from midstream_tui.perception.sphinx_worker import decode_whole, new_decoder

ALSA = Path("/usr/share/sounds/alsa")
FREEDESKTOP = Path("/usr/share/sounds/freedesktop/stereo")
PAD = 24_000
SYNTHETIC = {
    "speech_fox": "the quick brown fox jumps over the lazy dog",
    "speech_stella": "please call stella and ask her to bring these things with her from the store",
}


def load(path: Path) -> np.ndarray:
    """16 kHz mono s16 samples of a file (``.raw``: already 16 kHz mono s16le)."""
    if path.suffix == ".raw":
        return np.fromfile(path, dtype="<i2").astype(np.int16)
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    with av.open(str(path)) as container:
        frames = [f for frame in container.decode(audio=0) for f in resampler.resample(frame)]
    frames += resampler.resample(None)
    return np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.int16)


def sdist_dir(given: str | None) -> Path:
    if given:
        return Path(given)
    ver = version("pocketsphinx")
    cache = Path.home() / ".cache" / "midstream" / "pocketsphinx-sdist"
    root = cache / f"pocketsphinx-{ver}"
    if not root.exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                        f"pocketsphinx=={ver}", "-d", str(cache)], check=True, capture_output=True)
        with tarfile.open(cache / f"pocketsphinx-{ver}.tar.gz") as tar:
            tar.extractall(cache, members=[m for m in tar.getmembers() if "/test/data/" in m.name],
                           filter="data")
    return root


def transcripts(path: Path) -> dict[str, str]:
    """pocketsphinx's ``<s> words </s> (id)`` transcript lines."""
    out = {}
    for line in path.read_text().splitlines():
        if "(" in line:
            text, uid = line.rsplit("(", 1)
            out[uid.strip(" )")] = " ".join(w for w in text.split() if w not in ("<s>", "</s>"))
    return out


def corpus(sdist: Path) -> list[tuple[str, np.ndarray, str]]:
    """(name, 16 kHz samples, reference) of the real recordings; reference "" for noise."""
    rows = []
    for wav in sorted(ALSA.glob("*.wav")):
        ref = "" if wav.stem == "Noise" else wav.stem.replace("_", " ").lower()
        rows.append((f"alsa/{wav.stem}", load(wav), ref))
    for oga in sorted(FREEDESKTOP.glob("audio-channel-*.oga")):
        rows.append((f"freedesktop/{oga.stem}", load(oga), oga.stem.removeprefix("audio-channel-").replace("-", " ")))
    data = sdist / "test" / "data"
    rows.append(("ps/goforward", load(data / "goforward.raw"), "go forward ten meters"))
    for folder, listing in (("cards", "cards.transcription"), ("librivox", "transcription")):
        for uid, ref in transcripts(data / folder / listing).items():
            wav = data / folder / f"{uid}.wav"
            rows.append((f"ps/{folder}/{uid[-4:]}", load(wav), ref))
    return rows


def whole_file(audio: np.ndarray) -> tuple[str, float]:
    decoder = new_decoder()  # loading the model is not recognition: neither side counts it
    t = time.process_time()
    words = decode_whole(decoder, audio.tobytes())
    return " ".join(w for w, _, _ in words), time.process_time() - t


def to_48k(audio: np.ndarray) -> np.ndarray:
    resampler = av.AudioResampler(format="s16", layout="mono", rate=48_000)
    frame = av.AudioFrame.from_ndarray(audio.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = RATE
    frames = [*resampler.resample(frame), *resampler.resample(None)]
    return np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.int16)


def streamed(audio: np.ndarray, engine: str = "sphinx") -> tuple[str, float, int, int]:
    """(final text, busy seconds, partials, dropped chunks) through a Transcriber, 20 ms chunks at 48 kHz."""
    pcm = np.concatenate([np.zeros(PAD, np.int16), to_48k(audio), np.zeros(PAD, np.int16)])
    tr = Transcriber("bench", engine)
    t = 0.0
    started = time.perf_counter()
    for k in range(0, pcm.size, 960):
        t += 0.02
        tr.feed(t, pcm[k:k + 960], 48_000)
    tr.close()
    wall = time.perf_counter() - started
    text = " ".join(s.text for s in tr.transcript() if s.final)
    busy = tr.busy_s if engine == "sphinx" else wall  # the API engine waits on HTTP: count the wall time
    return text, busy, tr.partials, tr.dropped


def corpus_wer(pairs: list[tuple[str, str]]) -> float:
    words = sum(len(_words(ref)) for ref, _ in pairs)
    return sum(word_error_rate(ref, hyp) * len(_words(ref)) for ref, hyp in pairs) / max(1, words)


def write_wav(path: Path, pcm: np.ndarray) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm.astype("<i2").tobytes())


async def through_hub(path: Path, transcribe: str, duration: float) -> dict:
    from midstream_tui import Hub, open_sources
    from midstream_tui.perception import Perception

    hub = Hub(analysis_interval=0.05, perception=Perception(transcribe=transcribe))
    for src in open_sources([f"{path}?realtime=1"], hub.clock):
        hub.add_source(src)
    await hub.run(duration)
    snap = hub.snapshot(path.stem)
    pipe = hub._pipelines[path.stem]  # noqa: SLF001 - the bench reads the chunk times the analysis saw
    times = pipe.analyzer.chunk_t.values()
    gaps = np.diff(times) if times.size > 1 else np.zeros(1)
    return {"gap_max_ms": float(gaps.max()) * 1e3, "gap_p99_ms": float(np.percentile(gaps, 99)) * 1e3,
            "chunks": int(times.size), "rtf": snap.metrics.get("transcribe_rtf", float("nan")),
            "drops": snap.metrics.get("transcribe_drops", 0), "audio_s": snap.metrics["audio_s"],
            "text": " ".join(s.text for s in snap.transcript if s.final)}


def in_thread_decoder(stop: threading.Event, audio: np.ndarray) -> None:
    """pocketsphinx in a thread of the hub's process, decoding 6 s sentences whole (one call each, as a
    final re-decode would), 0.5 s apart: its binding holds the GIL for each call."""
    decoder = new_decoder()
    while not stop.is_set():
        for k in range(0, audio.size, RATE * 6):
            if stop.is_set():
                return
            decode_whole(decoder, audio[k:k + RATE * 6].tobytes())
            time.sleep(0.5)


async def continuous(rows, tmp: Path) -> None:
    parts, refs = [], []
    for i, (name, audio, ref) in enumerate(rows):
        gap = 0.4 if name.startswith("ps/librivox") and i + 1 < len(rows) and rows[i + 1][0].startswith("ps/librivox") else 1.0
        parts += [audio, np.zeros(int(gap * RATE), np.int16)]
        refs.append(ref)
    pcm = np.concatenate(parts)
    path = tmp / "continuous.wav"
    write_wav(path, pcm)
    seconds = pcm.size / RATE
    print(f"\ncontinuous recording: {seconds:.1f} s, paced at real time through the hub")
    off = await through_hub(path, "off", seconds + 5)
    on = await through_hub(path, "sphinx", seconds + 5)
    stop = threading.Event()
    thread = threading.Thread(target=in_thread_decoder, args=(stop, pcm), daemon=True)
    thread.start()
    try:
        in_thread = await through_hub(path, "off", seconds + 5)
    finally:
        stop.set()
        thread.join()
    print(f"{'run':<54} {'chunks':>6} {'gap max':>8} {'gap p99':>8} {'RTF':>6} {'WER':>6}")
    for label, r in (("no transcription", off), ("MidStream transcription (sphinx)", on),
                     ("no transcription + whole-sentence decodes in a thread", in_thread)):
        wer = corpus_wer([(" ".join(refs), r["text"])]) if label.startswith("MidStream") else float("nan")
        print(f"{label:<54} {r['chunks']:>6} {r['gap_max_ms']:>6.0f}ms {r['gap_p99_ms']:>6.0f}ms "
              f"{r['rtf']:>6.3f} {wer:>6.3f}")
    print(f"transcript ({on['drops']} chunks dropped, {on['audio_s']:.1f} s heard): {on['text']}")


async def with_emulator(fn):
    from midstream_tui.servers.emulator import OpenAIEmulator

    emulator = OpenAIEmulator(port=0)
    await emulator.start()
    os.environ["OPENAI_BASE_URL"] = emulator.base_url
    os.environ.setdefault("OPENAI_API_KEY", "sk-local-emulator")
    try:
        return await asyncio.to_thread(fn)
    finally:
        await emulator.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdist", help="an unpacked pocketsphinx sdist (its test/data/ recordings)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per recording for the RTF (median)")
    parser.add_argument("--no-continuous", action="store_true", help="skip the 45 s real-time hub runs")
    parser.add_argument("--openai", action="store_true", help="also the openai engine against the local emulator")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every recording's text")
    args = parser.parse_args()
    rows = corpus(sdist_dir(args.sdist))
    peer_pairs, ours_pairs, api_pairs = [], [], []
    peer_cpu, ours_cpu, audio_s, partials, drops, noise_words = [], [], 0.0, 0, 0, {"peer": 0, "ours": 0}
    for name, audio, ref in rows:
        peer = [whole_file(audio) for _ in range(args.repeat)]
        ours = [streamed(audio) for _ in range(args.repeat)]
        peer_cpu.append(statistics.median(r[1] for r in peer))
        ours_cpu.append(statistics.median(r[1] for r in ours))
        audio_s += audio.size / RATE
        partials += ours[0][2]
        drops += ours[0][3]
        if ref:
            peer_pairs.append((ref, peer[0][0]))
            ours_pairs.append((ref, ours[0][0]))
        else:
            noise_words["peer"] += len(_words(peer[0][0]))
            noise_words["ours"] += len(_words(ours[0][0]))
        if args.openai and ref:
            api_pairs.append((ref, asyncio.run(with_emulator(lambda a=audio: streamed(a, "openai")))[0]))
        if args.verbose:
            print(f"{name:<34} ref:  {ref}\n{'':<34} peer: {peer[0][0]}\n{'':<34} ours: {ours[0][0]}")
    words = sum(len(_words(ref)) for ref, _ in peer_pairs)
    print(f"{len(rows)} real recordings, {audio_s:.1f} s, {words} reference words "
          f"(pocketsphinx {version('pocketsphinx')})")
    print(f"{'engine':<44} {'WER':>6} {'RTF':>6} {'noise words':>11}")
    print(f"{'pocketsphinx, whole file (peer)':<44} {corpus_wer(peer_pairs):6.3f} "
          f"{sum(peer_cpu) / audio_s:6.3f} {noise_words['peer']:>11}")
    print(f"{'MidStream streamed, sphinx':<44} {corpus_wer(ours_pairs):6.3f} "
          f"{sum(ours_cpu) / audio_s:6.3f} {noise_words['ours']:>11}   "
          f"({partials} partials, {drops} chunks dropped)")
    if api_pairs:
        print(f"{'MidStream streamed, openai->emulator':<44} {corpus_wer(api_pairs):6.3f}")
    synth = [(ref, whole_file(load(MEDIA / f"{name}.wav"))[0], streamed(load(MEDIA / f"{name}.wav"))[0])
             for name, ref in SYNTHETIC.items()]
    print(f"synthetic (flite) fixtures: peer WER {corpus_wer([(r, p) for r, p, _ in synth]):.3f}, "
          f"MidStream WER {corpus_wer([(r, o) for r, _, o in synth]):.3f}")
    print("goals: MidStream WER <= peer WER; RTF < 0.3")
    if not args.no_continuous:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(continuous([r for r in rows if r[2]], Path(tmp)))


if __name__ == "__main__":
    main()
