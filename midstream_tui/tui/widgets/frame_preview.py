"""The frame preview: a video stream's recent frame drawn with half-block characters.

Each character cell shows two pixels (the upper half block's foreground and
its background), sampled from the snapshot's small preview image to the
panel's size. Redrawn at most a few times a second, only when the image changed.
"""

from __future__ import annotations

import numpy as np
from rich.color import Color
from rich.style import Style
from rich.text import Text

from ...snapshot import Snapshot
from .snapshot_panel import SnapshotPanel


def half_blocks(image: np.ndarray, cols: int, rows: int) -> Text:
    """``image`` (H, W, 3) uint8 sampled to cols x 2*rows pixels, as rows of '▀' cells."""
    h, w = image.shape[:2]
    ys = np.minimum(h - 1, (np.arange(2 * rows) * h) // (2 * rows))
    xs = np.minimum(w - 1, (np.arange(cols) * w) // cols)
    px = image[ys][:, xs]
    text = Text()
    styles: dict[tuple, Style] = {}
    for r in range(rows):
        top, bottom = px[2 * r], px[2 * r + 1]
        for c in range(cols):
            key = (*top[c], *bottom[c])
            style = styles.get(key)
            if style is None:
                style = styles[key] = Style(color=Color.from_rgb(*top[c]), bgcolor=Color.from_rgb(*bottom[c]))
            text.append("▀", style)
        if r < rows - 1:
            text.append("\n")
    return text


BOX_COLOURS = {"face": (60, 255, 90), "body": (255, 210, 40), "upper body": (255, 120, 40)}


def draw_boxes(image: np.ndarray, detections) -> np.ndarray:
    """A copy of ``image`` with each detection's box outlined (boxes are fractions of the frame)."""
    out = image.copy()
    h, w = out.shape[:2]
    for d in detections:
        x0, y0 = int(d.x * w), int(d.y * h)
        x1, y1 = min(w - 1, int((d.x + d.w) * w)), min(h - 1, int((d.y + d.h) * h))
        colour = BOX_COLOURS.get(d.label, (255, 255, 255))
        t = max(1, min(h, w) // 60)  # thick enough to survive the sampling down to the panel
        out[y0:y0 + t, x0:x1 + 1] = colour
        out[max(y0, y1 - t + 1):y1 + 1, x0:x1 + 1] = colour
        out[y0:y1 + 1, x0:x0 + t] = colour
        out[y0:y1 + 1, max(x0, x1 - t + 1):x1 + 1] = colour
    return out


class FramePreview(SnapshotPanel):
    KINDS, LABEL = ("video",), "Frame"

    def key(self, snap: Snapshot | None, cols: int, rows: int):
        return (id(snap.preview) if snap is not None else None, snap.detections if snap is not None else (),
                cols, rows)

    def draw(self, snap: Snapshot | None, cols: int, rows: int) -> None:
        image = snap.preview if snap is not None else None
        if image is None or image.size == 0:
            self.update("no frame yet", layout=False)
            return
        caption = None
        if snap.detections:
            image = draw_boxes(image, snap.detections)
            caption = " · ".join(f"{d.label} {d.score:.1f}" for d in snap.detections[:4])
            rows -= 1
        rows = max(2, rows)
        # keep the frame's aspect: a cell is about twice as tall as wide, and holds two pixels
        aspect = image.shape[1] / image.shape[0]
        use_cols = min(cols, max(4, int(round(rows * 2 * aspect))))
        picture = half_blocks(image, use_cols, rows)
        if caption:
            picture.append("\n" + caption[:cols], "bold")
        self.update(picture, layout=False)
