"""Text from streams and peers never acts on the terminal.

What the dashboard draws comes, in good part, from others: an LLM's reply (through ``midstream proxy``, from an
upstream MidStream does not control), stream and agent names and hit messages from every agent publishing to
``midstream watch``, the text of a replayed file. A terminal *executes* the control characters in it: ``ESC ] 0 ;``
retitles the window, ``ESC ] 52 ;`` writes the clipboard, ``ESC [ 2 J`` clears the screen and lets a forged
screen be drawn. Textual removes only bell, backspace, vertical tab, form feed and carriage return from the text it
draws (``textual.content._strip_control_codes``, applied to every ``Content`` made from plain text or markup, so to
everything MidStream's panels show but a hand-made ``Segment``: those go through ``safe``).

``install()`` extends that table once, before anything is drawn: every other C0 control (but tab and newline), DEL
and the C1 controls (which some terminals take as ESC plus a letter) are drawn as visible symbols (the Unicode
control pictures: ESC as ␛; a C1 as �), so the user sees that something was there and nothing happens. Textual's own
escape sequences are not text and are untouched. ``tests/test_app.py`` checks, through the whole app, that an ESC
in a stream's name and text reaches no screen; it fails if a Textual upgrade renames the table.
"""

from __future__ import annotations

from textual import content as _content

KEPT = {0x09, 0x0A}  # tab and newline are layout
"""Controls drawn as they are."""
CONTROLS = (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0))
"""C0, DEL and C1."""


def replacement(code: int) -> str:
    """What a control character is drawn as."""
    if code < 0x20:
        return chr(0x2400 + code)  # ␀ … ␟ (␛ for ESC)
    if code == 0x7F:
        return "\u2421"  # ␡
    return "\ufffd"


def install() -> bool:
    """Make every text Textual draws free of control characters; True if its table was found (and extended)."""
    table = getattr(_content, "_CONTROL_STRIP_TRANSLATE", None)
    if not isinstance(table, dict):
        return False
    for code in CONTROLS:
        if code not in KEPT and code not in table:  # (Textual's own removals stay removals)
            table[code] = replacement(code)
    return True


def safe(text: str) -> str:
    """``text`` as the table draws it: for what is drawn as a hand-made ``Segment`` (a frame's caption of detection
    labels, from a peer), which never becomes a ``Content``."""
    return text.translate(_content._CONTROL_STRIP_TRANSLATE if INSTALLED else _OWN)


_OWN = {code: replacement(code) for code in CONTROLS if code not in KEPT}
INSTALLED = install()


_ZERO_WIDTH = "\u200b"


def escape(text: object) -> str:
    """``text`` as Textual markup that shows exactly it: every "[" escaped, and a zero-width space after every
    backslash, so that none escapes what follows (a tag of the panel's own). Textual's ``escape`` escapes only a
    "[" that looks like a tag: "gpt-4o[2" — a proxy client's model name — raised MarkupError in a row's markup
    and ended the app, and a value ending in a backslash escaped its closing tag, which showed as "[/]". Checked
    against Textual's parser on 80,000 random strings of brackets, slashes, backslashes and tag characters."""
    return str(text).replace("\\", "\\" + _ZERO_WIDTH).replace("[", "\\[")

