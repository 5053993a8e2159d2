"""Base for panels drawn from one snapshot: skip unchanged redraws, redraw on resize."""

from __future__ import annotations

from collections.abc import Hashable

from textual.widgets import Static

from ...snapshot import Snapshot
from .base import Panel, View


class SnapshotPanel(Panel, Static):
    """A panel drawn from the selected stream's snapshot alone. Subclasses give ``key`` (what the drawing
    depends on, at a size) and ``draw``; ``KINDS``: the stream kinds it is for."""

    KINDS: tuple[str, ...] = ()
    LABEL = ""
    """Its border title, followed by the stream's name."""

    _shown: Hashable = None
    _last: Snapshot | None = None

    def on_resize(self) -> None:
        self._shown = None
        if self._last is not None:
            self.show_snapshot(self._last)

    @property
    def cells(self) -> tuple[int, int]:
        """(columns, rows) available, with a fallback before the first layout."""
        return (max(4, self.content_region.width or self.size.width or 40),
                max(1, self.content_region.height or self.size.height or 4))

    def key(self, snap: Snapshot | None, cols: int, rows: int) -> Hashable:  # pragma: no cover
        raise NotImplementedError

    def draw(self, snap: Snapshot | None, cols: int, rows: int) -> None:  # pragma: no cover
        raise NotImplementedError

    def applies(self, view: View) -> bool:
        snap = view.snap
        return snap is not None and snap.kind in self.KINDS

    def title(self, view: View) -> str:
        return f"{self.LABEL} · {view.selected}"

    def show(self, view: View) -> None:
        self.show_snapshot(view.snap)

    def show_snapshot(self, snap: Snapshot | None) -> None:
        self._last = snap
        cols, rows = self.cells
        key = self.key(snap, cols, rows)
        if key != self._shown:  # a repaint sends the whole region to the terminal
            self._shown = key
            self.draw(snap, cols, rows)
