"""The MidStream dashboard: four panels over a hub, redrawn on one UI-side clock.

The app never computes: it pulls the newest snapshots from the hub on its
render clock (default 10 Hz, the plot at about 3 Hz), skips hidden panels and
unchanged plots, and updates every panel inside one ``batch_update``. Hub
workers never touch widgets.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Iterable
from pathlib import Path

from textual import events
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.reactive import var
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Header, Static
from textual.widgets._header import HeaderTitle  # (textual is pinned: its header's title line)

from ..hub import HubView
from . import terminal_safety  # noqa: F401 - before anything is drawn
from ..sources.base import Source
from .panels import KEYED, PANELS, TOGGLES, column, every
from .screens.help import HelpScreen
from .widgets.attractor import AttractorPanel
from .widgets.base import Panel, View
from .widgets.frame_preview import FramePreview
from .widgets.meta_panel import MetaPanel
from .widgets.pattern_log import PatternLog
from .widgets.stream_list import FILTERS, StreamList, listed, passes
from .widgets.text_view import TextView
from .widgets.transcript_view import TranscriptView

REFRESH_STEPS_MS = (50, 100, 200, 500, 1000, 2000)
HANGUP_GRACE_S = 10.0  # seconds the streams get to stop once the terminal went away
META_MIN_HEIGHT = 34  # rows below which the meta-learning panel starts hidden (key 6 shows it)
HEADER_MARGIN = 18  # header columns not for the title line: its icon on the left, as many on the right (centred)
COMPACT_HEIGHT = 30
"""Rows below which the attractor gives its plot's room to the selected stream's own panel (text,
frame or transcript) and keeps one line of its estimate: at 80x24 both cannot be readable."""
ANALYSIS_MIN_S = 0.2
"""The dashboard's analysis interval at the least: its numbers are redrawn at most 5 times a second (``panels``),
so snapshots more often than that would be computed and never shown. Headless runs keep ``--refresh-ms``."""


def analysis_interval(refresh_ms: int) -> float:
    """Seconds between the hub's analysis ticks under a dashboard redrawn every ``refresh_ms``."""
    return max(ANALYSIS_MIN_S, refresh_ms / 1000)


NARROW_BELOW = 60
STACKED_MIN_HEIGHT = 20
"""Rows a narrow terminal needs for both columns, one above the other; below it, the right column (the attractor,
the text, the patterns) gives way to the streams and their metrics while the left one shows anything."""


