"""The transcript panel: what is said in the selected audio stream, utterance by utterance.

Final utterances are shown with the time they began; the utterance under way
(a partial hypothesis, which may still change) follows in italics. Only the
newest lines that fit are drawn, and only when the transcript changed.
"""

from __future__ import annotations

from textual.content import Content

from ...snapshot import Snapshot
from .base import View
from .snapshot_panel import SnapshotPanel


class TranscriptView(SnapshotPanel):
    KINDS, LABEL = ("audio",), "Transcript"
    t0 = 0.0

    def applies(self, view: View) -> bool:
        return super().applies(view) and "transcribe" in view.snap.metrics  # an audio stream being transcribed

    def title(self, view: View) -> str:
        return f"Transcript · {view.selected} ({view.snap.metrics.get('transcribe')})"

    def show(self, view: View) -> None:
        self.t0 = view.hub.t0  # times are shown from the run's start
        super().show(view)

    def key(self, snap: Snapshot | None, cols: int, rows: int):
        last = snap.transcript[-1] if snap is not None and snap.transcript else None
        return (snap.stream if snap else None, len(snap.transcript) if snap else 0,
                (last.text, last.final) if last else None, cols, rows)

    def draw(self, snap: Snapshot | None, cols: int, rows: int) -> None:
        if snap is None or not snap.transcript:
            engine = snap.metrics.get("transcribe") if snap is not None else None
            note = f"listening ({engine}): nothing said yet" if engine else "not transcribed"
            self.update(Content.from_markup(f"[$text-muted]{note}[/]"), layout=False)
            return
        lines: list[Content] = []
        for seg in snap.transcript[-rows:]:
            stamp = f"{max(0.0, seg.start - self.t0):7.1f}s "
            if seg.final:
                body = Content.from_markup(f"[$text-muted]{stamp}[/]") + Content(seg.text)
            else:
                body = Content.from_markup(f"[$text-muted]{stamp}[/][i $text-muted]$text …[/]", text=seg.text)
            lines.extend(body.wrap(max(10, cols)))
        self.update(Content("\n").join(lines[-rows:]), layout=False)
