"""The metrics panel: the selected stream's numbers, label by label."""

from __future__ import annotations

from ..terminal_safety import escape

from ...display import metric_rows
from ...redact import redact
from ...snapshot import Snapshot
from .base import Panel, View
from .lines import LineStatic


class MetricsPanel(Panel, LineStatic):
    def drawn_from(self, view: View):
        snap = view.snap
        return (view.selected, snap.seq if snap else -1, self.size.width)

    def title(self, view: View) -> str:
        """The stream's name and kind, as much as fits the border."""
        snap, width = view.snap, self.size.width
        if snap is None:
            return "Metrics"
        room = max(10, width - 6) if width > 0 else 80  # not laid out yet: the next resize redraws
        for title in (f"Metrics · {snap.stream} ({snap.kind})", f"Metrics · {snap.stream}", snap.stream):
            if len(title) <= room:
                return title
        return snap.stream[: room - 1] + "…"

    def show(self, view: View) -> None:
        self.draw(view.snap, view.selected)

    def draw(self, snap: Snapshot | None, selected: str | None = None) -> None:
        if snap is None:
            message = (f"waiting for {escape(selected)}'s first data" if selected else "select a stream (↑/↓)")
            self.set_lines([f"[$text-muted]{message}[/]"])
            return
        lines = [f"[$text-muted]{'status':<14}[/] {escape(snap.status)}"]
        for label, value in metric_rows(snap):
            lines.append(f"[$text-muted]{escape(label):<14}[/] [b]{escape(value)}[/]")
        if snap.error:
            lines.append(f"[$text-error]{escape(redact(snap.error))}[/]")
        self.set_lines(lines)  # only the lines that changed are drawn again