class MidStreamApp(App[int]):
    CSS_PATH = Path(__file__).parent / "app.tcss"  # absolute: subclasses live elsewhere
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (NARROW_BELOW, "-wide")]
    """Under ``NARROW_BELOW`` columns the two columns are stacked (side by side, the right one got 6 columns at
    40 and showed a letter or two of each line)."""
    TITLE = "MidStream"
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit", tooltip="Stop every stream and leave"),
        Binding("down,j", "next_stream", "Stream", key_display="↓↑", id="next-stream",
                tooltip="Select the next stream"),
        Binding("up,k", "previous_stream", "Previous", show=False, id="previous-stream",
                tooltip="Select the previous stream"),
        Binding("p,space", "toggle_pause", "Pause", key_display="p", id="pause",
                tooltip="Freeze or resume the display (streams keep running and being analyzed)"),
        Binding("plus,equals_sign", "faster", "Faster", key_display="+", show=False, id="faster",
                tooltip="Redraw more often"),
        Binding("minus", "slower", "Slower", key_display="-", show=False, id="slower",
                tooltip="Redraw less often"),
        *(Binding(p.key, f"toggle_panel('{p.toggle}')", p.toggle.capitalize(), show=False, id=f"toggle-{p.toggle}",
                  tooltip=p.key_help) for p in KEYED),
        Binding("g", "mark(True)", "Good", show=False, id="mark-good",
                tooltip="Mark the selected stream good (a label for meta-learning)"),
        Binding("b", "mark(False)", "Bad", show=False, id="mark-bad",
                tooltip="Mark the selected stream bad (a label for meta-learning)"),
        Binding("a", "proposal('accept')", "Accept", show=False, id="accept-proposal",
                tooltip="Accept the newest rule-change proposal"),
        Binding("x", "proposal('reject')", "Reject", show=False, id="reject-proposal",
                tooltip="Reject the newest rule-change proposal"),
        Binding("u", "proposal('undo')", "Undo", show=False, id="undo-change",
                tooltip="Undo the last rule change"),
        Binding("pageup", "scroll_log('up')", "Log up", show=False, id="log-up",
                tooltip="Scroll the pattern log back"),
        Binding("pagedown", "scroll_log('down')", "Log down", show=False, id="log-down",
                tooltip="Scroll the pattern log forward"),
        Binding("home", "scroll_log('home')", "Log start", show=False, id="log-home",
                tooltip="Jump to the oldest pattern"),
        Binding("end", "scroll_log('end')", "Log end", show=False, id="log-end",
                tooltip="Jump to the newest pattern (and follow new ones)"),
        Binding("f", "next_filter", "Filter", show=False, id="next-filter",
                tooltip="Narrow the stream list: all, live, ended, cut or failed"),
        Binding("s", "next_signal", "Signal", show=False, id="next-signal",
                tooltip="Show the next signal's dynamics (text: word length, then inter-token gap)"),
        Binding("c", "cancel_stream", "Cancel", id="cancel-stream",
                tooltip="Cancel the selected stream now, mid-stream"),
        Binding("question_mark,f1", "help", "Help", key_display="?", id="help",
                tooltip="Keys and what each panel shows"),
    ]

    # The user's view of the run; setting one redraws what depends on it.
    selected: var[str | None] = var(None, init=False)
    """The selected stream (the app keeps it one of the hub's streams)."""
    paused: var[bool] = var(False, init=False)
    """The display is frozen (streams keep running and being analyzed)."""
    hidden: var[frozenset[str]] = var(frozenset(), init=False)
    """The panel toggles (``panels.TOGGLES``) the user hid."""
    signal_index: var[int] = var(0, init=False)
    """Which of the selected stream's signals the attractor shows."""
    stream_filter: var[str] = var("all", init=False)
    """Which streams the list shows (``stream_list.FILTERS``)."""

    def __init__(self, hub: HubView, sources: Iterable[Source] = (), *, refresh_ms: int = 100,
                 duration: float | None = None, live: bool = True, title: str | None = None,
                 on_hangup: Callable[[], None] | None = None) -> None:
        """``live=False`` renders the hub's current snapshots once and starts no clock
        (snapshot tests, or a finished hub). ``on_hangup``: when the terminal goes away (SIGHUP), called
        once the streams are stopped (or did not stop within ``HANGUP_GRACE_S``), to save what the run holds;
        the process then ends (exit code 129). Without it, the app exits as usual, which may not finish."""
        super().__init__()
        self._on_hangup = on_hangup
        self._hung_up = False
        self._meta_chosen = False
        self._squeezed = False
        """Narrow and short (``STACKED_MIN_HEIGHT``): only one column is shown."""
        """The user showed or hid the meta-learning panel (key 6): a resize no longer does it for them."""
        if title:
            self.title = title
        self.hub = hub
        self._sources = list(sources)
        self.refresh_ms = refresh_ms
        self.duration = duration
        self.live = live
        self._widgets: dict[str, Panel] = {}
        self._timer: Timer | None = None
        self._ticks = 0
        self._drawn: dict[str, tuple] = {}
        self.renders = 0
        self.failure: str | None = None
        """Why the live run stopped on its own (its gateway could not be kept up...), once it has."""
        self._stopping: asyncio.Future | None = None

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static(f"Every panel is hidden: press {KEYED[0].key} to {KEYED[-1].key} to show them again "
                     "(? lists the keys)", id="all-hidden")
        with Horizontal(id="body"):
            for side in ("left", "right"):
                with Vertical(id=side):
                    for panel in column(side):
                        yield panel.make(id=panel.id)
        yield Footer()

    async def on_mount(self) -> None:
        # SIGTERM (a service manager), SIGHUP (an SSH connection dropped) and a SIGINT sent by kill:
        # quit as `q` does, so sources stop and the session recording is flushed and marked complete.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self._hangup if sig == signal.SIGHUP
                                        else lambda: self.call_later(self.action_quit))
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread (tests)
                pass
        for panel in PANELS:
            widget = self.query_one(f"#{panel.id}")
            widget.border_title = panel.title
            self._widgets[panel.id] = widget  # type: ignore[assignment]  (every panel's widget is a Panel)
        # the three panels that share the slot under the attractor, one shown at a time
        self.text_view = self.query_one(TextView)
        self.frame_preview = self.query_one(FramePreview)
        self.transcript_view = self.query_one(TranscriptView)
        for src in self._sources:
            self.hub.add_source(src)
        self.hub.analysis_interval = analysis_interval(self.refresh_ms)
        if self.size.height < META_MIN_HEIGHT:  # small terminals keep the room for the metrics; 6 shows it
            self.hidden = self.hidden | {"meta"}
        self._squeezed = self.size.width < NARROW_BELOW and self.size.height < STACKED_MIN_HEIGHT
        self._lay_out(self.hidden)
        if self.live:
            await self.hub.start()
            self._timer = self.set_interval(self.refresh_ms / 1000, self.render_tick)
            if self.duration:
                self.set_timer(self.duration, self.action_quit)
        self.render_tick(force=True)

    # ------------------------------------------------------------ rendering

    def on_resize(self, event: events.Resize) -> None:
        squeezed = event.size.width < NARROW_BELOW and event.size.height < STACKED_MIN_HEIGHT
        if squeezed != self._squeezed:
            self._squeezed = squeezed
            self._lay_out(self.hidden)
        # A terminal made small hides the meta-learning panel (the metrics keep their room), one made large again
        # shows it, as at start; once the user has shown or hidden it (key 6), their choice stands. (The event's
        # size: the app's own is set after this handler.)
        if not self._meta_chosen:
            small = event.size.height < META_MIN_HEIGHT
            if small != ("meta" in self.hidden):
                self.hidden = self.hidden ^ {"meta"}
        # the layout (compact or not) and the titles that fit depend on the size: redraw once laid out
        self.call_after_refresh(self.render_tick, True)
        self.call_after_refresh(self._retitle)

    def format_title(self, title: str, sub_title: str):
        """The header's line: the title, shortened as much as it takes for the state after it (``sub_title``:
        live, paused, stopped: why, ...) to stay whole in view. A proxy's URLs or a replay's file name took the
        whole width of 80 columns, and the state was cut off."""
        if sub_title:
            room = self.size.width - HEADER_MARGIN - len(sub_title) - 3  # (3: the " — " between them)
            if len(title) > room:
                title = title[:max(room, 10) - 1].rstrip() + "…"
        return super().format_title(title, sub_title)

    def _retitle(self) -> None:
        """Lay the header's line out again for the terminal's new width."""
        try:
            header = self.query_one(Header)
            header.query_one(HeaderTitle).update(header.format_title())
        except NoMatches:  # (not mounted yet, or torn down)
            return

    def _update_subtitle(self) -> None:
        if self.hub.replay:
            state = f"replay x{self.hub.speed:g}" + (" · paused" if self.paused else "")
        else:
            state = "paused" if self.paused else ("live" if self.live else "still")
        if self.failure:  # (first: whatever else is true of the run, it is not live any more)
            state = f"stopped: {self.failure}"
        elif self.live and not self.hub.warm and self.hub.running:
            # a first run compiles the kernels (~15 s): say so; streams are taken in meanwhile
            state += " · compiling analysis kernels (first run)"
        # the state first: a long title in a narrow terminal cuts the end off, and live/paused must stay in view
        count = len(self.hub.streams)
        sub_title = f"{state} · {count} stream{'' if count == 1 else 's'} · {1000 / self.refresh_ms:g} Hz"
        if self.sub_title != sub_title:  # setting it repaints, even unchanged
            self.sub_title = sub_title

    def render_tick(self, force: bool = False) -> None:
        """Pull the newest snapshots and hand them to every panel: each visible one that is due and whose
        input changed is redrawn (Textual repaints, and sends to the terminal, a widget's whole region on each
        update), inside one batch."""
        self._tell()
        if (self.paused and not force) or not self._widgets:
            return
        streams = self.hub.streams
        snaps = self.hub.snapshots()
        if self.selected not in streams:  # the first stream, or the selected one went away: no redraw of its own
            # (gone — an ended request aged out —: one under way, else the newest; the oldest, taken until
            # 2026-12-06, was the next to age out, and the selection moved by itself every few seconds)
            gone = self.selected is not None
            live = next((n for n in streams if passes("live", snaps, n)), None) if gone else None
            self.set_reactive(MidStreamApp.selected,
                              (live or streams[-1] if gone else streams[0]) if streams else None)
        elif self.stream_filter != "all" and not passes(self.stream_filter, snaps, self.selected):
            # the selected stream left what the list is narrowed to (it ended, say): the first that is in it
            first = next((n for n in streams if passes(self.stream_filter, snaps, n)), None)
            if first is not None:
                self.set_reactive(MidStreamApp.selected, first)
        if hasattr(self.hub, "focus"):  # (a live hub: the selected stream's attractor is estimated first)
            self.hub.focus = self.selected
        view = View(self.hub, tuple(streams), snaps, self.selected, self.signal_index, self.stream_filter)
        self._ticks += 1
        try:
            attractor = self.query_one(AttractorPanel)
        except NoMatches:  # the screen is being torn down: the render timer can outlive it by a tick
            return
        with self.batch_update():
            self._update_subtitle()
            attractor.set_class(self._collapse_attractor(view), "-collapsed")
            for panel in PANELS:
                widget = self._widgets[panel.id]
                widget.follow(view)
                wanted = panel.toggle not in self.hidden and widget.applies(view)
                if widget.display != wanted:
                    widget.display = wanted
                if not wanted or not (force or self._ticks % every(panel, self.refresh_ms) == 0):
                    continue
                drawn_from = widget.drawn_from(view)
                if not force and drawn_from is not None and drawn_from == self._drawn.get(panel.id):
                    continue
                self._drawn[panel.id] = drawn_from
                try:
                    widget.show(view)
                except NoMatches:  # its own children are not mounted yet, or already torn down: a later tick
                    self._drawn.pop(panel.id, None)
                    continue
                title = widget.title(view)
                # (a title holds a stream's name: text, never markup — "x[/]" ended the app, "[link=…]" made a link)
                shown = None if title is None else Content(title)
                if shown is not None and widget.border_title != shown.markup:  # setting it repaints, even unchanged
                    widget.border_title = shown
        self.renders += 1

    def _tell(self) -> None:
        """Show what the run's services had to say (a relay started again), and, once, that the run failed (a
        gateway that could not be kept up, a tick consumer that raised): the run is stopped, as a headless one
        is, and the streams already seen stay on screen to be read."""
        notices = getattr(self.hub, "notices", None)
        while notices:
            self.notify(notices.popleft(), severity="warning", timeout=10)
        error = getattr(self.hub, "callback_error", None)
        if error is not None and self.failure is None and self.live:
            self.failure = failure_text(error)
            self.notify(f"{self.failure}. Streams seen so far stay on screen; q quits.", title="Stopped",
                        severity="error", timeout=3600)
            self._stopping = asyncio.ensure_future(self.hub.stop())

    def _collapse_attractor(self, view: View) -> bool:
        """A small terminal with a panel for the selected stream under the attractor (text, frame,
        transcript): the attractor keeps one line and gives that panel its room."""
        return self.size.height < COMPACT_HEIGHT and "text" not in self.hidden and \
            any(self._widgets[p].applies(view) for p in TOGGLES["text"])

    # ------------------------------------------------------------ actions

    def _move(self, step: int) -> None:
        """To the next (or previous) stream of those the list is narrowed to."""
        # through every stream the filter passes, in the list's order, not only those shown: the list always shows
        # the selected one (with many streams, the arrows cycled through the few rows shown and could reach no other)
        snaps = self.hub.snapshots()
        streams = [n for n in self.hub.streams if passes(self.stream_filter, snaps, n)]
        if not streams:
            return
        i = streams.index(self.selected) if self.selected in streams else 0
        self.selected = streams[(i + step) % len(streams)]

    def action_next_stream(self) -> None:
        self._move(+1)

    def action_previous_stream(self) -> None:
        self._move(-1)

    def select_stream(self, stream: str) -> None:
        if stream in self.hub.streams:
            if not passes(self.stream_filter, self.hub.snapshots(), stream):
                was, self.stream_filter = self.stream_filter, "all"  # (narrowed to others, it would not show it)
                self.notify(f"{stream} is not among the {was} streams: the list shows them all again", markup=False)
            self.selected = stream

    def action_next_signal(self) -> None:
        self.signal_index += 1

    def action_next_filter(self) -> None:
        self.stream_filter = FILTERS[(FILTERS.index(self.stream_filter) + 1) % len(FILTERS)]
        shown, _ = listed(self.hub.streams, self.hub.snapshots(), self.selected, self.query_one(StreamList).rows,
                          self.stream_filter)  # (the selected one is shown whenever it passes the filter)
        if shown and self.selected not in shown:
            self.selected = shown[0]

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused

    # what the user's view changes redraw at once (not waiting for the next tick)
    def _redraw(self) -> None:
        if self._widgets:
            self.render_tick(force=True)

    def watch_selected(self) -> None:
        self._redraw()

    def watch_signal_index(self) -> None:
        self._redraw()

    def watch_stream_filter(self) -> None:
        self._redraw()

    def watch_paused(self, paused: bool) -> None:
        self._update_subtitle()
        if not paused:
            self._redraw()

    def watch_hidden(self, hidden: frozenset[str]) -> None:
        self._lay_out(hidden)

    def _lay_out(self, hidden: frozenset[str]) -> None:
        """Show the columns that have a panel to show (the right one gives way in a small narrow terminal)."""
        meta_shown = "meta" not in hidden and self.hub.meta is not None
        left_visible = meta_shown or not {p.toggle for p in column("left")} - {"meta"} <= hidden
        right_visible = not {p.toggle for p in column("right")} <= hidden and not (self._squeezed and left_visible)
        self.query_one("#left").display = left_visible
        self.query_one("#right").display = right_visible
        # the meta panel alone in its column takes the column, instead of sitting on a blank
        self.query_one("#meta").set_class({"streams", "metrics"} <= hidden, "-alone")
        self.query_one("#all-hidden").display = not (left_visible or right_visible)
        self._redraw()

    def _set_refresh(self, refresh_ms: int) -> None:
        self.refresh_ms = refresh_ms
        self.hub.analysis_interval = analysis_interval(refresh_ms)
        if self._timer is not None:
            self._timer.stop()
            self._timer = self.set_interval(refresh_ms / 1000, self.render_tick)
        self._update_subtitle()

    def action_faster(self) -> None:
        faster = [s for s in REFRESH_STEPS_MS if s < self.refresh_ms]
        if faster:
            self._set_refresh(faster[-1])

    def action_slower(self) -> None:
        slower = [s for s in REFRESH_STEPS_MS if s > self.refresh_ms]
        if slower:
            self._set_refresh(slower[0])

    def action_toggle_panel(self, panel: str) -> None:
        self._meta_chosen = self._meta_chosen or panel == "meta"
        self.hidden = self.hidden ^ {panel}

    def action_mark(self, good: bool) -> None:
        learner = self.hub.meta
        if learner is None or not self.selected:
            self.notify("meta-learning is off", severity="warning")
        elif learner.mark(self.selected, good):
            self.notify(f"{self.selected} marked {'good' if good else 'bad'}", title="Meta-learning", markup=False)
        else:
            self.notify(f"{self.selected}: already marked, or nothing seen yet", severity="warning", markup=False)

    def action_proposal(self, what: str) -> None:
        learner = self.hub.meta
        tuner = learner.tuner if learner is not None else None
        if tuner is None:
            self.notify("meta-learning is off", severity="warning")
            return
        if what == "undo":
            p = tuner.undo_last()
            self.notify(f"undone: {p.rule}.{p.param} back to {p.old:g}" if p else "no rule change to undo",
                        title="Meta-learning")
            return
        if tuner.current() is None:
            self.notify("no pending proposal", title="Meta-learning")
            return
        if not self.query_one(MetaPanel).display:  # never act on a proposal the user has not seen
            self.notify("show the meta-learning panel (6) to read the proposal first", title="Meta-learning",
                        severity="warning")
            return
        if what == "accept":
            p, ok = tuner.accept_current(now=self.hub.clock.now())
            self.notify(f"{p.rule}.{p.param}: {p.old:g} -> {p.new:g}" if ok else f"refused: {p.effect}",
                        title="Meta-learning")
        else:
            p = tuner.reject_current()
            self.notify(f"rejected: {p.rule}.{p.param} {p.new:g}", title="Meta-learning")
        self.render_tick(force=True)

    def action_scroll_log(self, where: str) -> None:
        log = self.query_one(PatternLog)
        if not log.display or not log.content_region.width:  # (hidden: it has no size to page by)
            self.notify("the pattern log is hidden: 4 shows it", title="Patterns", severity="warning")
            return
        log.scroll_to(where)

    def action_cancel_stream(self) -> None:
        if self.selected and self.hub.cancel(self.selected):
            self.notify(f"cancelling {self.selected}", title="Cancel", markup=False)
        else:
            self.notify(f"{self.selected or 'no stream'} has no running source to cancel",
                        title="Cancel", severity="warning", markup=False)

    def action_help(self) -> None:
        self.push_screen(HelpScreen([b for b in self.BINDINGS if isinstance(b, Binding)]))

    def _hangup(self) -> None:
        """The terminal went away (an SSH connection dropped). Nothing can be drawn any more, and Textual's
        shutdown writes to the terminal: once its writer thread died on the closed terminal, such a write waits
        for ever. So: stop drawing, stop the streams, let the run save what it holds, and end the process."""
        if self._hung_up:
            return
        self._hung_up = True
        if self._timer is not None:
            self._timer.stop()
        self.set_reactive(MidStreamApp.paused, True)  # no redraw: there is no terminal to draw on

        async def leave() -> None:
            try:
                await asyncio.wait_for(self.hub.stop(), HANGUP_GRACE_S)
            except asyncio.TimeoutError:
                pass  # streams that would not stop in time: what was recorded is saved all the same
            finally:
                if self._on_hangup is None:
                    self.exit(129)
                else:
                    try:
                        self._on_hangup()
                    finally:
                        os._exit(129)  # nothing left to restore: the terminal is gone

        self._leaving = asyncio.ensure_future(leave())

    async def action_quit(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        if self._stopping is not None:  # (stopped already, the run having failed: that stop finishes first)
            await self._stopping
        await self.hub.stop()
        self.exit(0)

    async def on_unmount(self) -> None:
        if self._stopping is not None:
            await self._stopping
        await self.hub.stop()

    # ------------------------------------------------------------ command palette

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Next stream", "Select the next stream", self.action_next_stream)
        yield SystemCommand("Previous stream", "Select the previous stream", self.action_previous_stream)
        yield SystemCommand("Pause / resume display", "Freeze or resume the display", self.action_toggle_pause)
        yield SystemCommand("Faster refresh", "Redraw more often", self.action_faster)
        yield SystemCommand("Slower refresh", "Redraw less often", self.action_slower)
        for panel in KEYED:
            yield SystemCommand(f"Toggle {panel.toggle} panel", f"Show or hide the {panel.toggle} panel",
                                lambda p=panel.toggle: self.action_toggle_panel(p))
        yield SystemCommand("Next signal", "Show the dynamics of the stream's next signal",
                            self.action_next_signal)
        yield SystemCommand("Cancel selected stream", "Cancel the selected stream mid-stream",
                            self.action_cancel_stream)
        yield SystemCommand("Keys and panels", "Open the help screen", self.action_help)
        for stream in self.hub.streams:
            yield SystemCommand(f"Select stream {stream}", "Show this stream's metrics and attractor",
                                lambda s=stream: self.select_stream(s), discover=False)


def failure_text(error: BaseException) -> str:
    """What made a run fail, in one line for the user (an OSError's own words, without its [Errno 0])."""
    return (getattr(error, "strerror", None) or str(error) or type(error).__name__).rstrip(".")


def run_dashboard(hub: HubView, sources: Iterable[Source] = (), refresh_ms: int = 100) -> int:
    """Open the dashboard on a hub (library use); returns when the user quits."""
    app = MidStreamApp(hub, sources, refresh_ms=refresh_ms)
    app.run()
    return app.return_code or 0
