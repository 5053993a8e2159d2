"""The text panel: the selected text stream's newest output, as it streams.

Redrawn on the render clock only when new text arrived (never per token), and
only the tail that fits is wrapped: a few hundred characters per redraw however
long the stream is.
"""

from __future__ import annotations

from textual.content import Content

from ...redact import redact
from ...snapshot import Snapshot
from .snapshot_panel import SnapshotPanel


class TextView(SnapshotPanel):
    KINDS, LABEL = ("text",), "Text"

    def key(self, snap: Snapshot | None, cols: int, rows: int):
        return (snap.stream if snap else None, int(snap.metrics.get("chars") or 0) if snap else 0, cols, rows)

    def draw(self, snap: Snapshot | None, cols: int, rows: int) -> None:
        if snap is None or not snap.text_tail:
            self.update(Content.from_markup("[$text-muted]no text yet[/]"), layout=False)
            return
        tail = redact(snap.text_tail[-(cols * rows * 2):])  # (a key an upstream echoed is not shown either)
        lines = Content(tail.replace("\r", "")).wrap(max(10, cols))
        self.update(Content("\n").join(lines[-rows:]), layout=False)
