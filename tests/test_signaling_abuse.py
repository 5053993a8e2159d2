"""The signaling server under abuse (issue 11, item 17), each abuse run while a legitimate publisher/receiver
pair keeps exchanging offers and answers through the same server on 127.0.0.1.

The pair speaks the server's message protocol over plain WebSockets; it connects from 127.0.0.2 (another
client address on the loopback network) where a test needs two distinct clients. Nothing here depends on
machine speed: abuse is measured in counts, and timeouts are only generous liveness bounds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import textwrap
import time

import aiohttp
import pytest

from midstream_tui.servers.signaling import SignalingServer

TOKEN = "abuse-test-token"  # audit: ignore (a test fixture, loopback only)
LIVENESS = 30.0  # seconds: only a bound for "it did not hang", never a speed goal
LEGIT = "127.0.0.2"  # the legitimate pair's client address; abusers use 127.0.0.1


def _strict(name):
    raise AssertionError(f"the server relayed {name}, which is not JSON")


async def _recv(ws, kind):
    """The next message of type ``kind`` (others skipped); every message must be strict JSON."""
    while True:
        msg = await asyncio.wait_for(ws.receive(), LIVENESS)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        data = json.loads(msg.data, parse_constant=_strict)
        if data["type"] == kind:
            return data


async def exchange(port, room, *, token=TOKEN, origin=None, local=LEGIT, rounds=1):
    """A receiver joins ``room``, a publisher joins and offers; the receiver answers. Returns the rounds done."""
    query = f"&token={token}" if token else ""
    headers = {"Origin": origin} if origin else {}
    connector = aiohttp.TCPConnector(local_addr=(local, 0), force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        rx = await session.ws_connect(f"ws://127.0.0.1:{port}/ws/{room}?role=receiver{query}", headers=headers)
        receiver = (await _recv(rx, "welcome"))["id"]
        tx = await session.ws_connect(f"ws://127.0.0.1:{port}/ws/{room}?role=publisher{query}", headers=headers)
        welcome = await _recv(tx, "welcome")
        assert receiver in [p["id"] for p in welcome["peers"]]
        for n in range(rounds):
            await tx.send_str(json.dumps({"type": "offer", "sdp": f"v=0 offer {n}", "to": receiver}))
            offer = await _recv(rx, "offer")
            assert offer["sdp"] == f"v=0 offer {n}" and offer["from"] == welcome["id"]
            await rx.send_str(json.dumps({"type": "answer", "sdp": f"v=0 answer {n}", "to": offer["from"]}))
            answer = await _recv(tx, "answer")
            assert answer["sdp"] == f"v=0 answer {n}" and answer["from"] == receiver
        await tx.close()
        await rx.close()
    return rounds


async def exchange_while(abuse_started: asyncio.Event, port, room, **kw):
    """Offer/answer once the abuse is under way (and the abuse task is still running)."""
    await asyncio.wait_for(abuse_started.wait(), LIVENESS)
    return await asyncio.wait_for(exchange(port, room, rounds=3, **kw), LIVENESS)


@pytest.fixture
async def server():
    servers = []

    async def make(**kw):
        kw.setdefault("token", TOKEN)
        srv = SignalingServer("127.0.0.1", 0, **kw)
        await srv.start()
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        await srv.stop()


# -- (a) half-open HTTP requests ----------------------------------------------------------------------------

_SERVER_AT_256_FDS = textwrap.dedent("""
    import asyncio, resource, sys
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    from midstream_tui.servers.signaling import SignalingServer

    async def main():
        server = SignalingServer("127.0.0.1", 0, token=sys.argv[1], header_timeout=float(sys.argv[2]))
        await server.start()
        print(server.port, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
""")


async def test_half_open_requests_are_closed_and_never_lock_out_a_legitimate_pair():
    """300 connections that send half a request line, against a server limited to 256 file descriptors."""
    header_timeout = 2.0
    env = {k: v for k, v in os.environ.items() if k != "MIDSTREAM_SIGNALING_TOKEN"}
    proc = subprocess.Popen([sys.executable, "-c", _SERVER_AT_256_FDS, TOKEN, str(header_timeout)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    port = int(await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), LIVENESS))
    opened = closed = peak = gave_up = 0
    lifetimes = []
    open_now: set[asyncio.Task] = set()
    last_open = time.monotonic()
    keep_going = True
    started = asyncio.Event()

    async def half_open():
        nonlocal opened, closed, last_open, peak, gave_up
        for attempt in range(5):  # a burst of SYNs can overflow the listen backlog: the kernel retries, so do we
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.1", 0)), 10)
                break
            except (OSError, asyncio.TimeoutError):
                if attempt == 4:
                    gave_up += 1
                    return
        opened += 1
        last_open = born = time.monotonic()
        peak = max(peak, opened - closed)
        writer.write(b"GET /ws/slow?role=publisher HT")  # and never the rest
        try:
            await reader.read()  # b"" once the server closes it
        except OSError:
            pass
        closed += 1
        lifetimes.append(time.monotonic() - born)
        writer.close()

    def spawn():
        task = asyncio.ensure_future(half_open())
        open_now.add(task)
        task.add_done_callback(open_now.discard)

    async def abuse():
        for _ in range(300):
            spawn()
        deadline = time.monotonic() + LIVENESS
        while opened + gave_up < 300:  # every one of the first 300 opened, or given up after 5 tries
            assert time.monotonic() < deadline, f"after {LIVENESS} s only {opened} opened, {gave_up} gave up"
            await asyncio.sleep(0.05)
        started.set()
        while keep_going:  # and more, as long as the pair is talking
            spawn()
            await asyncio.sleep(0.02)

    attacker = asyncio.ensure_future(abuse())
    try:
        rounds = await exchange_while(started, port, "legit")
        assert not attacker.done()  # the abuse went on during the whole exchange
        keep_going = False
        await attacker
        stopped = time.monotonic()
        # every half-open connection is closed by the server: none outlives the header timeout for long
        await asyncio.wait_for(asyncio.gather(*open_now), LIVENESS)
        drained = time.monotonic() - stopped
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(LEGIT, 0))) as session:
            async with session.get(f"http://127.0.0.1:{port}/health") as resp:
                assert resp.status == 200
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=LIVENESS)
    assert rounds == 3
    assert closed == opened >= 300
    assert "Traceback" not in err
    held = sum(1 for t in lifetimes if t > header_timeout / 2)
    print(f"\nhalf-open: {opened} opened at RLIMIT_NOFILE=256 (at most {peak} open at once on the client side), "
          f"all {closed} closed by the server: {opened - held} at once (over the overall cap), {held} after "
          f"being held {min(t for t in lifetimes if t > header_timeout / 2):.2f}-{max(lifetimes):.2f} s; "
          f"the last {drained:.2f} s after the abuse stopped (header_timeout {header_timeout} s); "
          f"legit pair: {rounds} offer/answer rounds")


async def _half_requests(port, n):
    """``n`` connections from 127.0.0.1 that each send half a request line, opened one after another."""
    conns = []
    for _ in range(n):
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.1", 0))
        writer.write(b"GET /heal")
        conns.append((reader, writer))
    return conns


async def _until(condition, what):
    deadline = time.monotonic() + LIVENESS
    while not condition():
        assert time.monotonic() < deadline, f"not within {LIVENESS} s: {what}"
        await asyncio.sleep(0.01)


async def _closed_by_server(conns):
    for reader, writer in conns:
        assert await asyncio.wait_for(reader.read(), LIVENESS) == b""
        writer.close()


async def test_a_pending_connection_is_closed_after_header_timeout(server):
    header_timeout = 1.0
    srv = await server(header_timeout=header_timeout)
    born = time.monotonic()
    conns = await _half_requests(srv.port, 3)
    started = asyncio.Event()
    started.set()
    rounds = await exchange_while(started, srv.port, "legit")
    await _closed_by_server(conns)
    lived = time.monotonic() - born
    stats = srv.connection_stats
    assert rounds == 3
    # the server's deadline starts when it accepts, never before the client connected: a lower bound only
    assert lived >= 0.9 * header_timeout
    assert stats.timed_out == 3 and stats.evicted == 0 and stats.pending == 0


async def test_the_per_client_cap_evicts_only_connections_pending_past_the_grace_period(server):
    grace = 0.5
    srv = await server(header_timeout=10 * LIVENESS, eviction_grace=grace, max_pending_per_client=5)
    stats = srv.connection_stats
    stale = await _half_requests(srv.port, 5)
    await _until(lambda: stats.pending == 5, "5 connections pending")
    await asyncio.sleep(1.2 * grace)  # a lower bound: they are now older than the grace period
    fresh = await _half_requests(srv.port, 5)  # each newcomer closes the oldest stale one, never a fresh one
    await _closed_by_server(stale)
    started = asyncio.Event()
    started.set()
    rounds = await exchange_while(started, srv.port, "legit")  # another client: its own cap
    assert rounds == 3
    assert stats.evicted == 5 and stats.timed_out == 0
    await _until(lambda: stats.pending == 5, "the 5 fresh connections still pending")
    for _, writer in fresh:
        writer.close()


async def test_the_overall_cap_evicts_the_hog_and_the_legitimate_pair_still_gets_in(server):
    srv = await server(header_timeout=10 * LIVENESS, max_pending_per_client=None, max_pending=8)
    stats = srv.connection_stats
    hog = await _half_requests(srv.port, 12)
    await _closed_by_server(hog[:4])  # at the cap, the oldest pending ones go, however fresh
    started = asyncio.Event()
    started.set()
    rounds = await exchange_while(started, srv.port, "legit")
    assert rounds == 3
    assert stats.peak_pending <= 8 and stats.evicted >= 4 and stats.timed_out == 0
    for _, writer in hog[4:]:
        writer.close()


async def test_a_burst_of_100_legitimate_connections_from_one_client_all_succeed(server):
    """60 WebSockets and 40 HTTP requests at once from one address, under the default guard (32 pending a
    client past the grace period, 128 in all)."""
    srv = await server(max_peers_per_room=128)
    connector = aiohttp.TCPConnector(local_addr=(LEGIT, 0), force_close=True, limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def join(n):
            ws = await session.ws_connect(f"ws://127.0.0.1:{srv.port}/ws/crowd?token={TOKEN}")
            welcome = await _recv(ws, "welcome")
            return ws, welcome["id"]

        async def health(n):
            async with session.get(f"http://127.0.0.1:{srv.port}/health") as resp:
                return resp.status

        joined, statuses = await asyncio.wait_for(asyncio.gather(
            asyncio.gather(*(join(n) for n in range(60)), return_exceptions=True),
            asyncio.gather(*(health(n) for n in range(40)), return_exceptions=True)), LIVENESS)
        for item in joined:
            if not isinstance(item, BaseException):
                await item[0].close()
    failed = [r for r in [*joined, *statuses] if isinstance(r, BaseException)]
    assert not failed, f"{len(failed)} of 100 failed, first: {failed[0]!r}; {srv.connection_stats}"
    assert len({peer for _, peer in joined}) == 60 and statuses == [200] * 40
    assert srv.connection_stats.evicted == 0 and srv.stats.connections == 60


# -- (b) binary frames and pings go through the rate limit ---------------------------------------------------

async def test_binary_and_ping_floods_are_closed_while_the_pair_talks(server):
    srv = await server(rate=20.0, burst=30.0)
    started = asyncio.Event()
    report = {}

    async def flood(kind):
        async with aiohttp.ClientSession() as session:
            born = time.monotonic()  # before the server's bucket exists
            ws = await session.ws_connect(f"ws://127.0.0.1:{srv.port}/ws/flood-{kind}?token={TOKEN}", autoping=False)
            replies = 0

            async def read():
                nonlocal replies
                while True:
                    msg = await ws.receive()
                    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                        return
                    replies += 1

            reader = asyncio.ensure_future(read())
            sent = 0
            try:
                for sent in range(1, 20_001):
                    if kind == "binary":
                        await ws.send_bytes(b"\x00" * 64)
                    else:
                        await ws.ping(b"x")
                    if sent == 100:
                        started.set()
                    if reader.done():
                        break
                    if sent % 50 == 0:
                        await asyncio.sleep(0)  # let the reader see a close
            except ConnectionError:
                pass
            await asyncio.wait_for(reader, LIVENESS)
            report[kind] = (sent, replies, ws.close_code, time.monotonic() - born)
            await ws.close()

    floods = asyncio.gather(flood("binary"), flood("ping"))
    rounds = await exchange_while(started, srv.port, "legit")
    await asyncio.wait_for(floods, LIVENESS)
    assert rounds == 3
    for kind, (sent, replies, code, elapsed) in report.items():
        assert code == 1008, (kind, report)
        # the welcome, then one reply per frame the bucket let through: its burst, plus what it refilled
        # at the configured rate while the test watched (the server's own span is within the test's)
        assert replies <= 1 + srv.burst + srv.rate * elapsed, (kind, report)
        assert sent < 20_000, (kind, report)
    assert srv.stats.closed_rate == 2
    print(f"\nfloods (frames sent before the client saw the close, replies, close code, seconds): {report}")


# -- (c) deeply nested JSON ----------------------------------------------------------------------------------

async def test_deeply_nested_json_gets_an_error_reply_and_the_connection_stays(server, caplog):
    caplog.set_level(logging.DEBUG)
    srv = await server()
    started = asyncio.Event()
    replies = []

    async def abuse():
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(f"ws://127.0.0.1:{srv.port}/ws/deep?token={TOKEN}")
            await _recv(ws, "welcome")
            bombs = ["[" * 20_000 + "]" * 20_000,
                     '{"type": "offer", "sdp": "v=0", "x": ' + "[" * 900 + "]" * 900 + "}",
                     '{"type": "offer", "sdp": "v=0", "x": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}"]
            for bomb in bombs:
                await ws.send_str(bomb)
                replies.append(await _recv(ws, "error"))
                started.set()
            await ws.send_str(json.dumps({"type": "bye"}))  # still connected, still relaying
            assert not ws.closed
            await ws.close()

    rounds, _ = await asyncio.gather(exchange_while(started, srv.port, "legit"), abuse())
    assert rounds == 3
    assert all("nested deeper than 32" in r["message"] for r in replies), replies
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert srv.stats.malformed == 3


# -- (d) a room quota per client -----------------------------------------------------------------------------

async def test_one_client_cannot_take_every_room(server):
    srv = await server(max_rooms=20, max_rooms_per_client=6)
    statuses = []
    held = []
    started = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        for n in range(20):
            try:
                held.append(await session.ws_connect(f"ws://127.0.0.1:{srv.port}/ws/hog-{n}?token={TOKEN}"))
                statuses.append(101)
            except aiohttp.WSServerHandshakeError as exc:
                statuses.append(exc.status)
        started.set()
        rounds = await exchange_while(started, srv.port, "legit")  # a new room, from another client
        # joining a room that exists is not creating one: the hog may still join its own rooms
        extra = await session.ws_connect(f"ws://127.0.0.1:{srv.port}/ws/hog-0?token={TOKEN}")
        for ws in [*held, extra]:
            await ws.close()
    assert rounds == 3
    assert statuses == [101] * 6 + [429] * 14
    assert srv.stats.refused_quota == 14 and srv.stats.refused_full == 0


# -- (e) the Origin of a tokenless loopback server -----------------------------------------------------------

async def test_a_dns_rebinding_origin_is_refused_on_a_tokenless_loopback_server(server, monkeypatch):
    monkeypatch.delenv("MIDSTREAM_SIGNALING_TOKEN", raising=False)
    srv = await server(token=None)
    port = srv.port
    started = asyncio.Event()
    refused = []

    async def rebinding_pages():
        # a page on evil.example whose name now resolves to 127.0.0.1: its Host and Origin agree
        forged = [{"Origin": f"http://evil.example:{port}", "Host": f"evil.example:{port}"},
                  {"Origin": f"http://127.0.0.1.evil.example:{port}", "Host": f"127.0.0.1.evil.example:{port}"},
                  {"Origin": f"http://127.0.0.1:{port + 1}"},
                  {"Origin": "null"}]
        async with aiohttp.ClientSession() as session:
            for _ in range(5):
                for headers in forged:
                    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                        await session.ws_connect(f"ws://127.0.0.1:{port}/ws/legit", headers=headers)
                    refused.append(err.value.status)
                started.set()
                await asyncio.sleep(0)

    rounds, _ = await asyncio.gather(
        exchange_while(started, port, "legit", token=None, origin=f"http://127.0.0.1:{port}"), rebinding_pages())
    assert rounds == 3 and refused == [403] * 20
    # the server's own page under its loopback names, and programs without an Origin
    assert await exchange(port, "a", token=None, origin=f"http://localhost:{port}") == 1
    assert await exchange(port, "b", token=None) == 1
    assert srv.stats.refused_origin == 20


# -- (f) NaN and Infinity ------------------------------------------------------------------------------------

async def test_nan_and_infinity_are_refused_not_relayed(server):
    srv = await server()
    started = asyncio.Event()
    errors = []
    async with aiohttp.ClientSession() as session:
        watcher = await session.ws_connect(f"ws://127.0.0.1:{srv.port}/ws/legit?role=receiver&token={TOKEN}")
        await _recv(watcher, "welcome")

        async def abuse():
            ws = await session.ws_connect(f"ws://127.0.0.1:{srv.port}/ws/legit?token={TOKEN}")
            await _recv(ws, "welcome")
            started.set()
            for value in ("NaN", "Infinity", "-Infinity", "1e999", "-1e400"):
                await ws.send_str('{"type": "candidate", "candidate": {"sdpMLineIndex": %s}}' % value)
                errors.append((await _recv(ws, "error"))["message"])
            await ws.send_str('{"type": "candidate", "candidate": {"sdpMLineIndex": %s}}' % ("7" * 5000))
            errors.append((await _recv(ws, "error"))["message"])  # (it was "expected a JSON object with type ...")
            await ws.send_str('{"type": "candidate", "candidate": {"sdpMLineIndex": 0.5}}')
            await ws.close()

        rounds, _ = await asyncio.gather(exchange_while(started, srv.port, "legit"), abuse())
        # the watcher is in the same room: everything it got was strict JSON (_recv checks), the finite one came
        got = await _recv(watcher, "candidate")
        while got["candidate"] is None or got["candidate"].get("sdpMLineIndex") != 0.5:
            got = await _recv(watcher, "candidate")
        await watcher.close()
    assert rounds == 3
    assert errors == ["NaN and Infinity are not JSON numbers"] * 5 + ["a number of 5,000 digits: too long"]
    assert srv.stats.malformed == 6


# -- (g) a 10,000-character URL ------------------------------------------------------------------------------

async def test_a_huge_url_gets_a_clean_400_and_one_log_line(server, caplog):
    caplog.set_level(logging.DEBUG)
    srv = await server()
    started = asyncio.Event()
    answers = []

    async def abuse():
        for _ in range(3):
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            writer.write(b"GET /ws/r?token=" + TOKEN.encode() + b"&x=" + b"a" * 10_000 + b" HTTP/1.1\r\n"
                         b"Host: 127.0.0.1\r\n\r\n")
            answers.append(await asyncio.wait_for(reader.read(), LIVENESS))
            writer.close()
            started.set()

    rounds, _ = await asyncio.gather(exchange_while(started, srv.port, "legit"), abuse())
    assert rounds == 3
    for answer in answers:
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.split(b" ")[1] in (b"400", b"414"), answer[:200]
        assert b"longer than" in body and TOKEN.encode() not in body and len(body) < 200
    ours = [r for r in caplog.records if r.name.startswith("midstream_tui")]
    assert len(ours) == 3 and all(r.levelno == logging.WARNING for r in ours)
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert TOKEN not in caplog.text and "aaaaaaaa" not in "".join(r.getMessage() for r in ours)
    assert srv.connection_stats.bad_requests == 3


@pytest.mark.parametrize("request_bytes, status", [
    # a token of bytes that are no UTF-8: 401 (a 500 and a traceback); a key that is no base64: 400 (a 500)
    (b"GET /ws/room1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \xff\xfe\xed\xa0\x80\r\n"
     b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", b"401"),
    (b"GET /ws/room1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n"
     b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
     b"Sec-WebSocket-Key: \xff\xff\r\n\r\n", b"400"),
    # a room name with a newline after it is no room ("$" took it)
    (b"GET /ws/room1%0A HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n"
     b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", b"400"),
])
async def test_bytes_that_are_no_utf8_or_base64_in_a_handshake_get_a_4xx(server, caplog, request_bytes, status):
    srv = await server()
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    writer.write(request_bytes)
    answer = await asyncio.wait_for(reader.read(200), LIVENESS)
    writer.close()
    assert answer.split(b" ")[1] == status, answer
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_out_of_file_descriptors_is_one_log_line_not_a_traceback_per_accept(caplog):
    # Past the process's descriptor limit asyncio reports every refused accept with a traceback;
    # the server says it once (a second), plainly. (The half-open test reaches this under load.)
    import errno

    server = SignalingServer()
    await server.start()
    try:
        loop = asyncio.get_running_loop()
        with caplog.at_level(logging.WARNING):
            for _ in range(50):
                loop.call_exception_handler({"message": "socket.accept() out of system resource",
                                             "exception": OSError(errno.EMFILE, "Too many open files")})
        lines = [r for r in caplog.records if "file descriptors" in r.getMessage()]
        assert len(lines) == 1 and lines[0].exc_info is None
        assert not [r for r in caplog.records if r.exc_info]
    finally:
        await server.stop()
