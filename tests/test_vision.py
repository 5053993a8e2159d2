"""Detection with OpenCV's cascades on committed photos (a face, and none), through the hub and the dashboard."""

import asyncio
from pathlib import Path

import av
import numpy as np
from conftest import until

from midstream_tui import Hub, StreamClosed, StreamOpened, VideoFrame
from midstream_tui.perception import Perception
from midstream_tui.perception.vision import detect, load_cascades
from midstream_tui.sources.base import Source

DATA = Path(__file__).resolve().parent.parent / "midstream_tui" / "data" / "media"  # fixtures shipped for the demo too


def photo(name: str) -> np.ndarray:
    with av.open(str(DATA / f"{name}.jpg")) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


def canvas(name, size=(512, 512)):
    img = photo(name)
    out = np.zeros((size[1], size[0], 3), np.uint8)
    h, w = min(size[1], img.shape[0]), min(size[0], img.shape[1])
    out[:h, :w] = img[:h, :w]
    return out


class HeldSlides(Source):
    """Photos as a 10 fps video, each shown for ``seconds_each`` and until the detector has
    finished ``looks`` runs on it (``endless``: the last photo stays until cancelled).

    The detector samples the newest frame at most every ``detect_interval`` seconds of wall
    clock, so a fixed-length clip can slip past it on a busy machine: holding each photo until
    it has been looked at makes what is detected independent of the machine's speed.
    """

    kind = "video"

    def __init__(self, hub, names, *, seconds_each=1.5, fps=10, looks=3, endless=False, name="cam"):
        super().__init__(name, "held-slides", hub.clock)
        self.hub, self.names, self.seconds_each, self.fps = hub, names, seconds_each, fps
        self.looks, self.endless, self.sent = looks, endless, 0

    def looked_at(self, first: int, base: list) -> bool:
        """Whether ``looks`` detector runs were on frames from number ``first`` on."""
        snap = self.hub.snapshot(self.stream_id)
        if snap is None:
            return False
        if not base:  # the runs so far, once the photo's first frame reached the analysis
            if snap.metrics.get("frames", 0) <= first:
                return False
            base.append(snap.metrics.get("detect_runs", 0))
        # a run in progress then may be on the photo before: one more
        return snap.metrics.get("detect_runs", 0) >= base[0] + self.looks + 1

    async def events(self):
        yield StreamOpened(self.stream_id, self.clock.now(), kind="video", source=self.uri)
        for k, name in enumerate(self.names):
            frame, first, base = canvas(name), self.sent, []
            last = self.endless and k == len(self.names) - 1
            while not self.cancelled and (last or self.sent - first < self.seconds_each * self.fps
                                          or not self.looked_at(first, base)):
                yield VideoFrame(self.stream_id, self.clock.now(), frame=frame)
                self.sent += 1
                await asyncio.sleep(1 / self.fps)
        yield StreamClosed(self.stream_id, self.clock.now(), reason="cancelled" if self.cancelled else "finished")


def test_the_face_in_the_astronaut_photo_and_none_in_the_coffee():
    cascades = load_cascades(("face", "body", "upper body"))
    faces = [d for d in detect(cascades, photo("astronaut")) if d.label == "face"]
    assert len(faces) == 1
    face = faces[0]
    # Eileen Collins' face: about x 170-270, y 60-170 of the 512x512 photo
    assert 0.28 < face.x < 0.40 and 0.08 < face.y < 0.20 and 0.14 < face.w < 0.26 and face.score > 1
    assert detect(cascades, photo("coffee")) == ()
    # frames of any shape (a 16000x2 frame scaled to 640 wide had no rows left: OpenCV asserted)
    for shape in ((2, 16000, 3), (16000, 2, 3), (1, 1, 3)):
        assert detect(cascades, np.zeros(shape, np.uint8)) == ()


