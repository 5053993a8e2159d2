"""The pocketsphinx recognizer, run as a child process of the transcriber.

pocketsphinx's Python binding holds the GIL for the whole of every call
(``process_raw`` has no ``nogil`` section in its Cython source), so a decoder
in a thread of the hub stops the hub's other threads — ingest, analysis, the
UI — for as long as it decodes: seconds, when a whole utterance is decoded at
once. Here it runs in a process of its own and talks over pipes.

Two decoders: a fast live one (narrow search, no second pass) gives partial
hypotheses while an utterance goes on; when it ends, the default decoder
recognizes the whole utterance in one call with ``full_utt=True`` (cepstral
mean normalisation over the utterance, as when decoding a file), which gets
clearly more words right than the live decode.

This file imports nothing from MidStream: it is started as a script
(``python sphinx_worker.py``), which keeps its start fast.

Protocol. In (stdin), messages of a 1-byte kind, a 4-byte little-endian length
and a payload: ``S`` utterance begins (payload: its id, ASCII), ``A`` audio
(16 kHz mono s16le), ``E`` utterance ends, ``X`` utterance dropped (not speech), ``R`` a result line to send back as
it is (the transcriber's cached results, kept in order with the decoded ones), ``Q`` quit (end of stdin too).
Out (stdout), one JSON object a line: ``{"ready": true}`` once loaded, then
``{"id", "partial", "dur", "cpu"}``, ``{"id", "final", "words", "cpu"}`` and ``{"id", "dropped", "cpu"}``
(words as ``[word, start_s, end_s]`` from the utterance start; cpu: this
process's CPU seconds since the model was loaded).
"""

from __future__ import annotations

import json
import re
import struct
import sys
import time

RATE = 16_000
PARTIAL_INTERVAL = 0.5  # seconds of audio between partial hypotheses
LIVE_SEARCH = {"fwdflat": False, "bestpath": False, "maxhmmpf": 1000, "maxwpf": 5}
"""The live decoder only feeds partials, which the final decode replaces: keep it cheap."""
FINAL_SEARCH = {"maxhmmpf": 5000}
"""At most 5,000 active HMMs a frame (the default is 30,000): on the bench's 128 words of real speech
the same words as the default search for 3/4 of its CPU time (3,000: the same words too; 2,000 lost one)."""
_ALT = re.compile(r"\(\d+\)$")
_FILLERS = {"<s>", "</s>", "<sil>", "[NOISE]", "[SPEECH]", "<unk>"}


def new_decoder(**search):
    from pocketsphinx import Decoder

    return Decoder(samprate=RATE, loglevel="FATAL", **search)


def words_of(decoder) -> list[tuple[str, float, float]]:
    """Words of a decoder's best hypothesis, fillers removed, alternates named plainly (10 ms frames)."""
    return [(_ALT.sub("", seg.word), seg.start_frame / 100.0, (seg.end_frame + 1) / 100.0)
            for seg in decoder.seg() if seg.word not in _FILLERS and not seg.word.startswith("++")]


def decode_whole(decoder, pcm16: bytes) -> list[tuple[str, float, float]]:
    """One utterance in one call, normalised over all of it (as a whole-file decode)."""
    decoder.start_utt()
    if pcm16:
        decoder.process_raw(pcm16, False, True)
    decoder.end_utt()
    return words_of(decoder)


def serve(inp=None, out=None) -> None:
    inp = inp or sys.stdin.buffer
    out = out or sys.stdout

    def say(**msg) -> None:
        out.write(json.dumps(msg) + "\n")
        out.flush()

    live, final = new_decoder(**LIVE_SEARCH), new_decoder(**FINAL_SEARCH)
    loaded = time.process_time()  # loading the model is not transcription

    def cpu() -> float:
        return time.process_time() - loaded

    say(ready=True)
    uid, audio, partial_at, live_on = "", bytearray(), 0.0, False
    while True:
        head = inp.read(5)
        if len(head) < 5:
            break
        kind, size = head[:1], struct.unpack("<I", head[1:])[0]
        payload = inp.read(size) if size else b""
        if len(payload) < size:
            break
        if kind == b"S":
            uid, audio, partial_at = payload.decode("ascii"), bytearray(), 0.0
            live.start_utt()
            live_on = True
        elif kind == b"A" and live_on:
            audio += payload
            live.process_raw(payload, False, False)
            dur = len(audio) / 2 / RATE
            if dur - partial_at >= PARTIAL_INTERVAL:
                partial_at = dur
                hyp = live.hyp()
                if hyp is not None and hyp.hypstr:
                    say(id=uid, partial=hyp.hypstr, dur=dur, cpu=cpu())
        elif kind == b"E" and live_on:
            live.end_utt()
            live_on = False
            words = decode_whole(final, bytes(audio))
            say(id=uid, final=" ".join(w for w, _, _ in words), words=words, cpu=cpu())
        elif kind == b"X" and live_on:  # not speech after all: no final decode
            live.end_utt()
            live_on = False
            say(id=uid, dropped=True, cpu=cpu())
        elif kind == b"R":  # in order with the results before it
            out.write(payload.decode("utf-8") + "\n")
            out.flush()
        elif kind == b"Q":
            break


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is for the hub; this process ends when its stdin does
    try:
        serve()
    except (BrokenPipeError, KeyboardInterrupt):
        pass
