"""The attractor panel: a phase portrait of the selected stream's signal.

Draws x(t) against x(t + lag) for the newest points, with the estimated type,
largest Lyapunov exponent and confidence above it. Plotext redraws the whole
chart on each refresh, so the app calls ``show`` a few times a second at most
and only when the snapshot changed.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.markup import escape
from textual.widgets import Static
from textual_plotext import PlotextPlot

from ...display import attractor_line
from ...snapshot import Snapshot

TYPE_STYLE = {"point": "$text-success", "limit cycle": "$text-accent", "strange": "$text-warning",
              "noise": "$text-primary", "unknown": "$text-muted"}


class AttractorPanel(Vertical):
    def compose(self) -> ComposeResult:
        yield Static(id="attractor-info")
        yield PlotextPlot(id="attractor-plot")

    def show(self, snap: Snapshot | None) -> None:
        info = self.query_one("#attractor-info", Static)
        plot = self.query_one(PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        if snap is None:
            info.update(Content.from_markup("[$text-muted]no stream selected[/]"), layout=False)
            plot.refresh()
            return
        style = TYPE_STYLE.get(snap.attractor.type, "$text")
        lag = max(1, snap.attractor.lag)
        info.update(Content.from_markup(
            f"[{style}][b]{escape(attractor_line(snap))}[/][/]\n"
            f"[$text-muted]x(t) vs x(t+{lag}) · {escape(snap.signal_name)}[/]"), layout=False)
        if snap.portrait_x.size:
            plt.scatter(snap.portrait_x.tolist(), snap.portrait_y.tolist(), marker="braille")
        plot.refresh()
