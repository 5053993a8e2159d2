"""What the local servers share: binding an aiohttp app, and running one in a thread.

``LocalServer.start()`` does not hand aiohttp's protocol straight to the socket: each
connection gets a guard. A connection that is waiting for a request (just opened, or
idle between keep-alive requests) is *pending*; aiohttp by itself never times a
pending connection out, so a client that sends half a request line and nothing else
holds a file descriptor forever. Here a pending connection is closed after
``header_timeout`` seconds, and the number of pending connections is capped:

- per client address (``max_pending_per_client``; None: no cap). Only connections pending
  longer than ``eviction_grace`` (default a quarter of ``header_timeout``, at least 1 s)
  count: a burst of fresh connections from one client (concurrent requests, a page
  opening many sockets) is never cut. A client over its cap with stale connections loses
  its oldest ones, one per newcomer;
- in all (``max_pending``), the bound that keeps file descriptors free: past it the
  oldest stale pending connection of the client holding the most is closed, and when no
  connection is stale yet, that client's oldest one, however fresh (the alternative is
  running out of descriptors). A hog loses its own connections and a newcomer still
  gets in.

A request being handled (a WebSocket, a streamed response) is not pending and has no
deadline here.

A malformed request (a 10,000-character URL, a broken request line) gets a short 400
and one warning line, not aiohttp's logged traceback. The access log (``aiohttp.access``
at INFO) shows paths without their query strings: ``?token=`` must never reach a log.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import math
import ssl
import threading
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger("midstream_tui.servers")


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


TOKEN_MIN_CHARS = 16
"""A token that guards a server off loopback: at least this many characters..."""
TOKEN_MIN_BITS = 3.0
"""...and at least this many bits a character (Shannon, over its own characters): ``aaaaaaaaaaaaaaaa`` or
``abcabcabcabcabca`` is refused, 16 random letters and digits (about 3.5-4) pass."""


def char_entropy(text: str) -> float:
    """Bits a character of ``text`` (Shannon, over its own characters)."""
    if not text:
        return 0.0
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


def weak_token(token: str) -> str | None:
    """Why ``token`` is too weak to be the only thing guarding a server that others can reach; None if it is
    not. Says lengths and bits, never the token."""
    if len(token) < TOKEN_MIN_CHARS or char_entropy(token) < TOKEN_MIN_BITS:
        return (f"the token is weak ({len(token)} characters, {char_entropy(token):.1f} bits a character): "
                f"use {TOKEN_MIN_CHARS}+ random characters")
    return None


def _local_address(request: web.Request) -> tuple[str, int] | None:
    transport = request.transport
    sock = transport.get_extra_info("sockname") if transport is not None else None
    if isinstance(sock, tuple) and len(sock) >= 2:
        return str(sock[0]), int(sock[1])
    return None


def same_origin(request: web.Request, allowed: tuple[str, ...] = (), *, loopback_only: bool | None = None) -> bool:
    """A browser's Origin is this server itself (or one of ``allowed``); no Origin: not a browser.

    On a loopback socket (``loopback_only`` None: decided from the socket the request came
    in on) the Origin must itself be a loopback address or ``localhost`` with this server's
    port: comparing with the Host header would let a DNS-rebinding page through, since
    its Host and its Origin both carry the attacker's name. Elsewhere the Origin must
    match the Host header (the server's public name is not known to it).
    """
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    origin = origin.strip().rstrip("/").lower()
    if origin in allowed:
        return True
    try:
        parts = urlsplit(origin)
        hostname, port = parts.hostname, parts.port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not hostname or parts.path or parts.query or parts.username:
        return False
    local = _local_address(request)
    if loopback_only is None:
        loopback_only = local is not None and is_loopback(local[0])
    if loopback_only:
        if local is None or not is_loopback(hostname):
            return False
        return (port if port is not None else (443 if parts.scheme == "https" else 80)) == local[1]
    return parts.netloc == request.host.lower()


class _PathOnlyAccessLogger(AbstractAccessLogger):
    """One access line per request, without the query string (it may carry a token)."""

    def log(self, request, response, time):  # type: ignore[no-untyped-def]
        self.logger.info('%s "%s %s" %s %.3fs', request.remote, request.method, request.path,
                         response.status, time)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


@dataclass
class ConnectionStats:
    """What the connection guard did (see the module docstring)."""

    pending: int = 0            # connections waiting for a request right now
    peak_pending: int = 0
    timed_out: int = 0          # closed: no complete request within header_timeout
    evicted: int = 0            # closed: past max_pending / max_pending_per_client
    bad_requests: int = 0       # malformed requests answered 400


class _GuardedHandler(RequestHandler):
    """aiohttp's per-connection protocol, reporting to a guard when it waits for a request."""

    def __init__(self, manager: web.Server, guard: _ConnectionGuard, **kwargs) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._guard.waiting(self)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._guard.done(self)
        super().connection_lost(exc)

    async def _handle_request(self, request, start_time, request_handler):  # type: ignore[no-untyped-def]
        self._guard.done(self)  # a complete request: no longer pending while it is handled
        resp, reset = await super()._handle_request(request, start_time, request_handler)
        if not reset and resp.keep_alive and self.transport is not None:
            self._guard.waiting(self)  # keep-alive: pending again until the next request is complete
        return resp, reset

    def handle_error(self, request, status=500, exc=None, message=None):  # type: ignore[no-untyped-def]
        if status >= 500 or not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        # The client's own mistake: one line, no traceback, and never the request line
        # itself (it may carry ?token=).
        self._guard.stats.bad_requests += 1
        if isinstance(exc, LineTooLong):
            text = f"request line or header field longer than {self.max_line_size} bytes"
        else:
            text = "malformed HTTP request"
        log.warning("HTTP 400 to %s: %s (%s)", request.remote, text, type(exc).__name__)
        resp = web.Response(status=400, text=f"400 Bad Request: {text}\n")
        resp.force_close()
        return resp


class _ConnectionGuard:
    def __init__(self, server: web.Server, loop: asyncio.AbstractEventLoop, header_timeout: float,
                 max_pending: int, max_pending_per_client: int | None, eviction_grace: float | None,
                 handler_kwargs: dict) -> None:
        self.server, self.loop, self.header_timeout = server, loop, header_timeout
        self.max_pending = max(1, max_pending)
        self.max_per_client = None if max_pending_per_client is None else max(1, max_pending_per_client)
        self.grace = max(1.0, header_timeout / 4) if eviction_grace is None else max(0.0, eviction_grace)
        self.handler_kwargs = handler_kwargs
        self.stats = ConnectionStats()
        # client address -> its pending connections (deadline timer, pending since), oldest first:
        # dicts keep insertion order, and a connection is (re)inserted when it starts waiting
        self._by_client: dict[str, dict[_GuardedHandler, tuple[asyncio.TimerHandle, float]]] = {}
        self._client_of: dict[_GuardedHandler, str] = {}

    def protocol(self) -> _GuardedHandler:
        return _GuardedHandler(self.server, self, loop=self.loop, **self.handler_kwargs)

    def _stale(self, pending: dict[_GuardedHandler, tuple[asyncio.TimerHandle, float]], now: float):
        """The oldest of ``pending`` if it has waited longer than the grace period, else None."""
        oldest = next(iter(pending), None)
        if oldest is not None and now - pending[oldest][1] > self.grace:
            return oldest
        return None

    def waiting(self, handler: _GuardedHandler) -> None:
        if handler in self._client_of:
            return
        transport = handler.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        client = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        now = self.loop.time()
        mine = self._by_client.get(client)
        if self.max_per_client is not None:
            while mine and len(mine) >= self.max_per_client and (stale := self._stale(mine, now)) is not None:
                self._close(stale, evicted=True)
        if self.stats.pending >= self.max_pending:
            stale = [h for h in (self._stale(p, now) for p in self._by_client.values()) if h is not None]
            if stale:
                victim = max(stale, key=lambda h: len(self._by_client[self._client_of[h]]))
            else:  # out of room and nothing stale: the hog's oldest, rather than running out of descriptors
                victim = next(iter(max(self._by_client.values(), key=len)))
            self._close(victim, evicted=True)
        timer = self.loop.call_later(self.header_timeout, self._expire, handler)
        self._by_client.setdefault(client, {})[handler] = (timer, now)
        self._client_of[handler] = client
        self.stats.pending += 1
        self.stats.peak_pending = max(self.stats.peak_pending, self.stats.pending)

    def done(self, handler: _GuardedHandler) -> None:
        client = self._client_of.pop(handler, None)
        if client is None:
            return
        mine = self._by_client[client]
        mine.pop(handler)[0].cancel()
        if not mine:
            del self._by_client[client]
        self.stats.pending -= 1

    def _expire(self, handler: _GuardedHandler) -> None:
        if handler in self._client_of:
            self._close(handler, evicted=False)

    def _close(self, handler: _GuardedHandler, *, evicted: bool) -> None:
        self.done(handler)
        if evicted:
            self.stats.evicted += 1
        else:
            self.stats.timed_out += 1
        handler.force_close()


class LocalServer:
    """An aiohttp application bound by ``start()`` (127.0.0.1 by default; port 0 picks a free one)."""

    scheme = "http"
    # The connection guard (see the module docstring); subclasses and instances may change these.
    header_timeout: float = 10.0
    max_pending: int = 128
    max_pending_per_client: int | None = 32
    eviction_grace: float | None = None  # None: a quarter of header_timeout, at least 1 s
    backlog: int = 128
    """Connections the kernel queues before they are accepted."""
    runner_kwargs: dict = {}
    """More options for aiohttp's server (a proxy cancels a handler whose client left: handler_cancellation)."""
    handler_kwargs: dict = {}
    """More options for aiohttp's handler of each connection (the limits on a request's headers)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None) -> None:
        self.host, self.port, self.ssl_context = host, port, ssl_context
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.AbstractServer | None = None
        self._guard: _ConnectionGuard | None = None
        self.connection_stats = ConnectionStats()

    def app(self) -> web.Application:
        raise NotImplementedError

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host  # (IPv6)
        return f"{'https' if self.ssl_context else 'http'}://{host}:{self.port}"

    async def start(self) -> str:
        # A short shutdown: an open request (a hung stream, a WebSocket) must not hold the server for a minute.
        self._runner = web.AppRunner(self.app(), handle_signals=False, shutdown_timeout=0.5, **self.runner_kwargs)
        await self._runner.setup()
        loop = asyncio.get_running_loop()
        _quiet_resource_errors(loop)
        assert self._runner.server is not None
        self._guard = _ConnectionGuard(self._runner.server, loop, self.header_timeout, self.max_pending,
                                       self.max_pending_per_client, self.eviction_grace,
                                       {"keepalive_timeout": 75.0, "access_log_class": _PathOnlyAccessLogger,
                                        **self.handler_kwargs})
        self.connection_stats = self._guard.stats
        try:
            self._listener = await loop.create_server(self._guard.protocol, self.host, self.port,
                                                      ssl=self.ssl_context, backlog=self.backlog,
                                                      ssl_handshake_timeout=self.header_timeout if self.ssl_context else None)
        except BaseException:
            await self._runner.cleanup()
            self._runner = None
            raise
        self.port = self._listener.sockets[0].getsockname()[1]  # the real port when 0 was asked
        return self.url

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()  # no new connections; the runner closes the open ones
            self._listener = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _quiet_resource_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Out of file descriptors (a flood of connections past the process's limit), asyncio logs a
    traceback for every refused accept. Log one line instead; asyncio already backs off accepting."""
    default = loop.get_exception_handler()
    warned = [0.0]

    def handler(loop: asyncio.AbstractEventLoop, context: dict) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
            now = loop.time()
            if now - warned[0] >= 1.0:  # at most one line a second
                warned[0] = now
                log.warning("out of file descriptors: new connections wait (%s)", exc.strerror or exc)
            return
        if default is not None:
            default(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


class ServerThread:
    """Runs a LocalServer on its own event loop in a daemon thread (demos, the CLI, tests)."""

    def __init__(self, server: LocalServer, name: str = "local-server") -> None:
        self.server = server
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.server.start())
        except BaseException as exc:  # e.g. the port is taken: reported by start()
            self.error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> str:
        self._thread.start()
        self._ready.wait(10)
        if self.error is not None:
            raise self.error
        return self.server.url

    async def _shutdown(self) -> None:
        await self.server.stop()
        # What the runner left (a streamed answer still being written to a client that has gone): cancelled and
        # awaited here, not destroyed pending with the loop — asyncio printed "Task was destroyed but it is
        # pending!" after `midstream demo openai` quit (an independent review).
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in rest:
            task.cancel()
        if rest:
            await asyncio.wait(rest, timeout=2.0)

    def stop(self) -> None:
        if self._loop.is_running():
            fut = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
            try:
                fut.result(5)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(5)
