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
    REASONING,
    AudioChunk,
    ChoiceText,
    Event,
    OutputChunk,
    RequestFinished,
    RequestStarted,
    StreamClosed,
    StreamError,
    StreamOpened,
    TextDelta,
    Usage,
    VideoFrame,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .clock import Clock
    from .config import Settings
    from .hub import Hub, HubError, StreamPipeline, run_virtual
    from .snapshot import PatternHit, Snapshot
    from .sources import Source, SourceError

_LAZY = {"Hub": "hub", "HubError": "hub", "StreamPipeline": "hub", "run_virtual": "hub", "PatternHit": "snapshot",
         "Snapshot": "snapshot", "Source": "sources", "SourceError": "sources"}
"""Imported when first asked for: a process that needs only a part of the package (the proxy's relay process,
which forwards bytes) does not load the analysis (numba) with it."""


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})

__all__ = [
    "REASONING", "AudioChunk", "ChoiceText", "Event", "FrozenClock", "Hub", "HubError", "MonotonicClock", "OutputChunk",
    "PatternHit", "RequestFinished", "RequestStarted", "Snapshot", "Source", "SourceError", "StreamClosed",
    "StreamError", "StreamOpened", "StreamPipeline", "TextDelta", "Usage", "VideoFrame",
    "VirtualClock", "open_dashboard", "open_source", "open_sources", "run_virtual",
]


def open_source(uri: str, clock: Clock | None = None, stream_id: str | None = None,
                settings: Settings | None = None) -> Source:
    """The source for ``uri`` (see ``sources.open_source``); without ``settings``, they are read from the
    environment and ``.env`` (OPENAI_API_KEY, OPENAI_BASE_URL, MIDSTREAM_SIGNALING_TOKEN)."""
    from .sources import open_source as _open_source

    return _open_source(uri, clock, stream_id, settings=settings or _settings())


def open_sources(uris: list[str], clock: Clock | None = None, settings: Settings | None = None) -> list[Source]:
    """Several sources with unique stream ids (see ``sources.open_sources``); settings as for ``open_source``."""
    from .sources import open_sources as _open_sources

    return _open_sources(uris, clock, settings=settings or _settings())


def _settings() -> Settings:
    from .config import load_settings

    return load_settings()


def open_dashboard(hub: Hub, sources: Iterable[Source] = (), refresh_ms: int = 100) -> int:
    """Open the full-screen dashboard on ``hub`` (blocks until the user quits)."""
    from .tui.app import run_dashboard

    return run_dashboard(hub, sources, refresh_ms)
