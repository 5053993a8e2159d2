"""What every panel is: it is handed a ``View`` of the hub on the app's clock and shows its part of it.

The app's render loop is the same for every panel (see ``tui/panels.py``): a panel that applies and is not
hidden, when it is due, is redrawn unless what it draws from is unchanged; its border title follows the view.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass

from ...hub import HubView
from ...snapshot import Snapshot


@dataclass(frozen=True)
class View:
    """The hub as the app sees it on one tick."""

    hub: HubView
    streams: tuple[str, ...]
    snaps: Mapping[str, Snapshot]
    selected: str | None
    """The stream the user selected (the app keeps it one of ``streams``)."""
    signal_index: int = 0
    """Which of the selected stream's signals the dynamics are shown for (``s`` steps through them)."""
    stream_filter: str = "all"
    """Which streams the list shows (``f`` steps through ``stream_list.FILTERS``)."""

    @property
    def snap(self) -> Snapshot | None:
        """The selected stream's newest snapshot."""
        return self.snaps.get(self.selected) if self.selected else None


class Panel:
    """Mixed into a widget: what makes it a panel. ``show`` draws; the rest have defaults."""

    def follow(self, view: View) -> None:
        """Called on every tick, shown or not: keep up with what must not be missed while hidden (the pattern
        log takes in the hub's hits, which the hub keeps only so many of)."""

    def applies(self, view: View) -> bool:
        """Whether it has something to show for this view (the selected stream's kind, a learner...)."""
        return True

    def drawn_from(self, view: View) -> Hashable | None:
        """What its drawing depends on: while it is unchanged, a due redraw is skipped (a repaint sends the
        widget's whole region to the terminal). None: redrawn whenever due."""
        return None

    def title(self, view: View) -> str | None:
        """Its border title for this view; None: the one in the panel registry."""
        return None

    def show(self, view: View) -> None:  # pragma: no cover - each panel draws its own
        raise NotImplementedError
