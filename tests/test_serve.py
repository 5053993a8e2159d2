"""`midstream serve`: the dashboard in a browser through textual-serve, over real HTTP and WebSocket."""

import asyncio
import shlex
import subprocess
import sys
import time

import aiohttp


async def _wait_for_http(url: str, deadline: float) -> str:
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return await resp.text()
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer")
            await asyncio.sleep(0.2)


async def test_serve_publishes_the_dashboard_over_websocket(free_port):
    server = subprocess.Popen(
        [sys.executable, "-m", "midstream_tui", "serve", "--port", str(free_port), "sim:text?name=served"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        page = await _wait_for_http(f"http://127.0.0.1:{free_port}/", time.monotonic() + 120)  # liveness only
        assert "MidStream" in page and "/ws" in page
        seen = ""
        async with aiohttp.ClientSession() as session:
            # another web site open in the browser may not read the dashboard or type into it (a review: it could),
            # nor one whose name resolves to this machine (DNS rebinding)
            for page in ("http://evil.example", f"http://rebound.example:{free_port}", "null"):
                try:
                    async with session.ws_connect(f"http://127.0.0.1:{free_port}/ws", headers={"Origin": page}):
                        raise AssertionError(f"a page of {page} opened the dashboard")
                except aiohttp.WSServerHandshakeError as exc:
                    assert exc.status == 403, page
            async with session.ws_connect(f"http://127.0.0.1:{free_port}/ws?width=100&height=30",
                                          headers={"Origin": f"http://localhost:{free_port}"}) as ws:
                deadline = time.monotonic() + 120  # the app starts slowly on a busy machine
                while "served" not in seen or "Patterns" not in seen:
                    assert time.monotonic() < deadline, f"dashboard never drawn: {seen[-400:]!r}"
                    msg = await ws.receive(timeout=120)
                    if msg.type == aiohttp.WSMsgType.BINARY:
                        seen += msg.data.decode("utf-8", "replace")
                    elif msg.type == aiohttp.WSMsgType.TEXT:
                        seen += msg.data
                    else:
                        break
                await ws.send_json(["stdin", "q"])
        assert "Streams" in seen and "served" in seen
    finally:
        server.terminate()
        server.wait(timeout=60)


async def test_a_served_dashboard_takes_only_the_pages_messages_and_points_the_browser_where_it_came_from(
        free_port, monkeypatch):
    # An independent review: a message that was not JSON printed a traceback (with the message among its locals),
    # a width of "abc" or a height of -5 ended the dashboard's process; every WebSocket started another dashboard
    # (~300 MB each, no cap); bound to 0.0.0.0 the page sent the browser to ws://0.0.0.0
    from aiohttp import web

    from midstream_tui import cli
    from midstream_tui.servers.base import LocalServer

    # (a small program in the dashboard's place, which ends when told to quit, as the dashboard does: what is
    # checked here is what the server lets through to it)
    program = ("import sys\nseen = b''\nwhile b'quit' not in seen:\n    got = sys.stdin.buffer.read1(4096)\n"
               "    if not got:\n        break\n    seen = (seen + got)[-64:]\n")
    served = cli._served(f"{sys.executable} -c {shlex.quote(program)}", "0.0.0.0", free_port, ())

    class Hosted(LocalServer):
        def app(self):
            return self._app

    host = Hosted("127.0.0.1", free_port)
    host._app = await served._make_app()
    await host.start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{free_port}/", headers={"Host": f"dash.example:{free_port}"}
                                   ) as resp:
                page = await resp.text()
            assert f"ws://dash.example:{free_port}/ws" in page and "0.0.0.0" not in page
            for bad in ("not json", '["resize", {"width": "abc", "height": 20}]', '{"a": 1}', '["format-disk"]',
                        '{"a": 1, "b": 2}', '["resize", {"width": 1e400, "height": 3}]'):
                async with session.ws_connect(f"http://127.0.0.1:{free_port}/ws") as ws:
                    await ws.send_str(bad)
                    while (msg := await ws.receive(timeout=120)).type in (aiohttp.WSMsgType.TEXT,
                                                                           aiohttp.WSMsgType.BINARY):
                        pass
                    assert ws.close_code == 1003, (bad, msg)
                deadline = time.monotonic() + 120  # (its program ends before the next: at most 4 run at once)
                while served.sessions:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.05)
            monkeypatch.setattr(cli, "MAX_DASHBOARDS", 0)  # (the cap, without starting that many dashboards)
            try:
                async with session.ws_connect(f"http://127.0.0.1:{free_port}/ws"):
                    raise AssertionError("a dashboard past the cap was started")
            except aiohttp.WSServerHandshakeError as exc:
                assert exc.status == web.HTTPServiceUnavailable.status_code
    finally:
        await host.stop()
        await asyncio.sleep(1.0)  # (the dashboards it started end, their transports with them, on this loop)


def test_serve_refuses_a_bad_source_before_listening():
    proc = subprocess.run([sys.executable, "-m", "midstream_tui", "serve", "--port", "1", "sim:bogus"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "unknown simulated stream" in proc.stderr


def test_serve_on_a_port_in_use_or_a_host_that_does_not_resolve_is_one_line(free_port):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_port))
        taken.listen()
        for host in ("127.0.0.1", "no-such-host.invalid"):
            proc = subprocess.run([sys.executable, "-m", "midstream_tui", "serve", "--host", host, "--port",
                                   str(free_port), "sim:text"], capture_output=True, text=True, timeout=300)
            assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
            assert f"cannot listen on {host}:{free_port}" in proc.stderr, proc.stderr


async def test_the_signaling_server_takes_its_token_from_the_settings(free_port, tmp_path):
    # MIDSTREAM_SIGNALING_TOKEN (here from a .env file) reaches the server through the run's settings:
    # a peer without it is refused, a peer with it joins, and the token is never printed.
    token = "env-signaling-token-123"  # audit: ignore (a test fixture, loopback only)
    (tmp_path / ".env").write_text(f"MIDSTREAM_SIGNALING_TOKEN={token}\n")
    env = {k: v for k, v in __import__("os").environ.items() if k != "MIDSTREAM_SIGNALING_TOKEN"}
    server = subprocess.Popen([sys.executable, "-m", "midstream_tui", "signaling", "--port", str(free_port)],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{free_port}/ws/room?role=peer"
        deadline = time.monotonic() + 120  # liveness only
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.get(url) as resp:
                        refused = resp.status
                    break
                except aiohttp.ClientConnectionError:
                    assert time.monotonic() < deadline and server.poll() is None, "the server never listened"
                    await asyncio.sleep(0.2)
            assert refused == 401
            async with session.ws_connect(url, headers={"Authorization": f"Bearer {token}"}) as ws:
                assert not ws.closed
    finally:
        server.terminate()
        out, err = server.communicate(timeout=60)
    assert token not in out + err and "token" in err  # the banner says a token is required, not which


def test_an_ipv6_signaling_address_is_written_so_that_run_reads_it():
    # "--host ::1" printed webrtc://::1:8765/ROOM, which `run` refused ("bad port")
    from midstream_tui.servers.signaling import SignalingServer
    from midstream_tui.sources.webrtc import parse_target

    server = SignalingServer("::1", 8765)
    assert server.url == "http://[::1]:8765"
    target = parse_target(f"webrtc://{server.url.split('://', 1)[1]}/ROOM")
    assert target.port == 8765 and "::1" in str(target)
