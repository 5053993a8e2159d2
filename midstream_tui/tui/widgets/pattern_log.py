"""The pattern log: what the analysis noticed, newest at the bottom.

Entries are wrapped to the panel's width here (RichLog would crop Textual
content) and re-wrapped when the panel is resized, so no message is cut off.
"""

from __future__ import annotations

from collections import deque

from textual import events
from textual.content import Content
from textual.markup import escape
from textual.widgets import RichLog

from ...redact import redact
from ...snapshot import PatternHit

KIND_STYLE = {"loop": "$text-warning", "stall": "$text-warning", "error": "$text-error",
              "loop-end": "$text-success", "silence": "$text-primary", "scene-cut": "$text-accent",
              "recurring": "$text-secondary", "rule": "$text-error", "speech": "$text-success",
              "detection": "$text-accent", "webrtc": "$text-primary", "media": "$text-primary"}
MAX_ENTRIES = 500


class PatternLog(RichLog, can_focus=False):
    """Not focusable: arrow keys belong to stream selection; the app scrolls the
    log with PgUp/PgDn/Home/End."""

    def __init__(self, **kwargs) -> None:
        super().__init__(wrap=False, max_lines=MAX_ENTRIES * 4, auto_scroll=True, min_width=1, **kwargs)
        self._entries: deque[tuple[PatternHit, float]] = deque(maxlen=MAX_ENTRIES)
        self._wrapped_at = 0

    @staticmethod
    def format(hit: PatternHit, t0: float) -> Content:
        style = KIND_STYLE.get(hit.kind, "$text")
        return Content.from_markup(
            f"[dim]{hit.t - t0:6.1f}s[/] [b]{escape(hit.stream)}[/] "
            f"[{style}]{escape(hit.kind)}[/] {escape(redact(hit.message))}")

    def _write_entry(self, hit: PatternHit, t0: float) -> None:
        content = self.format(hit, t0)
        width = self.scrollable_content_region.width
        for line in content.wrap(width) if width > 8 else [content]:
            self.write(line)

    def add(self, hits: list[PatternHit], t0: float) -> int:
        for hit in hits:
            self._entries.append((hit, t0))
            self._write_entry(hit, t0)
        return len(hits)

    def on_resize(self, event: events.Resize) -> None:
        width = self.scrollable_content_region.width
        if width != self._wrapped_at:
            self._wrapped_at = width
            self.clear()
            for hit, t0 in self._entries:
                self._write_entry(hit, t0)
