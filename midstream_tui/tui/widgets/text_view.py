"""The text panel: the selected text stream's newest output, as it streams.

Redrawn on the render clock only when new text arrived (never per token), and
only the tail that fits is wrapped: a few hundred characters per redraw however
long the stream is.
"""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from ...snapshot import Snapshot


class TextView(Static):
    _shown: tuple = ()
    _last: Snapshot | None = None

    def on_resize(self) -> None:
        self._shown = ()
        if self._last is not None:
            self.show(self._last)

    def show(self, snap: Snapshot | None) -> None:
        self._last = snap
        width = max(10, self.content_region.width or self.size.width or 40)
        height = max(1, self.content_region.height or self.size.height or 4)
        chars = int(snap.metrics.get("chars") or 0) if snap else 0
        key = (snap.stream if snap else None, chars, width, height)
        if key == self._shown:
            return
        self._shown = key
        if snap is None or not snap.text_tail:
            self.update(Content.from_markup("[$text-muted]no text yet[/]"), layout=False)
            return
        tail = snap.text_tail[-(width * height * 2):]
        lines = Content(tail.replace("\r", "")).wrap(width)
        self.update(Content("\n").join(lines[-height:]), layout=False)
