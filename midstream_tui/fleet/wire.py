"""What agents and watchers say to each other over NATS: subjects, key names, and the snapshot encoding.

Subjects (each name token escaped by ``token``)::

    midstream.<agent>.<stream>.snapshot   a stream's snapshot, at the analysis rate, when it changed
    midstream.<agent>.<stream>.hit        one pattern hit (also kept in the JetStream stream MIDSTREAM)
    midstream.<agent>.<stream>.open       a stream appeared
    midstream.<agent>.<stream>.close      a stream ended (also kept in MIDSTREAM)
    midstream.<agent>._hello              the agent is alive (every second), with its name and start time
    midstream.<agent>._cancel             request/reply: cancel one of the agent's streams

The newest full snapshot of each stream is also kept in the key-value bucket ``midstream`` under
``<agent>.<stream>``, so a watcher that joins late sees everything at once.

Payloads are MessagePack maps (``bench/bench_fleet.py`` measured it against JSON on the demo's snapshots:
smaller and cheaper to encode); arrays (phase portraits, the video preview) travel as raw bytes.
"""

from __future__ import annotations

import hashlib
import math
import re
import socket
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote, urlsplit

import msgpack
import numpy as np

from ..analysis.dynamics import UNKNOWN, AttractorClass
from ..perception.speech import TranscriptSegment, Word
from .. import redact as _redact
from ..redact import redact
from ..perception.vision import Detection
from ..snapshot import TEXT_METRICS, PatternHit, SignalView, Snapshot, json_number

PREFIX = "midstream"
BUCKET = "midstream"
EVENTS = "MIDSTREAM"
"""The JetStream stream keeping hits and closes (bounded by ``EVENTS_MAX_AGE_S`` and ``EVENTS_MAX_BYTES``)."""
EVENTS_MAX_AGE_S = 24 * 3600.0
EVENTS_MAX_BYTES = 64 << 20
KV_MAX_AGE_S = 3600.0
"""A stream's last snapshot stays in the bucket this long after its agent last wrote it."""
KV_MAX_BYTES = 256 << 20
"""... and the bucket holds at most this much (beyond it the server refuses new entries: a bound, not a queue).
Entries of streams an agent aged out are replaced by small delete markers."""
HELLO_S = 1.0
FORMAT = 1

_SAFE = re.compile(r"[A-Za-z0-9_-]")


def token(name: str) -> str:
    """``name`` as one subject token and key part: letters, digits, ``-`` and ``_`` kept, the rest ``=XX``
    (UTF-8 bytes in hex), so dots, spaces and wildcards in stream or host names cannot change a subject."""
    out = []
    for ch in name or "_":
        if _SAFE.fullmatch(ch):
            out.append(ch)
        else:
            out.extend(f"={b:02X}" for b in ch.encode("utf-8"))
    return "".join(out)


_shown: dict[str, str] = {}
_shown_generation = -1


def shown(name: str) -> str:
    """A name (an agent's, a stream's) as it leaves this machine: redacted, as everything else that does (a stream
    named after a key went out in clear, in subjects, bodies and bucket keys). Cached: it is asked of every message."""
    global _shown_generation
    if _shown_generation != _redact.generation() or len(_shown) > 4096:
        _shown.clear()
        _shown_generation = _redact.generation()
    out = _shown.get(name)
    if out is None:
        out = _shown[name] = redact(name)
    return out


STREAM_TOKEN_MAX = 1024
"""A stream's subject token is at most this long (with an agent's, at most 1,200, the subject stays well under the
4,096 bytes of a NATS server's control line: a longer one made the server close the connection for good)."""


