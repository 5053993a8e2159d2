"""`midstream proxy`: the delay it adds to each chunk, and what it costs, against the same upstream direct.

Peer: the same client reading the same upstream directly (no proxy). An upstream process streams Chat
Completions chunks at a fixed pace, each stamped with the wall time it was written; a client process reads N
concurrent streams and records, per chunk, arrival time - stamp. Run once direct and once through
`midstream proxy --headless` (rules, learning and analysis on, recording off); the added delay is the proxied
distribution minus the direct one (p50 and p99), and the proxy's CPU is read from /proc over the run. All three
processes share this machine's cores, as they would on one host.

Named peer (``--litellm PATH``, the ``litellm`` command of an install of ``litellm[proxy]``, kept apart from
MidStream's environment: ``python -m venv /tmp/ll && /tmp/ll/bin/pip install 'litellm[proxy]'``): LiteLLM's proxy
in front of the same upstream (one model routed to it, one worker, its defaults otherwise, no database), under the
same load — added delay, CPU per stream and memory (RSS) beside MidStream's. LiteLLM re-serialises each chunk;
the upstream keeps when it wrote each chunk and the client matches them by request and position.

A floor (``--floor``): a bare aiohttp relay (the body up, the answer back chunk by chunk, nothing parsed or
analysed), under the same load — what any Python proxy on this event loop adds before its own work.

The load (``--load``): by default the upstream and the client run on asyncio's bare transports (chunks made once,
answers de-chunked by hand), so that they take less of the cores the proxies need; ``--load aiohttp`` is the
load of the earlier runs, on aiohttp. Each line gives the load's own CPU.

    python bench/bench_proxy.py [--streams 1,200] [--rate 50] [--seconds 10] [--floor] [--stagger]
                                [--load lean|aiohttp] [--litellm /tmp/ll/bin/litellm]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

UPSTREAM = r'''
import asyncio, json, random, sys, time
from aiohttp import web
WORDS = "the of and a to in is you that it he was for on are as with his they at be this have from".split()
RATE, SECONDS = float(sys.argv[2]), float(sys.argv[3])
SENT = {}  # request id (the user's message) -> when each content chunk was written
async def chat(request):
    body = json.loads(await request.read())
    times = SENT.setdefault(str(body["messages"][0]["content"]), [])
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    n = int(RATE * SECONDS)
    t0 = time.monotonic()
    rng = random.Random()  # words that never settle into a loop (a loop would be cut, rightly)
    for i in range(n):
        await asyncio.sleep(max(0.0, t0 + i / RATE - time.monotonic()))
        chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "bench",
                 "choices": [{"index": 0, "delta": {"content": " " + rng.choice(WORDS)}, "finish_reason": None}]}
        times.append(time.time())
        await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
    await resp.write(b"data: [DONE]\n\n")
    return resp
async def sent(request):  # the send times of one request, once
    return web.json_response(SENT.pop(request.match_info["rid"], []))
app = web.Application()
app.router.add_post("/v1/chat/completions", chat)
app.router.add_get("/sent/{rid}", sent)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None, backlog=2048)
'''

RELAY = r'''
import sys
import aiohttp
from aiohttp import web
UPSTREAM = sys.argv[2]
async def relay(request):  # the body to the upstream, its answer back chunk by chunk: nothing else
    body = await request.read()
    async with request.app["session"].post(UPSTREAM + request.path_qs, data=body,
                                           headers={"Content-Type": "application/json"}) as r:
        resp = web.StreamResponse(status=r.status, headers={"Content-Type": r.headers.get("Content-Type", "")})
        await resp.prepare(request)
        async for chunk in r.content.iter_any():
            await resp.write(chunk)
        await resp.write_eof()
        return resp
async def session(app):
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=None)) as app["session"]:
        yield
app = web.Application()
app.cleanup_ctx.append(session)
app.router.add_post("/{tail:.*}", relay)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None, backlog=2048)
'''
"""The floor (``--floor``): the least a Python proxy on aiohttp does — relay each chunk as it comes, no parsing,
no analysis. What it adds is what any proxy on this event loop adds before doing anything of its own."""

CLIENT = r'''
import asyncio, json, os, sys, time, uuid
import aiohttp
URL, N, UPSTREAM, SPREAD = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
AUTH = {"Authorization": "Bearer " + os.environ["BENCH_KEY"]}  # LiteLLM's master key; the others ignore it
async def one(session, arrivals, start):
    await asyncio.sleep(start)
    rid = uuid.uuid4().hex  # the upstream keeps its send times under the request's message
    times = arrivals[rid] = []
    body = {"model": "bench", "stream": True, "messages": [{"role": "user", "content": rid}]}
    async with session.post(URL, headers=AUTH, json=body) as r:
        buf = b""
        async for chunk in r.content.iter_any():
            now = time.time()
            buf += chunk
            *events, buf = buf.split(b"\n\n")
            for ev in events:
                if ev.startswith(b"data: {"):
                    choices = json.loads(ev[6:]).get("choices") or [{}]
                    if (choices[0].get("delta") or {}).get("content"):
                        times.append(now)
async def main():
    arrivals = {}
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=None)) as s:
        await asyncio.gather(*(one(s, arrivals, SPREAD * i / N) for i in range(N)))
        delays = []
        for rid, times in arrivals.items():  # chunk i received minus chunk i sent (proxies relay chunks 1:1)
            async with s.get(f"{UPSTREAM}/sent/{rid}") as r:
                sent = await r.json()
            if len(sent) != len(times):
                raise SystemExit(f"{len(times)} content chunks received, {len(sent)} sent")
            delays += [a - b for a, b in zip(times, sent)]
    print(json.dumps(delays))
asyncio.run(main())
'''


LEAN_UPSTREAM = r"""
import asyncio, json, random, sys, time
WORDS = "the of and a to in is you that it he was for on are as with his they at be this have from".split()
RATE, SECONDS = float(sys.argv[2]), float(sys.argv[3])
def framed(data):  # one HTTP/1.1 chunk
    return b"%x\r\n%s\r\n" % (len(data), data)
