"""The stream list: one line per stream with its state and headline number."""

from __future__ import annotations

from textual.content import Content
from textual.markup import escape
from textual.widgets import Static

from ...display import headline
from ...snapshot import Snapshot
from .base import Panel, View

STATUS_STYLE = {"open": "$text-success", "closed": "$text-muted", "cancelled": "$text-warning", "error": "$text-error"}


class StreamList(Panel, Static):
    """Renders the streams; the app owns which one is selected."""

    _shown = ""
    _shown_lines = 0

    def drawn_from(self, view: View):
        return (view.streams, tuple(s.seq for s in view.snaps.values()), view.selected, self.size.width)

    def show(self, view: View) -> None:
        self.draw(view.streams, view.snaps, view.selected)

    def draw(self, streams, snaps: dict[str, Snapshot], selected: str | None) -> None:
        width = max(20, self.content_region.width or self.size.width or 30)
        name_w = max(6, width - 21)
        lines = []
        for name in streams:
            snap = snaps.get(name)
            status = snap.status if snap else "wait"
            number = headline(snap) if snap else ""
            shown = name if len(name) <= name_w else name[: name_w - 1] + "…"
            style = STATUS_STYLE.get(status, "$text-muted")
            marker = "▶" if name == selected else " "
            line = f"{marker} {escape(shown):<{name_w}} [{style}]{status:<9}[/] {escape(number):>8}"
            if name == selected:
                line = f"[reverse]{line}[/]"
            lines.append(line)
        if not lines:
            lines = ["[$text-muted]no streams yet[/]"]
        markup = "\n".join(lines)
        if markup != self._shown:  # rounded numbers often stay put: skip the repaint
            self._shown = markup
            self.update(Content.from_markup(markup), layout=len(lines) != self._shown_lines)
            self._shown_lines = len(lines)
