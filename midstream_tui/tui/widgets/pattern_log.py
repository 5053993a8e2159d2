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
from ..terminal_safety import escape
from textual.widgets import Static

from ..pattern_feed import ALERT, PatternFeed, entry_text
from ...redact import redact
from ...snapshot import PatternHit
from .base import Panel, View

KIND_STYLE = {"loop": "$text-warning", "stall": "$text-warning", "error": "$text-error",
              "loop-end": "$text-success", "stall-end": "$text-success", "silence": "$text-primary", "scene-cut": "$text-accent",
              "recurring": "$text-secondary", "rule": "$text-error", "speech": "$text-success",
              "detection": "$text-accent", "webrtc": "$text-primary", "media": "$text-primary"}


class PatternLog(Panel, Static, can_focus=False):
    """Not focusable: arrow keys belong to stream selection; the app scrolls the
    log with PgUp/PgDn/Home/End."""

    def __init__(self, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.feed = PatternFeed()
        self.t0 = 0.0
        self.top: int | None = None
        """Index of the first entry shown when scrolled back; None follows the newest."""
        self.first_shown = 0
        self.last_shown = -1
        self._drawn: tuple = ()
        self._seq = 0  # the hub's sequence number of the last hit taken in

    def title(self, view: View) -> str | None:
        feed = self.feed
        if not feed.total:
            return None
        return f"Patterns · {feed.total}" + (f" · {feed.alerts} alert{'s' * (feed.alerts > 1)}" if feed.alerts else "")

    def follow(self, view: View) -> None:
        """Take in the hits noticed since the last look (all streams'), also while the log is hidden."""
        new = view.hub.patterns_since(self._seq)
        if new:
            self._seq = new[-1][0]
            self.t0 = view.hub.t0
            self.feed.add([hit for _seq, hit in new])

    def show(self, view: View) -> None:
        self.redraw()

    @property
    def auto_scroll(self) -> bool:
        return self.top is None

    def add(self, hits: list[PatternHit], t0: float) -> int:
        self.t0 = t0
        added = self.feed.add(hits)
        self.redraw()
        return added

    def scroll_to(self, where: str) -> None:
        """up / down by a page of whole entries, home (the oldest), end (follow the newest)."""
        shown = max(1, self.last_shown - self.first_shown + 1)
        if where == "up":
            self.top = max(0, self.first_shown - shown)
        elif where == "down" and self.top is not None:
            self.top = self.last_shown + 1
            if self.top >= len(self.feed.entries) or self._fits_from(self.top):
                self.top = None
        elif where == "home":
            self.top = 0
        elif where == "end":
            self.top = None
        self.redraw()

    def _fits_from(self, top: int) -> bool:
        width, height = self.content_region.width, self.content_region.height
        if width <= 0:  # (no size: nothing to measure against)
            return True
        used = 0
        for i in range(top, len(self.feed.entries)):
            used += len(self._format(i).wrap(width))
            if used > height:
                return False
        return True

    def _format(self, index: int) -> Content:
        entry = self.feed.entries[index]
        t, stream, kind, message = entry_text(entry, self.t0)
        style = KIND_STYLE.get(kind, "$text")
        mark = "[$text-error]![/]" if entry.priority == ALERT else " "
        return Content.from_markup(f"{mark}[dim]{t}[/] [b]{escape(stream)}[/] [{style}]{escape(kind)}[/] "
                                   f"{escape(redact(message))}")

    def redraw(self, force: bool = False) -> None:
        width, height = self.content_region.width, self.content_region.height
        key = (self.feed.version, self.top, width, height)
        if not force and key == self._drawn:
            return
        self._drawn = key
        entries = self.feed.entries
        if not entries or width < 4 or height < 1:
            self.update(Content.from_markup("[$text-muted]nothing noticed yet[/]") if not entries else "",
                        layout=False)
            return
        lines: list[Content] = []
        if self.top is None:  # follow: the newest at the bottom, as many whole entries as fit above it
            i = len(entries) - 1
            self.last_shown = i
            while i >= 0:
                wrapped = list(self._format(i).wrap(width))
                if lines and len(lines) + len(wrapped) > height:
                    break  # only whole entries: the top line never starts mid-entry
                lines[:0] = wrapped
                i -= 1
            self.first_shown = i + 1
        else:  # scrolled back: from ``top`` down, whole entries
            self.top = min(self.top, len(entries) - 1)
            i = self.first_shown = self.top
            while i < len(entries):
                wrapped = list(self._format(i).wrap(width))
                if lines and len(lines) + len(wrapped) > height:
                    break
                lines.extend(wrapped)
                i += 1
            self.last_shown = i - 1
        self.update(Content("\n").join(lines[:height]), layout=False)

    def on_resize(self, event: events.Resize) -> None:
        self.redraw(force=True)
