"""The frame preview: a video stream's recent frame drawn with half-block characters.

Each character cell shows two pixels (the upper half block's foreground and
its background), sampled from the snapshot's small preview image to the
panel's size. Redrawn at most a few times a second, only when the image changed.

The picture is handed to Textual as finished lines (its line API: ``render_line``),
not as text to lay out: a frame is hundreds of differently coloured cells, and
taking each through markup, wrapping and styling cost a video stream's dashboard
more than all of its analysis.
"""

from __future__ import annotations

import math

import numpy as np
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from ...snapshot import Snapshot
from ..terminal_safety import safe
from .snapshot_panel import SnapshotPanel

HALF = "▀"  # upper half block: foreground the top pixel, background the bottom one
STYLES_MAX = 8192
_styles: dict[int, Style] = {}
"""(top << 24 | bottom) packed RGB -> its cell style, shared by every frame (a clip's colours recur)."""


def _style(pair: int) -> Style:
    style = _styles.get(pair)
    if style is None:
        if len(_styles) >= STYLES_MAX:
            _styles.clear()
        top, bottom = pair >> 24, pair & 0xFFFFFF
        style = _styles[pair] = Style(color=Color.from_rgb(top >> 16, (top >> 8) & 255, top & 255),
                                      bgcolor=Color.from_rgb(bottom >> 16, (bottom >> 8) & 255, bottom & 255))
    return style


def half_blocks(image: np.ndarray, cols: int, rows: int) -> list[Strip]:
    """``image`` (H, W, 3) uint8 sampled to cols x 2*rows pixels, as ``rows`` lines of '▀' cells (a run of
    cells of one colour pair is one segment)."""
    h, w = image.shape[:2]
    ys = np.minimum(h - 1, (np.arange(2 * rows) * h) // (2 * rows))
    xs = np.minimum(w - 1, (np.arange(cols) * w) // cols)
    px = image[ys][:, xs, :3].astype(np.int64)
    packed = (px[..., 0] << 16) | (px[..., 1] << 8) | px[..., 2]
    pairs = (packed[0::2] << 24) | packed[1::2]  # (rows, cols)
    strips = []
    for row in pairs.tolist():
        segments, start = [], 0
        for c in range(1, cols + 1):
            if c == cols or row[c] != row[start]:
                segments.append(Segment(HALF * (c - start), _style(row[start])))
                start = c
        strips.append(Strip(segments, cols))
    return strips


BOX_COLOURS = {"face": (60, 255, 90), "body": (255, 210, 40), "upper body": (255, 120, 40)}


def _span(start: float, size: float, n: int) -> tuple[int, int]:
    """The first and last pixel of [start, start + size) (fractions of ``n`` pixels), kept inside the frame;
    last < first when none of it is."""
    a, b = min(max(start, 0.0), 1.0), min(max(start + size, 0.0), 1.0)
    if b <= 0.0 or a >= 1.0 or b < a:
        return 0, -1
    return int(a * n), min(n - 1, int(b * n))


def draw_boxes(image: np.ndarray, detections) -> np.ndarray:
    """A copy of ``image`` with each detection's box outlined (boxes are fractions of the frame)."""
    out = image.copy()
    h, w = out.shape[:2]
    for d in detections:
        if not all(math.isfinite(v) for v in (d.x, d.y, d.w, d.h)):
            continue
        # (a peer's box can be anything: 1e308 ended the dashboard, a negative start outlined the wrong side)
        x0, x1 = _span(d.x, d.w, w)
        y0, y1 = _span(d.y, d.h, h)
        if x1 < x0 or y1 < y0:  # (nothing of it in the frame)
            continue
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

    _lines: list[Strip] | None = None
    """The picture (and caption) as finished lines; None: the panel shows its text (no frame yet)."""

    def draw(self, snap: Snapshot | None, cols: int, rows: int) -> None:
        image = snap.preview if snap is not None else None
        if image is None or image.size == 0:
            self._lines = None
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
        lines = half_blocks(image, use_cols, rows)
        if caption:
            # (finished lines do not take the panel's colours as text does: the caption is given them)
            lines.append(Strip([Segment(safe(caption)[:cols], self.rich_style + Style(bold=True))]))
        self._lines = lines
        self.refresh()

    @property
    def picture_text(self) -> str:
        """What the panel shows, as plain text (the picture's cells are '▀')."""
        if self._lines is None:
            return str(self.content)
        return "\n".join(line.text for line in self._lines)

    def render_line(self, y: int) -> Strip:
        lines = self._lines
        if lines is None:
            return super().render_line(y)
        return lines[y] if y < len(lines) else Strip.blank(0)