def stream_token(name: str) -> str:
    """``token(name)``, or, past ``STREAM_TOKEN_MAX``, its start and ``==`` and a hash of the whole name (``token``
    never writes ``==``: two names stay apart). The name itself travels in the message."""
    tok = token(name)
    if len(tok) <= STREAM_TOKEN_MAX:
        return tok
    head = tok[:STREAM_TOKEN_MAX - 34]
    if "=" in head[-2:]:  # (not half an escape)
        head = head[:head.rindex("=")]
    return f"{head}=={hashlib.sha256(name.encode('utf-8', 'surrogatepass')).hexdigest()[:32]}"


def untoken(tok: str) -> str:
    raw = bytearray()
    i = 0
    while i < len(tok):
        if tok[i] == "=" and re.fullmatch(r"[0-9A-F]{2}", tok[i + 1:i + 3]):
            raw.append(int(tok[i + 1:i + 3], 16))
            i += 3
        else:
            raw.extend(tok[i].encode("utf-8"))
            i += 1
    return raw.decode("utf-8", "replace")


def subject(agent: str, stream: str, kind: str) -> str:
    return f"{PREFIX}.{token(shown(agent))}.{stream_token(shown(stream))}.{kind}"


def agent_subject(agent: str, kind: str) -> str:
    return f"{PREFIX}.{token(shown(agent))}._{kind}"


def kv_key(agent: str, stream: str) -> str:
    return f"{token(shown(agent))}.{stream_token(shown(stream))}"


def default_agent_name() -> str:
    return socket.gethostname() or "agent"


class FleetError(Exception):
    """A NATS address, credentials or server that cannot be used: one line."""


