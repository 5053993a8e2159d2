"""Detection with OpenCV's cascades on committed photos (a face, and none), through the hub and the dashboard."""

import asyncio
from pathlib import Path

import av
import numpy as np

from midstream_tui import Hub, open_sources
from midstream_tui.perception import Perception
from midstream_tui.perception.vision import detect, load_cascades

DATA = Path(__file__).resolve().parent.parent / "midstream_tui" / "data" / "media"  # fixtures shipped for the demo too


def photo(name: str) -> np.ndarray:
    with av.open(str(DATA / f"{name}.jpg")) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


def slideshow(path, names, seconds_each=1.5, fps=10, size=(512, 512)):
    out = av.open(str(path), "w")
    stream = out.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
    for name in names:
        img = photo(name)
        canvas = np.zeros((size[1], size[0], 3), np.uint8)
        h, w = min(size[1], img.shape[0]), min(size[0], img.shape[1])
        canvas[:h, :w] = img[:h, :w]
        for _ in range(int(seconds_each * fps)):
            for packet in stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
                out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()


def test_the_face_in_the_astronaut_photo_and_none_in_the_coffee():
    cascades = load_cascades(("face", "body", "upper body"))
    faces = [d for d in detect(cascades, photo("astronaut")) if d.label == "face"]
    assert len(faces) == 1
    face = faces[0]
    # Eileen Collins' face: about x 170-270, y 60-170 of the 512x512 photo
    assert 0.28 < face.x < 0.40 and 0.08 < face.y < 0.20 and 0.14 < face.w < 0.26 and face.score > 1
    assert detect(cascades, photo("coffee")) == ()


async def test_detections_while_a_video_plays_with_changes_in_the_log(tmp_path):
    clip = tmp_path / "slides.mp4"
    slideshow(clip, ["coffee", "astronaut", "coffee"])
    hub = Hub(analysis_interval=0.05, perception=Perception(detect="faces", detect_interval=0.1))
    for src in open_sources([f"{clip}?name=cam"], hub.clock):
        hub.add_source(src)
    seen = []

    async def watch():
        while True:
            snap = hub.snapshot("cam")
            if snap is not None and snap.detections:
                seen.append(snap.detections)
            await asyncio.sleep(0.05)

    watcher = asyncio.ensure_future(watch())
    await hub.run(20)
    watcher.cancel()
    assert seen and all(d.label == "face" for ds in seen for d in ds)
    assert 0.28 < seen[0][0].x < 0.40  # the astronaut's face, boxed where it is
    log = [h.message for _, h in hub.patterns_since(0) if h.kind == "detection"]
    assert log == ["in view: 1 face", "nothing detected in view"]
    snap = hub.snapshot("cam")
    assert snap.metrics["detect_runs"] >= 10 and snap.metrics["detect"] == "faces"
    assert snap.metrics["frames"] == 45  # detection never held the frames back


async def test_the_dashboard_draws_the_box_and_names_it(tmp_path):
    from midstream_tui.tui.app import MidStreamApp
    from midstream_tui.tui.widgets.frame_preview import FramePreview, draw_boxes

    clip = tmp_path / "face.mp4"
    slideshow(clip, ["astronaut"], seconds_each=3.0)
    hub = Hub(perception=Perception(detect="faces", detect_interval=0.1))
    app = MidStreamApp(hub, open_sources([str(clip)], hub.clock), refresh_ms=100)
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(60):
            await pilot.pause(0.1)
            snap = hub.snapshot("face")
            if snap is not None and snap.detections:
                break
        await pilot.pause(0.3)
        preview = app.query_one(FramePreview)
        assert preview.display
        text = str(preview.render())
        assert "face" in text  # the caption under the frame names what is boxed
        assert "faces · bodies" in str(app.query_one("#metrics").render())
    boxed = draw_boxes(np.zeros((100, 100, 3), np.uint8), snap.detections)
    assert boxed[:, :, 1].max() == 255 and boxed.sum() > 0  # the outline is drawn in the face colour
