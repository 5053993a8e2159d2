"""The help screen: every key, and what each panel shows."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Static

PANELS = """\
[b]Streams[/]    every stream, its state and headline number (tok/s, dB, fps)
[b]Metrics[/]    the selected stream: rates, latency percentiles, drops, uptime
[b]Attractor[/]  phase portrait x(t) vs x(t+lag) of the stream's signal, with the
            estimated type (point, limit cycle, strange, noise) and λ, the
            largest Lyapunov exponent per step
[b]Text[/]       the selected text stream's newest output, as it streams
[b]Frame[/]      the selected video stream's recent frame (half-block pixels),
            detected faces and bodies boxed
[b]Transcript[/] what is said in the selected audio stream (partial in italics)
[b]Patterns[/]   loops, recurring phrases, stalls, silences, scene cuts, speech,
            detections, rule actions and errors as they happen
[b]Meta[/]       what was learned about the stream's source (gaps, stall limit),
            its risk of being cancelled / failing, which patterns matter,
            and rule-change proposals (a accept, x reject, u undo)"""


KEY_SYMBOLS = {"down": "↓", "up": "↑", "plus": "+", "minus": "-", "equals_sign": "=", "question_mark": "?",
               "space": "space", "pageup": "PgUp", "pagedown": "PgDn", "home": "Home", "end": "End"}


class HelpScreen(ModalScreen[None]):
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
        text = "[b]MidStream keys[/]\n\n" + "\n".join(keys) + "\n\n" + PANELS + "\n\n[$text-muted]esc closes[/]"
        with VerticalScroll(id="help-body"):
            yield Static(Content.from_markup(text))
