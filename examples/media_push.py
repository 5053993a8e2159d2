"""Push audio samples and video frames you already have (numpy arrays) into MidStream.

    python examples/media_push.py
"""

import numpy as np

from midstream_tui import Hub, VirtualClock


def main() -> None:
    hub = Hub(VirtualClock())  # timestamps given explicitly below
    rate = 16_000
    t = np.arange(rate // 50) / rate  # 20 ms of audio per chunk
    for k in range(250):  # 5 s: a tone that is switched off half the time
        tone = 0.3 * np.sin(2 * np.pi * 440 * (t + k * 0.02)) if (k // 50) % 2 == 0 else np.zeros_like(t)
        hub.push_audio("microphone", tone, sample_rate=rate, t=(k + 1) * 0.02)
    frame = np.zeros((180, 320, 3), np.uint8)
    for k in range(150):  # 5 s at 30 fps: a bar sweeping across
        f = frame.copy()
        f[:, (k * 4) % 300:(k * 4) % 300 + 20] = (255, 200, 0)
        hub.push_video("camera", f, t=(k + 1) / 30)
    for name, snap in hub.analyze(now=5.0).items():
        m = snap.metrics
        if snap.kind == "audio":
            print(f"{name}: level {m['level_dbfs']:.1f} dBFS, silence {m['silence_pct']:.0f} %, "
                  f"attractor {snap.attractor.type}")
        else:
            print(f"{name}: {m['fps']:.1f} fps {m['resolution']}, motion {m['motion']:.3f}, "
                  f"attractor {snap.attractor.type}")
    for _, hit in hub.patterns_since(0):
        print(f"  {hit.t:5.2f}s {hit.stream} {hit.kind}: {hit.message}")


if __name__ == "__main__":
    main()
