"""A text panel that repaints only the lines that changed.

The metrics, the stream list and the meta-learning panel are a few dozen short
lines, redrawn several times a second, of which a handful change (a rate, a
percentile). A ``Static`` marks its whole region for Textual to repaint (and send
to the terminal) on each update. Here the text is still rendered whole (one pass
over all lines is cheaper than many passes over one line each), but each row is
compared with the one shown, and only the rows that differ are marked.

While the user selects text in the panel it is drawn as a ``Static`` is (the
selection's styles are applied when the whole text is rendered).
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.content import Content
from textual.geometry import Region
from textual.strip import Strip
from textual.visual import Visual
from textual.widgets import Static


class LineStatic(Static):
    _markups: tuple[str | Content, ...] = ()
    _rows: list[Strip] | None = None
    """The text's rows as rendered for ``_rows_for``; None: rendered again when next drawn."""
    _rows_for: tuple = ()
    """(width, style) the rows were rendered for."""
    _joined: Content | None = None
    _shown: tuple[str | Content, ...] = ()
    """The markup lines ``_rows`` were rendered from."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._parsed: dict[str | Content, Content] = {}
        """Each markup line shown, parsed (most lines stay the same from one update to the next)."""

    def refresh(self, *regions, **kwargs):
        # A whole repaint (a theme or CSS change: the markup's $variables may now be other colours, though the
        # base style is the same) renders the text again; rows marked one by one keep the rest.
        if not regions and kwargs.get("repaint", True):
            self._rows = None
        return super().refresh(*regions, **kwargs)

    def update(self, content="", *, layout: bool = True) -> None:
        """As ``Static.update``: the text's lines become the panel's lines."""
        if isinstance(content, Content):  # (as it is: its markup would be parsed again, and text with a "[" in
            self.set_lines(content.split("\n"), layout=layout)  # it does not survive the round trip)
        else:
            self.set_lines(str(content).split("\n"), layout=layout)

    def set_lines(self, markups: Sequence[str | Content], layout: bool = False) -> None:
        """Show these lines: markup, or ``Content`` where text from elsewhere (a stream's name, a peer's) is in
        it — markup cannot carry every text: Textual's ``escape`` leaves a "[" before a digit or at the end, and
        "gpt-4o[2" in a row's markup raised MarkupError and ended the app. ``layout``: the panel's height follows
        its rows (a new layout when their number changes)."""
        markups = tuple(markups)
        if markups == self._markups:
            return
        self._markups, self._joined = markups, None
        old, self._rows = self._rows, None
        width = self.size.width
        if old is None or not width or self.text_selection is not None or self._rows_for[:1] != (width,):
            self.refresh(layout=layout)
            return
        new = self._build(old)
        if len(new) != len(old):
            self.refresh(layout=layout)
            return
        for y, (before, after) in enumerate(zip(old, new)):
            if before != after:
                self.refresh(Region(0, y, width, 1))

    def _build(self, old: list[Strip] | None = None) -> list[Strip]:
        """The text's rows. ``old``: the rows shown, for the lines in ``_shown`` (same width and style): when
        each line was one row and still is, only the lines that changed are rendered, in their places — the
        others as empty lines, which cost next to nothing — so every row keeps its line number (mouse selection
        reads it from the row's cells)."""
        width, style = self.size.width, self.visual_style
        shown, markups = self._shown, self._markups
        # (a block aligned other than left is placed by its widest line: every row depends on every line)
        if (old is not None and len(old) == len(shown) == len(markups) and (width, style) == self._rows_for
                and self.styles.content_align_horizontal == "left"):
            changed = [a != b for a, b in zip(shown, markups)]
            self.content  # every line parsed (most taken from the cache) into _parsed
            lines, blank = self._parsed, Content("")
            partial = Content("\n").join(lines[m] if c else blank for m, c in zip(markups, changed))
            fresh = Visual.to_strips(self, partial, width, None, style)
            if len(fresh) == len(markups):
                rows = [new if c else kept for new, kept, c in zip(fresh, old, changed)]
                self._rows, self._shown = rows, markups
                return rows
        self._rows = rows = Visual.to_strips(self, self.content, width, None, style)
        self._rows_for, self._shown = (width, style), markups
        return rows

    @property
    def content(self) -> Content:  # type: ignore[override]
        """All the lines as one text (what the panel shows)."""
        if self._joined is None:
            cache, parsed = self._parsed, {}
            for markup in self._markups:
                parsed[markup] = cache.get(markup) or (markup if isinstance(markup, Content)
                                                       else Content.from_markup(markup))
            self._parsed = parsed  # only the lines shown now are kept
            self._joined = Content("\n").join(parsed[m] for m in self._markups)
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
