"""An agent's side of the fleet: everything its hub sees goes out over NATS, and remote cancels come in.

``Publisher`` is attached to a hub (``run``, ``demo`` and ``proxy`` with ``--publish``). On each analysis tick it
sends the snapshots that changed, the new pattern hits and the streams that opened or ended (subjects in
``wire``); once a second it says hello and refreshes each stream's entry in the key-value bucket. A watcher's
cancel request is answered after the hub cancelled the stream the way a rule would (a proxied request is cut
as its protocol ends a stopped stream).

NATS being down never stops the agent: while it is away the newest snapshot of each stream is kept (older
ones are superseded anyway) and hits, opens and closes wait in a bounded queue (the oldest beyond it are
dropped and counted); it reconnects with backoff and says so in one line each way.
"""

from __future__ import annotations

import asyncio
import os
import contextlib
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ..snapshot import json_number
from . import wire
from .wire import FleetError, NatsTarget

EVENTS_QUEUE = 10_000
"""Hits, opens and closes kept while NATS is away; beyond it the oldest are dropped (counted)."""
RETRY_S = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)
"""Waits between attempts to reach a NATS server that was not there (then the last, again and again)."""
KV_EVERY_S = 1.0


def _is_auth_error(exc: BaseException) -> bool:
    import nats.errors

    text = str(exc).lower()
    return isinstance(exc, nats.errors.AuthorizationError) or "authorization" in text or "authentication" in text


def _client(tls: bool):
    """A nats-py client; with ``tls`` (a ``tls://`` address or a CA given), one that will not talk to a server that
    does not require TLS. nats-py upgrades a connection to TLS only when the server's INFO asks for it, so a server
    that does not (or someone between) would otherwise receive the login in clear: the connection is dropped on
    that INFO, before anything is sent."""
    from nats.aio.client import Client

    if not tls:
        return Client()

    class TlsOnly(Client):
        async def _process_info(self, info: dict, initial_connection: bool = False) -> None:
            if initial_connection and not info.get("tls_required") and not self.options.get("tls_handshake_first"):
                raise NoTls("the server does not require TLS")
            await super()._process_info(info, initial_connection)

    return TlsOnly()


class NoTls(OSError):
    """A server reached at a ``tls://`` address offered no TLS (a plain server, or a downgrade between)."""


