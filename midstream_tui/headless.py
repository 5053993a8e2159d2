"""Headless runs: the hub without a screen, printing NDJSON or a text summary.

One JSON object per line per stream and analysis tick (only streams whose
snapshot changed), each carrying the pattern hits found since that stream's
previous line; then one ``{"summary": ...}`` line. The schema is in the README.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import threading
from typing import TextIO

from . import display
from .hub import Hub, HubView, run_virtual
from .jsonsafe import dumps_line, encodable
from .redact import redact
from .snapshot import Snapshot, json_number
from .sources.base import ScheduledSource, Source
from .sources.params import identity_of
from .sources.replay import UNREADABLE


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""Control characters (an escape sequence in a stream's or an agent's name from the network) are shown as \\xNN in
the text summary, never sent to the terminal."""
_field = display.escaped
"""A one-line field of the text summary."""


class NdjsonPrinter:
    def __init__(self, hub: HubView, out: TextIO, json_mode: bool) -> None:
        self.hub, self.out, self.json_mode = hub, out, json_mode
        self._printed_seq: dict[str, int] = {}
        self._log_seq = 0
        self.lines = 0

    def tick(self, _now: float, snaps: dict[str, Snapshot] | None = None) -> None:
        snaps = self.hub.snapshots() if snaps is None else snaps
        new_hits = self.hub.patterns_since(self._log_seq)
        if new_hits:
            self._log_seq = new_hits[-1][0]
        by_stream: dict[str, list[dict]] = {}
        for _seq, hit in new_hits:
            by_stream.setdefault(hit.stream, []).append(hit.to_json() | {"t": json_number(hit.t - self.hub.t0, 3)})
        if not self.json_mode:
            return
        for stream, snap in snaps.items():
            if self._printed_seq.get(stream) == snap.seq and stream not in by_stream:
                continue
            self._printed_seq[stream] = snap.seq
            line = snap.to_json(self.hub.t0)
            line["patterns"] = by_stream.get(stream, [])
            self.out.write(redact(dumps_line(line)) + "\n")
            self.lines += 1
        for stream, hits in by_stream.items():
            if stream not in snaps:  # of no stream (a fleet's agent gone quiet, NATS lost), or of one gone from view
                for hit in hits:
                    self.out.write(redact(dumps_line({"t": hit["t"], "notice": hit})) + "\n")
                    self.lines += 1
        self.out.flush()

    def summary(self, duration: float) -> dict:
        streams = {}
        for stream, snap in self.hub.snapshots().items():
            streams[stream] = {
                "kind": snap.kind, "status": snap.status, "source": snap.source,
                "metrics": {k: json_number(v) for k, v in snap.metrics.items()},
                "attractor": snap.attractor.to_json(), "patterns": len(snap.patterns),
                "error": snap.error,
            }
            if snap.transcript:
                streams[stream]["transcript"] = [seg.to_json(self.hub.t0) for seg in snap.transcript if seg.final]
        totals = getattr(self.hub, "totals", {})
        return {"summary": {
            "duration_s": json_number(duration, 3), "ticks": self.hub.ticks, "lines": self.lines,
            "streams": streams, "patterns": len(self.hub.patterns_since(0)),
            "errors": sum(1 for s in streams.values() if s["status"] == "error"),
            **{name: {k: json_number(v) for k, v in read().items()} for name, read in totals.items()},
        }}

    def finish(self, duration: float) -> None:
        summary = self.summary(duration)
        if self.json_mode:
            self.out.write(redact(dumps_line(summary)) + "\n")
        else:
            text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", render_text_summary(self.hub, duration))
            self.out.write(encodable(redact(text)))
        self.out.flush()


def render_text_summary(hub: HubView, duration: float) -> str:
    lines = [f"MidStream headless run: {duration:.1f} s, {len(hub.streams)} stream(s)"]
    for stream, snap in hub.snapshots().items():
        lines.append(f"\n{_field(stream)} ({snap.kind}, {snap.status}) {_field(snap.source)}")
        for label, value in display.metric_rows(snap):  # (a peer's words among them: a resolution, say)
            lines.append(f"  {label:<18} {_field(value)}")
        lines.append(f"  {'attractor':<18} {_field(display.attractor_line(snap))}")
        if snap.error:
            lines.append(f"  {'error':<18} {_field(snap.error)}")
    hits = hub.patterns_since(0)
    if hits:
        lines.append(f"\npatterns ({len(hits)}):")
        for _seq, hit in hits[-20:]:
            lines.append(f"  {hit.t - hub.t0:7.2f}s {_field(hit.stream):<12} {_field(hit.kind):<10} "
                         f"{_field(hit.message)}")
    return "\n".join(lines) + "\n"


