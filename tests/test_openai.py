"""The openai:chat source through the official openai client against the local emulator.

Every test starts the emulator on 127.0.0.1 on a free port and stops it; traffic
is real HTTP over loopback (Server-Sent Events, retries, cut connections).
"""

import asyncio
import json
import os
import subprocess
import sys
import time

import aiohttp
import pytest
from liveness import LIVENESS_S, LiveRun

from midstream_tui import Hub, open_source
from midstream_tui.servers.emulator import OpenAIEmulator


@pytest.fixture
async def emulator():
    emu = OpenAIEmulator(rate=200.0, ttft_ms=150.0, max_tokens=80)
    await emu.start()
    yield emu
    await emu.stop()


async def run_chat(emulator, model, *, duration=LIVENESS_S, extra="", api="chat"):
    """Until the stream ends (``duration`` only bounds a hang)."""
    hub = Hub(analysis_interval=0.05)
    src = open_source(f"openai:{api}?model={model}&prompt=hello&base_url={emulator.base_url}{extra}", hub.clock)
    hub.add_source(src)
    await hub.run(duration)
    return hub.snapshot(src.stream_id), hub


def tokens(hub, stream):
    snap = hub.snapshot(stream)
    return 0 if snap is None else snap.metrics.get("tokens", 0)


