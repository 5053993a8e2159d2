"""The stream list: one line per stream with its state and headline number."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.cells import cell_len
from textual.content import Content

from ...display import headline
from ...snapshot import Snapshot
from ..terminal_safety import safe
from .base import Panel, View
from .lines import LineStatic

STATUS_STYLE = {"open": "$text-success", "closed": "$text-muted", "cancelled": "$text-warning", "error": "$text-error"}


FILTERS = ("all", "live", "ended", "cut/error")
"""What the list can be narrowed to (``f``): every stream, the open ones, the ended ones, the cut or failed."""
MAX_SHARE = 0.4
"""The most of its column the list takes; past it, streams are folded into a summary line."""
_PASSES = {"all": lambda st: True, "live": lambda st: st in ("open", "wait"),
           "ended": lambda st: st not in ("open", "wait"), "cut/error": lambda st: st in ("cancelled", "error")}


NUMBER_W = 8
"""Cells of a row's number (a rate, a level, a count of tokens)."""


def _head(text: str, width: int) -> str:
    """The longest start of ``text`` that takes at most ``width`` cells (a CJK character takes two)."""
    used = 0
    for i, ch in enumerate(text):
        used += cell_len(ch)
        if used > width:
            return text[:i]
    return text


def _tail(text: str, width: int) -> str:
    """The longest end of ``text`` that takes at most ``width`` cells."""
    return _head(text[::-1], width)[::-1]


def fitted(name: str, width: int) -> str:
    """``name`` in ``width`` cells, measured as drawn (a CJK character takes two; a row wrapped and pushed streams
    out of the list). A remote stream (``AGENT/STREAM``, from ``midstream watch``) gives up its agent's name first
    (``web-…/llm-drift``): the agent is in the sort order, the stream is what tells rows apart; a proxied request
    (``MODEL#N``) keeps its number (``emu-no…#123``: cut at the end, every row of a model read the same)."""
    if cell_len(name) <= width:
        return name
    agent, slash, stream = name.partition("/")
    if slash:
        if cell_len(stream) + 3 <= width:
            return f"{_head(agent, width - cell_len(stream) - 2)}…/{stream}"
        return "…" + _tail(stream, width - 1)
    base, mark, number = name.rpartition("#")
    if mark and number.isdigit() and base and len(number) + 3 <= width:
        return f"{_head(base, width - len(number) - 2)}…#{number}"
    return _head(name, width - 1) + "…"


def padded(text: str, width: int) -> str:
    """``text`` followed by spaces to ``width`` cells."""
    return text + " " * max(0, width - cell_len(text))


def _status(snaps: Mapping[str, Snapshot], name: str) -> str:
    snap = snaps.get(name)
    return snap.status if snap else "wait"


def passes(stream_filter: str, snaps: Mapping[str, Snapshot], name: str | None) -> bool:
    """Whether the stream is among those the list is narrowed to."""
    return name is not None and _PASSES.get(stream_filter, _PASSES["all"])(_status(snaps, name))


def _group(name: str, snap: Snapshot | None) -> str:
    """What streams are counted by in the summary: the model of a proxied request (``gpt-4o#12``), else the kind."""
    return name.rpartition("#")[0] if "#" in name else (snap.kind if snap else "?")


