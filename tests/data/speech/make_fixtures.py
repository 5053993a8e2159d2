"""Rebuild the speech fixtures in this folder from their public sources (see README.md).

    pip download --no-deps --no-binary :all: pocketsphinx==5.1.1 -d /tmp/ps && tar xzf /tmp/ps/*.tar.gz -C /tmp/ps
    apt-get install -y alsa-utils
    python tests/data/speech/make_fixtures.py /tmp/ps/pocketsphinx-5.1.1

All outputs are 16 kHz mono 16-bit PCM WAV files.
"""

from __future__ import annotations

import sys
import wave
from pathlib import Path

import av
import numpy as np

HERE = Path(__file__).resolve().parent
RATE = 16_000
BOOK = "test/data/librivox/sense_and_sensibility_01_austen_64kb-{}.wav"


def read(path: Path) -> np.ndarray:
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    with av.open(str(path)) as container:
        frames = [f for frame in container.decode(audio=0) for f in resampler.resample(frame)]
    frames += resampler.resample(None)
    return np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.int16)


def write(name: str, pcm: np.ndarray) -> None:
    with wave.open(str(HERE / name), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm.astype("<i2").tobytes())
    print(f"{name}: {pcm.size / RATE:.2f} s")


def main(sdist: Path) -> None:
    # a read-aloud book recording (LibriVox, public domain) and a spoken playing card, as shipped in
    # pocketsphinx's test data
    write("book_0930.wav", read(sdist / BOOK.format("0930")))
    write("cards_001.wav", read(sdist / "test/data/cards/001.wav"))
    # two sentences of the same reader with a 0.4 s pause between them: each recording's speech
    # starts and ends where its .lab file says (0880: speech ends at 2.774 s; 0930: starts at 0.269 s);
    # keep 0.2 s of the reader's own room sound on each side
    first, second = read(sdist / BOOK.format("0880")), read(sdist / BOOK.format("0930"))
    write("two_sentences.wav", np.concatenate([first[: int((2.774 + 0.2) * RATE)], second[int((0.269 - 0.2) * RATE):]]))
    # pink noise, Debian alsa-utils' speaker test sound (GPL-2+)
    write("pink_noise.wav", read(Path("/usr/share/sounds/alsa/Noise.wav")))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
