"""The offline demo's media: a short clip encoded with real codecs from the fixtures shipped in the package.

``demo_clip()`` writes (once, into the user's cache folder) ``camera.mp4``: 640x360
H.264 at 25 fps over AAC audio. The picture is moving shapes, with the astronaut
photo (a face to detect) in view for the first half; the sound is the two speech
recordings with pauses (words to transcribe). ``midstream demo video`` plays it in a
loop through PyAV like any file, so decoding, detection and transcription are real.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

MEDIA = Path(__file__).resolve().parent / "media"
VERSION = 1
WIDTH, HEIGHT, FPS, SECONDS = 640, 360, 25, 12
RATE = 48_000


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "midstream"


def speech_path() -> Path:
    return MEDIA / "speech_stella.wav"


def _decode_audio(path: Path) -> np.ndarray:
    import av

    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    with av.open(str(path)) as container:
        return np.concatenate([f.to_ndarray().reshape(-1) for frame in container.decode(audio=0)
                               for f in resampler.resample(frame)])


def _photo() -> np.ndarray:
    import av

    with av.open(str(MEDIA / "astronaut.jpg")) as container:
        img = next(container.decode(video=0)).to_ndarray(format="rgb24")
    return img[::2, ::2]  # 256x256: a face of about 50 pixels in a 640x360 frame


def demo_clip(folder: Path | None = None) -> Path:
    """The demo clip's path, written first if missing (about a second of encoding)."""
    folder = folder or cache_dir()
    path = folder / f"camera-v{VERSION}.mp4"
    if path.is_file() and path.stat().st_size > 0:
        return path
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".mp4", dir=folder)
    os.close(fd)
    try:
        _write(Path(tmp))
        os.replace(tmp, path)  # never a half-written clip under the real name
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _write(path: Path) -> None:
    import av

    pause = np.zeros(RATE // 2, dtype=np.int16)
    voice = np.concatenate([pause, _decode_audio(MEDIA / "speech_fox.wav"), pause, pause,
                            _decode_audio(MEDIA / "speech_stella.wav"), pause])
    total = SECONDS * RATE
    sound = np.zeros(total, dtype=np.int16)
    sound[: min(total, voice.size)] = voice[:total]
    photo = _photo()
    rng = np.random.default_rng(7)
    out = av.open(str(path), "w")
    video = out.add_stream("libx264", rate=FPS, options={"preset": "veryfast", "crf": "26"})
    video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    audio = out.add_stream("aac", rate=RATE, layout="mono")
    ramp = np.linspace(40, 110, HEIGHT, dtype=np.float32)[:, None, None]
    background = np.broadcast_to(ramp * np.array([0.6, 0.8, 1.0], np.float32), (HEIGHT, WIDTH, 3)).astype(np.uint8)
    balls = [(rng.uniform(40, WIDTH - 40), rng.uniform(40, HEIGHT - 40), rng.uniform(-4, 4), rng.uniform(-3, 3),
              rng.integers(80, 255, 3).astype(np.uint8)) for _ in range(4)]
    k = 0
    for i in range(SECONDS * FPS):
        frame = background.copy()
        for j, (x, y, vx, vy, colour) in enumerate(balls):
            x, y = x + vx, y + vy
            vx, vy = (-vx if not 20 < x < WIDTH - 20 else vx), (-vy if not 20 < y < HEIGHT - 20 else vy)
            balls[j] = (x, y, vx, vy, colour)
            frame[max(0, int(y) - 14):int(y) + 14, max(0, int(x) - 14):int(x) + 14] = colour
        if i < SECONDS * FPS // 2:  # the photo drifts across the first half, then leaves
            px = 40 + int(200 * i / (SECONDS * FPS // 2))
            frame[50:50 + photo.shape[0], px:px + photo.shape[1]] = photo
        for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            out.mux(packet)
        while k < total and k < (i + 1) * RATE // FPS:
            chunk = sound[k:k + 1024]
            af = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
            af.sample_rate, af.pts = RATE, k
            for packet in audio.encode(af):
                out.mux(packet)
            k += chunk.size
    for stream in (video, audio):
        for packet in stream.encode():
            out.mux(packet)
    out.close()
