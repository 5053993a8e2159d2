"""The help screen: every key, and what each panel shows."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from ..terminal_safety import escape
from textual.screen import ModalScreen
from textual.widgets import Static

from ..panels import help_rows

KEY_SYMBOLS = {"down": "↓", "up": "↑", "plus": "+", "minus": "-", "equals_sign": "=", "question_mark": "?",
               "space": "space", "pageup": "PgUp", "pagedown": "PgDn", "home": "Home", "end": "End"}


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
        #help-body {
            width: 90%;
            max-width: 100;
            height: 80%;
            border: round $accent;
            background: $panel;
            padding: 1 2;
        }
        .key-row { height: auto; }
        .key { width: 15; color: $accent; }
        .what { width: 1fr; }
    }
    """
    BINDINGS = [
        Binding("escape,q,question_mark,f1", "dismiss", "Close", id="close-help", tooltip="Close the help screen"),
    ]

    def __init__(self, bindings: list[Binding]) -> None:
        super().__init__()
        self._bindings_shown = bindings

    def compose(self) -> ComposeResult:
        # One row per key: the key in its own column, so that a description too long for a narrow terminal wraps
        # under itself, not under the keys.
        rows = [(" ".join(KEY_SYMBOLS.get(k, k) for k in b.key.split(",")),
                 f"{escape(b.description)}  [$text-muted]{escape(b.tooltip)}[/]") for b in self._bindings_shown]
        rows.append(("ctrl+p", "Commands  [$text-muted]every action by name[/]"))
        with VerticalScroll(id="help-body"):
            yield Static(Content.from_markup("[b]MidStream keys[/]\n"))
            for key, what in rows:
                with Horizontal(classes="key-row"):
                    yield Static(Content(key), classes="key")
                    yield Static(Content.from_markup(what), classes="what")
            yield Static(Content.from_markup("\n[b]Panels[/]\n"))
            for title, what in help_rows():  # (the same two columns: a description wraps under itself)
                with Horizontal(classes="key-row"):
                    yield Static(Content(title), classes="key")
                    yield Static(Content.from_markup(what), classes="what")
            yield Static(Content.from_markup("\n[$text-muted]esc closes[/]"))
