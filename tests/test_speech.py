"""Audio analysis and transcription: committed speech fixtures, real decoders.

Fixtures: Debian's flite (voice kal16) in midstream_tui/data/media; real recordings in tests/data/speech
(a LibriVox read-aloud book recording from pocketsphinx's test data, two of its sentences with a 0.4 s
pause, alsa-utils' pink noise; see the README there). Files are read with realtime=0 (as fast as they
are taken, lossless): the assertions are about what is recognized, never about speed.
"""

import json
import os
import subprocess
import sys
import time
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from midstream_tui import Hub, open_sources
from midstream_tui.perception import Perception
from midstream_tui.perception.speech import Transcriber, recognize_wav, word_error_rate
from midstream_tui.servers.emulator import OpenAIEmulator

DATA = Path(__file__).resolve().parent.parent / "midstream_tui" / "data" / "media"  # fixtures shipped for the demo too
REAL = Path(__file__).resolve().parent / "data" / "speech"
REAL_SPEECH = {  # reference transcript (pocketsphinx's), WER bound of the whole-file decode
    "book_0930": ("he might even have been made amiable himself", 0.125),
    "cards_001": ("ten of clubs", 0.0),
}
SPEECH = {
    "speech_fox": "the quick brown fox jumps over the lazy dog",
    "speech_stella": "please call stella and ask her to bring these things with her from the store",
}


async def analyse(uris, perception, duration=30.0):
    hub = Hub(analysis_interval=0.05, perception=perception)
    for src in open_sources(uris, hub.clock):
        hub.add_source(src)
    await hub.run(duration)
    return hub