@dataclass(frozen=True)
class NatsTarget:
    """Where NATS is and how to log in. ``str()`` never shows a password or token."""

    servers: tuple[str, ...]
    user: str | None = None
    password: str | None = None
    token: str | None = None
    tls: bool = False
    ca_file: str | None = None
    """A CA bundle to trust for TLS (a private CA's, or a self-signed server certificate); default: the system's."""
    nkey_file: str | None = None
    """A file holding an NKey seed (``SU…``): the login is a signature of the server's nonce, no password sent."""
    creds_file: str | None = None
    """A ``.creds`` file (a user JWT and its NKey seed), as ``nsc`` writes it for operator-mode servers."""

    def __str__(self) -> str:
        return ",".join(self.servers)

    def connect_options(self) -> dict[str, Any]:
        import ssl

        opts: dict[str, Any] = {"servers": list(self.servers)}
        if self.user is not None:
            opts["user"], opts["password"] = self.user, self.password or ""
        if self.token is not None:
            opts["token"] = self.token
        for path, option in ((self.nkey_file, "nkeys_seed"), (self.creds_file, "user_credentials")):
            if path:
                try:
                    import nkeys  # noqa: F401 - nats-py signs with it
                except ImportError:
                    raise FleetError("NKey and .creds logins need the nkeys package (pip install nkeys)") from None
                try:
                    with open(path, "rb"):
                        pass
                except OSError as exc:
                    raise FleetError(f"NATS login file {path}: {exc.strerror or exc}") from None
                opts[option] = path
        if self.tls:
            try:
                opts["tls"] = ssl.create_default_context(cafile=self.ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise FleetError(f"NATS CA file {self.ca_file}: {getattr(exc, 'strerror', None) or exc}") from None
        return opts


_SERVERS_SPLIT = re.compile(r",(?=\s*[A-Za-z][A-Za-z0-9+.-]*://|[^@]*$)")
"""A comma between servers: one followed by a scheme, or with no ``@`` anywhere after it. A comma that a login
follows may be in a password (``nats://u:pa,ss@host``: split there, half the password was shown as a "host"), so
it is taken as one: several servers with logins each need their scheme (``nats://a:4222,nats://u:p@b:4222``)."""


def parse_target(url: str, *, user: str | None = None, password: str | None = None,
                 token_: str | None = None, ca_file: str | None = None, nkey_file: str | None = None,
                 creds_file: str | None = None) -> NatsTarget:
    """``nats://[user:password@|token@]HOST:PORT`` or ``tls://…`` (several, comma-separated). Credentials in the
    URL win over those given (from the environment); they are kept out of every message, whatever characters
    they hold (the login is split off at the last ``@`` before anything is parsed or shown)."""
    servers, tls = [], False
    for part in (p.strip() for p in _SERVERS_SPLIT.split(url or "")):
        if not part:
            continue
        scheme, sep, rest = part.partition("://")
        if not sep:
            scheme, rest = "nats", part
        login, at, hostport = rest.rpartition("@")
        shown = f"{scheme}://{'[REDACTED]@' if at else ''}{hostport}"
        if scheme not in ("nats", "tls"):
            raise FleetError(f"not a NATS address: {shown} (expected nats://HOST:PORT or tls://HOST:PORT)")
        if "/" in hostport.rstrip("/") or "?" in hostport or "#" in hostport:
            raise FleetError(f"not a NATS address: {shown} (expected nothing after HOST:PORT)")
        try:
            parts = urlsplit(f"nats://{hostport.rstrip('/')}")
            port = parts.port
        except ValueError:
            raise FleetError(f"not a NATS address: {shown} (port out of range or not a number)") from None
        if not parts.hostname:
            raise FleetError(f"not a NATS address: {shown} (no host)")
        if port is not None and not 0 < port < 65536:
            raise FleetError(f"not a NATS address: {shown} (port out of range)")
        if at:
            name, colon, secret = login.partition(":")
            if colon:
                user, password = unquote(name), unquote(secret)
            else:
                token_ = unquote(name)
        tls = tls or scheme == "tls"
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        servers.append(f"{scheme}://{host}:{port or 4222}")
    if not servers:
        raise FleetError("no NATS address given (expected nats://HOST:PORT)")
    if ca_file:
        tls = True
    return NatsTarget(tuple(servers), user=user, password=password, token=token_, tls=tls, ca_file=ca_file or None,
                      nkey_file=nkey_file or None, creds_file=creds_file or None)


def without_login(url: str) -> str:
    """``url`` with any ``user:password@`` taken out, for messages. Everything up to the last ``@`` goes (a password
    may hold ``/`` or ``#``; a path with an ``@`` is cut short rather than a secret shown)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    return f"{scheme}://{rest.rpartition('@')[2]}"


# ------------------------------------------------------------------ snapshots on the wire

KINDS = ("text", "audio", "video")
STATUSES = ("open", "closed", "cancelled", "error")


def _array_bytes(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a, dtype=np.float32).tobytes()


def encode_snapshot(snap: Snapshot, agent: str, t0: float, now: float, wall: float, *, full: bool = True,
                    text: bool = True, portrait: bool = True, preview: bool = True, run: str = "") -> bytes:
    """One snapshot as a message. Times are seconds since the agent's start (``t0``); ``now`` and ``wall`` say
    when it was sent (the agent's clock, and the wall clock), so a watcher can place it on its own clock. Heavy
    parts (the text tail, the phase portrait, the video preview) are sent when ``full`` or when asked (they
    changed); a watcher keeps the last it received."""
    msg: dict[str, Any] = {
        "v": FORMAT, "agent": shown(agent), "run": run, "stream": shown(snap.stream), "kind": snap.kind,
        "seq": snap.seq,
        "t": json_number(snap.t - t0, 4), "now": now - t0, "wall": wall, "status": snap.status,
        "source": redact(snap.source),  # (what leaves this machine is redacted as what it writes is)
        "metrics": {k: json_number(v) for k, v in snap.metrics.items()},
        "attractor": snap.attractor.to_json(), "signal": snap.signal_name, "attractor_seq": snap.attractor_seq,
        "signals": [[s.name, s.attractor.to_json()] for s in snap.signals[1:]],
        "patterns": [h.to_json() | {"t": json_number(h.t - t0, 3), "message": redact(h.message),
                                    "stream": shown(h.stream),
                                    "start": json_number(None if h.start is None else h.start - t0, 3)}
                     for h in snap.patterns[-8:]],
        "error": redact(snap.error) if snap.error else snap.error,
    }
    if snap.transcript:
        msg["transcript"] = [s.to_json(t0) | {"text": redact(s.text)} for s in snap.transcript[-6:]]
    if snap.detections:
        msg["detections"] = [d.to_json() | {"t": json_number(d.t - t0, 3)} for d in snap.detections]
    if full or text:
        msg["text_tail"] = redact(snap.text_tail)
    if (full or portrait) and snap.portrait_x.size:
        msg["portrait"] = [_array_bytes(snap.portrait_x), _array_bytes(snap.portrait_y)]
    if (full or preview) and snap.preview is not None:
        p = np.ascontiguousarray(snap.preview, dtype=np.uint8)
        msg["preview"] = [int(p.shape[0]), int(p.shape[1]), p.tobytes()]
    return msgpack.packb(msg, use_bin_type=True)


_NAMES = frozenset({"agent", "stream", "run"})
"""Keys whose values name what a message is about: redacted as the subject it goes on is (``shown``), so that the
two still match."""


def _redacted(obj: Any) -> Any:
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {k: (shown(v) if isinstance(v, str) else v) if k in _NAMES else _redacted(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_redacted(v) for v in obj]
    return obj


def encode(obj: dict) -> bytes:
    """A message (an event: open, close, a hit, a hello, a reply) with every string in it redacted."""
    return msgpack.packb(_redacted(obj), use_bin_type=True)


def decode(data: bytes) -> dict:
    """A message's map; ``FleetError`` for anything else (a peer speaking another protocol, damaged bytes)."""
    try:
        obj = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:  # noqa: BLE001 - msgpack raises several types for bad input
        raise FleetError(f"undecodable message ({type(exc).__name__})") from None
    if not isinstance(obj, dict):
        raise FleetError("message is not a map")
    return obj


def _float(v: Any) -> float:
    """A finite float, or NaN for anything else (a peer's junk)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return math.nan
    f = float(v)
    return f if math.isfinite(f) else math.nan


def _int(v: Any) -> int:
    """A peer's small count (a lag, a dimension): 0 when it is none or beyond any a window can have."""
    return int(v) if isinstance(v, (int, float)) and math.isfinite(v) and 0 <= v <= 1_000_000 else 0


def _text(value: Any) -> str:
    """A peer's words: "" for none (null read as the word "None")."""
    return "" if value is None else str(value)


def attractor_from(d: Any) -> AttractorClass:
    if not isinstance(d, dict) or not d.get("type"):
        return UNKNOWN
    evidence = d.get("evidence")
    evidence = {str(k): v for k, v in evidence.items() if isinstance(v, (int, float, str)) or v is None} \
        if isinstance(evidence, dict) else {}
    return AttractorClass(str(d["type"]), _float(d.get("confidence")), _text(d.get("reason")),
                          _float(d.get("lyapunov")), _int(d.get("lag")), _int(d.get("dim")), evidence)


def _portrait(raw: Any) -> tuple[np.ndarray, np.ndarray] | None:
    if not (isinstance(raw, list) and len(raw) == 2 and all(isinstance(b, bytes) for b in raw)):
        return None
    if len(raw[0]) != len(raw[1]) or len(raw[0]) % 4:
        return None
    x, y = (np.frombuffer(b, dtype=np.float32).astype(np.float64) for b in raw)
    kept = np.isfinite(x) & np.isfinite(y)  # (a peer's NaN or inf is no point to draw: plotext fails on inf)
    x, y = x[kept], y[kept]
    x.flags.writeable = y.flags.writeable = False
    return x, y


def _preview(raw: Any) -> np.ndarray | None:
    if not (isinstance(raw, list) and len(raw) == 3 and isinstance(raw[2], bytes)):
        return None
    h, w = int(raw[0]), int(raw[1])
    if h <= 0 or w <= 0 or h * w * 3 != len(raw[2]):
        return None
    img = np.frombuffer(raw[2], dtype=np.uint8).reshape(h, w, 3)
    img.flags.writeable = False
    return img


def snapshot_from(msg: dict, name: str, t0: float, previous: Snapshot | None, *, seq: int,
                  status: str | None = None) -> Snapshot:
    """A watcher's Snapshot of a remote stream, named ``name``, its times on the watcher's clock (``t0`` = the
    agent's start there). Heavy parts missing from ``msg`` are kept from ``previous``."""
    def at(v: Any) -> float:
        return t0 + _float(v)

    patterns = tuple(PatternHit(at(h.get("t")), name, str(h.get("kind", "")), str(h.get("message", "")),
                                None if h.get("start") is None else at(h.get("start")))
                     for h in msg.get("patterns") or () if isinstance(h, dict))
    signals = [SignalView(s[0], attractor_from(s[1])) for s in (msg.get("signals") or ())
               if isinstance(s, list) and len(s) == 2 and isinstance(s[0], str)]
    attractor = attractor_from(msg.get("attractor"))
    portrait = _portrait(msg.get("portrait"))
    if portrait is None and previous is not None:
        portrait = (previous.portrait_x, previous.portrait_y)
    px, py = portrait if portrait is not None else (np.empty(0), np.empty(0))
    preview = _preview(msg.get("preview")) if "preview" in msg else (previous.preview if previous else None)
    transcript = tuple(TranscriptSegment(at(s.get("start")), at(s.get("end")), str(s.get("text", "")),
                                         bool(s.get("final")),
                                         tuple(Word(str(w[0]), at(w[1]), at(w[2])) for w in s.get("words") or ()
                                               if isinstance(w, list) and len(w) == 3),
                                         str(s.get("engine", "")))
                       for s in msg.get("transcript") or () if isinstance(s, dict))
    detections = tuple(Detection(str(d.get("label", "")), *[_float(v) for v in d["box"]],
                                 _float(d.get("score")), at(d.get("t")))
                       for d in msg.get("detections") or ()
                       if isinstance(d, dict) and isinstance(d.get("box"), list) and len(d["box"]) == 4)
    # a box, score or time that is not a number: not a detection (it would be drawn nowhere, said as NaN)
    detections = tuple(d for d in detections if all(math.isfinite(v) for v in (d.x, d.y, d.w, d.h, d.score, d.t)))
    # a number, or NaN (null); words only where the metric is one (TEXT_METRICS), at most 200 characters of them;
    # anything else (a list, a map, words for a number) is left out
    metrics = {str(k): v[:200] if isinstance(v, str) else v for k, v in (msg.get("metrics") or {}).items()
               if v is None or isinstance(v, (int, float)) or isinstance(v, str) and k in TEXT_METRICS} \
        if isinstance(msg.get("metrics"), dict) else {}
    return Snapshot(
        stream=name, kind=msg.get("kind") if msg.get("kind") in KINDS else "text", seq=seq, t=at(msg.get("t")),
        status=status or (msg.get("status") if msg.get("status") in STATUSES else "open"),
        source=str(msg.get("source", "")),
        metrics=MappingProxyType({k: (math.nan if v is None or isinstance(v, float) and not math.isfinite(v)
                                      else v) for k, v in metrics.items()}),
        attractor=attractor, signal_name=_text(msg.get("signal")), portrait_x=px, portrait_y=py,
        attractor_seq=_int(msg.get("attractor_seq")), patterns=patterns,
        error=msg.get("error") if isinstance(msg.get("error"), str) else None,
        signals=(SignalView(_text(msg.get("signal")), attractor, px, py), *signals),
        text_tail=str(msg["text_tail"]) if "text_tail" in msg else (previous.text_tail if previous else ""),
        preview=preview, transcript=transcript, detections=detections)
