"""What every source does with its URI: read its query parameters, refuse unknown ones, say errors in one line.

Each ``from_params`` takes the parameters it knows out of the query's dict with
``param`` (cast, range check, default), then calls ``reject_unknown`` on what is
left, so a misspelt option is an error, never silently ignored.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .base import SourceError


def query(uri: str, text: str) -> dict[str, str]:
    """The query string of ``uri`` as a dict; a malformed one is a SourceError."""
    try:
        return dict(parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text)))
    except ValueError:
        raise SourceError(f"{uri}: malformed query string {text!r}") from None


def param(params: dict[str, str], name: str, cast: Callable[[str], Any], default: Any,
          check: Callable[[Any], bool] = lambda v: True, what: str = "") -> Any:
    """Take ``name`` out of ``params``: cast and checked, or ``default`` when absent (NaN and inf are refused)."""
    raw = params.pop(name, None)
    if raw is None:
        return default
    try:
        value = cast(raw)
    except (TypeError, ValueError):
        raise SourceError(f"parameter {name}={raw!r}: expected {what or cast.__name__}") from None
    if isinstance(value, float) and not math.isfinite(value) or not check(value):
        raise SourceError(f"parameter {name}={raw!r}: expected {what}")
    return value


def reject_unknown(params: dict[str, str], uri: str) -> None:
    """Parameters nobody took are a mistake (a typo, an option of another source): say which."""
    if params:
        names = ", ".join(sorted(params))
        raise SourceError(f"{uri}: unknown parameter(s) {names}")


def one_line(exc: BaseException) -> str:
    """An exception as one line for a stream error: its type and the first line of its message."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def identity_of(uri: str, kind: str, base_url: str | None = None) -> str:
    """What a stream comes from, the same across runs (what the meta-learner learns per): a simulator's
    behaviour and pace, a model at its endpoint, a media kind at a host. ``base_url``: an OpenAI source's
    endpoint when the URI does not say (the run's settings). Total: a URI that is not one (a remote agent's junk,
    ``http://[bad``) is ``other:KIND``."""
    try:
        return _identity(uri, kind, base_url)
    except ValueError:  # (urlsplit, or a port out of range read from it)
        return f"other:{kind}"


def _identity(uri: str, kind: str, base_url: str | None) -> str:
    parts = urlsplit(uri or "")
    try:
        params = dict(parse_qsl(parts.query))
    except ValueError:
        params = {}
    if parts.scheme == "sim":  # a simulator's "model" is its behaviour and pace
        rate = f"@{params['rate']}/s" if "rate" in params else ""
        return f"sim:{parts.path}/{params.get('behavior', 'normal')}{rate}"
    if parts.scheme == "openai":
        host = urlsplit(params.get("base_url") or base_url or "https://api.openai.com").hostname
        return f"openai:{parts.path}/{params.get('model', '?')}@{host}"
    if parts.scheme in ("http", "https", "rtmp", "udp", "webrtc", "srt", "rtsp"):
        return f"{parts.scheme}:{kind}@{parts.hostname}"
    if uri.endswith(".jsonl") or uri.endswith(".sse"):
        return f"replay:{kind}"
    return f"file:{kind}" if uri else f"library:{kind}"