async def connect(target: NatsTarget, name: str, *, reconnect: bool = True, timeout: float = 4.0,
                  **callbacks: Any):
    """A connected nats-py client (which, once connected, reconnects on its own for ever), or ``FleetError`` in
    one line (never the credentials) when it is not connected within ``timeout`` or the server refuses the login.

    (nats-py told to reconnect for ever also retries its first connection for ever, and a refused login among
    the retries: the first attempts are bounded here.) ``refused_cb(line)``: told once per outage that the server
    refuses the credentials on reconnecting (rotated meanwhile: the client retries for ever, silent otherwise)."""
    errors: list[BaseException] = []
    refused = asyncio.Event()
    told = [False]

    async def error_cb(exc: BaseException) -> None:
        if not attempt.done():  # (kept while connecting only: afterwards one per reconnect attempt would pile up)
            errors.append(exc)
            if _is_auth_error(exc) or isinstance(exc, NoTls):
                refused.set()
        elif _is_auth_error(exc) and not told[0] and callbacks.get("refused_cb"):
            told[0] = True
            callbacks["refused_cb"](f"NATS at {target} refuses the credentials on reconnecting (authorization "
                                    "violation: changed on the server?); still retrying")
        if callbacks.get("error_cb"):
            await callbacks["error_cb"](exc)

    async def reconnected_cb() -> None:
        told[0] = False
        if callbacks.get("reconnected_cb"):
            await callbacks["reconnected_cb"]()

    opts = target.connect_options() | {
        "name": f"midstream {wire.shown(name)}", "connect_timeout": 2, "allow_reconnect": reconnect,
        "max_reconnect_attempts": -1 if reconnect else 1, "reconnect_time_wait": 1,
        "disconnected_cb": callbacks.get("disconnected_cb"), "reconnected_cb": reconnected_cb,
        "error_cb": error_cb,
    }
    client = _client(target.tls)
    attempt = asyncio.ensure_future(client.connect(**opts))
    said_no = asyncio.ensure_future(refused.wait())
    await asyncio.wait({attempt, said_no}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    said_no.cancel()
    if attempt.done() and not attempt.cancelled() and attempt.exception() is None:
        return client
    if not attempt.done():
        attempt.cancel()
        with contextlib.suppress(BaseException):
            await attempt
    elif not attempt.cancelled() and attempt.exception() is not None:
        errors.append(attempt.exception())
    if any(_is_auth_error(e) for e in errors):
        raise FleetError(f"NATS at {target} refused the credentials (authorization violation)")
    if any(isinstance(e, NoTls) for e in errors):
        raise FleetError(f"NATS at {target} does not require TLS, though a tls:// address (or a CA) asked for it: "
                         "not connecting, nothing sent (a plain server there, or someone between)")
    oserrors = [e for e in errors if isinstance(e, OSError)]
    why = (f"{type(oserrors[-1]).__name__}: {oserrors[-1].strerror or oserrors[-1]}" if oserrors
           else type(errors[-1]).__name__ if errors else f"no answer in {timeout:.0f} s")
    raise FleetError(f"cannot reach NATS at {target} ({why})")


class Publisher:
    """Sends one hub's streams to NATS as agent ``agent``; answers cancels. A hub service that adds no streams."""

    adds_sources = False

    def __init__(self, hub, target: NatsTarget, agent: str, *, say: Callable[[str], None] | None = None,
                 unreachable: bool = False) -> None:
        """``unreachable``: NATS was found not there just before (and that was said)."""
        self.hub, self.target, self.agent = hub, target, agent
        self._unreached = unreachable
        self._say = say or (lambda line: None)
        self.nc = None
        self.connected = False
        self.sent = 0
        """Messages handed to NATS."""
        self.bytes_sent = 0
        self.dropped = 0
        """Hits, opens and closes dropped while NATS was away (the queue was full)."""
        self.cancels = 0
        self.started_wall = time.time()
        self.run = f"{self.started_wall:.6f}-{os.getpid()}"
        """This run of the agent: a watcher tells a restart (or a second agent of the same name) by it."""
        self._latest: dict[str, tuple[str, bytes]] = {}  # stream -> (subject, newest snapshot not yet sent)
        self._events: deque[tuple[str, bytes]] = deque()
        self._kv_due: dict[str, float] = {}
        self._kv_pending: dict[str, bytes] = {}
        self._kv_gone: set[str] = set()  # streams the hub aged out: their bucket entries are deleted
        self._status: dict[str, str] = {}
        self._local: dict[str, str] = {}  # a stream's name as published (redacted) -> its name here
        self._sent: dict[str, tuple[int, tuple]] = {}  # stream -> (seq, (attractor seq, text tail, preview id)) sent
        self._hit_seq = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping = False
        self._js_ok = False
        self._js_said = False
        self._payload_said = False
        self._rejoined = False
        hub.on_tick(self.tick)

    # ------------------------------------------------------------ the hub's side (event loop, on each tick)

    def tick(self, now: float) -> None:
        hub = self.hub
        t0, wall, rel = hub.t0, time.time(), now - hub.t0
        snaps = hub.snapshots()
        for stream, snap in snaps.items():
            if stream not in self._status:  # (a watcher asks to cancel a stream by the name it was shown)
                self._local[wire.shown(stream)] = stream
            before = self._status.get(stream)
            if before is None:
                self._event(stream, "open", {"agent": self.agent, "stream": stream, "kind": snap.kind,
                                             "source": snap.source, "now": rel, "wall": wall})
            self._status[stream] = snap.status
            heavy = (snap.attractor_seq, snap.text_tail, id(snap.preview))
            last = self._sent.get(stream)
            if last is not None and last[0] == snap.seq:
                continue  # unchanged since it was last sent
            self._sent[stream] = (snap.seq, heavy)
            old = last[1] if last is not None else (None, None, None)
            data = wire.encode_snapshot(snap, self.agent, t0, now, wall, full=False, portrait=old[0] != heavy[0],
                                        text=old[1] != heavy[1], preview=old[2] != heavy[2], run=self.run)
            self._latest[stream] = (wire.subject(self.agent, stream, "snapshot"), data)
            mono = time.monotonic()
            if mono >= self._kv_due.get(stream, 0.0) or snap.status != "open":
                self._kv_due[stream] = mono + KV_EVERY_S
                self._kv_pending[stream] = wire.encode_snapshot(snap, self.agent, t0, now, wall, run=self.run)
            if before == "open" and snap.status != "open":
                self._event(stream, "close", {"agent": self.agent, "stream": stream, "status": snap.status,
                                              "error": snap.error, "now": rel, "wall": wall,
                                              "metrics": {k: json_number(v) for k, v in snap.metrics.items()}})
        hits = hub.patterns_since(self._hit_seq)
        if hits:
            self._hit_seq = hits[-1][0]
        for _seq, hit in hits:
            self._event(hit.stream, "hit", hit.to_json() | {"agent": self.agent, "now": rel, "wall": wall,
                                                            "t": json_number(hit.t - t0, 3),
                                                            "start": json_number(None if hit.start is None
                                                                                 else hit.start - t0, 3)})
        for gone in [s for s in self._status if s not in snaps]:  # aged out by the hub: out of the bucket too
            for kept in (self._status, self._sent, self._kv_due, self._kv_pending, self._latest):
                kept.pop(gone, None)
            self._local.pop(wire.shown(gone), None)
            self._kv_gone.add(gone)
        self._wake.set()

    def _event(self, stream: str, kind: str, body: dict) -> None:
        body["run"] = self.run
        if len(self._events) >= EVENTS_QUEUE:
            self._events.popleft()
            self.dropped += 1
        self._events.append((wire.subject(self.agent, stream, kind), wire.encode(body)))

    # ------------------------------------------------------------ the NATS side

    async def _ready(self) -> None:
        import nats.errors

        self.connected = True
        try:
            await self.nc.subscribe(wire.agent_subject(self.agent, "cancel"), cb=self._on_cancel)
        except (nats.errors.Error, asyncio.TimeoutError) as exc:
            self._say(f"publishing: cannot take cancel requests ({type(exc).__name__})")
        await self._ensure_js()

    async def _ensure_js(self) -> None:
        """The bucket and the events stream exist (again: a server restarted without its store has neither)."""
        import nats.errors

        js = self.nc.jetstream()
        try:
            await _ensure_events_stream(js)
            await js.create_key_value(bucket=wire.BUCKET, history=1, ttl=wire.KV_MAX_AGE_S,
                                      max_bytes=wire.KV_MAX_BYTES)
            self._js_ok = True
        except (nats.errors.Error, asyncio.TimeoutError) as exc:
            if self._js_ok or not self._js_said:
                self._say(f"publishing: NATS at {self.target} has no usable JetStream ({type(exc).__name__}): "
                          "live subjects only, no state for late watchers")
            self._js_ok, self._js_said = False, True

    async def _lost(self) -> None:
        if self.connected and not self._stopping:
            self._say(f"publishing: lost NATS at {self.target}; keeping the newest state, reconnecting")
        self.connected = False

    async def _back(self) -> None:
        self.connected = True
        self._say(f"publishing: back on NATS at {self.target}")
        self._rejoined = True
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        attempt = 0
        next_hello = 0.0
        while not self._stopping:
            if self.nc is None:  # not reached yet (or not there at the start): try, then again with backoff
                if attempt:
                    await asyncio.sleep(RETRY_S[min(attempt - 1, len(RETRY_S) - 1)])
                attempt += 1
                try:
                    self.nc = await connect(self.target, self.agent, disconnected_cb=self._lost,
                                            reconnected_cb=self._back,
                                            refused_cb=lambda line: self._say(f"publishing: {line}"))
                except FleetError as exc:
                    if not self._unreached or attempt % 20 == 0:
                        self._say(f"publishing: {exc}; working locally and retrying")
                    self._unreached = True
                    continue
                await self._ready()
                if self._unreached:
                    self._say(f"publishing: reached NATS at {self.target}")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0)
            self._wake.clear()
            if self.nc is None:  # (stop() took it while this waited)
                continue
            if self.nc.is_closed and not self._stopping:
                # the client gave up (a server's -ERR ends it for good: it never reconnects by itself): a new one,
                # with backoff, as at the start — before, the agent said "reconnecting" and never published again
                self._say(f"publishing: the connection to NATS at {self.target} was closed; connecting again")
                self.nc, self.connected, attempt = None, False, max(attempt, 1)
                self._unreached = True
                continue
            if self._rejoined and self.nc is not None:
                self._rejoined = False
                await self._ensure_js()
            hello = time.monotonic() >= next_hello
            if hello:
                next_hello = time.monotonic() + wire.HELLO_S
            await self._send(self.nc, hello)

    async def _send(self, nc, hello: bool = False) -> None:
        import nats.errors

        if not self._js_ok:
            self._kv_pending.clear()
            self._kv_gone.clear()
        if nc is None or not self.connected or not nc.is_connected:
            return
        latest, self._latest = self._latest, {}
        try:
            if hello:
                await nc.publish(wire.agent_subject(self.agent, "hello"), wire.encode({
                    "agent": self.agent, "run": self.run, "started": self.started_wall, "wall": time.time(),
                    "now": self.hub.clock.now() - self.hub.t0, "streams": len(self._status),
                    "dropped": self.dropped}))
            # the newest snapshots first: a watcher takes a hit only for a stream it has seen (the hits queued while
            # NATS was away, sent first, were all dropped, and a stream's first hit in its first step with them)
            for stream in list(latest):
                subj, data = latest[stream]
                await self._publish(nc, subj, data)
                del latest[stream]
            while self._events:
                subj, data = self._events[0]
                await self._publish(nc, subj, data)
                self._events.popleft()
            if self._js_ok:
                pending, self._kv_pending = self._kv_pending, {}
                for stream, data in pending.items():
                    await self._publish(nc, f"$KV.{wire.BUCKET}.{wire.kv_key(self.agent, stream)}", data)
                gone, self._kv_gone = self._kv_gone, set()
                for stream in gone:  # a delete marker, as nats-py's KeyValue.delete writes it
                    await nc.publish(f"$KV.{wire.BUCKET}.{wire.kv_key(self.agent, stream)}", b"",
                                     headers={"KV-Operation": "DEL"})
        except (nats.errors.Error, OSError) as exc:  # went away while sending: what was not sent waits
            if self.connected:
                self._say(f"publishing: sending to NATS failed ({type(exc).__name__}); will retry")
        finally:  # (also when cancelled) snapshots not sent wait, unless a newer one came meanwhile
            for stream, item in latest.items():
                self._latest.setdefault(stream, item)

    async def _publish(self, nc, subject: str, data: bytes) -> None:
        """One message; one larger than the server takes (its ``max_payload``) goes without its heavy parts (the
        preview image, the plot, the text and transcript), or, still too large, is dropped and counted. Said once:
        before, it stayed at the head of the queue, said "will retry" every step and held back every message after
        it (a video stream's close never reached the watchers)."""
        import nats.errors

        try:
            await nc.publish(subject, data)
        except nats.errors.MaxPayloadError:
            size, lighter = len(data), _without_heavy_parts(data)
            data = b""
            if lighter is not None and len(lighter) <= nc.max_payload:
                await nc.publish(subject, lighter)
                data = lighter
            else:
                self.dropped += 1
            if not self._payload_said:
                self._payload_said = True
                self._say(f"publishing: a message of {size} bytes is larger than the NATS server takes (max_payload "
                          f"{nc.max_payload}): such messages go without their preview and plot, or are dropped "
                          "and counted")
            if not data:
                return
        self._count(data)

    def _count(self, data: bytes) -> None:
        self.sent += 1
        self.bytes_sent += len(data)

    async def _on_cancel(self, msg) -> None:
        try:
            ask = wire.decode(msg.data)
            stream = str(ask.get("stream", ""))
        except FleetError as exc:
            with contextlib.suppress(Exception):
                await msg.respond(wire.encode({"ok": False, "message": str(exc)}))
            return
        stream = self._local.get(stream, stream)
        snap = self.hub.snapshot(stream)
        ok = self.hub.cancel(stream)
        if ok:
            self.cancels += 1
        status = snap.status if snap is not None else "unknown"
        said = "cancelled" if ok else ("no such stream" if snap is None else f"not running ({status})")
        with contextlib.suppress(Exception):
            await msg.respond(wire.encode({"ok": ok, "agent": self.agent, "stream": stream, "message": said}))

    async def stop(self) -> None:
        """Send what is left (the final snapshots and closes), then leave; at most a few seconds."""
        self.tick(self.hub.clock.now())
        self._stopping = True
        self._wake.set()
        if self._task is not None:  # its loop ends after the round under way (a connect attempt: cut short)
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 3.0)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - it is ending either way
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._task
        nc, self.nc = self.nc, None
        if nc is None:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._send(nc), 3.0)
            await asyncio.wait_for(nc.flush(), 3.0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(nc.close(), 3.0)


async def _ensure_events_stream(js) -> None:
    """The JetStream stream that keeps hits and closes, bounded by age and size (created or brought up to date)."""
    import nats.js.errors

    config = {"name": wire.EVENTS, "subjects": [f"{wire.PREFIX}.*.*.hit", f"{wire.PREFIX}.*.*.close"],
              "max_age": wire.EVENTS_MAX_AGE_S, "max_bytes": wire.EVENTS_MAX_BYTES}
    try:
        await js.add_stream(**config)
    except nats.js.errors.BadRequestError:  # there, with another configuration (an older agent's)
        await js.update_stream(**config)


HEAVY = ("preview", "portrait", "text_tail", "transcript", "detections")
"""The parts of a snapshot message a watcher can do without (it keeps what it had)."""


def _without_heavy_parts(data: bytes) -> bytes | None:
    try:
        msg = wire.decode(data)
    except FleetError:
        return None
    if not any(k in msg for k in HEAVY):
        return None
    return wire.encode({k: v for k, v in msg.items() if k not in HEAVY})
