"""Fuzzing every parser that reads outside input (hypothesis): a clear error or a recorded stream error, never a crash.

JSONL sessions, captured SSE, numeric series files (CSV, NPY, JSONL, TXT), DASH manifests,
signaling messages (a real server over WebSocket) and Realtime API events (the official
client against a test peer that speaks the wire protocol with random events).
"""

import asyncio
import base64
import json
import os
import tempfile

import aiohttp
import numpy as np
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from midstream_tui.analysis.validate import SeriesError
from midstream_tui.events import Event, StreamClosed, StreamError, StreamOpened
from midstream_tui.cli.series import load_series
from midstream_tui.sources import SourceError, open_source, open_sources
from midstream_tui.sources.dash import DashError, parse_manifest

FUZZ = settings(max_examples=int(os.environ.get("MIDSTREAM_FUZZ_EXAMPLES", "120")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12)
session_objects = st.fixed_dictionaries(
    {}, optional={"t": json_values | st.floats(-5, 100), "stream": st.sampled_from(["a", "b"]) | json_values,
                  "type": st.sampled_from(["open", "request", "text", "usage", "request_end", "error", "close",
                                           "bogus"]) | json_values,
                  "text": json_values, "tokens": json_values, "prompt_tokens": json_values,
                  "completion_tokens": json_values, "message": json_values, "reason": json_values})


def _write(suffix: str, data: bytes) -> str:
    fd, path = tempfile.mkstemp(suffix=suffix)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


def _drain(sources) -> list[Event]:
    events = []
    for src in sources:
        events.extend(src.schedule(0.0))
    return events


def _well_formed(events: list[Event]) -> None:
    by_stream: dict[str, list[Event]] = {}
    for ev in events:
        assert isinstance(ev, Event) and isinstance(ev.stream, str) and np.isfinite(ev.t)
        by_stream.setdefault(ev.stream, []).append(ev)
    for stream, evs in by_stream.items():
        assert isinstance(evs[-1], StreamClosed), (stream, evs[-3:])
        assert all(a.t <= b.t for a, b in zip(evs, evs[1:]))  # in time order, whatever the file said


@FUZZ
@given(st.lists(session_objects.map(json.dumps) | st.text(max_size=40), max_size=25))
def test_jsonl_sessions(lines):
    path = _write(".jsonl", "\n".join(lines).encode("utf-8", "surrogatepass"))
    try:
        try:
            sources = open_sources([path])
        except SourceError as exc:
            assert "\n" not in str(exc)
            return
        _well_formed(_drain(sources))
    finally:
        os.unlink(path)


sse_lines = st.lists(st.one_of(
    st.builds(lambda d: f"data: {json.dumps(d)}", st.fixed_dictionaries(
        {}, optional={"choices": st.lists(st.fixed_dictionaries({}, optional={
            "delta": st.fixed_dictionaries({}, optional={"content": json_values}), "finish_reason": json_values}),
            max_size=2), "usage": json_values, "error": json_values, "type": json_values, "delta": json_values})),
    st.just("data: [DONE]"), st.just(""), st.text(max_size=30).map(lambda s: "data: " + s),
    st.text(max_size=20).map(lambda s: "event: " + s), st.text(max_size=30)), max_size=30)


@FUZZ
@given(sse_lines, st.binary(max_size=64))
def test_captured_sse(lines, tail):
    path = _write(".sse", "\n".join(lines).encode("utf-8", "surrogatepass") + tail)
    try:
        source = open_source(path)
        _well_formed(_drain([source]))
    finally:
        os.unlink(path)


@FUZZ
@given(st.sampled_from([".csv", ".npy", ".jsonl", ".txt"]), st.binary(max_size=300) | st.text(max_size=200).map(
    lambda s: s.encode("utf-8", "surrogatepass")), st.sampled_from([None, "0", "1", "x", "value"]))
def test_series_files(suffix, data, column):
    path = _write(suffix, data)
    try:
        try:
            x = load_series(path, column)
        except SeriesError as exc:
            assert str(exc) and "\n" not in str(exc)
            return
        assert isinstance(x, np.ndarray) and x.ndim == 1 and x.dtype == np.float64
    finally:
        os.unlink(path)


deep_json = st.builds(lambda depth, opener, inside: opener * depth + inside + {"[": "]", "{": "}"}[opener] * depth,
                      st.integers(60, 50_000), st.sampled_from(["[", "{"]), st.sampled_from(["", "1", '"a"']))
"""Nesting deep enough to exhaust CPython's JSON decoder (RecursionError), and balanced or not."""


@FUZZ
@given(st.lists(session_objects.map(json.dumps) | deep_json | deep_json.map(lambda d: '{"t": 1, "text": ' + d + "}"),
                min_size=1, max_size=6))
def test_deeply_nested_json_in_sessions_series_and_sse(lines):
    text = "\n".join(lines).encode()
    for suffix in (".jsonl", ".sse"):
        path = _write(suffix, text if suffix == ".jsonl" else b"".join(b"data: " + line.encode() + b"\n\n"
                                                                        for line in lines))
        try:
            _well_formed(_drain(open_sources([path])))  # a recorded stream error, never an exception
            if suffix == ".jsonl":
                try:
                    load_series(path)
                except SeriesError as exc:
                    assert str(exc) and "\n" not in str(exc)
        finally:
            os.unlink(path)


@FUZZ
@given(st.lists(st.lists(st.sampled_from(["0", "1", "2", "1.5", "-3", "x", "", "nan", "i", "t", "value"]),
                         min_size=1, max_size=4), min_size=1, max_size=8),
       st.sampled_from([None, "0", "1", "3", "i", "value", "zz"]))
def test_csv_tables_and_columns(rows, column):
    from midstream_tui.cli.series import read_series

    path = _write(".csv", "\n".join(",".join(r) for r in rows).encode())
    try:
        try:
            x, label = read_series(path, column)
        except SeriesError as exc:
            assert str(exc) and "\n" not in str(exc)
            return
        assert x.ndim == 1 and x.dtype == np.float64 and label is not None
        if column is not None:  # what was asked for, by name or by number
            header = next(r for r in rows if r != [""])  # a blank line is no row (csv gives [] for it)
            assert (str(label) == column or label == int(column)
                    or (int(column) < len(header) and header[int(column)] == label))
    finally:
        os.unlink(path)


def test_npy_files_of_every_shape_and_dtype(tmp_path):
    for k, arr in enumerate([np.zeros((0,)), np.array([np.nan, 1.0]), np.ones((3, 4, 5)), np.array(["a", "b"]),
                             np.array([1 + 2j]), np.array([{"a": 1}], dtype=object)]):
        path = tmp_path / f"a{k}.npy"
        np.save(path, arr, allow_pickle=True)
        try:
            load_series(str(path))
        except SeriesError:
            pass  # a one-line error is the right answer; anything else fails the test


mpd_texts = st.one_of(
    st.text(max_size=200),
    st.builds(lambda typ, body: f'<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="{typ}">{body}</MPD>',
              st.sampled_from(["static", "dynamic", "x"]),
              st.lists(st.sampled_from([
                  "<Period>", "</Period>", '<AdaptationSet contentType="video">', "</AdaptationSet>",
                  '<Representation id="v" bandwidth="1">', "</Representation>", "<BaseURL>x/</BaseURL>",
                  '<SegmentTemplate media="$Number$.m4s" duration="2" timescale="1"/>',
                  '<SegmentTemplate media="$Time$.m4s"><SegmentTimeline><S d="0" r="-5"/></SegmentTimeline>'
                  "</SegmentTemplate>", '<SegmentTemplate media="$Bogus$"/>', "<SegmentList/>"]), max_size=12)
              .map("".join)))


@FUZZ
@given(mpd_texts)
def test_dash_manifests(text):
    try:
        manifest = parse_manifest(text, "http://127.0.0.1:1/m.mpd", now=1_000_000.0)
    except DashError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert manifest.tracks and all(t.kind in ("video", "audio") for t in manifest.tracks)


# -- signaling: random messages at a real server ---------------------------------------------------

FUZZ_TOKEN = "test-fuzz-token-0123456789"  # a loopback test server's


@pytest.fixture(scope="module")
def signaling_server():
    from midstream_tui.servers.base import ServerThread
    from midstream_tui.servers.signaling import SignalingServer

    server = SignalingServer("127.0.0.1", 0, token=FUZZ_TOKEN, rate=1000.0, burst=1000.0, max_message=4096)
    thread = ServerThread(server, "fuzz-signaling")
    thread.start()
    yield server
    thread.stop()


signal_messages = st.one_of(
    st.text(max_size=100), st.binary(max_size=100),
    json_values.map(json.dumps),
    st.fixed_dictionaries({"type": st.sampled_from(["offer", "answer", "candidate", "bye", "hello"]) | json_values},
                          optional={"sdp": json_values, "to": json_values, "candidate": json_values}).map(json.dumps),
    st.just("x" * 5000))


@FUZZ
@given(st.lists(signal_messages, max_size=15), st.sampled_from(["room", "r.2", "a" * 64]))
def test_signaling_messages(signaling_server, messages, room):
    async def send() -> None:
        url = f"ws://127.0.0.1:{signaling_server.port}/ws/{room}?token={FUZZ_TOKEN}"
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(url) as ws, session.ws_connect(url) as other:
                for msg in messages:
                    try:
                        await (ws.send_bytes(msg) if isinstance(msg, bytes) else ws.send_str(msg))
                    except aiohttp.ClientConnectionResetError:
                        break  # the server closed this client (too big, say): allowed, and only this one
                await ws.close()
                # the server is still there for everybody else
                await other.send_str(json.dumps({"type": "bye"}))
                reply = await asyncio.wait_for(other.receive(), 5)
                assert reply.type == aiohttp.WSMsgType.TEXT

    asyncio.run(send())


# -- realtime: random server events to the official client --------------------------------------

REALTIME_TYPES = ["session.created", "session.updated", "conversation.item.added", "conversation.item.done",
                  "response.created", "response.output_text.delta", "response.text.delta",
                  "response.output_audio.delta", "response.audio.delta", "response.done", "error", "rate_limits.updated",
                  "x.unknown"]
realtime_events = st.fixed_dictionaries(
    {"type": st.sampled_from(REALTIME_TYPES)},
    optional={"delta": st.one_of(st.text(max_size=20), st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
                                 json_values),
              "response": json_values | st.fixed_dictionaries({"status": st.text(max_size=10), "usage": json_values}),
              "error": json_values, "event_id": st.text(max_size=8)})


@FUZZ
@given(st.lists(realtime_events, max_size=12), st.booleans())
def test_realtime_events(events, then_done):
    served = []

    async def run() -> list[Event]:
        async def realtime(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse(max_msg_size=1 << 20)  # audit: ignore (a loopback test peer: no origin)
            await ws.prepare(request)
            await ws.send_str(json.dumps({"type": "session.created", "session": {}}))
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                if json.loads(msg.data).get("type") == "response.create":
                    served.append(True)
                    for event in events:
                        await ws.send_str(json.dumps(event))
                    if then_done:
                        await ws.send_str(json.dumps({"type": "response.done", "response": {"status": "completed"}}))
                    await ws.close()
            return ws

        app = web.Application(client_max_size=1 << 20)
        app.add_routes([web.get("/v1/realtime", realtime)])
        runner = web.AppRunner(app, shutdown_timeout=0.2)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        try:
            src = open_source(f"openai:realtime?model=m&prompt=hi&base_url=http://127.0.0.1:{port}/v1&timeout=5")
            src._api_key = "sk-local-test-peer"
            out = []
            async for ev in src.events():
                out.append(ev)
            return out
        finally:
            await runner.cleanup()

    got = asyncio.run(asyncio.wait_for(run(), 30))
    assert served  # the official client connected and asked for a response: the events reached it
    assert isinstance(got[0], StreamOpened) and isinstance(got[-1], StreamClosed)
    texts = [e for e in events if e["type"] in ("response.output_text.delta", "response.text.delta")
             and isinstance(e.get("delta"), str) and e["delta"]]
    if texts and texts[0] is events[0]:  # the first event is a text delta: it must arrive as text
        assert any(type(e).__name__ == "TextDelta" for e in got)
    errors = [e for e in got if isinstance(e, StreamError)]
    assert all("\n" not in e.message for e in errors)


def _token_dtw_reference(a, b, window):
    """Plain O(nm) DTW with the documented band (tslearn's sakoe_chiba_mask(radius=window)): cell (i, j) is
    allowed when i - j <= window + max(0, n - m) and j - i <= window + max(0, m - n)."""
    n, m = len(a), len(b)
    big = n + m + 1

    def allowed(i, j):
        return window is None or (i - j <= window + max(0, n - m) and j - i <= window + max(0, m - n))

    acc = [[big] * (m + 1) for _ in range(n + 1)]
    acc[0][0] = 0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            if allowed(i, j):
                acc[i][j] = (a[i - 1] != b[j - 1]) + min(acc[i - 1][j], acc[i][j - 1], acc[i - 1][j - 1])
    return acc[n][m]


@FUZZ
@given(st.lists(st.integers(0, 3), min_size=1, max_size=14), st.lists(st.integers(0, 3), min_size=1, max_size=14),
       st.none() | st.integers(0, 6))
def test_token_dtw_matches_a_plain_dynamic_programme(a, b, window):
    from midstream_tui.analysis.temporal import token_dtw

    assert token_dtw(np.array(a, float), np.array(b, float), window=window) == _token_dtw_reference(a, b, window)
