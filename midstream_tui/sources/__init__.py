"""Sources: turn a source URI into a ``Source``.

``open_source`` looks the URI's scheme up in ``SCHEMES`` (``sim:``, ``openai:``,
``webrtc://``); a path ending in ``.sse`` is a recorded SSE stream, ``-`` is
standard input, and anything else is tried as media (files, HLS, DASH, RTMP,
UDP, RTSP, SRT through PyAV). To add a kind of source: a module here with a
``Source`` subclass whose ``from_params`` reads its options with
``params.param``, and one entry in ``SCHEMES``.

Sources read neither the environment nor the configuration: what they need of
it (API keys, base URLs, tokens) comes in a ``Settings`` given by the caller
(the package root's ``open_sources`` reads one from the environment when none is given).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, urlencode, urlsplit

from ..clock import Clock
from .base import ScheduledSource, Source, SourceError
from .params import query
from .simulate import SimAudioSource, SimTextSource, SimVideoSource

if TYPE_CHECKING:  # the type only: sources do not read the configuration
    from ..config import Settings

__all__ = ["Source", "ScheduledSource", "SourceError", "open_source", "open_sources", "SIM_KINDS", "SCHEMES"]

SIM_KINDS = {"text": SimTextSource, "audio": SimAudioSource, "video": SimVideoSource}


def _open_sim(uri: str, parts: SplitResult, stream_id: str | None, clock: Clock | None,
              settings: Settings | None) -> Source:
    cls = SIM_KINDS.get(parts.path)
    if cls is None:
        raise SourceError(f"unknown simulated stream {uri!r}: expected sim:text, sim:audio or sim:video")
    params = query(uri, parts.query)
    name = params.pop("name", None) or stream_id or f"{parts.path}"
    return cls.from_params(name, uri, params, clock)


def _open_openai(uri: str, parts: SplitResult, stream_id: str | None, clock: Clock | None,
                 settings: Settings | None) -> Source:
    from .openai_chat import OpenAIChatSource, OpenAIResponsesSource  # the client only when used
    from .openai_realtime import OpenAIRealtimeSource

    cls = {"chat": OpenAIChatSource, "responses": OpenAIResponsesSource,
           "realtime": OpenAIRealtimeSource}.get(parts.path)
    if cls is None:
        raise SourceError(f"unknown OpenAI API {uri!r}: expected openai:chat, openai:responses or openai:realtime")
    params = query(uri, parts.query)
    name = params.pop("name", None) or stream_id or f"{parts.path}-{params.get('model', 'model')}"
    return cls.from_params(name, uri, params, clock, api_key=getattr(settings, "openai_api_key", None),
                           base_url=getattr(settings, "openai_base_url", None))


def _open_webrtc(uri: str, parts: SplitResult, stream_id: str | None, clock: Clock | None,
                 settings: Settings | None) -> Source:
    from .webrtc import open_webrtc  # aiortc only when WebRTC is asked for

    return open_webrtc(uri, clock, stream_id, token=getattr(settings, "signaling_token", None))


Opener = Callable[[str, SplitResult, "str | None", "Clock | None", "Settings | None"], Source]
SCHEMES: dict[str, Opener] = {"sim": _open_sim, "openai": _open_openai, "webrtc": _open_webrtc}
"""URI scheme -> the function that opens it (uri, its parts, stream id, clock, settings)."""


def open_source(uri: str, clock: Clock | None = None, stream_id: str | None = None,
                settings: Settings | None = None) -> Source:
    """Build the source for ``uri``; raise ``SourceError`` with a one-line reason.

    ``settings``: keys, base URLs and tokens for the sources that need them (none when not given)."""
    uri = uri.strip()
    if not uri:
        raise SourceError("empty source URI: try sim:text, sim:audio or sim:video")
    parts = split_uri(uri)
    opener = SCHEMES.get(parts.scheme)
    if opener is not None:
        return opener(uri, parts, stream_id, clock, settings)
    if parts.path.endswith(".sse") and parts.scheme in ("", "file"):
        from .replay import open_sse

        return open_sse(uri, parts.path, query(uri, parts.query), clock)
    if uri == "-":
        from .replay import StdinSource

        return StdinSource(stream_id or "stdin", "-", clock)
    from .media import open_media  # PyAV only when media is asked for

    media = open_media(uri, clock, stream_id)
    if media is not None:
        return media
    raise SourceError(f"unknown source {uri!r}: expected a URI such as sim:text, sim:audio or sim:video")


def split_uri(uri: str):
    """``urlsplit(uri)``; a ``SourceError`` for what it cannot split ("rtmp://[::1/live": an IPv6 address not closed
    ended the run with a traceback)."""
    try:
        return urlsplit(uri)
    except ValueError as exc:
        raise SourceError(f"{uri}: {exc}") from None


MAX_BATCH = 256


def _expand_batches(uris: list[str]) -> list[str]:
    """``openai:*?count=N`` gives N concurrent streams; ``prompt_file=F`` one stream per line of F."""
    out: list[str] = []
    for uri in uris:
        parts = split_uri(uri.strip())
        if parts.scheme != "openai" or ("count=" not in parts.query and "prompt_file=" not in parts.query):
            out.append(uri)
            continue
        params = query(uri, parts.query)
        prompts: list[str | None]
        if "prompt_file" in params:
            path = Path(params.pop("prompt_file"))
            try:
                lines = path.read_text("utf-8").splitlines()
            except OSError as exc:
                raise SourceError(f"prompt_file={path}: {exc.strerror or exc}") from None
            prompts = [line.strip() for line in lines if line.strip()]
            if not prompts:
                raise SourceError(f"prompt_file={path}: no prompts (one per line)")
        else:
            prompts = [None]
        raw = params.pop("count", "1")
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_BATCH:
            raise SourceError(f"{uri}: count={raw!r}: expected 1 to {MAX_BATCH}")
        count = int(raw)
        if len(prompts) * count > MAX_BATCH:
            raise SourceError(f"{uri}: {len(prompts) * count} streams: at most {MAX_BATCH}")
        base = params.pop("name", None) or f"{parts.path}-{params.get('model', 'model')}"
        k = 0
        for prompt in prompts:
            for _ in range(count):
                k += 1
                q = dict(params, name=f"{base}-{k}")
                if prompt is not None:
                    q["prompt"] = prompt
                out.append(f"openai:{parts.path}?{urlencode(q)}")
    return out


def open_sources(uris: list[str], clock: Clock | None = None, settings: Settings | None = None) -> list[Source]:
    """Open several sources, giving each stream a unique id (text, text-2, ...).

    A recorded session (``*.jsonl``) gives one source per stream it holds.
    """
    sources: list[Source] = []
    for uri in _expand_batches(uris):
        parts = split_uri(uri.strip())
        if parts.path.endswith(".jsonl") and parts.scheme in ("", "file"):
            from .replay import open_replay

            sources.extend(open_replay(uri, parts.path, query(uri, parts.query), clock))
        else:
            sources.append(open_source(uri, clock, settings=settings))
    seen: Counter[str] = Counter()
    for src in sources:
        seen[src.stream_id] += 1
        if seen[src.stream_id] > 1:
            src.stream_id = f"{src.stream_id}-{seen[src.stream_id]}"
    return sources