CHUNKS = [framed(("data: " + json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "bench",
          "choices": [{"index": 0, "delta": {"content": " " + w}, "finish_reason": None}]}) + "\n\n").encode())
          for w in WORDS]  # the aiohttp upstream's chunks, byte for byte, made once
DONE = framed(b"data: [DONE]\n\n") + b"0\r\n\r\n"
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
SENT = {}  # request id (the user's message) -> when each content chunk was written
class Conn(asyncio.Protocol):  # HTTP/1.1 with keep-alive, requests with a Content-Length (all the peers send one)
    def connection_made(self, transport):
        self.transport, self.buf, self.busy = transport, b"", False
    def data_received(self, data):
        self.buf += data
        self.serve()
    def serve(self):
        while not self.busy:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = self.buf[:end].decode("latin-1").split("\r\n")
            method, path = lines[0].split(" ")[:2]
            length = next((int(v) for k, _, v in (l.partition(":") for l in lines[1:])
                           if k.strip().lower() == "content-length"), 0)
            if len(self.buf) < end + 4 + length:
                return
            body, self.buf = self.buf[end + 4:end + 4 + length], self.buf[end + 4 + length:]
            if method == "POST":
                self.busy = True
                asyncio.get_running_loop().create_task(self.stream(str(json.loads(body)["messages"][0]["content"])))
            else:  # GET /sent/<rid>: the send times of one request, once
                out = json.dumps(SENT.pop(path.rsplit("/", 1)[-1], [])).encode()
                self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                                     % (len(out), out))
    async def stream(self, rid):
        times, t = SENT.setdefault(rid, []), self.transport
        t.write(HEAD)
        t0, rng = time.monotonic(), random.Random()  # words that never settle into a loop
        for i in range(int(RATE * SECONDS)):
            await asyncio.sleep(max(0.0, t0 + i / RATE - time.monotonic()))
            if t.is_closing():
                return
            times.append(time.time())
            t.write(rng.choice(CHUNKS))
        t.write(DONE)
        self.busy = False
        self.serve()
async def main():
    server = await asyncio.get_running_loop().create_server(Conn, "127.0.0.1", int(sys.argv[1]), backlog=4096)
    await server.serve_forever()
