"""One redaction filter for everything MidStream writes: recordings, logs, error lines, exports.

It removes the secrets it knows (the values of OPENAI_API_KEY and
MIDSTREAM_SIGNALING_TOKEN in the environment, read when used, so a key set
later is covered too, and the credentials ``remember`` was given: the keys the
proxy forwarded for its clients, whatever their shape) and the shapes secrets
take: OpenAI-style keys (``sk-...``), bearer tokens, ``token=`` / ``api_key=`` /
``key=`` / ``restream=`` query parameters, ``Authorization:`` headers, AWS access key ids and GitHub
tokens. What it replaces becomes ``[REDACTED]``.
"""

from __future__ import annotations

import os
import re
import threading
from urllib.parse import urlsplit, urlunsplit

SECRET_ENV = ("OPENAI_API_KEY", "MIDSTREAM_SIGNALING_TOKEN", "MIDSTREAM_PROXY_TOKEN", "MIDSTREAM_NATS_PASSWORD",
              "MIDSTREAM_NATS_TOKEN")
MARK = "[REDACTED]"
_SHAPES = [
    re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"),
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=\-]{8,}"),
    re.compile(r"(?i)(\bauthorization\s*[:=]\s*)[^\s,;\"']+(?:\s+[^\s,;\"']+)?"),
    # (restream=: where a copy goes, a stream key at the end of its path on most platforms)
    re.compile(r"(?i)([?&](?:token|api[_-]?key|key|access_token|secret|restream)=)[^&#\s\"']+"),
    # user:password or a token before the last @ of a URL, any scheme (udp://, srt://, webrtc://, ...), whatever the
    # password holds but spaces and quotes (a path with an @ is cut short rather than a password shown)
    # (bounded: a scheme of at most 32 characters and a login of at most 512 keep the search linear on long runs
    # of letters and dashes, which an unbounded pattern backtracked through for seconds)
    re.compile(r"(?i)(\b[a-z][a-z0-9+.\-]{0,31}://)[^\s\"']{1,512}(?=@)"),
    # AWS access key ids and GitHub tokens (a rule that looks for leaked keys printed the key it found, in full)
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    re.compile(r"\bASIA[0-9A-Z]{16}\b"),
    re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})"),
]

_NEEDS = (("sk-",), ("bearer",), ("authorization",), ("=",), ("://", "@"), ("akia",), ("asia",), ("gh", "_"))
"""What each of ``_SHAPES`` cannot match without (in the lower-cased text)."""


REMEMBERED_MAX = 256
"""Credentials ``remember`` keeps, the most recently seen (a client sending a new key with each request must not
make the registry, or each ``redact``, grow without bound)."""
REMEMBERED_MIN = 6
"""Shorter values are not remembered: a 3-letter "key" would be replaced wherever those letters appear."""
_remembered: dict[str, None] = {}
_longest_first: tuple[str, ...] = ()  # (a credential that holds another is replaced whole)
_lock = threading.Lock()
_generation = 0


def generation() -> int:
    """A number that changes whenever ``remember`` learns a credential (what ``redact`` gives may then change)."""
    return _generation


def remember(secret: str) -> bool:
    """Have ``redact`` replace ``secret`` from now on (a key a client sent through the proxy: an upstream may echo
    it, "Incorrect API key provided: ...", in any shape). True if it was not known yet."""
    if not isinstance(secret, str) or len(secret) < REMEMBERED_MIN:
        return False
    global _longest_first, _generation
    with _lock:
        if secret in _remembered:
            _remembered[secret] = _remembered.pop(secret)  # (the most recent last: the oldest go first)
            return False
        _remembered[secret] = None
        _generation += 1
        while len(_remembered) > REMEMBERED_MAX:
            del _remembered[next(iter(_remembered))]
        _longest_first = tuple(sorted(_remembered, key=len, reverse=True))
    return True


CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key")
"""Request headers whose values are credentials (OpenAI and compatible servers, Anthropic, Azure, Google)."""


def credentials(headers) -> list[str]:
    """The credentials in a request's headers (``CREDENTIAL_HEADERS``; of ``Authorization: Bearer X``, X and the
    whole value)."""
    found = []
    for name in CREDENTIAL_HEADERS:
        for value in headers.getall(name, ()) if hasattr(headers, "getall") else [headers.get(name)]:
            if not isinstance(value, str) or not value.strip():
                continue
            value = value.strip()
            found.append(value)
            scheme, _, rest = value.partition(" ")
            if rest.strip() and scheme.isalpha():
                found.append(rest.strip())
    # a browser's Realtime WebSocket sends its key as a subprotocol: "openai-insecure-api-key.<key>"
    for value in headers.getall("sec-websocket-protocol", ()) if hasattr(headers, "getall") else ():
        for part in value.split(","):
            name, dot, key = part.strip().partition(".")
            if dot and "api-key" in name.lower() and key:
                found.append(key)
    return found


def _known() -> list[str]:
    return [v for v in (os.environ.get(name) for name in SECRET_ENV) if v and len(v) >= 6] + list(_longest_first)


def redact(text: str) -> str:
    """``text`` with every known secret and secret-shaped string replaced by ``[REDACTED]``."""
    if not text:
        return text
    for secret in _known():
        if secret in text:
            text = text.replace(secret, MARK)
    # An ASCII text is searched for a shape only when it holds what the shape cannot match without (2,000 characters
    # took 160 us through the five searches, most of it the URL-login shape trying every word as a scheme). Others
    # are searched for all: a case-blind search matches some letters beyond ASCII (K, the Kelvin sign) to ASCII ones.
    lower = text.lower() if text.isascii() else None
    for shape, needs in zip(_SHAPES, _NEEDS):
        if lower is None or all(n in lower for n in needs):
            text = shape.sub(lambda m: (m.group(1) if m.groups() else "") + MARK, text)
    return text


def rtmp_key(url: str) -> str | None:
    """The stream key of an RTMP URL — ``rtmp://host/app/KEY``: all of the path after its first segment (the
    app), a password to that stream on every platform; ``KEY/``, ``sub/KEY`` and ``KEY/&x=1`` whole — or None."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    _app, _, key = parts.path.lstrip("/").partition("/")
    return key if parts.scheme.lower() == "rtmp" and key.strip("/") else None


def without_rtmp_key(url: str) -> str:
    """``url`` with its RTMP stream key (``rtmp_key``) replaced by ``***``; any other text unchanged."""
    if not rtmp_key(url):
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + parts.path.lstrip("/").partition("/")[0] + "/***"))


def without_logins(arg: str) -> str:
    """A command-line argument with the login of a URL in it (``scheme://user:password@host``) replaced by
    ``[REDACTED]``, whatever characters the password holds (a space or a quote ends the URL for ``redact``'s
    pattern): everything between ``://`` and the last ``@`` goes."""
    head, sep, rest = arg.partition("://")
    if not sep or "@" not in rest:
        return arg
    return f"{head}://{MARK}@{rest.rpartition('@')[2]}"
