"""The dashboard's panels, one entry each: where it sits, its key, its title, how often it redraws, its help.

The app builds its layout, its digit keys, the panels' border titles, the command palette's toggles and the
help screen from ``PANELS``, and redraws every panel the same way on its clock (``MidStreamApp.render_tick``):
it hands each a ``View`` of the hub (``widgets/base.py``). To add a panel: a widget in ``widgets/`` that is a
``Panel`` (``show(view)``; ``applies``, ``drawn_from`` and ``title`` where the defaults do not fit), and an
entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from textual.widget import Widget

from .widgets.attractor import AttractorPanel
from .widgets.frame_preview import FramePreview
from .widgets.meta_panel import MetaPanel
from .widgets.metrics import MetricsPanel
from .widgets.pattern_log import PatternLog
from .widgets.stream_list import StreamList
from .widgets.text_view import TextView
from .widgets.transcript_view import TranscriptView


@dataclass(frozen=True)
class Panel:
    id: str
    """The widget's id (``#id`` in CSS and queries)."""
    title: str
    """Its border title (the app may make it more specific: the selected stream's name)."""
    column: str
    """``left`` or ``right``."""
    row: int
    """Its place in the column, top to bottom."""
    make: Callable[..., Widget]
    """The widget class (built with ``id=``)."""
    every_ms: int | None
    """Redrawn at most this often (None: on every tick when its input changed). Numbers, streaming text and the
    log at most 5 times a second (more changes cannot be read), the plot (its estimate moves once a second) and
    the meta panel 2.5. The rates are multiples of one another so that redraws fall on the same ticks: a screen
    update repaints the region spanning all that changed, left and right, so one shared update costs about what
    each separate one would (the default demo made ~6 a second with 333 ms and every-tick rates, 5 now)."""
    help: str
    """What it shows, for the help screen (markup; its line breaks and indents are taken as spaces)."""
    toggle: str
    """The name its digit key toggles; panels sharing a place share one (text, frame, transcript)."""
    key: str = ""
    """The digit that shows or hides it (on the first panel of a toggle)."""
    key_help: str = ""


PANELS: tuple[Panel, ...] = (  # in the help screen's order
    Panel("streams", "Streams", "left", 0, StreamList, 200, "every stream, its state and headline number "
          "(tok/s, dB, fps)", "streams", "1", "Show or hide the stream list"),
    Panel("metrics", "Metrics", "left", 1, MetricsPanel, 200, "the selected stream: rates, latency percentiles, "
          "drops, uptime", "metrics", "2", "Show or hide the metrics panel"),
    Panel("attractor", "Attractor", "right", 0, AttractorPanel, 400,
          "phase portrait x(t) vs x(t+lag) of the stream's signal, with the\n"
          "            estimated type (point, limit cycle, strange, noise) and λ, the\n"
          "            largest Lyapunov exponent per step", "attractor", "3", "Show or hide the attractor plot"),
    Panel("text", "Text", "right", 1, TextView, 200, "the selected text stream's newest output, as it streams",
          "text", "5", "Show or hide the text, frame preview or transcript (by stream kind)"),
    Panel("preview", "Frame", "right", 2, FramePreview, 200, "the selected video stream's recent frame "
          "(half-block pixels),\n            detected faces and bodies boxed", "text"),
    Panel("transcript", "Transcript", "right", 3, TranscriptView, 200, "what is said in the selected audio stream "
          "(partial in italics)", "text"),
    Panel("patterns", "Patterns", "right", 4, PatternLog, 200,
          "loops, recurring phrases, stalls, silences, scene cuts, speech,\n"
          "            detections, rule actions and errors as they happen", "patterns", "4",
          "Show or hide the pattern log"),
    Panel("meta", "Meta-learning", "left", 2, MetaPanel, 400,
          "what was learned about the stream's source (gaps, stall limit),\n"
          "            its risk of being cancelled / failing, which patterns matter,\n"
          "            and rule-change proposals (a accept, x reject, u undo)", "meta", "6",
          "Show or hide the meta-learning panel"),
)

TOGGLES: dict[str, tuple[str, ...]] = {}
"""Toggle name -> the ids of the panels it shows and hides."""
for _p in PANELS:
    TOGGLES[_p.toggle] = (*TOGGLES.get(_p.toggle, ()), _p.id)
KEYED = sorted((p for p in PANELS if p.key), key=lambda p: p.key)
"""The panels that own a digit key, by key."""


def column(name: str) -> list[Panel]:
    return sorted((p for p in PANELS if p.column == name), key=lambda p: p.row)


def help_rows() -> list[tuple[str, str]]:
    """The help screen's panel rows: each panel's title and what it shows (markup, as one paragraph: the screen
    wraps it in its own column; hand-made line breaks broke again at 80 columns)."""
    name = {"meta": "Meta"}  # short names where the title is long
    return [(name.get(p.id, p.title), " ".join(p.help.split())) for p in PANELS]


def every(panel: Panel, refresh_ms: int) -> int:
    """Ticks between redraws of a panel at a refresh interval (1: every tick)."""
    ms = panel.every_ms
    return 1 if ms is None else max(1, round(ms / refresh_ms))
