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
from .sources import Source, SourceError
from .sources import open_source as _open_source
from .sources import open_sources as _open_sources

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .clock import Clock
    from .config import Settings

__all__ = [
    "AudioChunk", "Event", "FrozenClock", "Hub", "HubError", "MonotonicClock", "PatternHit",
    "RequestFinished", "RequestStarted", "Snapshot", "Source", "SourceError", "StreamClosed",
    "StreamError", "StreamOpened", "StreamPipeline", "TextDelta", "Usage", "VideoFrame",
    "VirtualClock", "open_dashboard", "open_source", "open_sources", "run_virtual",
]


def open_source(uri: str, clock: Clock | None = None, stream_id: str | None = None,
                settings: Settings | None = None) -> Source:
    """The source for ``uri`` (see ``sources.open_source``); without ``settings``, they are read from the
    environment and ``.env`` (OPENAI_API_KEY, OPENAI_BASE_URL, MIDSTREAM_SIGNALING_TOKEN)."""
    return _open_source(uri, clock, stream_id, settings=settings or _settings())


def open_sources(uris: list[str], clock: Clock | None = None, settings: Settings | None = None) -> list[Source]:
    """Several sources with unique stream ids (see ``sources.open_sources``); settings as for ``open_source``."""
    return _open_sources(uris, clock, settings=settings or _settings())


def _settings() -> Settings:
    from .config import load_settings

    return load_settings()


def open_dashboard(hub: Hub, sources: Iterable[Source] = (), refresh_ms: int = 100) -> int:
    """Open the full-screen dashboard on ``hub`` (blocks until the user quits)."""
    from .tui.app import run_dashboard

    return run_dashboard(hub, sources, refresh_ms)
