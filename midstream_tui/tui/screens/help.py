"""The help screen: every key, and what each panel shows."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Static

from ..panels import help_text

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
    }
    """
    BINDINGS = [
        Binding("escape,q,question_mark,f1", "dismiss", "Close", id="close-help", tooltip="Close the help screen"),
    ]

    def __init__(self, bindings: list[Binding]) -> None:
        super().__init__()
        self._bindings_shown = bindings

    def compose(self) -> ComposeResult:
        keys = []
        for b in self._bindings_shown:
            shown = " ".join(KEY_SYMBOLS.get(k, k) for k in b.key.split(","))
            keys.append(f"[$accent]{escape(shown):<14}[/] {escape(b.description)}  "
                        f"[$text-muted]{escape(b.tooltip)}[/]")
        keys.append(f"[$accent]{'ctrl+p':<14}[/] Commands  [$text-muted]every action by name[/]")
        text = "[b]MidStream keys[/]\n\n" + "\n".join(keys) + "\n\n" + help_text() + "\n\n[$text-muted]esc closes[/]"
        with VerticalScroll(id="help-body"):
            yield Static(Content.from_markup(text))
