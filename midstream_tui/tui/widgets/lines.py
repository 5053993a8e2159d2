"""A text panel drawn line by line: only the lines whose markup changed are rendered and repainted.

The metrics, the stream list and the meta-learning panel are a few dozen short
lines, redrawn several times a second, of which a handful change (a rate, a
percentile): a ``Static`` lays out, styles and sends all of them each time. Here
each markup line is rendered once into its rows (wrapped to the panel's width,
exactly as in the whole text: each line of a text is wrapped on its own, and its
cells carry their place in the text, which mouse selection reads), kept while it
and its place stay the same, and only the rows that changed are marked for
Textual to repaint (and send to the terminal).

While the user selects text in the panel, it is drawn as one text again (the
selection's coordinates are the whole text's), as a ``Static``.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.content import Content
from textual.geometry import Region
from textual.strip import Strip
from textual.visual import Visual
from textual.widgets import Static


class LineStatic(Static):
    _markups: tuple[str, ...] = ()
    _rows: list[Strip] | None = None
    """The lines as finished rows for ``_rows_for``; None: built again when next drawn."""
    _rows_for: tuple = ()
    """(width, style) the rows (and the per-line cache) were rendered for."""
    _joined: Content | None = None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._line_rows: dict[tuple[int, str], list[Strip]] = {}
        """(line number, markup) -> its rendered rows, for the width and style in ``_rows_for``."""

    def set_lines(self, markups: Sequence[str], layout: bool = False) -> None:
        """Show these markup lines. ``layout``: the panel's height follows its rows (a new layout when their
        number changes)."""
        markups = tuple(markups)
        if markups == self._markups:
            return
        self._markups, self._joined = markups, None
        old, self._rows = self._rows, None
        width = self.size.width
        if old is None or not width or self.text_selection is not None:
            self.refresh(layout=layout)
            return
        new = self._build()
        if len(new) != len(old):
            self.refresh(layout=layout)
            return
        for y, (before, after) in enumerate(zip(old, new)):
            if before is not after:  # unchanged markup keeps its very strips
                self.refresh(Region(0, y, width, 1))

    def _build(self) -> list[Strip]:
        style = self.visual_style
        key = (self.size.width, style)
        cache = self._line_rows
        if key != self._rows_for:
            cache.clear()
            self._rows_for = key
        width = self.size.width
        rows: list[Strip] = []
        used: dict[tuple[int, str], list[Strip]] = {}
        for y, markup in enumerate(self._markups):
            strips = cache.get((y, markup))
            if strips is None:
                # rendered in its place: the empty lines before it give its cells their line number
                text = Content("\n" * y) + Content.from_markup(markup)
                strips = Visual.to_strips(self, text, width, None, style)[y:]
            used[y, markup] = strips
            rows.extend(strips)
        self._line_rows = used  # only the lines shown now are kept
        self._rows = rows
        return rows

    @property
    def content(self) -> Content:  # type: ignore[override]
        """All the lines as one text (what the panel shows)."""
        if self._joined is None:
            self._joined = Content("\n").join(Content.from_markup(m) for m in self._markups)
        return self._joined

    @property
    def visual(self) -> Content:  # type: ignore[override]
        return self.content

    def render(self) -> Content:
        return self.content

    def render_line(self, y: int) -> Strip:
        if self.text_selection is not None:
            return super().render_line(y)
        rows = self._rows
        if rows is None or self._rows_for != (self.size.width, self.visual_style):
            rows = self._build()
        return rows[y] if y < len(rows) else Strip.blank(self.size.width, self.visual_style.rich_style)
