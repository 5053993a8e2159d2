"""MidStream: watch live AI streams while they stream.

Library use, for code that already has a stream in hand::

    from midstream_tui import Hub

    hub = Hub()
    hub.push_text("my-llm", "Hello", tokens=1)      # as text arrives
    hub.push_audio("mic", samples, sample_rate=16000)
    hub.push_video("cam", frame)                     # HxWx3 uint8
    snapshots = hub.analyze()                        # {stream: Snapshot}
    open_dashboard(hub)                              # the same hub, full screen
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .clock import FrozenClock, MonotonicClock, VirtualClock
from .events import (
    AudioChunk,
    Event,
    RequestFinished,
    RequestStarted,
    StreamClosed,
    StreamError,
    StreamOpened,
    TextDelta,
    Usage,
    VideoFrame,
)
from .hub import Hub, HubError, StreamPipeline, run_virtual
from .snapshot import PatternHit, Snapshot
from .sources import Source, SourceError, open_source, open_sources

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "AudioChunk", "Event", "FrozenClock", "Hub", "HubError", "MonotonicClock", "PatternHit",
    "RequestFinished", "RequestStarted", "Snapshot", "Source", "SourceError", "StreamClosed",
    "StreamError", "StreamOpened", "StreamPipeline", "TextDelta", "Usage", "VideoFrame",
    "VirtualClock", "open_dashboard", "open_source", "open_sources", "run_virtual",
]


def open_dashboard(hub: Hub, sources: Iterable[Source] = (), refresh_ms: int = 100) -> int:
    """Open the full-screen dashboard on ``hub`` (blocks until the user quits)."""
    from .tui.app import run_dashboard

    return run_dashboard(hub, sources, refresh_ms)