asyncio.run(main())
"""
"""The default load (``--load lean``): the same upstream on asyncio's bare transports — chunks made once and
written as they are, no web framework — so that the load takes less of the cores the proxy needs."""

LEAN_CLIENT = r"""
import asyncio, json, os, sys, time, uuid
from urllib.parse import urlsplit
URL, N, UPSTREAM, SPREAD = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
AUTH = "Bearer " + os.environ["BENCH_KEY"]  # LiteLLM's master key; the others ignore it
def has_content(ev):  # a data event whose delta carries text (LiteLLM's first chunk has "content": "")
    i = ev.find(b'"content":')
    if i < 0 or not ev.startswith(b"data: {"):
        return False
    j = i + 10
    while ev[j:j + 1] == b" ":
        j += 1
    return ev[j:j + 1] == b'"' and ev[j + 1:j + 2] != b'"'
class Stream(asyncio.Protocol):  # one request on its own connection; the answer chunked or sized
    def __init__(self, times, done):
        self.times, self.done, self.buf, self.events = times, done, b"", b""
        self.head, self.left, self.crlf = None, 0, False
    def connection_made(self, transport):
        self.transport = transport
    def data_received(self, data):
        now, buf, pos, body = time.time(), self.buf + data, 0, []
        if self.head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            self.head, pos = buf[:end].lower(), end + 4
            if not self.head.startswith(b"http/1.1 200"):
                self.fail(self.head.split(b"\r\n")[0].decode())
                return
            self.chunked = b"transfer-encoding: chunked" in self.head
        if not self.chunked:
            body.append(buf[pos:])
            pos = len(buf)
        while self.chunked:
            if self.left:  # inside a chunk
                piece = buf[pos:pos + self.left]
                body.append(piece)
                self.left -= len(piece)
                pos += len(piece)
                if self.left:
                    break
                self.crlf = True
            if self.crlf:  # the CRLF after a chunk's data
                if len(buf) - pos < 2:
                    break
                pos, self.crlf = pos + 2, False
            nl = buf.find(b"\r\n", pos)
            if nl < 0:
                break
            size = int(buf[pos:nl].split(b";")[0], 16)
            pos = nl + 2
            if size == 0:  # the last chunk: the answer is whole
                self.scan(b"".join(body), now)
                self.transport.close()
                return
            self.left = size
        self.buf = buf[pos:]
        self.scan(b"".join(body), now)
    def scan(self, data, now):
        *events, self.events = (self.events + data).split(b"\n\n")
        for ev in events:
            if has_content(ev):
                self.times.append(now)
    def fail(self, why):
        if not self.done.done():
            self.done.set_exception(SystemExit(f"the answer was {why}"))
        self.transport.close()
    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(None)
async def one(arrivals, start, host, port, path):
    await asyncio.sleep(start)
    rid = uuid.uuid4().hex  # the upstream keeps its send times under the request's message
    times = arrivals[rid] = []
    body = json.dumps({"model": "bench", "stream": True, "messages": [{"role": "user", "content": rid}]}).encode()
    done = asyncio.get_running_loop().create_future()
    transport, _ = await asyncio.get_running_loop().create_connection(lambda: Stream(times, done), host, port)
    transport.write(b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: %s\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (path.encode(), host.encode(), port, AUTH.encode(), len(body), body))
    await done
async def sent(host, port, rid):
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET /sent/%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (rid.encode(), host.encode()))
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    out = json.loads(await reader.readexactly(length))
    writer.close()
    return out
async def main():
    arrivals, url, up = {}, urlsplit(URL), urlsplit(UPSTREAM)
    await asyncio.gather(*(one(arrivals, SPREAD * i / N, url.hostname, url.port, url.path) for i in range(N)))
    delays = []
    for rid, times in arrivals.items():  # chunk i received minus chunk i sent (proxies relay chunks 1:1)
        sent_at = await sent(up.hostname, up.port, rid)
        if len(sent_at) != len(times):
            raise SystemExit(f"{len(times)} content chunks received, {len(sent_at)} sent")
        delays += [a - b for a, b in zip(times, sent_at)]
    print(json.dumps(delays))
asyncio.run(main())
"""
"""The client of ``--load lean``: each stream a connection of its own on a bare asyncio transport, the HTTP/1.1
answer de-chunked and its events found by hand (a content delta is a data event whose ``"content":`` is a
non-empty string), no JSON parsed per chunk."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}")


