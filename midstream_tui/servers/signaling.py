"""WebRTC signaling: rooms where peers exchange offers, answers and ICE candidates over a WebSocket.

    GET /                   the publisher page (camera and microphone from a browser)
    GET /ws/{room}          the signaling WebSocket (``?role=publisher|receiver``)
    GET /health             {"rooms": n, "peers": n}

The server never touches media: it relays JSON messages between the peers of a
room. Each peer gets an id and a ``welcome`` listing the others; the others get
``peer-joined`` / ``peer-left``. Messages from a peer are ``offer``, ``answer``,
``candidate`` and ``bye``, relayed to every other peer of the room, or to one
(``"to": id``), stamped with ``"from"``.

Protection, each refused with a reason and counted in ``stats``:

- a token (``--token`` or ``MIDSTREAM_SIGNALING_TOKEN``): ``Authorization: Bearer``
  or ``?token=`` (browsers cannot set WebSocket headers); compared in constant
  time; a wrong or missing one is an HTTP 401 before the upgrade. Binding
  anywhere but loopback without a token is refused at start;
- origin: a browser's ``Origin`` must be this server itself or one given with
  ``allow_origins``; programs that send no Origin (aiortc peers) are not browsers.
  Without a token (loopback only) the Origin must itself be a loopback address or
  ``localhost`` with this server's port, whatever the Host header says: a
  DNS-rebinding page sends its own name in both;
- size: a message over ``max_message`` bytes closes that client (1009);
- rate: a token bucket per client (``rate`` frames/s, ``burst``) over every frame,
  text, binary, ping or pong; a flood closes that client (1008) and nobody else
  notices;
- limits on peers per room, rooms in all, and rooms created per client address
  (``max_rooms_per_client``: one token holder cannot take every room; behind a
  reverse proxy every client has the proxy's address, so raise it there);
- malformed messages (not JSON, NaN or Infinity, nested deeper than ``max_depth``,
  binary) get an ``error`` reply and count towards the client's rate;
- half-open HTTP connections: see ``base.LocalServer`` (``header_timeout``,
  ``max_pending``, ``max_pending_per_client``, ``eviction_grace``).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
import re
import ssl
import time
from dataclasses import dataclass, field
from importlib import resources

from aiohttp import WSCloseCode, WSMsgType, web

from .. import jsonsafe
from .base import LocalServer, is_loopback, same_origin, weak_token

TOKEN_ENV = "MIDSTREAM_SIGNALING_TOKEN"
SEND_TIMEOUT_S = 2.0
"""A message a peer has not taken within this long (its connection's buffers full: it reads nothing) closes it."""
ROOM_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")  # (with match: whole; "$" let "room1\n" be a room of its own)
RELAYED = ("offer", "answer", "candidate", "bye")
ROLES = ("publisher", "receiver", "peer")


class SignalingError(ValueError):
    """A signaling server that must not start as configured; the message is for the user."""


@dataclass
class SignalingStats:
    connections: int = 0
    refused_token: int = 0
    refused_origin: int = 0
    refused_full: int = 0
    refused_quota: int = 0
    closed_size: int = 0
    closed_rate: int = 0
    malformed: int = 0
    relayed: int = 0


@dataclass
class _Peer:
    id: str
    role: str
    ws: web.WebSocketResponse
    tokens: float
    last: float = field(default_factory=time.monotonic)


class SignalingServer(LocalServer):
    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, token: str | None = None,
                 allow_origins: tuple[str, ...] = (), max_message: int = 64 * 1024, rate: float = 20.0,
                 burst: float = 60.0, max_peers_per_room: int = 8, max_rooms: int = 256,
                 max_rooms_per_client: int = 16, max_depth: int = 32,
                 header_timeout: float = 10.0, max_pending: int = 128, max_pending_per_client: int | None = 32,
                 eviction_grace: float | None = None, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(host, port, ssl_context)
        self.header_timeout, self.max_pending = header_timeout, max_pending
        self.max_pending_per_client, self.eviction_grace = max_pending_per_client, eviction_grace
        if not is_loopback(host) and not token:
            raise SignalingError(f"binding {host} (not loopback) needs a token: --token or {TOKEN_ENV}")
        if not is_loopback(host) and weak_token(token):
            raise SignalingError(f"binding {host} (not loopback): {weak_token(token)}")
        self._token = token
        self.allow_origins = tuple(o.rstrip("/").lower() for o in allow_origins)
        self.max_message, self.rate, self.burst = max_message, rate, burst
        self.max_peers_per_room, self.max_rooms = max_peers_per_room, max_rooms
        self.max_rooms_per_client, self.max_depth = max_rooms_per_client, max_depth
        self.rooms: dict[str, dict[str, _Peer]] = {}
        self._room_owner: dict[str, str] = {}  # room -> the client address that opened it
        self.stats = SignalingStats()
        self._next_id = 0

    def __repr__(self) -> str:  # never shows the token
        return f"SignalingServer({self.host!r}, {self.port}, token={'set' if self._token else 'none'})"

    @property
    def ws_url(self) -> str:
        return f"{'wss' if self.ssl_context else 'ws'}://{self.host}:{self.port}/ws"

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_message)
        app.add_routes([web.get("/", self._page), web.get("/ws/{room}", self._ws),
                        web.get("/health", self._health)])
        return app

    # -- HTTP -------------------------------------------------------------------------------

    async def _page(self, request: web.Request) -> web.Response:
        html = resources.files("midstream_tui.servers").joinpath("publisher.html").read_text("utf-8")
        return web.Response(text=html, content_type="text/html", headers={
            "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                                       "connect-src 'self' ws: wss:",
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"rooms": len(self.rooms), "peers": sum(map(len, self.rooms.values()))})

    def _token_ok(self, request: web.Request) -> bool:
        if not self._token:
            return True
        given = ""
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        given = given or request.query.get("token", "")
        # (bytes that are no UTF-8 in a header come as surrogates: a 500 and a traceback, before)
        return hmac.compare_digest(given.encode("utf-8", "surrogateescape"),
                                   self._token.encode("utf-8", "surrogateescape"))

    def _origin_ok(self, request: web.Request) -> bool:
        # no Origin: not a browser; the token is what protects this server from programs
        # Without a token a loopback Origin is the only proof that a browser page is ours.
        return same_origin(request, self.allow_origins, loopback_only=not self._token)

    # -- the WebSocket ------------------------------------------------------------------------

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        room = request.match_info["room"]
        if not ROOM_RE.match(room):
            raise web.HTTPBadRequest(text="room names are 1-64 of A-Z a-z 0-9 _ . -")
        if not self._token_ok(request):
            self.stats.refused_token += 1
            raise web.HTTPUnauthorized(text="missing or wrong signaling token")
        if not self._origin_ok(request):
            self.stats.refused_origin += 1
            raise web.HTTPForbidden(text="origin not allowed")
        role = request.query.get("role", "peer")
        if role not in ROLES:
            raise web.HTTPBadRequest(text=f"role must be one of {', '.join(ROLES)}")
        client = request.remote or "?"
        peers = self.rooms.get(room)
        if peers is None and sum(1 for c in self._room_owner.values() if c == client) >= self.max_rooms_per_client:
            self.stats.refused_quota += 1
            raise web.HTTPTooManyRequests(text=f"this client already has {self.max_rooms_per_client} rooms open")
        if (peers is None and len(self.rooms) >= self.max_rooms) or (
                peers is not None and len(peers) >= self.max_peers_per_room):
            self.stats.refused_full += 1
            raise web.HTTPServiceUnavailable(text="room or server full")

        # autoping off: pings are frames like any other and go through the rate limit
        ws = web.WebSocketResponse(max_msg_size=self.max_message, heartbeat=20.0, autoping=False)
        try:
            await ws.prepare(request)
        except (web.HTTPException, ValueError) as exc:  # (a Sec-WebSocket-Key that is no base64: a 500 before)
            raise web.HTTPBadRequest(text=f"not a WebSocket handshake: {type(exc).__name__}") from None
        self.stats.connections += 1
        self._next_id += 1
        me = _Peer(f"p{self._next_id}", role, ws, tokens=self.burst)
        if room not in self.rooms:
            self._room_owner[room] = client
        peers = self.rooms.setdefault(room, {})
        others = [{"id": p.id, "role": p.role} for p in peers.values()]
        peers[me.id] = me
        await self._send(me, {"type": "welcome", "id": me.id, "room": room, "peers": others})
        await self._broadcast(room, me, {"type": "peer-joined", "id": me.id, "role": role})
        try:
            async for msg in ws:
                if msg.type == WSMsgType.ERROR:
                    if getattr(msg.data, "code", None) == WSCloseCode.MESSAGE_TOO_BIG:
                        self.stats.closed_size += 1
                    break
                if not self._take_token(me):  # every frame counts, whatever its type
                    self.stats.closed_rate += 1
                    await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"rate limit exceeded")
                    break
                if msg.type == WSMsgType.TEXT:
                    await self._handle(room, me, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    self.stats.malformed += 1
                    await self._send(me, {"type": "error", "message": "binary messages are not accepted"})
                elif msg.type == WSMsgType.PING:
                    try:
                        await ws.pong(msg.data)
                    except (ConnectionError, RuntimeError):
                        break
        finally:
            peers.pop(me.id, None)
            if not peers:
                self.rooms.pop(room, None)
                self._room_owner.pop(room, None)
            else:
                await self._broadcast(room, me, {"type": "peer-left", "id": me.id, "role": role})
        return ws

    def _take_token(self, peer: _Peer) -> bool:
        now = time.monotonic()
        peer.tokens = min(self.burst, peer.tokens + (now - peer.last) * self.rate)
        peer.last = now
        if peer.tokens < 1.0:
            return False
        peer.tokens -= 1.0
        return True

    async def _handle(self, room: str, me: _Peer, data: str) -> None:
        try:
            msg = jsonsafe.loads(data, self.max_depth, parse_constant=_refuse_constant, parse_float=_finite_float,
                                 parse_int=_bounded_int)
        except _TooLong as exc:  # (Python's own limit said "not JSON": "expected a JSON object with type ...")
            self.stats.malformed += 1
            await self._send(me, {"type": "error", "message": f"a number of {exc} digits: too long"})
            return
        except _NotFinite:
            self.stats.malformed += 1
            await self._send(me, {"type": "error", "message": "NaN and Infinity are not JSON numbers"})
            return
        except jsonsafe.TooDeep:
            self.stats.malformed += 1
            await self._send(me, {"type": "error", "message": f"JSON nested deeper than {self.max_depth} levels"})
            return
        except ValueError:
            msg = None  # not JSON: refused below with the expected shape
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind not in RELAYED:
            self.stats.malformed += 1
            await self._send(me, {"type": "error", "message": f"expected a JSON object with type one of {', '.join(RELAYED)}"})
            return
        if kind in ("offer", "answer") and not isinstance(msg.get("sdp"), str):
            self.stats.malformed += 1
            await self._send(me, {"type": "error", "message": f"{kind} needs an sdp string"})
            return
        msg["from"] = me.id
        to = msg.get("to")
        peers = self.rooms.get(room, {})
        if to is not None:
            target = peers.get(to) if isinstance(to, str) else None
            if target is None or target is me:
                await self._send(me, {"type": "error", "message": f"no peer {to!r} in this room"})
                return
            await self._send(target, msg)
        else:
            await self._broadcast(room, me, msg)
        self.stats.relayed += 1

    async def _broadcast(self, room: str, sender: _Peer, msg: dict) -> None:
        peers = [peer for peer in list(self.rooms.get(room, {}).values()) if peer is not sender]
        await asyncio.gather(*(self._send(peer, msg) for peer in peers))  # (side by side: none waits on another)

    @staticmethod
    async def _send(peer: _Peer, msg: dict) -> None:
        if not peer.ws.closed:
            try:
                await asyncio.wait_for(peer.ws.send_str(json.dumps(msg, allow_nan=False)), SEND_TIMEOUT_S)
            except asyncio.TimeoutError:
                # A peer that reads nothing held its whole room (each send waited on it in turn) until the
                # heartbeat dropped it, 30 s later, and it could join again and do it again: it is closed now
                # (without waiting for its close to be read, which it would not be either).
                transport = peer.ws._req.transport if peer.ws._req is not None else None  # noqa: SLF001
                if transport is not None:
                    transport.abort()
            except (ConnectionError, RuntimeError):
                pass  # that peer is going away; its own handler cleans up


class _NotFinite(ValueError):
    pass


class _TooLong(ValueError):
    pass


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 4000:  # (Python reads at most 4,300 digits: past them it is no number to relay)
        raise _TooLong(f"{len(text.lstrip('-')):,}")
    return int(text)


def _refuse_constant(name: str) -> float:
    raise _NotFinite(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses as inf and would be relayed as Infinity
        raise _NotFinite(text)
    return value


def ssl_context_from(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    """A server TLS context from PEM files, or None when neither is given."""
    if not cert and not key:
        return None
    if not (cert and key):
        raise SignalingError("TLS needs both --cert and --key")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise SignalingError(f"cannot load TLS certificate/key: {exc}") from None
    return ctx