def write_wav(path, samples, rate=48_000):
    out = av.open(str(path), "w")
    stream = out.add_stream("pcm_s16le", rate=rate, layout="mono")
    frame = av.AudioFrame.from_ndarray(samples.astype(np.int16).reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = rate
    for packet in [*stream.encode(frame), *stream.encode()]:
        out.mux(packet)
    out.close()


@pytest.mark.parametrize("name", sorted(SPEECH))
async def test_sphinx_transcribes_the_fixtures_with_word_timings(name):
    hub = await analyse([f"{DATA / name}.wav?realtime=0"], Perception(transcribe="sphinx"))
    snap = hub.snapshot(name)
    finals = [s for s in snap.transcript if s.final]
    said = " ".join(s.text for s in finals)
    wer = word_error_rate(SPEECH[name], said)
    assert wer <= 0.25, (said, wer)  # measured: 0.11 (fox: jumped/jumps), 0.07 (stella: still/stella)
    words = [w for s in finals for w in s.words]
    assert len(words) >= len(SPEECH[name].split()) - 2
    assert all(a.start <= a.end <= b.start + 1e-6 for a, b in zip(words, words[1:]))  # in order, not overlapping
    # each word inside its utterance, the utterances inside the audio heard (all on the audio's own time
    # line, anchored at the first chunk: no wall-clock time in these)
    assert all(s.start - 1e-6 <= w.start and w.end <= s.end + 1e-6 for s in finals for w in s.words)
    assert finals[-1].end - finals[0].start <= snap.metrics["audio_s"] + 1e-6
    assert snap.metrics["utterances"] == len(finals) and snap.metrics["words"] == len(said.split())
    assert snap.metrics["voice_pct"] > 50 and snap.metrics["speech_s"] > 1.5
    assert snap.metrics["transcribe_rtf"] > 0 and snap.metrics["transcribe_drops"] == 0  # speed: bench/
    log = [h for _, h in hub.patterns_since(0) if h.kind == "speech"]
    assert [h.message.strip("“”") for h in log] == [s.text for s in finals], (log, finals)


async def test_tone_and_silence_spectral_features_and_no_speech(tmp_path):
    rate = 48_000
    t = np.arange(rate * 2) / rate
    write_wav(tmp_path / "tone.wav", np.sin(2 * np.pi * 1000 * t) * 8000)
    write_wav(tmp_path / "quiet.wav", np.zeros(rate * 2))
    hub = await analyse([f"{tmp_path / 'tone.wav'}?realtime=0", f"{tmp_path / 'quiet.wav'}?realtime=0"],
                        Perception(transcribe="sphinx"))
    tone, quiet = hub.snapshot("tone"), hub.snapshot("quiet")
    assert tone.metrics["centroid_hz"] == pytest.approx(1000, rel=0.08)
    assert tone.metrics["rolloff_hz"] == pytest.approx(1000, rel=0.08)
    assert tone.metrics["zcr"] == pytest.approx(2 * 1000 / rate, rel=0.05)  # two crossings per period
    assert quiet.metrics["voice_pct"] == 0 and quiet.metrics["speech_s"] == 0
    assert quiet.metrics["utterances"] == 0 and quiet.transcript == ()
    assert quiet.metrics["silence_pct"] == 100


async def test_simulated_audio_is_not_transcribed_and_off_means_off():
    hub = await analyse(["sim:audio?duration=1"], Perception(transcribe="sphinx"), duration=3)
    assert "transcribe" not in hub.snapshot("audio").metrics  # synthetic: nothing to hear
    hub = await analyse([f"{DATA / 'speech_fox.wav'}?realtime=0"], Perception(transcribe="off"))
    snap = hub.snapshot("speech_fox")
    assert snap.transcript == () and "transcribe" not in snap.metrics and snap.metrics["voice_pct"] > 50


async def test_openai_engine_through_the_official_client_and_the_emulator(monkeypatch):
    emulator = OpenAIEmulator(port=0)
    await emulator.start()
    try:
        monkeypatch.setenv("OPENAI_BASE_URL", emulator.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-speech-test-key")
        hub = await analyse([f"{DATA / 'speech_stella.wav'}?realtime=0"], Perception(transcribe="openai"))
    finally:
        await emulator.stop()
    snap = hub.snapshot("speech_stella")
    finals = [s for s in snap.transcript if s.final]
    assert finals and all(s.engine == "openai" for s in finals)
    assert word_error_rate(SPEECH["speech_stella"], " ".join(s.text for s in finals)) <= 0.25
    assert finals[0].words and finals[0].words[0].start >= finals[0].start
    uploads = [r for r in emulator.stats.requests if r["api"] == "transcriptions"]
    assert len(uploads) == len(finals) and uploads[0]["bytes"] > 40_000  # a WAV per utterance


async def test_transcription_api_errors_are_recorded_not_fatal(monkeypatch, free_port):
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{free_port}/v1")  # nobody listens
    monkeypatch.setenv("OPENAI_API_KEY", "sk-speech-test-key")
    hub = await analyse([f"{DATA / 'speech_fox.wav'}?realtime=0"], Perception(transcribe="openai"))
    snap = hub.snapshot("speech_fox")
    assert snap.status == "closed" and snap.metrics["audio_s"] > 2  # the audio analysis went on
    errors = [h.message for _, h in hub.patterns_since(0) if h.kind == "error"]
    assert errors and "transcription API" in errors[0] and "sk-speech-test-key" not in " ".join(errors)


async def test_emulator_refuses_a_broken_upload():
    import aiohttp

    emulator = OpenAIEmulator(port=0)
    await emulator.start()
    try:
        async with aiohttp.ClientSession() as session:
            form = aiohttp.FormData()
            form.add_field("model", "whisper-1")
            form.add_field("file", b"RIFF....not audio", filename="x.wav", content_type="audio/wav")
            async with session.post(f"{emulator.base_url}/audio/transcriptions", data=form) as resp:
                body = await resp.json()
                assert resp.status == 400 and "could not decode" in body["error"]["message"]
            async with session.post(f"{emulator.base_url}/audio/transcriptions", json={"model": "x"}) as resp:
                assert resp.status == 400
    finally:
        await emulator.stop()


def test_cli_headless_prints_the_transcript():
    out = subprocess.run([sys.executable, "-m", "midstream_tui", "run", f"{DATA / 'speech_fox.wav'}?realtime=0",
                          "--headless", "--json", "--duration", "8"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    summary = lines[-1]["summary"]["streams"]["speech_fox"]
    assert "brown fox" in " ".join(seg["text"] for seg in summary["transcript"])
    # nothing said before the stream opened (the file speaks from its first 50 ms: this read -0.05 s once)
    assert all(seg["start"] >= 0 and all(w[1] >= seg["start"] for w in seg["words"]) for seg in summary["transcript"])
    speech = [p for line in lines[:-1] for p in line.get("patterns", []) if p["kind"] == "speech"]
    assert speech and "lazy dog" in speech[0]["message"]


def pcm16(path):
    with wave.open(str(path)) as w:
        return w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


@pytest.mark.parametrize("name", sorted(REAL_SPEECH))
async def test_real_recordings_are_transcribed_as_well_as_decoding_the_whole_file(name):
    hub = await analyse([f"{REAL / name}.wav?realtime=0"], Perception(transcribe="sphinx"))
    snap = hub.snapshot(name)
    said = " ".join(s.text for s in snap.transcript if s.final)
    whole, _ = recognize_wav(pcm16(REAL / f"{name}.wav")[1].tobytes())  # pocketsphinx, the file in one call
    reference, bound = REAL_SPEECH[name]
    # measured, whole file: "he might even have been made the amiable himself" (0.125), "ten of clubs" (0);
    # the live decode alone: "he might even have been made a real boy i'm self taught", "a fan of close"
    assert word_error_rate(reference, said) <= word_error_rate(reference, whole) <= bound, (said, whole)
    assert all(s.final for s in snap.transcript)  # partials are replaced by finals


async def test_pink_noise_yields_no_words():
    hub = await analyse([f"{REAL / 'pink_noise.wav'}?realtime=0"], Perception(transcribe="sphinx"))
    snap = hub.snapshot("pink_noise")
    assert snap.metrics["speech_s"] <= 0.1  # (the detector alone heard "speech" in all of it: a steady sound)
    assert snap.transcript == () and snap.metrics["utterances"] == 0 and snap.metrics["words"] == 0


async def test_two_sentences_with_a_short_pause_are_two_utterances():
    hub = await analyse([f"{REAL / 'two_sentences.wav'}?realtime=0"], Perception(transcribe="sphinx"))
    finals = [s for s in hub.snapshot("two_sentences").transcript if s.final]
    assert len(finals) == 2, finals
    assert "young man" in finals[0].text and finals[1].text.startswith("he might even"), finals
    assert finals[0].end <= finals[1].start + 1e-6
    log = [h.message for _, h in hub.patterns_since(0) if h.kind == "speech"]
    assert len(log) == 2


def test_partial_hypotheses_still_arrive_while_an_utterance_goes_on():
    rate, samples = pcm16(REAL / "two_sentences.wav")
    tr = Transcriber("two")
    seen = []
    try:
        for k in range(0, samples.size, rate // 50):
            tr.feed(k / rate, samples[k:k + rate // 50], rate)
        deadline = time.monotonic() + 60  # liveness only
        while time.monotonic() < deadline and len([s for s in tr.transcript() if s.final]) < 2:
            seen += [s for s in tr.transcript() if not s.final]
            time.sleep(0.005)
    finally:
        tr.close()
    # one every 0.5 s of speech from the live decode: counted as published, seen when polled in time
    assert tr.partials >= 5, tr.partials
    assert all(not s.final and s.text for s in seen)
    finals = [s for s in tr.transcript() if s.final]
    assert len(finals) == 2 and "young man" in finals[0].text
    assert tr.transcript() == tuple(finals)  # the finals replaced the partials


def _recognizer_pids():
    """This process's pocketsphinx recognizer children (perception/sphinx_worker.py)."""
    mine = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            parent = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
        except OSError:
            continue  # gone meanwhile
        if b"sphinx_worker.py" in cmdline and parent == str(os.getpid()):
            mine.append(int(pid))
    return mine


def test_a_recognizer_process_that_dies_is_an_error_not_a_hang():
    rate, samples = pcm16(REAL / "two_sentences.wav")
    before = set(_recognizer_pids())  # other tests' recognizers, if any are still closing
    tr = Transcriber("two")
    pids = []
    deadline = time.monotonic() + 60
    while not pids and time.monotonic() < deadline:
        pids = sorted(set(_recognizer_pids()) - before)
        time.sleep(0.01)
    assert len(pids) == 1
    os.kill(pids[0], 9)
    for k in range(0, samples.size, rate // 50):
        tr.feed(k / rate, samples[k:k + rate // 50], rate)
    tr.close()
    errors = list(tr.errors)
    assert errors and "recognizer process exited" in errors[0], errors
    assert not [s for s in tr.transcript() if s.final]
    assert tr.audio_s > 5  # the audio side went on


def test_audio_heard_again_byte_for_byte_is_not_decoded_again():
    """A clip in a loop: each pass after a discontinuity is cut into the same utterances and gets the results
    of the first pass; a pass with one sample changed inside its second sentence has that one decoded."""
    rate, samples = pcm16(REAL / "two_sentences.wav")
    one = np.concatenate([samples, np.zeros(rate // 2, dtype=np.int16)])  # speech, then half a second of quiet
    changed = one.copy()
    changed[int(5.0 * rate)] ^= 0x0100  # one sample of "he might even have been made amiable himself"
    tr = Transcriber("loop")
    passes = []
    try:
        for k, clip in enumerate([one, one, one, changed]):
            for i in range(0, clip.size, rate // 50):
                tr.feed((k * clip.size + i) / rate, clip[i:i + rate // 50], rate, discontinuity=k > 0 and i == 0)
            # each pass waits for the one before it to be recognized (the kept results come from there)
            until = time.monotonic() + 60  # liveness only
            while time.monotonic() < until and not (tr.audio_s >= (k + 1) * clip.size / rate - 0.05
                                                     and tr.utterances == 2 * (k + 1) or tr.errors):
                time.sleep(0.01)
            passes.append([s for s in tr.transcript() if s.final][2 * k:])
    finally:
        tr.close()
    assert not tr.errors and tr.dropped == 0
    first = passes[0]
    assert len(first) == 2 and "young man" in first[0].text and first[1].text.startswith("he might even"), first
    for k, later in enumerate(passes[1:3], start=1):  # the same words at the same places of their pass
        shift = k * one.size / rate
        assert [s.text for s in later] == [s.text for s in first]
        assert [(w.word, round(w.start - shift, 6)) for s in later for w in s.words] == \
               [(w.word, round(w.start, 6)) for s in first for w in s.words]
    assert [s.text for s in passes[3]][:1] == [first[0].text]
    assert tr.recognized == 3 and tr.reused == 5  # pass 1 decoded; 2 and 3 reused; pass 4: its 2nd decoded


def test_an_utterance_cut_short_inside_one_heard_before_is_decoded_from_its_own_audio():
    """The stream ends partway through audio heard before: that part is decoded (it used to be sent to the
    recognizer without its audio, and came back empty)."""
    rate, samples = pcm16(REAL / "two_sentences.wav")
    one = np.concatenate([samples, np.zeros(rate // 2, dtype=np.int16)])
    tr = Transcriber("cut")
    try:
        for i in range(0, one.size, rate // 50):
            tr.feed(i / rate, one[i:i + rate // 50], rate)
        until = time.monotonic() + 60  # liveness only
        while time.monotonic() < until and tr.utterances < 2 and not tr.errors:
            time.sleep(0.01)
        part = one[: int(1.5 * rate)]  # the first sentence, cut in the middle
        for i in range(0, part.size, rate // 50):
            tr.feed(one.size / rate + i / rate, part[i:i + rate // 50], rate, discontinuity=i == 0)
    finally:
        tr.close()
    finals = [s for s in tr.transcript() if s.final]
    assert not tr.errors and len(finals) == 3 and finals[2].text, finals
    assert tr.recognized == 3 and tr.reused == 0


async def test_steady_and_tonal_sounds_are_not_voice_and_real_voices_still_are(tmp_path):
    # A review (2026-12-06): an 8 Hz tone read "voice 100 %", and so did a 440 Hz tone, a hum, white and pink
    # noise: the detector hears speech in any sound with energy in its bands. Speech swings with its syllables
    # and is not a pure tone for most of a second.
    rate = 16_000
    t = np.arange(rate * 3) / rate
    sounds = {
        "hz8": np.sin(2 * np.pi * 8 * t),
        "tone": np.sin(2 * np.pi * 440 * t),
        "hum": sum(np.sin(2 * np.pi * 50 * k * t) / k for k in range(1, 8)),
        "beeps": np.sin(2 * np.pi * 1000 * t) * ((t % 1) < 0.5),  # swings, but a pure tone
        "swell": np.sin(2 * np.pi * 440 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)),  # at a syllable rate
        "sweep": np.sin(2 * np.pi * (200 * t + 300 * t * t)),
        "white": np.random.default_rng(7).normal(0, 1, t.size),
    }
    for name, x in sounds.items():
        write_wav(tmp_path / f"{name}.wav", x / np.abs(x).max() * 8000, rate=rate)
    real = [REAL / f"{n}.wav" for n in ("book_0930", "cards_001", "two_sentences")] + [DATA / "speech_fox.wav"]
    hub = await analyse([f"{tmp_path / n}.wav?realtime=0" for n in sounds] + [f"{p}?realtime=0" for p in real],
                        Perception(transcribe="off"))
    heard = {n: hub.snapshot(n).metrics["speech_s"] for n in sounds}
    assert all(s <= 0.1 for s in heard.values()), heard  # (the detector alone: 3.0 s of each but hz8's)
    share = {p.stem: hub.snapshot(p.stem).metrics["speech_s"] / hub.snapshot(p.stem).metrics["audio_s"] for p in real}
    assert all(v >= 0.6 for v in share.values()), share  # measured 0.75-0.94 (the detector alone: 0.94-0.98)


async def test_speech_over_a_hum_as_loud_as_itself_is_still_heard_and_every_rate_is_measured(tmp_path):
    # A second review: with a 6 dB swing asked, speech over a 50 Hz hum of its own level was all but lost (0.0 of
    # 5.7 s); and 24 kHz (OpenAI Realtime's voices) and 44.1 kHz audio had no voice metric, with speech_s 0.0
    import wave

    with wave.open(str(REAL / "two_sentences.wav")) as w:
        rate, x = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float64)
    t = np.arange(x.size) / rate
    hum = sum(np.sin(2 * np.pi * 50 * k * t) / k for k in range(1, 8))
    hum *= np.sqrt(np.mean(x ** 2) / np.mean(hum ** 2))  # as loud as the speech
    write_wav(tmp_path / "hummed.wav", np.clip(x + hum, -32768, 32767), rate=rate)
    hub = await analyse([f"{tmp_path / 'hummed.wav'}?realtime=0", "sim:audio?rate=24000&duration=2&name=rt",
                         "sim:audio?rate=44100&duration=2&name=cd"], Perception(transcribe="off"))
    hummed = hub.snapshot("hummed").metrics
    assert hummed["speech_s"] / hummed["audio_s"] >= 0.4, hummed  # measured 0.67 (the detector alone: 1.0)
    for name in ("rt", "cd"):  # measured (synthetic tones and noise: some voice or none), not "no data"
        m = hub.snapshot(name).metrics
        assert m["voice_pct"] is not None and m["voice_pct"] == m["voice_pct"] and m["speech_s"] >= 0, m
