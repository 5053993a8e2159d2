"""The attractor panel: a phase portrait of the selected stream's signal.

Draws x(t) against x(t + lag) for the newest points, with the estimated type,
largest Lyapunov exponent and confidence above it. Plotext redraws the whole
chart on each refresh, so the app calls ``show`` a few times a second at most
and only when the snapshot changed.

Plotext draws the chart as text with ANSI colour codes. Taken through rich's
ANSI decoder and Textual's text rendering that cost three times plotext's own drawing (about
20 ms of the dashboard's thread per redraw); ``Portrait`` turns it into finished
lines directly, with the very styles rich's decoder gives each code (worked out
once per code and kept).
"""

from __future__ import annotations

import re

import numpy as np
from rich.ansi import AnsiDecoder
from rich.segment import Segment
from rich.style import Style
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from ..terminal_safety import escape
from textual.strip import Strip
from textual.widgets import Static
from textual_plotext import PlotextPlot

from ...display import attractor_line
from ...snapshot import Snapshot
from .base import Panel, View

TYPE_STYLE = {"point": "$text-success", "limit cycle": "$text-accent", "strange": "$text-warning",
              "noise": "$text-primary", "unknown": "$text-muted"}

_SGR = re.compile(r"\x1b\[([0-9;]*)m")
_after: dict[tuple[Style, str], Style] = {}
"""(style, SGR codes) -> the style after them, as rich's ANSI decoder has it (plotext uses a few dozen)."""


def _then(style: Style, codes: str) -> Style:
    after = _after.get((style, codes))
    if after is None:
        if len(_after) > 4096:
            _after.clear()
        decoder = AnsiDecoder()
        decoder.style = style
        decoder.decode_line(f"\x1b[{codes}m")
        after = _after[style, codes] = decoder.style
    return after


def ansi_lines(ansi: str, base: Style, width: int, height: int) -> list[Strip]:
    """Text with SGR colour codes (plotext's output) as ``height`` lines at most, each cut to ``width`` cells,
    every run in ``base`` plus the codes' style: what rich's ``Text.from_ansi`` rendered on ``base`` gives."""
    style, combined, lines = Style.null(), {}, []
    for line in ansi.split("\n")[:height]:
        parts = _SGR.split(line.rsplit("\r", 1)[-1])
        segments = []
        for i, part in enumerate(parts):
            if i % 2:
                style = _then(style, part)
            elif part:
                full = combined.get(style)
                if full is None:
                    full = combined[style] = base + style
                segments.append(Segment(part, full))
        strip = Strip(segments)
        lines.append(strip.crop(0, width) if strip.cell_length > width else strip)
    return lines


class Portrait(PlotextPlot):
    """A plotext chart handed to Textual as finished lines (see the module's note). Its cells do not carry
    their places in a text, so it offers no mouse selection (of braille dots)."""

    ALLOW_SELECT = False
    _lines: list[Strip] | None = None
    _lines_size: tuple[int, int] = (0, 0)

    def refresh(self, *regions, **kwargs):
        self._lines = None  # drawn again on the next paint
        return super().refresh(*regions, **kwargs)

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        if self._lines is None or self._lines_size != (width, height):
            # what PlotextPlot.render sets before plotext draws (its size, twice: see textual-plotext #5; theme)
            self._plot.plotsize(width, height)
            self._plot._set_size(width, height)
            self._plot.theme(self._get_plotext_theme_name(self.app.theme))
            self._lines = ansi_lines(self._plot.build(), self.visual_style.rich_style, width, height)
            self._lines_size = (width, height)
        lines = self._lines
        return lines[y] if y < len(lines) else Strip.blank(width, self.visual_style.rich_style)


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
        yield Portrait(id="attractor-plot")

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
        px, py = np.asarray(px, dtype=np.float64), np.asarray(py, dtype=np.float64)
        drawn = np.isfinite(px) & np.isfinite(py) if px.shape == py.shape else np.zeros(0, dtype=bool)
        if drawn.any():  # (plotext's axis ticks fail on an inf: a point that is not one is not drawn)
            plt.scatter(px[drawn].tolist(), py[drawn].tolist(), marker="braille")
        plot.refresh()
