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
from .base import Panel, View

TYPE_STYLE = {"point": "$text-success", "limit cycle": "$text-accent", "strange": "$text-warning",
              "noise": "$text-primary", "unknown": "$text-muted"}


class AttractorPanel(Panel, Vertical):
    DEFAULT_CSS = """
    AttractorPanel {
        #attractor-info { height: 2; }
        #attractor-plot { height: 1fr; }
        /* a small terminal: the selected stream's own panel gets the plot's room */
        &.-collapsed {
            #attractor-info { height: auto; max-height: 2; }
            #attractor-plot { display: none; }
        }
    }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="attractor-info")
        yield PlotextPlot(id="attractor-plot")

    def drawn_from(self, view: View):
        snap = view.snap
        return (view.selected, snap.attractor_seq if snap else -1, view.signal_index, self.size,
                self.has_class("-collapsed"))

    def title(self, view: View) -> str:
        return f"Attractor · {view.selected}" if view.selected else "Attractor"

    def show(self, view: View) -> None:
        self.draw(view.snap, view.signal_index, view.selected)

    def draw(self, snap: Snapshot | None, signal_index: int = 0, selected: str | None = None) -> None:
        """Draw signal number ``signal_index`` (modulo the stream's signals).

        Collapsed (class ``-collapsed``: a small terminal, where the stream's own panel needs
        the room) it shows the estimate's line only."""
        info = self.query_one("#attractor-info", Static)
        plot = self.query_one(PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        if snap is None:
            message = f"waiting for {escape(selected)}'s first data" if selected else "no stream selected"
            info.update(Content.from_markup(f"[$text-muted]{message}[/]"), layout=False)
            plot.refresh()
            return
        position = ""
        if snap.signals:
            view = snap.signals[signal_index % len(snap.signals)]
            if len(snap.signals) > 1:
                position = f" {signal_index % len(snap.signals) + 1}/{len(snap.signals)} (s)"
            attractor, name, px, py = view.attractor, view.name, view.portrait_x, view.portrait_y
        else:
            attractor, name, px, py = snap.attractor, snap.signal_name, snap.portrait_x, snap.portrait_y
        style = TYPE_STYLE.get(attractor.type, "$text")
        lag = max(1, attractor.lag)
        if self.has_class("-collapsed"):
            info.update(Content.from_markup(
                f"[{style}][b]{escape(attractor_line(snap, attractor))}[/][/] [$text-muted]· {escape(name)}[/]"),
                layout=False)
            return
        info.update(Content.from_markup(
            f"[{style}][b]{escape(attractor_line(snap, attractor))}[/][/]\n"
            f"[$text-muted]x(t) vs x(t+{lag}) · {escape(name)}{position}[/]"), layout=False)
        if px.size:
            plt.scatter(px.tolist(), py.tolist(), marker="braille")
        plot.refresh()
