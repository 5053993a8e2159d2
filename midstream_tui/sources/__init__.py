"""Sources: turn a source URI into a ``Source`` (see DESIGN.md for the URI forms)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from ..clock import Clock
from .base import ScheduledSource, Source, SourceError
from .simulate import SimAudioSource, SimTextSource, SimVideoSource

__all__ = ["Source", "ScheduledSource", "SourceError", "open_source", "open_sources", "SIM_KINDS"]

SIM_KINDS = {"text": SimTextSource, "audio": SimAudioSource, "video": SimVideoSource}

def _query(uri: str, query: str) -> dict[str, str]:
    try:
        return dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError:
        raise SourceError(f"{uri}: malformed query string {query!r}") from None


def open_source(uri: str, clock: Clock | None = None, stream_id: str | None = None) -> Source:
    """Build the source for ``uri``; raise ``SourceError`` with a one-line reason."""
    uri = uri.strip()
    if not uri:
        raise SourceError("empty source URI: try sim:text, sim:audio or sim:video")
    parts = urlsplit(uri)
    if parts.scheme == "sim":
        cls = SIM_KINDS.get(parts.path)
        if cls is None:
            raise SourceError(f"unknown simulated stream {uri!r}: expected sim:text, sim:audio or sim:video")
        params = _query(uri, parts.query)
        name = params.pop("name", None) or stream_id or f"{parts.path}"
        return cls.from_params(name, uri, params, clock)
    if parts.scheme == "openai" and parts.path in ("chat", "responses", "realtime"):
        from .openai_chat import OpenAIChatSource, OpenAIResponsesSource  # the client only when used
        from .openai_realtime import OpenAIRealtimeSource

        cls = {"chat": OpenAIChatSource, "responses": OpenAIResponsesSource,
               "realtime": OpenAIRealtimeSource}[parts.path]
        params = _query(uri, parts.query)
        name = params.pop("name", None) or stream_id or f"{parts.path}-{params.get('model', 'model')}"
        return cls.from_params(name, uri, params, clock)
    if parts.path.endswith(".sse") and parts.scheme in ("", "file"):
        from .replay import open_sse

        return open_sse(uri, parts.path, _query(uri, parts.query), clock)
    if uri == "-":
        from .replay import StdinSource

        return StdinSource(stream_id or "stdin", "-", clock)
    if parts.scheme == "webrtc":
        from .webrtc import open_webrtc  # aiortc only when WebRTC is asked for

        return open_webrtc(uri, clock, stream_id)
    from .media import open_media  # PyAV only when media is asked for

    media = open_media(uri, clock, stream_id)
    if media is not None:
        return media
    raise SourceError(f"unknown source {uri!r}: expected a URI such as sim:text, sim:audio or sim:video")


MAX_BATCH = 256


def _expand_batches(uris: list[str]) -> list[str]:
    """``openai:*?count=N`` gives N concurrent streams; ``prompt_file=F`` one stream per line of F."""
    out: list[str] = []
    for uri in uris:
        parts = urlsplit(uri.strip())
        if parts.scheme != "openai" or ("count=" not in parts.query and "prompt_file=" not in parts.query):
            out.append(uri)
            continue
        params = _query(uri, parts.query)
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


def open_sources(uris: list[str], clock: Clock | None = None) -> list[Source]:
    """Open several sources, giving each stream a unique id (text, text-2, ...).

    A recorded session (``*.jsonl``) gives one source per stream it holds.
    """
    sources: list[Source] = []
    for uri in _expand_batches(uris):
        parts = urlsplit(uri.strip())
        if parts.path.endswith(".jsonl") and parts.scheme in ("", "file"):
            from .replay import open_replay

            sources.extend(open_replay(uri, parts.path, _query(uri, parts.query), clock))
        else:
            sources.append(open_source(uri, clock))
    seen: Counter[str] = Counter()
    for src in sources:
        seen[src.stream_id] += 1
        if seen[src.stream_id] > 1:
            src.stream_id = f"{src.stream_id}-{seen[src.stream_id]}"
    return sources