async def run_headless(hub: HubView, sources: list[Source], duration: float | None, json_mode: bool,
                       out: TextIO = sys.stdout) -> int:
    """Run live (real clock) until ``duration`` or every source ends; SIGINT/SIGTERM end it cleanly."""
    printer = NdjsonPrinter(hub, out, json_mode)
    hub.on_tick(printer.tick)
    for src in sources:
        hub.add_source(src)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread, or no signals here
            pass
    run = asyncio.ensure_future(hub.run(duration))
    stopper = asyncio.ensure_future(stop.wait())
    notice = asyncio.ensure_future(_compiling_notice(hub))
    await asyncio.wait({run, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    notice.cancel()
    try:
        if not run.done():
            run.cancel()
            try:
                await run
            except asyncio.CancelledError:
                pass
            await hub.stop()
        else:
            run.result()
        printer.tick(hub.clock.now())
        printer.finish(hub.clock.now() - hub.t0)
    except BrokenPipeError:
        _reader_gone(out)
    return failed_exit_code(hub) if sources else 0  # (a gateway's requests are its clients', not the run's sources)


DATA_METRICS = ("frames", "audio_s", "tokens", "chars")
"""Snapshot metrics that count what a stream delivered (video frames, seconds of audio, tokens, characters)."""
_RETRY_NOTE = re.compile(r"; reconnecting in [0-9.]+ s \([0-9]+/[0-9]+\)$")


def _failed(snaps: list[Snapshot]) -> bool:
    """The streams of one source: all ended in an error, or, for media and network sources, the run ended while
    it was still trying (an error said, retries under way) and none of them ever delivered anything. (A replayed
    recording of a request that failed played as it should: only a file in which nothing could be replayed fails.)"""
    if all(identity_of(snap.source, snap.kind).startswith("replay:") for snap in snaps):
        return all(any(words in (snap.error or "") for words in UNREADABLE) for snap in snaps)
    if all(snap.status == "error" for snap in snaps):
        return True
    reaches_out = any(snap.kind in ("audio", "video") or "://" in snap.source or snap.source.startswith("openai:")
                      for snap in snaps)
    return reaches_out and any(snap.error for snap in snaps) and not any(
        (snap.metrics.get(key) or 0) > 0 for snap in snaps for key in DATA_METRICS)


def failed_exit_code(hub: HubView) -> int:
    """1 (with one line on stderr) when every source failed: its streams all ended in an error, or it was never
    reached (the run ended with its retries under way and nothing delivered); else 0."""
    snaps = hub.snapshots()
    by_source: dict[str, list[Snapshot]] = {}
    for name, snap in snaps.items():
        by_source.setdefault(snap.source or name, []).append(snap)
    if not by_source or not all(_failed(group) for group in by_source.values()):
        return 0
    name, snap = next(((n, s) for n, s in snaps.items() if s.error), next(iter(snaps.items())))
    never = snap.status != "error"  # (ended by the run while still retrying, say)
    why = _RETRY_NOTE.sub("", snap.error or "error")
    print(redact(f"midstream: error: every source failed ({name}: {'nothing delivered: ' if never else ''}{why})"),
          file=sys.stderr)
    return 1


async def _compiling_notice(hub: HubView, after: float = 2.0) -> None:
    """A first run compiles the analysis kernels (~15 s on 2 cores): say so once, on stderr."""
    await asyncio.sleep(after)
    if not hub.warm:
        # (loading compiled kernels from the cache can take this long too, on a busy machine: not "compiling")
        print("midstream: the analysis kernels are still loading (compiled on a first run: about 15 s); streams"
              " are being taken in and measured meanwhile", file=sys.stderr, flush=True)


def _reader_gone(out: TextIO) -> None:
    """The reader closed our stdout (``| head``): stop quietly, as Unix tools do."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
    except (OSError, ValueError):
        pass


def run_headless_virtual(hub: Hub, sources: list[ScheduledSource], duration: float, json_mode: bool,
                         out: TextIO = sys.stdout) -> int:
    """Same output as ``run_headless`` but in virtual time: deterministic and as fast as possible. SIGINT and
    SIGTERM end it cleanly at the next analysis step, with the summary of the virtual time reached."""
    printer = NdjsonPrinter(hub, out, json_mode)
    signalled: list[int] = []
    reached = [hub.t0]

    def tick(now: float, snaps: dict[str, Snapshot]) -> None:
        reached[0] = now
        printer.tick(now, snaps)

    def stop_soon(signum: int, _frame) -> None:
        signalled.append(signum)
        signal.signal(signum, signal.SIG_DFL)  # a second one stops at once, should a step never end

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, stop_soon)
    try:
        run_virtual(hub, sources, duration, on_tick=tick, stop=lambda: bool(signalled), close_open=True)
        printer.finish(reached[0] - hub.t0 if signalled else duration)
    except BrokenPipeError:
        _reader_gone(out)
    finally:
        for sig, handler in previous.items():
            if handler is not None:  # (None: a handler not installed from Python, which cannot be put back)
                signal.signal(sig, handler)
    return failed_exit_code(hub) if sources else 0
