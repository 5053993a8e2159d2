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


class FramePreview(SnapshotPanel):
    def key(self, snap: Snapshot | None, cols: int, rows: int):
        return (id(snap.preview) if snap is not None else None, cols, rows)

    def draw(self, snap: Snapshot | None, cols: int, rows: int) -> None:
        image = snap.preview if snap is not None else None
        if image is None or image.size == 0:
            self.update("no frame yet", layout=False)
            return
        rows = max(2, rows)
        # keep the frame's aspect: a cell is about twice as tall as wide, and holds two pixels
        aspect = image.shape[1] / image.shape[0]
        use_cols = min(cols, max(4, int(round(rows * 2 * aspect))))
        self.update(half_blocks(image, use_cols, rows), layout=False)