def listed(streams: Sequence[str], snaps: Mapping[str, Snapshot], selected: str | None, rows: int,
           stream_filter: str = "all") -> tuple[list[str], str]:
    """The streams the list shows (in arrival order) and a line summing up those folded away ("" if none).

    When they do not all fit in ``rows``, the open ones come first (the newest, if even they do not fit), then
    the most recently ended; the selected one is always shown; the last row counts the rest by status and
    model. The arrow keys move through every stream the filter passes: the one selected is shown in its place."""
    passes = _PASSES.get(stream_filter, _PASSES["all"])
    keep = [n for n in streams if passes(_status(snaps, n))]
    if len(keep) <= rows:
        return keep, ""
    room = max(1, rows - 1)
    live = [n for n in keep if _status(snaps, n) in ("open", "wait")]
    ended = sorted((n for n in keep if _status(snaps, n) not in ("open", "wait")),
                   key=lambda n: snaps[n].t, reverse=True)
    chosen = (live[-room:] + ended)[:room]
    if selected in keep and selected not in chosen:
        chosen[-1] = selected
    shown_set = set(chosen)
    shown = [n for n in keep if n in shown_set]
    folded = [n for n in keep if n not in shown_set]
    by_status: dict[str, int] = {}
    by_group: dict[str, int] = {}
    for n in folded:
        by_status[_status(snaps, n)] = by_status.get(_status(snaps, n), 0) + 1
        g = _group(n, snaps.get(n))
        by_group[g] = by_group.get(g, 0) + 1
    top = sorted(by_group.items(), key=lambda kv: -kv[1])[:3]
    summary = (f"+{len(folded)} more: " + " ".join(f"{v} {k}" for k, v in sorted(by_status.items()))
               + " · " + " ".join(f"{k} {v}" for k, v in top))
    return shown, summary


class StreamList(Panel, LineStatic):
    """Renders the streams; the app owns which one is selected."""

    DEFAULT_CSS = f"""
    StreamList {{
        height: auto;
        max-height: {MAX_SHARE:.0%};
    }}
    """

    @property
    def rows(self) -> int:
        """Lines it can show at most (its column's share, less the border)."""
        column = self.parent.size.height if self.parent is not None else 0  # type: ignore[union-attr]
        # (at least 2: a stream and the line counting the rest; 3 did not fit a short terminal's share, and the
        # count was the line cut off)
        return max(2, int(column * MAX_SHARE) - 2) if column else 12

    def drawn_from(self, view: View):
        return (view.streams, tuple(s.seq for s in view.snaps.values()), view.selected, view.stream_filter,
                self.size.width, self.rows)

    def title(self, view: View) -> str:
        if view.stream_filter == "all":
            return "Streams" if len(view.streams) <= self.rows else f"Streams · {len(view.streams)}"
        shown = sum(_PASSES[view.stream_filter](_status(view.snaps, n)) for n in view.streams)
        return f"Streams · {view.stream_filter} {shown} of {len(view.streams)}"

    def show(self, view: View) -> None:
        names, summary = listed(view.streams, view.snaps, view.selected, self.rows, view.stream_filter)
        if not names and view.streams:
            summary = f"no stream is {view.stream_filter} (f: the next filter)"
        self.draw(names, view.snaps, view.selected, summary)

    def draw(self, streams, snaps: Mapping[str, Snapshot], selected: str | None, summary: str = "") -> None:
        width = max(20, self.content_region.width or self.size.width or 30)
        name_w = max(6, width - 21)
        lines = []
        for name in streams:
            snap = snaps.get(name)
            status = snap.status if snap else "wait"
            number = headline(snap) if snap else ""
            if cell_len(number) > NUMBER_W:  # ("≈1118 tok" took 9 cells of 8, and the row wrapped)
                number = number.replace(" ", "")
                number = number if cell_len(number) <= NUMBER_W else _head(number, NUMBER_W - 1) + "…"
            # (measured as drawn: a BEL takes no cell, ESC one: ␛; a tab or newline would move the row's columns)
            shown = padded(fitted(safe(name).replace("\t", "␉").replace("\n", "␤"), name_w), name_w)
            style = STATUS_STYLE.get(status, "$text-muted")
            marker = "▶" if name == selected else " "
            # (Content, not markup: a name is anyone's text, and markup cannot carry every text)
            line = Content.assemble(f"{marker} {shown} ", (f"{status:<9}", style), f" {number:>{NUMBER_W}}")
            if name == selected:
                line = line.stylize("reverse")
            lines.append(line)
        if summary:
            lines.append(Content.styled(summary[:width], "$text-muted"))
        if not lines:
            lines = ["[$text-muted]no streams yet[/]"]
        # rounded numbers often stay put: only the rows that changed are drawn again; its height follows its
        # rows (a new layout when their number changes)
        self.set_lines(lines, layout=True)
