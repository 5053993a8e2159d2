"""Perception: what is said in audio streams (speech) and what is in video frames (vision).

Both run beside the analysis, in worker threads of their own (the speech
recognizer in a child process: pocketsphinx holds the GIL while it decodes), at
the pace they can keep, and load their models there: they never hold up the
ingest of the stream they watch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Settings

TRANSCRIBE_CHOICES = ("off", "sphinx", "openai")
DETECT_CHOICES = ("off", "faces", "bodies", "all")


@dataclass(frozen=True)
class Perception:
    """What the hub attaches to new audio and video streams."""

    transcribe: str = "off"
    """off, sphinx (offline, pocketsphinx) or openai (the transcription API)."""
    transcribe_model: str = "whisper-1"
    detect: str = "off"
    """off, faces, bodies or all (OpenCV cascades)."""
    detect_interval: float = 1.0
    """Seconds between detections on one stream (the detector runs on the newest frame). Boxes and
    "in view" changes are read by a person: once a second is what they can follow, at a quarter of
    the cost of 4 Hz (a frontal-face pass on 640x360 takes 26-66 ms)."""
    include_simulated: bool = False
    """sim: streams are synthetic tones and shapes: nothing to hear or see, so skipped by default."""
    settings: Settings | None = field(default=None, repr=False, compare=False)
    """The run's settings (the transcription API's key and base URL); None: read from the environment when
    the API is first called (library use)."""

    def __post_init__(self) -> None:
        if self.transcribe not in TRANSCRIBE_CHOICES:
            raise ValueError(f"transcribe={self.transcribe!r}: expected one of {', '.join(TRANSCRIBE_CHOICES)}")
        if self.detect not in DETECT_CHOICES:
            raise ValueError(f"detect={self.detect!r}: expected one of {', '.join(DETECT_CHOICES)}")

    @property
    def enabled(self) -> bool:
        return self.transcribe != "off" or self.detect != "off"

    def attach(self, analyzer, source: str, opened_t: float = -math.inf) -> None:
        """Give a stream's analyzer its transcriber or detector; ``opened_t``: when the stream opened."""
        if source.startswith("sim:") and not self.include_simulated:
            return
        if analyzer.kind == "audio" and self.transcribe != "off" and analyzer.transcriber is None:
            from .speech import Transcriber

            analyzer.transcriber = Transcriber(analyzer.stream, self.transcribe, model=self.transcribe_model,
                                               settings=self.settings, not_before=opened_t)
        if analyzer.kind == "video" and self.detect != "off" and getattr(analyzer, "detector", None) is None:
            from .vision import Detector

            analyzer.detector = Detector(analyzer.stream, self.detect, interval=self.detect_interval)
