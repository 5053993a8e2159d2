"""Vision: faces and bodies in a video stream, with OpenCV's Haar cascades, in a worker thread.

A cascade costs tens of milliseconds per frame, so the detector never runs on
every frame: ``offer`` keeps one frame per interval (never blocks, never
queues), and the worker detects on it: once per ``interval`` seconds of wall
clock for frames without a media time, once per interval of media time
otherwise (and at most twice per interval of wall clock, for an input read
faster than real time); a frame seen before, byte for byte, gets the boxes
found the first time.
Boxes are fractions of the frame (x, y, width, height in 0..1), so they can be
drawn on any size of preview; the score is the cascade's level weight (higher
is surer; about 0 is a weak hit).
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, replace

import numpy as np

DETECT_WIDTH = 640  # frames are downscaled to this width first (cost grows with pixels)
CASCADES = {
    "face": ("haarcascade_frontalface_default.xml", 1.1, 5, 0.06),
    "body": ("haarcascade_fullbody.xml", 1.1, 3, 0.15),
    "upper body": ("haarcascade_upperbody.xml", 1.1, 4, 0.15),
}
"""label: (cascade file, scale factor, min neighbours, min size as a fraction of the frame height)."""
SEEN_MAX = 1024  # frames whose detections are kept for reuse (a few hundred bytes each)
WHAT = {"faces": ("face",), "bodies": ("body", "upper body"), "all": ("face", "body", "upper body")}


@dataclass(frozen=True, slots=True)
class Detection:
    label: str
    x: float
    y: float
    w: float
    h: float
    score: float
    t: float
    """Hub time of the frame it was found in."""

    def to_json(self) -> dict:
        return {"label": self.label, "box": [round(v, 4) for v in (self.x, self.y, self.w, self.h)],
                "score": round(self.score, 2), "t": round(self.t, 3)}


def load_cascades(labels: tuple[str, ...]):
    import cv2

    out = {}
    for label in labels:
        name, scale, neighbours, min_size = CASCADES[label]
        classifier = cv2.CascadeClassifier(cv2.data.haarcascades + name)
        if classifier.empty():
            raise RuntimeError(f"OpenCV cascade {name} is missing: install opencv-python-headless < 5")
        out[label] = (classifier, scale, neighbours, min_size)
    return out


def detect(cascades, frame: np.ndarray, t: float = 0.0) -> tuple[Detection, ...]:
    """Every cascade on one RGB frame; boxes as fractions of the frame."""
    import cv2

    h, w = frame.shape[:2]
    scale = min(1.0, DETECT_WIDTH / w)
    # (at least a pixel each way: a 16000x2 frame scaled to 640 wide had no rows, and OpenCV asserted)
    small = cv2.resize(frame, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA) \
        if scale < 1 else frame
    gray = cv2.equalizeHist(cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2GRAY))
    sh, sw = gray.shape
    found = []
    for label, (classifier, factor, neighbours, min_size) in cascades.items():
        side = max(16, int(min_size * sh))
        boxes, _levels, weights = classifier.detectMultiScale3(gray, scaleFactor=factor, minNeighbors=neighbours,
                                                               minSize=(side, side), outputRejectLevels=True)
        for (bx, by, bw, bh), weight in zip(boxes, np.ravel(weights) if len(boxes) else []):
            found.append(Detection(label, float(bx / sw), float(by / sh), float(bw / sw), float(bh / sh), float(weight), t))
    return tuple(sorted(found, key=lambda d: -d.score))


class Detector:
    """Detection on one frame of a stream per ``interval`` seconds.

    Frames that know their place in the media (``media_t``) are picked by it: the first frame of each
    interval of media time, so a clip played in a loop is looked at in the same frames each time, and
    those frames, byte for byte the same, get the boxes found the first time without a second search.
    Other frames: the newest one when the detector is free, at most once per ``interval`` seconds.
    """

    def __init__(self, stream: str, what: str = "faces", *, interval: float = 0.25) -> None:
        if what not in WHAT:
            raise ValueError(f"detect={what!r}: expected one of {', '.join(WHAT)}")
        self.stream, self.what, self.interval = stream, what, interval
        self._cascades = None  # loaded by the worker: the stream's ingest never waits for OpenCV
        self._cond = threading.Condition()
        self._frame: tuple[float, np.ndarray, bool] | None = None
        self._closed = False
        self._latest: tuple[Detection, ...] = ()
        self.runs = 0
        self.reused = 0
        """Frames seen before (the same bytes): their detections were reused, not searched again."""
        self._seen: OrderedDict[bytes, tuple[Detection, ...]] = OrderedDict()  # frame digest -> what was found
        self._next_media = 0.0  # media time from which the next frame is due
        self.skipped = 0
        """Frames replaced by a newer one before the detector got to them."""
        self.seconds: deque[float] = deque(maxlen=200)
        self.errors: deque[str] = deque(maxlen=10)
        self.changes: deque[tuple[float, str]] = deque(maxlen=50)
        """(time, message) when what is in view changes, for the pattern log."""
        self._counts: dict[str, int] = {}
        self._candidate: tuple[dict[str, int], int] | None = None
        self._thread = threading.Thread(target=self._run, name=f"detect-{stream}", daemon=True)
        self._thread.start()

    def offer(self, t: float, frame: np.ndarray, media_t: float | None = None, discontinuity: bool = False) -> bool:
        """A new frame of the stream; True if it is kept for the detector (it may still be replaced by a
        newer one before the detector gets to it), False if not due (another frame of its interval was)."""
        if media_t is not None:
            if discontinuity or media_t < self._next_media - self.interval:  # the media started again
                self._next_media = 0.0
            if media_t < self._next_media:
                return False
            self._next_media = (math.floor(media_t / self.interval) + 1) * self.interval
        with self._cond:
            if self._frame is not None:
                self.skipped += 1
            self._frame = (t, frame, media_t is not None)  # events' frames are read-only: shared, not copied
            self._cond.notify()
        return True

    def latest(self) -> tuple[Detection, ...]:
        return self._latest

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(10)

    def _run(self) -> None:
        import cv2

        cv2.setNumThreads(1)  # one core per stream at most: the analysis needs the others
        try:
            self._cascades = load_cascades(WHAT[self.what])
        except Exception as exc:  # noqa: BLE001 - a broken OpenCV install is recorded, not raised into ingest
            self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
            return
        next_due = 0.0
        while True:
            with self._cond:
                while self._frame is None and not self._closed:
                    self._cond.wait()
                if self._frame is None:  # closed, nothing left
                    return
                wait = next_due - time.monotonic()
                if wait > 0 and not self._closed:
                    self._cond.wait(wait)  # newer frames may replace this one meanwhile
                    continue
                t, frame, timed = self._frame
                self._frame = None
                closed = self._closed
            started = time.perf_counter()
            digest = hashlib.blake2b(np.ascontiguousarray(frame).data, digest_size=16).digest()
            seen = self._seen.get(digest)
            if seen is not None:
                self._seen.move_to_end(digest)
                found = tuple(replace(d, t=t) for d in seen)
                self.reused += 1
            else:
                try:
                    found = detect(self._cascades, frame, t)
                    self._seen[digest] = found
                    if len(self._seen) > SEEN_MAX:
                        self._seen.popitem(last=False)
                except Exception as exc:  # noqa: BLE001 - an odd frame is recorded, the detector goes on
                    self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    found = ()
                self.seconds.append(time.perf_counter() - started)
            self.runs += 1
            self._latest = found
            self._note_change(t, found)
            # frames picked by media time come once per interval of it: the wall clock only keeps a
            # faster-than-real-time input from costing more than twice the detections a second
            next_due = time.monotonic() + (self.interval / 2 if timed else self.interval)
            if closed:
                return

    def _note_change(self, t: float, found: tuple[Detection, ...]) -> None:
        """Log a change of what is in view once it held for two detections in a row."""
        counts: dict[str, int] = {}
        for d in found:
            counts[d.label] = counts.get(d.label, 0) + 1
        if counts == self._counts:
            self._candidate = None
            return
        if self._candidate is None or self._candidate[0] != counts:
            self._candidate = (counts, 1)
            return
        self._counts, self._candidate = counts, None
        if counts:
            what = ", ".join(f"{n} {label}{'s' if n > 1 else ''}" for label, n in sorted(counts.items()))
            self.changes.append((t, f"in view: {what}"))
        else:
            self.changes.append((t, "nothing detected in view"))