def _tree(pid: int) -> list[int]:
    """The process and every process under it (LiteLLM's uvicorn may run its workers as children)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += [c for c, pp in parents.items() if pp == p]
    return out


def cpu_seconds(pid: int) -> float:
    total = 0
    for p in _tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    total = 0
    for p in _tree(pid):
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1])
        except OSError:
            continue
    return total * os.sysconf("SC_PAGE_SIZE") / 1e6


def settle(pids: list[int], limit: float = 120.0) -> None:
    """Wait until no peer is still busy with the last run (LiteLLM finishes its per-request work after the
    answer): each measurement starts from idle processes."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = [cpu_seconds(p) for p in pids]
        time.sleep(1.0)
        if all(cpu_seconds(p) - b < 0.05 for p, b in zip(pids, before)):
            return


def measure(name: str, url: str, pid: int, n: int, direct: np.ndarray, upstream: str, spread: float,
            up_pid: int) -> None:
    rss0 = rss_mb(pid)
    cpu0, up0, t0 = cpu_seconds(pid), cpu_seconds(up_pid), time.monotonic()
    proxied, client_cpu = client(url, n, upstream, spread)
    spent = cpu_seconds(pid) - cpu0
    took = time.monotonic() - t0
    cpu = spent / took
    load = (cpu_seconds(up_pid) - up0 + client_cpu) / took
    d50, d99 = np.percentile(direct, [50, 99])
    p50, p99 = np.percentile(proxied, [50, 99])
    print(f"  {n:>4} streams, {name:<10}: proxied p50 {p50:6.2f} ms p99 {p99:7.2f} ms | added p50 {p50 - d50:+6.2f} ms "
          f"p99 {p99 - d99:+7.2f} ms | chunks {len(proxied)}/{len(direct)} | CPU {cpu:.0%} of one core "
          f"({spent / max(1, len(proxied)) * 1e6:.0f} µs per chunk) | RSS {rss_mb(pid):.0f} MB (was {rss0:.0f}) | "
          f"run {took:.0f} s | load (upstream + client) {load:.0%} of one core")  # (longer than the streams: the client or the upstream could not keep up)


KEY = secrets.token_hex(16)
"""A throwaway master key for LiteLLM's proxy (it refuses to start without one), sent by the client to every
peer; passed in the environment, never on a command line."""


LOADS = {"lean": (LEAN_UPSTREAM, LEAN_CLIENT), "aiohttp": (UPSTREAM, CLIENT)}
LOAD = "lean"