async def test_detections_while_a_video_plays_with_changes_in_the_log():
    hub = Hub(analysis_interval=0.05, perception=Perception(detect="faces", detect_interval=0.1))
    slides = HeldSlides(hub, ["coffee", "astronaut", "coffee"])
    hub.add_source(slides)
    seen = []

    async def watch():
        while True:
            snap = hub.snapshot("cam")
            if snap is not None and snap.detections:
                seen.append(snap.detections)
            await asyncio.sleep(0.05)

    watcher = asyncio.ensure_future(watch())
    await hub.run(300)  # until the slides end; the bound is for a hang only
    watcher.cancel()
    assert seen and all(d.label == "face" for ds in seen for d in ds)
    assert 0.28 < seen[0][0].x < 0.40  # the astronaut's face, boxed where it is
    log = [h.message for _, h in hub.patterns_since(0) if h.kind == "detection"]
    assert log == ["in view: 1 face", "nothing detected in view"]
    snap = hub.snapshot("cam")
    assert snap.metrics["detect_runs"] >= 9 and snap.metrics["detect"] == "faces"
    assert snap.status == "closed" and slides.sent >= 45
    assert snap.metrics["frames"] == slides.sent and snap.metrics["drops"] == 0  # detection never held them back


async def test_the_dashboard_draws_the_box_and_names_it():
    from midstream_tui.tui.app import MidStreamApp
    from midstream_tui.tui.widgets.frame_preview import FramePreview, draw_boxes

    hub = Hub(perception=Perception(detect="faces", detect_interval=0.1))
    slides = HeldSlides(hub, ["astronaut"], endless=True, name="face")  # until the app stops it
    app = MidStreamApp(hub, [slides], refresh_ms=100)
    async with app.run_test(size=(120, 40)) as pilot:
        assert await until(pilot, lambda: hub.snapshot("face") is not None and hub.snapshot("face").detections,
                           timeout=120)
        snap = hub.snapshot("face")
        preview = app.query_one(FramePreview)
        # the caption under the frame names what is boxed
        assert await until(pilot, lambda: preview.display and "face" in preview.picture_text)
        assert await until(pilot, lambda: "faces · bodies" in str(app.query_one("#metrics").render()))
    boxed = draw_boxes(np.zeros((100, 100, 3), np.uint8), snap.detections)
    assert boxed[:, :, 1].max() == 255 and boxed.sum() > 0  # the outline is drawn in the face colour


def test_a_clip_in_a_loop_is_searched_once_in_the_same_frames():
    """Frames that know their media time are picked by it (the first of each second); in the next pass of the
    loop those frames, byte for byte the same, get the boxes found the first time without a search."""
    import time

    from midstream_tui.data.demo_media import demo_clip
    from midstream_tui.perception.vision import Detector

    with av.open(str(demo_clip())) as container:  # the demo's camera clip: H.264, a face for its first 6 s
        frames = [(f.time, f.to_ndarray(format="rgb24")) for f in container.decode(video=0) if f.time < 4.0]
    det = Detector("cam", "faces", interval=1.0)
    found: list[list] = [[], []]
    try:
        for k in range(2):
            for i, (media_t, frame) in enumerate(frames):
                t = 4.0 * k + media_t
                if det.offer(t, frame, media_t, discontinuity=k > 0 and i == 0):
                    runs = det.runs
                    until_t = time.monotonic() + 60  # liveness only: each kept frame is looked at before the next
                    while det.runs == runs and time.monotonic() < until_t:
                        time.sleep(0.005)
                    found[k].append([(d.label, d.x, d.y, d.w, d.h, d.score, round(d.t - 4.0 * k, 6))
                                     for d in det.latest()])
    finally:
        det.close()
    assert not det.errors
    assert len(found[0]) == 4 and det.runs == 8  # media seconds 0, 1, 2, 3 of each pass
    assert all(any(d[0] == "face" for d in dets) for dets in found[0])
    assert found[1] == found[0] and det.reused == 4 and len(det.seconds) == 4  # the second pass: no search