async def wait_for(condition, timeout=LIVENESS_S):
    """Until ``condition()`` holds: a busy machine only takes longer."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_normal_stream_metrics_and_usage(emulator):
    started = time.monotonic()
    snap, hub = await run_chat(emulator, "emu-normal")
    elapsed_ms = (time.monotonic() - started) * 1000
    m = snap.metrics
    assert snap.status == "closed" and snap.error is None
    assert m["tokens"] == 80 and m["tokens_reported"] == 80  # usage chunk arrived and matches
    # The emulator's schedule for this prompt: its first and last token are sent no earlier than
    # these. Measured times can only be later (loopback, a busy CPU), and never exceed the run.
    scheduled = emulator._deltas("normal", "hello", 80)
    assert 1000 * scheduled[0].t <= m["ttft_ms"] <= 1000 * m["e2e_p50_s"] <= elapsed_ms  # in ms, from the request
    assert m["e2e_p50_s"] >= scheduled[-1].t
    # inter-token gaps (ms): at least half of the 79 gaps are >= their median, and they sum to at
    # most e2e - TTFT, so the median is at most twice the mean gap (TPOT)
    assert 0 <= m["itl_p50_ms"] <= m["itl_p90_ms"] <= m["itl_p99_ms"] and m["itl_p50_ms"] <= 2 * m["tpot_ms"]
    assert m["tpot_ms"] == pytest.approx((1000 * m["e2e_p50_s"] - m["ttft_ms"]) / 79, rel=0.05)
    assert emulator.stats.requests[0]["stream"] is True


async def test_responses_api_stream_metrics_and_usage(emulator):
    snap, _ = await run_chat(emulator, "emu-normal", api="responses")
    m = snap.metrics
    assert snap.status == "closed" and snap.error is None
    assert m["tokens"] == 80 and m["tokens_reported"] == 80
    assert emulator.stats.requests[0]["api"] == "responses"


@pytest.mark.parametrize("model, message", [("emu-error", "emulated server error mid-stream"),
                                            ("emu-drop", ""), ("emu-malformed", "")])
async def test_responses_api_faults_keep_partial_output(emulator, model, message):
    snap, _ = await run_chat(emulator, model, api="responses")
    assert snap.status == "error" and message in snap.error
    assert 15 <= snap.metrics["tokens"] <= 21


async def test_responses_api_rate_limit_retried(emulator):
    snap, _ = await run_chat(emulator, "emu-429", api="responses")
    assert snap.status == "closed" and snap.metrics["tokens"] == 80


async def test_loop_scenario_is_seen_as_a_loop(emulator):
    snap, hub = await run_chat(emulator, "emu-loop", extra="&max_tokens=300")
    assert any(h.kind == "loop" for _, h in hub.patterns_since(0))
    assert snap.metrics["compression"] > 2.4


async def test_rate_limit_is_retried_and_succeeds(emulator):
    snap, _ = await run_chat(emulator, "emu-429")
    assert snap.status == "closed" and snap.metrics["tokens"] == 80
    assert [r["attempt"] for r in emulator.stats.requests] == [1, 2]


async def test_internal_error_after_retries_is_a_recorded_stream_error(emulator):
    snap, _ = await run_chat(emulator, "emu-500", extra="&retries=1")
    assert snap.status == "error" and "InternalServerError" in snap.error
    assert len(emulator.stats.requests) == 2  # the first try and one retry


@pytest.mark.parametrize("model", ["emu-error", "emu-drop", "emu-malformed"])
async def test_mid_stream_faults_keep_the_partial_output(emulator, model):
    snap, hub = await run_chat(emulator, model)
    assert snap.status == "error" and snap.error and "\n" not in snap.error
    assert 15 <= snap.metrics["tokens"] <= 21  # what arrived before the fault is kept
    assert any(h.kind == "error" for _, h in hub.patterns_since(0))
    if model == "emu-error":
        assert "emulated server error mid-stream" in snap.error


async def test_a_server_that_never_answers_times_out(emulator):
    snap, _ = await run_chat(emulator, "emu-hang", extra="&timeout=1&retries=0")
    assert snap.status == "error" and "Timeout" in snap.error


async def test_unknown_model_is_a_clear_error(emulator):
    snap, _ = await run_chat(emulator, "emu-nonsense", extra="&retries=0")
    assert snap.status == "error" and "does not exist" in snap.error


async def test_cancel_closes_the_http_stream_mid_stream(emulator):
    hub = Hub(analysis_interval=0.05)
    src = open_source(f"openai:chat?model=emu-normal&prompt=hi&base_url={emulator.base_url}&max_tokens=2000",
                      hub.clock)
    hub.add_source(src)
    await hub.start()
    await wait_for(lambda: tokens(hub, src.stream_id) > 0)  # mid-stream, however long connecting takes
    assert hub.cancel(src.stream_id)
    await wait_for(lambda: hub.snapshot(src.stream_id).status != "open" and emulator.stats.client_disconnects)
    snap = hub.snapshot(src.stream_id)
    assert snap.status == "cancelled" and 0 < snap.metrics["tokens"] < 2000
    assert emulator.stats.client_disconnects == 1  # the server saw the client go
    await hub.stop()


async def test_emulator_refuses_bad_requests(emulator):
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{emulator.base_url}/chat/completions", data=b"{not json") as r:
            assert r.status == 400 and "not valid JSON" in (await r.json())["error"]["message"]
        async with session.post(f"{emulator.base_url}/chat/completions", json={"model": "emu-normal"}) as r:
            assert r.status == 400
        async with session.get(f"{emulator.base_url}/models") as r:
            assert "emu-loop" in {m["id"] for m in (await r.json())["data"]}


async def test_a_burst_of_300_concurrent_streams_from_one_client_all_succeed(emulator):
    """The emulator is a local test peer: a benchmark or ``count=N`` opens hundreds of connections at once."""
    from openai import AsyncOpenAI

    # no retries: every one of the 300 requests must get through on its first connection
    client = AsyncOpenAI(base_url=emulator.base_url, api_key="emulator", max_retries=0, timeout=LIVENESS_S)

    async def one(n):
        stream = await client.chat.completions.create(
            model="emu-normal", messages=[{"role": "user", "content": f"burst {n}"}], stream=True, max_tokens=8)
        deltas = 0
        async for chunk in stream:
            deltas += bool(chunk.choices and chunk.choices[0].delta.content)
        return deltas

    try:
        results = await asyncio.wait_for(asyncio.gather(*(one(n) for n in range(300)), return_exceptions=True),
                                         LIVENESS_S)
    finally:
        await client.close()
    failed = [r for r in results if isinstance(r, BaseException)]
    assert not failed, f"{len(failed)} of 300 failed, first: {failed[0]!r}; {emulator.connection_stats}"
    assert all(r > 0 for r in results)
    assert emulator.connection_stats.evicted == 0 and len(emulator.stats.requests) == 300


def test_the_key_is_never_printed(tmp_path):
    secret = "sk-test-DO-NOT-PRINT-4f9a1c"
    code = (
        "import asyncio, sys\n"
        "from midstream_tui.servers.emulator import EmulatorThread\n"
        "from midstream_tui.cli import main\n"
        "emu = EmulatorThread(rate=300.0, ttft_ms=50.0, max_tokens=30); base = emu.start()\n"
        "rc = main(['run', f'openai:chat?model=emu-error&prompt=hi&base_url=http://127.0.0.1:9/v1', "
        "f'openai:chat?model=emu-normal&prompt=hi&base_url={base}', '--headless', '--json', '--duration', '600'])\n"
        "assert emu.emulator.stats.requests[0]['authorization']\n"
        "emu.stop(); sys.exit(rc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OPENAI_API_KEY": secret}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert secret not in proc.stdout and secret not in proc.stderr
    summary = json.loads(proc.stdout.splitlines()[-1])["summary"]
    assert summary["streams"]["chat-emu-normal"]["metrics"]["tokens"] == 30
    assert summary["streams"]["chat-emu-error"]["status"] == "error"  # nothing listens on port 9


def test_demo_openai_runs_concurrent_emulated_streams():
    demo = LiveRun("demo", "openai", "--headless", "--json")  # endless: stopped once all was seen
    names = ("chat-1", "responses-1", "chat-loop", "chat-stall")
    demo.wait_for(lambda: demo.latest.get("chat-loop", {}).get("status") == "cancelled"
                  and all(demo.metric(name, "tokens") > 20 for name in names))
    assert demo.stop() == 0, demo.stderr
    assert "emulator (not OpenAI)" in demo.stderr
    assert "Task was destroyed" not in demo.stderr  # (the emulator's answers under way are ended, not dropped)
    streams = demo.summary()["streams"]
    assert set(streams) == {"chat-1", "responses-1", "chat-loop", "chat-stall"}
    assert streams["chat-loop"]["status"] == "cancelled"  # by the built-in rule
    assert all(s["metrics"]["tokens"] > 20 for s in streams.values())


async def test_realtime_text_over_websocket(emulator):
    snap, _ = await run_chat(emulator, "emu-normal", api="realtime")
    assert snap.status == "closed" and snap.error is None
    assert snap.metrics["tokens"] == 80 and snap.metrics["tokens_reported"] == 80
    assert emulator.stats.requests[0]["api"] == "realtime"


async def test_realtime_audio_output_becomes_an_audio_stream(emulator):
    snap, hub = await run_chat(emulator, "emu-normal", api="realtime", extra="&audio=1")
    audio = hub.snapshot(f"{snap.stream}-audio")
    assert snap.metrics["tokens"] == 80  # the transcript
    assert audio.kind == "audio" and audio.status == "closed"
    assert audio.metrics["sample_rate"] == 24_000 and audio.metrics["audio_s"] == pytest.approx(1.6)
    assert hub.source(audio.stream) is hub.source(snap.stream)  # the audio stream is cancelled with its source


@pytest.mark.parametrize("model, message", [("emu-error", "emulated server error mid-stream"), ("emu-drop", "")])
async def test_realtime_faults_keep_partial_output(emulator, model, message):
    snap, _ = await run_chat(emulator, model, api="realtime")
    assert snap.status == "error" and message in snap.error
    assert 15 <= snap.metrics["tokens"] <= 21


async def test_realtime_cancel_sends_response_cancel(emulator):
    hub = Hub(analysis_interval=0.05)
    src = open_source(f"openai:realtime?model=emu-normal&prompt=hi&base_url={emulator.base_url}&max_tokens=5000",
                      hub.clock)
    emulator.default_max_tokens = 2000
    hub.add_source(src)
    await hub.start()
    await wait_for(lambda: tokens(hub, src.stream_id) > 0)  # mid-stream, however long connecting takes
    assert hub.cancel(src.stream_id)
    await wait_for(lambda: hub.snapshot(src.stream_id).status != "open" and emulator.stats.client_disconnects)
    snap = hub.snapshot(src.stream_id)
    assert snap.status == "cancelled" and 0 < snap.metrics["tokens"] < 2000
    assert emulator.stats.client_disconnects == 1  # the emulator stopped the response on response.cancel
    await hub.stop()


async def test_realtime_sends_a_wav_file_into_the_input_buffer(emulator, tmp_path):
    import wave

    import numpy as np

    path = tmp_path / "question.wav"
    with wave.open(str(path), "wb") as w:  # 0.5 s of a 440 Hz tone, 16 kHz stereo
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16_000)
        tone = (np.sin(np.arange(8000) * 2 * np.pi * 440 / 16_000) * 10_000).astype("<i2")
        w.writeframes(np.repeat(tone, 2).tobytes())
    snap, _ = await run_chat(emulator, "emu-normal", api="realtime", extra=f"&input_wav={path}")
    assert snap.status == "closed" and snap.metrics["tokens"] == 80
    assert emulator.stats.audio_samples_in == 12_000  # resampled to 24 kHz mono


def test_realtime_refuses_a_bad_wav(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really")
    with pytest.raises(Exception, match="not a readable WAV"):
        open_source(f"openai:realtime?model=emu-normal&base_url=http://127.0.0.1:9/v1&input_wav={bad}")


def test_count_and_prompt_file_make_concurrent_streams(tmp_path):
    from midstream_tui import open_sources

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("What is a tide?\n\nWhy is the sky blue?\n")
    base = "base_url=http://127.0.0.1:9/v1"
    sources = open_sources([f"openai:chat?model=emu-normal&{base}&count=3",
                            f"openai:responses?model=emu-loop&{base}&prompt_file={prompts}&name=batch"])
    assert [s.stream_id for s in sources] == ["chat-emu-normal-1", "chat-emu-normal-2", "chat-emu-normal-3",
                                              "batch-1", "batch-2"]
    assert sources[4].prompt == "Why is the sky blue?"
    with pytest.raises(Exception, match="count='0'"):
        open_sources([f"openai:chat?model=x&{base}&count=0"])


MADE_UP_LOGIN = "http://user:pwSECRET1@127.0.0.1:99999/v1"  # audit: ignore (made up)


@pytest.mark.parametrize("base_url, said", [("http://[bad", "is not a URL"), ("ftp://host/v1", "http:// or https://"),
                                            (MADE_UP_LOGIN, "is not a URL"),
                                            ("localhost:8000/v1", "http:// or https://")])
def test_a_base_url_that_is_no_http_url_is_one_line(base_url, said):
    """``http://[bad`` in base_url= or OPENAI_BASE_URL ended in a traceback (found by review)."""
    for args, env in [([f"openai:chat?model=x&base_url={base_url}"], {}),
                      (["openai:chat?model=x"], {"OPENAI_BASE_URL": base_url})]:
        done = subprocess.run([sys.executable, "-m", "midstream_tui", "run", *args, "--headless", "--no-record",
                               "--duration", "2"], capture_output=True, text=True, timeout=LIVENESS_S,
                              env={**os.environ, "OPENAI_API_KEY": "sk-" + "x" * 20, **env})
        assert done.returncode == 2 and said in done.stderr and done.stderr.count("\n") == 1, done.stderr
        assert "pwSECRET1" not in done.stderr