def client(url: str, n: int, upstream: str, spread: float = 0.0) -> tuple[np.ndarray, float]:
    """Per-chunk delays (ms) of ``n`` concurrent streams, and the client's CPU seconds; ``spread``: seconds over
    which their starts are spread (``--stagger``: one chunk interval, so that their chunks come evenly spread, not
    in one burst per interval)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([sys.executable, "-c", LOADS[LOAD][1], url, str(n), upstream, str(spread)],
                         capture_output=True, text=True,
                         env=dict(os.environ, BENCH_KEY=KEY))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode:
        raise SystemExit(f"the client failed: {(out.stderr.strip().splitlines() or ['?'])[-1]}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return np.asarray(json.loads(out.stdout)) * 1e3, cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", default="1,200")
    ap.add_argument("--rate", type=float, default=50.0, help="chunks per second per stream")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each stream")
    ap.add_argument("--json", action="store_true", help="the proxy prints NDJSON each tick (as a pipeline would)")
    ap.add_argument("--proxy-arg", action="append", default=[], metavar="ARG",
                    help="an option added to `midstream proxy`'s command line (repeatable: "
                         "--proxy-arg=--idle-analysis)")
    ap.add_argument("--litellm", help="LiteLLM's `litellm` command: its proxy measured beside MidStream's")
    ap.add_argument("--floor", action="store_true",
                    help="also measure a bare aiohttp relay (no parsing, no analysis): the floor for a Python proxy")
    ap.add_argument("--stagger", action="store_true",
                    help="start the streams spread over one chunk interval, as independent clients would (default: "
                         "all at once, as a batching serving engine emits them)")
    ap.add_argument("--load", choices=sorted(LOADS), default="lean",
                    help="the upstream and client: on bare asyncio transports (default), or on aiohttp (the load of "
                         "the runs before 2026-12-05, which took more of the cores)")
    args = ap.parse_args()
    global LOAD
    LOAD = args.load
    if not (args.rate > 0 and args.seconds > 0):
        raise SystemExit("--rate and --seconds must be > 0")
    spread = 1.0 / args.rate if args.stagger else 0.0
    up_port, proxy_port, ll_port = free_port(), free_port(), free_port()
    report = tempfile.TemporaryFile("w+")
    upstream = subprocess.Popen([sys.executable, "-c", LOADS[LOAD][0], str(up_port), str(args.rate), str(args.seconds)])
    proxy = subprocess.Popen([sys.executable, "-m", "midstream_tui", "proxy", "--port", str(proxy_port),
                              "--upstream", f"http://127.0.0.1:{up_port}/v1", "--headless", *(["--json"] if args.json else []),
                              "--no-record", "--refresh-ms", "100", *args.proxy_arg],
                             stdout=report, stderr=subprocess.DEVNULL, text=True)  # a file: a full pipe would stall it
    floor_port = free_port()
    floor = subprocess.Popen([sys.executable, "-c", RELAY, str(floor_port), f"http://127.0.0.1:{up_port}"]) \
        if args.floor else None
    litellm = None
    config = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    if args.litellm:
        config.write(f"model_list:\n  - model_name: bench\n    litellm_params:\n      model: openai/bench\n"
                     f"      api_base: http://127.0.0.1:{up_port}/v1\n      api_key: bench-placeholder\n")
        config.close()
        env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR", LITELLM_MASTER_KEY=KEY)
        litellm = subprocess.Popen([args.litellm, "--config", config.name, "--host", "127.0.0.1", "--port", str(ll_port),
                                    "--num_workers", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   env=env)
    try:
        wait_port(up_port)
        wait_port(proxy_port)
        up = f"http://127.0.0.1:{up_port}"
        client(f"http://127.0.0.1:{proxy_port}/v1/chat/completions", 1, up)  # warm: kernels loaded, connections made
        peers = [("midstream", f"http://127.0.0.1:{proxy_port}/v1/chat/completions", proxy.pid)]
        if floor is not None:
            wait_port(floor_port)
            client(f"http://127.0.0.1:{floor_port}/v1/chat/completions", 1, up)
            peers.append(("bare relay", f"http://127.0.0.1:{floor_port}/v1/chat/completions", floor.pid))
        if litellm is not None:
            wait_port(ll_port, timeout=300)
            client(f"http://127.0.0.1:{ll_port}/v1/chat/completions", 1, up)
            peers.append(("litellm", f"http://127.0.0.1:{ll_port}/v1/chat/completions", litellm.pid))
        print(f"proxy added delay per chunk, {args.rate:g} chunks/s per stream, {args.seconds:g} s streams "
              f"(client, upstream and proxy on the same {os.cpu_count()} cores), streams started "
              + ("spread over one chunk interval" if args.stagger else "at once"))
        for n in (int(s) for s in args.streams.split(",")):
            up0, t0 = cpu_seconds(upstream.pid), time.monotonic()
            direct, client_cpu = client(f"{up}/v1/chat/completions", n, up, spread)
            load = (cpu_seconds(upstream.pid) - up0 + client_cpu) / (time.monotonic() - t0)
            d50, d99 = np.percentile(direct, [50, 99])
            print(f"  {n:>4} streams, direct   : p50 {d50:6.2f} ms p99 {d99:7.2f} ms | chunks {len(direct)} | "
                  f"load (upstream + client) {load:.0%} of one core")
            for name, url, pid in peers:
                settle([p for _, _, p in peers])
                measure(name, url, pid, n, direct, up, spread, upstream.pid)
    finally:
        proxy.send_signal(2)
        proxy.wait(timeout=120)
        report.seek(0)
        out = report.read()
        if litellm is not None:
            litellm.terminate()
            try:
                litellm.wait(30)
            except subprocess.TimeoutExpired:
                litellm.kill()
        if floor is not None:
            floor.send_signal(2)  # its connections closed before it ends
            try:
                floor.wait(30)
            except subprocess.TimeoutExpired:
                floor.kill()
        os.unlink(config.name)
        upstream.terminate()
        upstream.wait(30)
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if lines and "summary" in lines[-1]:
        streams = lines[-1]["summary"]["streams"]
        drops = sum(s["metrics"].get("drops", 0) for s in streams.values())
        print(f"  analysis: {len(streams)} streams analyzed, {drops} events dropped by the analysis (counted)")


if __name__ == "__main__":
    main()
