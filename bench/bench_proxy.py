"""`midstream proxy`: the delay it adds to each chunk, and what it costs, against the same upstream direct.

Peer: the same client reading the same upstream directly (no proxy). An upstream process streams Chat
Completions chunks at a fixed pace, each stamped with the wall time it was written; a client process reads N
concurrent streams and records, per chunk, arrival time - stamp. Run once direct and once through
`midstream proxy --headless` (rules, learning and analysis on, recording off); the added delay is the proxied
distribution minus the direct one (p50 and p99), and the proxy's CPU is read from /proc over the run. All three
processes share this machine's cores, as they would on one host.

    python bench/bench_proxy.py [--streams 1,200] [--rate 50] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
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
async def chat(request):
    await request.read()
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    n = int(RATE * SECONDS)
    t0 = time.monotonic()
    rng = random.Random()  # words that never settle into a loop (a loop would be cut, rightly)
    for i in range(n):
        await asyncio.sleep(max(0.0, t0 + i / RATE - time.monotonic()))
        chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "bench",
                 "choices": [{"index": 0, "delta": {"content": " " + rng.choice(WORDS)}, "finish_reason": None}],
                 "t": time.time()}
        await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
    await resp.write(b"data: [DONE]\n\n")
    return resp
app = web.Application()
app.router.add_post("/v1/chat/completions", chat)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None, backlog=2048)
'''

CLIENT = r'''
import asyncio, json, sys, time
import aiohttp
URL, N = sys.argv[1], int(sys.argv[2])
async def one(session, delays):
    async with session.post(URL, json={"model": "bench", "stream": True, "messages": [{"role": "user", "content": "x"}]}) as r:
        buf = b""
        async for chunk in r.content.iter_any():
            now = time.time()
            buf += chunk
            *events, buf = buf.split(b"\n\n")
            for ev in events:
                if ev.startswith(b"data: {"):
                    t = json.loads(ev[6:]).get("t")
                    if t is not None:
                        delays.append(now - t)
async def main():
    delays = []
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=None)) as s:
        await asyncio.gather(*(one(s, delays) for _ in range(N)))
    print(json.dumps(delays))
asyncio.run(main())
'''


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


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def client(url: str, n: int) -> np.ndarray:
    out = subprocess.run([sys.executable, "-c", CLIENT, url, str(n)], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"the client failed: {out.stderr.strip().splitlines()[-1]}")
    return np.asarray(json.loads(out.stdout)) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", default="1,200")
    ap.add_argument("--rate", type=float, default=50.0, help="chunks per second per stream")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each stream")
    ap.add_argument("--json", action="store_true", help="the proxy prints NDJSON each tick (as a pipeline would)")
    args = ap.parse_args()
    up_port, proxy_port = free_port(), free_port()
    report = tempfile.TemporaryFile("w+")
    upstream = subprocess.Popen([sys.executable, "-c", UPSTREAM, str(up_port), str(args.rate), str(args.seconds)])
    proxy = subprocess.Popen([sys.executable, "-m", "midstream_tui", "proxy", "--port", str(proxy_port),
                              "--upstream", f"http://127.0.0.1:{up_port}/v1", "--headless", *(["--json"] if args.json else []),
                              "--no-record", "--refresh-ms", "100"],
                             stdout=report, stderr=subprocess.DEVNULL, text=True)  # a file: a full pipe would stall it
    try:
        wait_port(up_port)
        wait_port(proxy_port)
        client(f"http://127.0.0.1:{proxy_port}/v1/chat/completions", 1)  # warm: kernels loaded, connections made
        print(f"proxy added delay per chunk, {args.rate:g} chunks/s per stream, {args.seconds:g} s streams "
              f"(client, upstream and proxy on the same {os.cpu_count()} cores)")
        for n in (int(s) for s in args.streams.split(",")):
            direct = client(f"http://127.0.0.1:{up_port}/v1/chat/completions", n)
            cpu0, t0 = cpu_seconds(proxy.pid), time.monotonic()
            proxied = client(f"http://127.0.0.1:{proxy_port}/v1/chat/completions", n)
            cpu = (cpu_seconds(proxy.pid) - cpu0) / (time.monotonic() - t0)
            d50, d99 = np.percentile(direct, [50, 99])
            p50, p99 = np.percentile(proxied, [50, 99])
            print(f"  {n:>4} streams: direct p50 {d50:6.2f} ms p99 {d99:7.2f} ms | proxied p50 {p50:6.2f} ms "
                  f"p99 {p99:7.2f} ms | added p50 {p50 - d50:+6.2f} ms p99 {p99 - d99:+7.2f} ms | "
                  f"chunks {len(proxied)}/{len(direct)} | proxy CPU {cpu:.0%} of one core "
                  f"({cpu / n * 1e3:.1f} ms/s per stream)")
    finally:
        proxy.send_signal(2)
        proxy.wait(timeout=120)
        report.seek(0)
        out = report.read()
        upstream.terminate()
        upstream.wait(30)
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if lines and "summary" in lines[-1]:
        streams = lines[-1]["summary"]["streams"]
        drops = sum(s["metrics"].get("drops", 0) for s in streams.values())
        print(f"  analysis: {len(streams)} streams analyzed, {drops} events dropped by the analysis (counted)")


if __name__ == "__main__":
    main()
