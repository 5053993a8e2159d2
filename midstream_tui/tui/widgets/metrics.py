"""The metrics panel: the selected stream's numbers, label by label."""

from __future__ import annotations

from textual.content import Content
from textual.markup import escape
from textual.widgets import Static

from ...display import metric_rows
from ...redact import redact
from ...snapshot import Snapshot


class MetricsPanel(Static):
    _shown = ""

    def show(self, snap: Snapshot | None, selected: str | None = None) -> None:
        if snap is None:
            self._shown = ""
            message = (f"waiting for {escape(selected)}'s first data" if selected else "select a stream (↑/↓)")
            self.update(Content.from_markup(f"[$text-muted]{message}[/]"), layout=False)
            return
        lines = [f"[$text-muted]{'status':<14}[/] {escape(snap.status)}"]
        for label, value in metric_rows(snap):
            lines.append(f"[$text-muted]{escape(label):<14}[/] [b]{escape(value)}[/]")
        if snap.error:
            lines.append(f"[$text-error]{escape(redact(snap.error))}[/]")
        markup = "\n".join(lines)
        if markup != self._shown:
            self._shown = markup
            self.update(Content.from_markup(markup), layout=False)
