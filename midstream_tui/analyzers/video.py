"""Video frames: frame rate and timing, bitrate, brightness, motion, scene cuts (and detection, when attached)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..analysis import kernels
from ..analysis.stats import rate, summarize
from ..events import Event, VideoFrame
from ..snapshot import PatternHit
from .base import NOTHING, Measured, Ring, StreamAnalyzer


class VideoAnalyzer(StreamAnalyzer):
    """Video frames: frame rate and timing, bitrate, brightness, motion, scene cuts."""

    kind = "video"
    signal_name = "motion energy (cuts removed)"
    queue_capacity = 16  # raw 720p frames are 2.7 MB each: keep the queue short
    THUMB_WIDTH = 160
    PREVIEW_WIDTH = 160
    PREVIEW_INTERVAL = 0.2

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.frame_t = Ring(2048)
        self.motion = Ring(2048)
        self.brightness = Ring(2048)
        self.frames = 0
        self.scene_cuts = 0
        self.late_frames = 0
        self.width = 0
        self.height = 0
        self.thumbnail: np.ndarray | None = None
        self.preview: np.ndarray | None = None
        """A small RGB copy of the newest frame (refreshed a few times a second) for the dashboard."""
        self._preview_t = -math.inf
        self._interval_p50 = math.nan
        self._gaps = np.zeros(0)
        self._interval = summarize(self._gaps)
        self.detector = None
        """A perception.vision.Detector when this stream is watched for faces/bodies."""

    def ingest(self, event: Event) -> Measured:
        if not isinstance(event, VideoFrame):
            return NOTHING
        frame = event.frame
        if frame.ndim != 3 or frame.shape[2] < 3 or frame.dtype != np.uint8:
            self.hits.append(PatternHit(event.t, self.stream, "error",
                                        f"unsupported frame {frame.shape} {frame.dtype}: expected HxWx3 uint8"))
            return NOTHING
        self.height, self.width = int(frame.shape[0]), int(frame.shape[1])
        # never a step taller than the frame: a very wide one (4096x16) got a thumbnail of no rows, no brightness
        step = max(1, min(self.width // self.THUMB_WIDTH, self.height))
        thumb = kernels.luma_thumbnail(frame, step)
        prev = self.thumbnail
        motion = float(kernels.mean_abs_diff(thumb, prev)) if prev is not None and prev.shape == thumb.shape else 0.0
        recent = self.motion.values(30)
        typical = float(np.median(recent)) if recent.size else 0.0
        if prev is not None and motion > 0.08 and motion > 5.0 * typical:
            self.scene_cuts += 1
            self.hits.append(PatternHit(event.t, self.stream, "scene-cut",
                                        f"scene cut at frame {self.frames + 1} (change {motion:.2f})"))
            # A cut is an event, not motion: keep it out of the motion signal.
            motion = typical
        if self.frame_t.total and not math.isnan(self._interval_p50):
            if event.t - self.frame_t.last() > 1.5 * self._interval_p50:
                self.late_frames += 1
        self.thumbnail = thumb
        if event.t - self._preview_t >= self.PREVIEW_INTERVAL:
            self._preview_t = event.t
            width = min(self.PREVIEW_WIDTH, self.width)
            height = max(1, round(width * self.height / self.width))
            preview = kernels.rgb_thumbnail(frame, height, width)
            preview.flags.writeable = False
            self.preview = preview
        if self.detector is not None:
            self.detector.offer(event.t, frame, event.media_t, event.discontinuity)
        self.frames += 1
        self.frame_t.append(event.t)
        self.motion.append(motion)
        brightness = float(thumb.mean())
        self.brightness.append(brightness)
        self._count_bytes(event.t, event.nbytes)
        self.signal_changed = True
        return Measured(motion=motion, brightness=brightness)

    def update(self, now: float) -> None:
        self._gaps = np.diff(self.frame_t.values(300))
        self._interval = summarize(self._gaps)
        self._interval_p50 = self._interval.p50  # what a late frame is late against

    def metrics(self, now: float, since: float) -> dict[str, Any]:
        gaps, interval = self._gaps, self._interval
        # inter-frame jitter: mean deviation of the gaps from their median (RFC 3550's idea, per frame)
        jitter = float(np.mean(np.abs(gaps - interval.p50))) * 1e3 if gaps.size >= 2 else math.nan
        return {
            "fps": rate(self.frame_t.values(), None, now, 2.0, since),
            "resolution": f"{self.width}x{self.height}" if self.frames else "",
            "interval_p50_ms": interval.p50 * 1e3,
            "interval_p99_ms": interval.p99 * 1e3,
            "jitter_ms": jitter,
            "bitrate_mbps": self.bytes_per_s(now, 2.0, since) * 8 / 1e6,
            "brightness": self.brightness.last(),
            "motion": self.motion.last(),
            "frames": self.frames,
            "scene_cuts": self.scene_cuts,
            "late_frames": self.late_frames,
        } | (self._detection_metrics() if self.detector is not None else {})

    def _detection_metrics(self) -> dict[str, Any]:
        det = self.detector
        found = det.latest()
        took = np.fromiter(det.seconds, float) if det.seconds else np.zeros(0)
        return {"detect": det.what, "detected": len(found),
                "faces": sum(d.label == "face" for d in found),
                "bodies": sum(d.label != "face" for d in found),
                "detect_runs": det.runs, "detect_p50_ms": float(np.median(took)) * 1e3 if took.size else math.nan}

    def detections(self) -> tuple:
        return self.detector.latest() if self.detector is not None else ()

    def close(self) -> None:
        if self.detector is not None:
            self.detector.close()

    def quiet(self) -> bool:
        return self.detector is None and super().quiet()  # (its last detections can come after the end)

    def take_hits(self) -> list[PatternHit]:
        det = self.detector
        if det is not None:
            while det.changes:
                t, message = det.changes.popleft()
                self.hits.append(PatternHit(t, self.stream, "detection", message))
            while det.errors:
                self.hits.append(PatternHit(self.last_t, self.stream, "error", f"detection: {det.errors.popleft()}"))
        return super().take_hits()

    def signal(self) -> np.ndarray:
        return self.motion.values(600)[1:]  # the first frame has no predecessor

    def signal_points(self) -> dict[str, int]:
        return {self.signal_name: self.motion.total}
