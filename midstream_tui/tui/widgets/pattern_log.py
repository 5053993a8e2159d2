"""The pattern log: what the analysis noticed, in time order, newest at the bottom.

Entries come from a ``PatternFeed`` (time order, chatter merged) and are drawn
whole: each wrapped to the panel's width, and only as many as fit completely, so
the top line is never the tail of a cut entry. Alerts (rules, loops, stalls,
errors) carry a marker. The view follows new entries until the user scrolls back
(PgUp/Home, whole entries at a time) and follows again on End.
"""

from __future__ import annotations

from textual import events
from textual.content import Content
from textual.markup import escape
from textual.widgets import Static

from ...pattern_feed import ALERT, PatternFeed, entry_text
from ...redact import redact
from ...snapshot import PatternHit

KIND_STYLE = {"loop": "$text-warning", "stall": "$text-warning", "error": "$text-error",
              "loop-end": "$text-success", "silence": "$text-primary", "scene-cut": "$text-accent",
              "recurring": "$text-secondary", "rule": "$text-error", "speech": "$text-success",
              "detection": "$text-accent", "webrtc": "$text-primary", "media": "$text-primary"}


class PatternLog(Static, can_focus=False):
    """Not focusable: arrow keys belong to stream selection; the app scrolls the
    log with PgUp/PgDn/Home/End."""

    def __init__(self, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.feed = PatternFeed()
        self.t0 = 0.0
        self.back = 0
        """Entries hidden below the view: 0 follows the newest."""
        self.first_shown = 0
        self.last_shown = -1
        self._drawn: tuple = ()

    @property
    def auto_scroll(self) -> bool:
        return self.back == 0

    def add(self, hits: list[PatternHit], t0: float) -> int:
        self.t0 = t0
        before = len(self.feed.entries)
        added = self.feed.add(hits)
        if self.back and len(self.feed.entries) > before:  # scrolled back: keep the same entries in view
            self.back += len(self.feed.entries) - before
        self.redraw()
        return added

    def scroll_to(self, where: str) -> None:
        shown = max(1, self.last_shown - self.first_shown + 1)
        n = len(self.feed.entries)
        if where == "up":
            self.back = min(max(0, n - 1), self.back + shown)
        elif where == "down":
            self.back = max(0, self.back - shown)
        elif where == "home":
            self.back = max(0, n - 1)
        else:
            self.back = 0
        self.redraw()

    def _format(self, index: int) -> Content:
        entry = self.feed.entries[index]
        t, stream, kind, message = entry_text(entry, self.t0)
        style = KIND_STYLE.get(kind, "$text")
        mark = "[$text-error]![/]" if entry.priority == ALERT else " "
        return Content.from_markup(f"{mark}[dim]{t}[/] [b]{escape(stream)}[/] [{style}]{escape(kind)}[/] "
                                   f"{escape(redact(message))}")

    def redraw(self, force: bool = False) -> None:
        width, height = self.content_region.width, self.content_region.height
        key = (self.feed.version, self.back, width, height)
        if not force and key == self._drawn:
            return
        self._drawn = key
        entries = self.feed.entries
        if not entries or width < 4 or height < 1:
            self.update(Content.from_markup("[$text-muted]nothing noticed yet[/]") if not entries else "",
                        layout=False)
            return
        newest = len(entries) - 1 - min(self.back, len(entries) - 1)
        lines: list[Content] = []
        i = newest
        while i >= 0:
            wrapped = list(self._format(i).wrap(width))
            if lines and len(lines) + len(wrapped) > height:
                break  # only whole entries: the top line never starts mid-entry
            lines[:0] = wrapped[:height] if not lines else wrapped
            i -= 1
        self.first_shown, self.last_shown = i + 1, newest
        self.update(Content("\n").join(lines), layout=False)

    def on_resize(self, event: events.Resize) -> None:
        self.redraw(force=True)
