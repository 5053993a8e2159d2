"""Recorded sessions (JSONL) replayed, and text piped in on stdin."""

import json
import subprocess
import sys

import pytest

from midstream_tui import Hub, SourceError, VirtualClock, open_sources, run_virtual

CMD = [sys.executable, "-m", "midstream_tui"]


def session(tmp_path, lines):
    path = tmp_path / "session.jsonl"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


def replay(path, duration=30.0, query=""):
    clock = VirtualClock()
    hub = Hub(clock)
    run_virtual(hub, open_sources([f"{path}{query}"], clock), duration)
    return hub


def test_replay_keeps_recorded_timing_and_speed(tmp_path):
    lines = [{"t": 0, "stream": "llm", "type": "request"}]
    lines += [{"t": round(0.5 + 0.05 * i, 3), "stream": "llm", "text": f" w{i}"} for i in range(40)]
    lines += [{"t": 2.5, "stream": "llm", "type": "usage", "completion_tokens": 40},
              {"t": 2.5, "stream": "llm", "type": "request_end"}, {"t": 2.6, "stream": "llm", "type": "close"}]
    path = session(tmp_path, lines)
    m = replay(path).snapshot("llm").metrics
    assert m["ttft_ms"] == pytest.approx(500) and m["itl_p50_ms"] == pytest.approx(50)
    assert m["tokens"] == 40 and m["tokens_reported"] == 40
    fast = replay(path, query="?speed=10").snapshot("llm").metrics
    assert fast["ttft_ms"] == pytest.approx(50) and fast["itl_p50_ms"] == pytest.approx(5)


def test_one_source_per_recorded_stream(tmp_path):
    path = session(tmp_path, [{"t": 0.1, "stream": "a", "text": "x"}, {"t": 0.2, "stream": "b", "text": "y"},
                              {"t": 0.3, "text": "z"}])
    assert sorted(replay(path).streams) == ["a", "b", "session"]  # no stream id: the file's name


def test_bad_lines_become_recorded_errors_and_replay_goes_on(tmp_path):
    path = session(tmp_path, [
        {"t": 0.1, "stream": "llm", "text": "one"},
        "this is not json",
        {"t": 0.2, "stream": "llm", "type": "text"},            # no text
        {"t": "soon", "stream": "llm", "text": "x"},            # bad time
        {"t": 0.3, "stream": "llm", "type": "teleport"},        # unknown type
        {"t": 0.05, "stream": "llm", "text": " two"},           # back in time: kept in order
        {"t": 0.4, "stream": "llm", "text": "x" * (5 << 20)},   # 5 MB in one line
        {"t": 0.5, "stream": "llm", "text": " three", "tokens": 1e300},  # a count no table holds
        {"t": 0.6, "stream": "llm", "type": "choice", "choice": 0, "text": "a"},  # the first is the text
        {"t": 0.6, "stream": "llm", "type": "choice", "choice": "2", "text": "a"},
        {"t": 0.6, "stream": "llm", "type": "choice", "choice": 2, "text": ["a"]},
        {"t": 0.7, "stream": "llm", "type": "choice", "choice": 2, "text": " fine", "ended": True},
    ])
    hub = replay(path)
    snap = hub.snapshot("llm")
    errors = [h.message for _, h in hub.patterns_since(0) if h.kind == "error"]
    assert [e.split(":")[0] for e in errors] == ["line 2", "line 3", "line 4", "line 5", "line 7", "line 8",
                                                 "line 9", "line 10", "line 11"]
    assert "5 MB, more than a session line may hold" in errors[4] and "'tokens' must be a whole number" in errors[5]
    assert "'choice' must be a later choice's index" in errors[6] and "'choice' must be a whole number" in errors[7]
    assert "'text' must be a string" in errors[8]
    assert snap.metrics["tokens"] == 2 and snap.status == "closed"


def test_missing_or_empty_session(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        open_sources([str(tmp_path / "nope.jsonl")])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(SourceError, match="empty session"):
        open_sources([str(empty)])


def test_replay_through_the_cli_live(tmp_path):
    lines = [{"t": 0.1 * i, "stream": "rec", "text": f" t{i}"} for i in range(20)]
    path = session(tmp_path, lines)
    proc = subprocess.run([*CMD, "run", f"{path}?speed=4", "--headless", "--json"], capture_output=True,
                          text=True, timeout=60)
    summary = json.loads(proc.stdout.splitlines()[-1])["summary"]
    assert proc.returncode == 0 and summary["streams"]["rec"]["metrics"]["tokens"] == 20
    assert summary["duration_s"] < 2.0  # 1.9 s of recording at 4x


def test_stdin_pipe():
    proc = subprocess.run([*CMD, "run", "-", "--headless", "--json"], input="hello there\nsecond line here\n",
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    stdin = json.loads(proc.stdout.splitlines()[-1])["summary"]["streams"]["stdin"]
    assert stdin["status"] == "closed" and stdin["metrics"]["tokens"] == 5


def test_stdin_needs_headless():
    proc = subprocess.run([*CMD, "run", "-"], capture_output=True, text=True, timeout=30, input="")
    assert proc.returncode == 2 and "needs --headless" in proc.stderr


async def test_captured_sse_from_the_emulator_replays(tmp_path):
    import aiohttp

    from midstream_tui.servers.emulator import OpenAIEmulator

    emulator = OpenAIEmulator(rate=500.0, ttft_ms=10.0, max_tokens=40)
    await emulator.start()
    try:
        async with aiohttp.ClientSession() as session:
            for api, body in (("chat", {"model": "emu-normal", "stream": True, "stream_options": {"include_usage": True},
                                        "messages": [{"role": "user", "content": "hi"}]}),
                              ("responses", {"model": "emu-normal", "stream": True, "input": "hi"})):
                endpoint = "chat/completions" if api == "chat" else "responses"
                async with session.post(f"{emulator.base_url}/{endpoint}", json=body) as resp:
                    (tmp_path / f"{api}.sse").write_bytes(await resp.read())
    finally:
        await emulator.stop()
    for api in ("chat", "responses"):
        hub = replay(tmp_path / f"{api}.sse", query="?rate=20&ttft=300")
        m = hub.snapshot(api).metrics
        assert m["tokens"] == 40 and m["tokens_reported"] == 40, api
        assert m["ttft_ms"] == pytest.approx(300) and m["itl_p50_ms"] == pytest.approx(50)


def test_sse_with_bad_events_records_errors(tmp_path):
    path = tmp_path / "bad.sse"
    path.write_text('data: {"choices": [{"delta": {"content": "Hi"}}]}\n\n'
                    'data: {not json\n\n'
                    'data: {"error": {"message": "overloaded"}}\n\n'
                    'data: {"choices": [{"delta": {"content": " there"}}]}\n\n'
                    'data: [DONE]\n\n')
    hub = replay(path)
    errors = [h.message for _, h in hub.patterns_since(0) if h.kind == "error"]
    assert errors[0].startswith("line 3: malformed SSE data") and errors[1] == "line 5: overloaded"
    assert hub.snapshot("bad").metrics["tokens"] == 2


def test_deeply_nested_lines_become_recorded_errors_through_the_cli(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    path = session(tmp_path, [
        {"t": 0.1, "stream": "llm", "text": "one"},
        deep,                                                                     # RecursionError in json
        '{"t": 0.2, "stream": "llm", "text": " two", "extra": ' + "[" * 500 + "]" * 500 + "}",  # deep, but decodes
        {"t": 0.3, "stream": "llm", "text": " three"},
    ])
    proc = subprocess.run([*CMD, "run", str(path), "--headless", "--json", "--no-record", "--no-learn"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-800:]
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    summary = lines[-1]["summary"]["streams"]["llm"]
    errors = [p["message"] for line in lines[:-1] for p in line.get("patterns", []) if p["kind"] == "error"]
    assert [e.split(":")[0] for e in errors] == ["line 2", "line 3"] and all("nested" in e for e in errors)
    assert summary["metrics"]["tokens"] == 2 and summary["status"] == "closed"


def test_deeply_nested_sse_data_is_a_recorded_error(tmp_path):
    path = tmp_path / "deep.sse"
    path.write_text('data: {"choices": [{"delta": {"content": "Hi"}}]}\n\n'
                    "data: " + "[" * 100_000 + "]" * 100_000 + "\n\n"
                    'data: {"choices": [{"delta": {"content": " there"}}]}\n\n'
                    "data: [DONE]\n\n")
    hub = replay(path)
    errors = [h.message for _, h in hub.patterns_since(0) if h.kind == "error"]
    assert len(errors) == 1 and errors[0].startswith("line 3: malformed SSE data") and "nested" in errors[0]
    assert hub.snapshot("deep").metrics["tokens"] == 2


def test_reasoning_and_tool_chunks_are_timed_and_counted_as_the_references_define_it(tmp_path):
    """AIPerf, vLLM's benchmark and OpenTelemetry time every chunk of output, reasoning included: TTFT is the first
    (AIPerf TTFO the first that is not reasoning), the gaps run between all of them, and TPOT divides by the server's
    token count (usage, reasoning included) when it sends one — 0 for several tokens in one chunk. An independent
    check against AIPerf 0.13 (2026-12-07) found the stream's own figures measured on the content alone: a
    reasoning answer's TTFT was its TTFO, its reasoning gaps left out, its TPOT divided by chunks, not usage. Exact,
    in virtual time; recorded and replayed again, the same."""
    from midstream_tui.sessions import Recorder, Session

    lines = [{"t": 0, "stream": "llm", "type": "request"},
             {"t": 0.1, "stream": "llm", "type": "chunk", "part": "reasoning"},
             {"t": 0.15, "stream": "llm", "type": "chunk", "part": "reasoning"},
             {"t": 0.3, "stream": "llm", "text": "Hello"}, {"t": 0.32, "stream": "llm", "text": " world"},
             {"t": 0.4, "stream": "llm", "type": "chunk", "part": "tool"},
             {"t": 0.5, "stream": "llm", "type": "usage", "completion_tokens": 11},
             {"t": 0.5, "stream": "llm", "type": "request_end"},
             {"t": 1.0, "stream": "llm", "type": "request"},
             {"t": 1.2, "stream": "llm", "text": " All at once.", "tokens": 3},  # one chunk, three tokens
             {"t": 1.3, "stream": "llm", "type": "usage", "completion_tokens": 3},
             {"t": 1.3, "stream": "llm", "type": "request_end"},
             {"t": 1.5, "stream": "llm", "type": "request"},  # an answer that came whole: no time per token
             {"t": 1.8, "stream": "llm", "text": " Whole."}, {"t": 1.8, "stream": "llm", "type": "usage",
                                                             "completion_tokens": 5},
             {"t": 1.8, "stream": "llm", "type": "request_end", "streamed": False},
             {"t": 2.0, "stream": "llm", "type": "close"}]
    path = session(tmp_path, lines)
    clock = VirtualClock()
    hub = Hub(clock)
    recorder = Recorder(tmp_path / "r.midstream.sqlite", command="test").attach(hub)
    run_virtual(hub, open_sources([str(path)], clock), 5.0)
    recorder.close()
    m = hub.snapshot("llm").metrics
    assert m["ttft_ms"] == pytest.approx(300) and m["ttft_p50_ms"] == pytest.approx(200)  # 100 (reasoning), 200, 300
    assert m["ttfo_ms"] == pytest.approx(300)  # (the first request's: 300 too, its first text)
    assert m["itl_p50_ms"] == pytest.approx(65)  # gaps 50, 150, 20 and 80 ms: reasoning and tool chunks count
    assert m["tpot_ms"] == pytest.approx(15)  # (0.4 - 0.1) / (11 - 1) = 30 ms and 0 / (3 - 1) = 0: their median
    assert m["e2e_p50_s"] == pytest.approx(0.3) and m["tokens"] == 9 and m["tokens_reported"] == 19
    assert hub.snapshot("llm").text_tail == "Hello world\n All at once.\n Whole."  # reasoning and tools are not text
    with Session(tmp_path / "r.midstream.sqlite") as recorded:
        events = list(recorded.text_events())
    assert [e["part"] for e in events if e["type"] == "chunk"] == ["reasoning", "reasoning", "tool"]
    assert [e.get("streamed", True) for e in events if e["type"] == "request_end"] == [True, True, False]
    replayed = tmp_path / "again.jsonl"
    replayed.write_text("".join(json.dumps(e) + "\n" for e in events))
    assert replay(replayed).snapshot("llm").metrics["tpot_ms"] == pytest.approx(15)


def test_usage_is_a_requests_latest_count_and_answers_without_request_marks_add_up(tmp_path):
    """A request's usage counts its output so far (vLLM's continuous usage stats send it with every chunk): its
    latest stands (they were added up). Answers recorded without request marks keep adding theirs (a review of that
    change: two such answers had read as one, the second's count replacing the first's)."""
    marked = [{"t": 0, "stream": "a", "type": "request"}]
    for i in range(1, 4):
        marked += [{"t": i / 10, "stream": "a", "text": f" w{i}"},
                   {"t": i / 10, "stream": "a", "type": "usage", "completion_tokens": i}]
    marked += [{"t": 0.4, "stream": "a", "type": "usage", "completion_tokens": 3},
               {"t": 0.4, "stream": "a", "type": "request_end"}, {"t": 0.5, "stream": "a", "type": "request"},
               {"t": 0.6, "stream": "a", "text": " again"}, {"t": 0.6, "stream": "a", "type": "usage",
                                                             "completion_tokens": 2},
               {"t": 0.7, "stream": "a", "type": "request_end"}]
    unmarked = [{"t": 0.1, "stream": "b", "text": "one"}, {"t": 0.2, "stream": "b", "type": "usage",
                                                           "completion_tokens": 5},
                {"t": 0.3, "stream": "b", "text": " two"}, {"t": 0.4, "stream": "b", "type": "usage",
                                                            "completion_tokens": 7}]
    hub = replay(session(tmp_path, marked + unmarked))
    assert hub.snapshot("a").metrics["tokens_reported"] == 5 and hub.snapshot("b").metrics["tokens_reported"] == 12


def test_a_captured_answer_of_several_choices_replays_its_first_as_text(tmp_path):
    """n=2 captured: the first choice is the text, the other's chunks are timed (they were one interleaved text);
    shapes no API sends are read past, not a failed source (a delta that was a string ended the replay with
    "AttributeError: 'str' object has no attribute 'get'")."""
    path = tmp_path / "two.sse"
    chunks = [{"choices": [{"index": 0, "delta": {"content": "Yes"}}]},
              {"choices": [{"index": 1, "delta": {"content": "No"}}]}, {"choices": [{"index": 0, "delta": "x"}]},
              {"choices": [{"index": 0, "delta": {"content": " indeed"}}], "usage": {"completion_tokens": "many"}},
              {"choices": "none", "response": [1], "usage": {"completion_tokens": 4}}]
    path.write_text("".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n")
    hub = replay(path)
    snap = hub.snapshot("two")
    assert snap.text_tail == "Yes indeed" and snap.metrics["tokens"] == 3 and snap.status == "closed", snap
    assert snap.metrics["tokens_reported"] == 4 and snap.error is None


def test_a_loop_in_a_later_choice_of_a_captured_answer_is_seen(tmp_path):
    """A capture of n=3 whose third answer loops: the loop is a hit naming its choice and the stream's
    ``loop_words`` (what a loop rule judges), while the stream's text stays the first choice's. The second choice,
    whose words are the same but never repeat back to back, is no loop."""
    path = tmp_path / "three.sse"
    chunks = [{"choices": [{"index": 0, "delta": {"content": "Fine"}}]}]
    for i in range(30):
        chunks += [{"choices": [{"index": 1, "delta": {"content": f" step {i}"}}]},
                   {"choices": [{"index": 2, "delta": {"content": " round and"}}]}]
    path.write_text("".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n")
    hub = replay(path)
    snap = hub.snapshot("three")
    assert snap.text_tail == "Fine" and snap.metrics["loop_words"] >= 40 and snap.metrics["loop_choice"] == 2, snap
    loops = [h.message for h in snap.patterns if h.kind == "loop"]
    assert len(loops) == 1 and 'repetition loop "round and"' in loops[0] and "in choice 2" in loops[0], loops


def test_a_loop_in_the_thinking_of_a_captured_answer_is_seen_until_its_text_begins(tmp_path):
    """An Anthropic capture whose thinking loops before its answer: the loop is a hit "in the reasoning" (nothing
    read the thinking), and the answer's text, once begun, ends it."""
    events = [{"type": "message_start", "message": {"id": "m", "type": "message", "role": "assistant", "model": "c",
                                                    "content": [], "usage": {"input_tokens": 5, "output_tokens": 1}}},
              {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}]
    events += [{"type": "content_block_delta", "index": 0,
                "delta": {"type": "thinking_delta", "thinking": " Hmm, wait. Let me recount."}}] * 30
    events += [{"type": "content_block_stop", "index": 0},
               {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
               {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "It is 4."}},
               {"type": "content_block_stop", "index": 1}, {"type": "message_stop"}]
    (tmp_path / "think.sse").write_text(_sse(*events))
    snap = replay(tmp_path / "think.sse").snapshot("think")
    loops = [h.message for h in snap.patterns if h.kind == "loop"]
    assert len(loops) == 1 and '"Hmm, wait. Let me recount." x' in loops[0] and "in the reasoning" in loops[0], loops
    assert snap.text_tail == "It is 4." and snap.metrics["loop_words"] == 0 and snap.metrics["loop_choice"] == 0


def _sse(*events) -> str:
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" if "type" in e else f"data: {json.dumps(e)}\n\n"
                   for e in events)


def test_captured_anthropic_responses_and_completions_streams_replay_as_the_proxy_reads_them(tmp_path):
    """A capture of Anthropic's Messages (curl against the API, or through the proxy) replayed as nothing: no text,
    no chunk, no first token, without a word. Captures are now read as the proxy reads a live answer: text, reasoning
    and tool calls (their name first) in Messages, Responses and legacy Completions, in virtual time."""
    block = lambda i, **b: {"type": "content_block_start", "index": i, "content_block": b}  # noqa: E731
    delta = lambda i, **d: {"type": "content_block_delta", "index": i, "delta": d}  # noqa: E731
    (tmp_path / "claude.sse").write_text(_sse(
        {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "c",
                                              "content": [], "usage": {"input_tokens": 5, "output_tokens": 1}}},
        block(0, type="thinking", thinking=""), delta(0, type="thinking_delta", thinking="The user wants weather."),
        {"type": "content_block_stop", "index": 0}, block(1, type="text", text=""),
        delta(1, type="text_delta", text="Hello"), {"type": "ping"}, delta(1, type="text_delta", text=" there"),
        {"type": "content_block_stop", "index": 1},
        block(2, type="tool_use", id="toolu_1", name="get_weather", input={}),
        delta(2, type="input_json_delta", partial_json='{"city": "Paris"}'), {"type": "content_block_stop", "index": 2},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 11}},
        {"type": "message_stop"}))
    (tmp_path / "resp.sse").write_text(_sse(
        {"type": "response.created", "sequence_number": 0, "response": {"id": "r", "status": "in_progress"}},
        {"type": "response.output_item.added", "sequence_number": 1, "output_index": 0,
         "item": {"id": "fc", "type": "function_call", "call_id": "c", "name": "get_weather", "arguments": ""}},
        {"type": "response.function_call_arguments.delta", "sequence_number": 2, "item_id": "fc", "delta": '{"c": 1}'},
        {"type": "response.completed", "sequence_number": 3,
         "response": {"id": "r", "status": "completed", "usage": {"input_tokens": 2, "output_tokens": 6}}}))
    (tmp_path / "legacy.sse").write_text(_sse(*({"id": "cmpl", "object": "text_completion", "model": "m",
                                                 "choices": [{"index": 0, "text": w, "finish_reason": None}]}
                                                for w in ("Once", " upon", " a time"))) + "data: [DONE]\n\n")
    claude = replay(tmp_path / "claude.sse", query="?rate=20&ttft=300").snapshot("claude")
    m = claude.metrics
    assert claude.text_tail == "Hello there" and m["tokens"] == 5 and m["tokens_reported"] == 11, claude
    assert m["ttft_ms"] == pytest.approx(300) and m["ttfo_ms"] == pytest.approx(350)  # (thinking first)
    assert m["itl_p50_ms"] == pytest.approx(50) and claude.error is None and claude.status == "closed"
    resp = replay(tmp_path / "resp.sse", query="?rate=20&ttft=300").snapshot("resp").metrics
    assert resp["tokens"] == 2 and resp["ttft_ms"] == pytest.approx(300) and resp["tokens_reported"] == 6, resp
    legacy = replay(tmp_path / "legacy.sse").snapshot("legacy")
    assert legacy.text_tail == "Once upon a time" and legacy.metrics["tokens"] == 3
    # (a review: a tool call and the usage in one chunk had the usage first — "≈8 tok" shown for 7 —, and a line
    # separator in an answer's text, U+2028, split its event: "malformed SSE data", the text lost)
    (tmp_path / "last.sse").write_text(_sse(
        {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "a\u2028b"}}]},
        {"id": "c", "object": "chat.completion.chunk", "usage": {"prompt_tokens": 2, "completion_tokens": 7},
         "choices": [{"index": 0, "finish_reason": "tool_calls", "delta": {"tool_calls": [
             {"index": 0, "function": {"name": "f", "arguments": "{}"}}]}}]}).replace("\\u2028", "\u2028"))
    last = replay(tmp_path / "last.sse").snapshot("last")
    assert last.text_tail == "a\u2028b" and last.error is None, last
    assert last.metrics["tokens"] == 2 and last.metrics["tokens_since_usage"] == 0, last.metrics


def test_an_error_the_source_recovered_from_is_not_the_streams_state_once_data_comes_again(tmp_path):
    """A retry that worked (``transient``: "…; reconnecting in 1.0 s") stops being the stream's error when its data
    comes again (it stayed to the stream's end); it stays in the pattern log. Other errors stay the stream's."""
    lines = [{"t": 0.1, "stream": "a", "text": "one"},
             {"t": 0.2, "stream": "a", "type": "error", "message": "lost; reconnecting in 1.0 s", "transient": True},
             {"t": 1.5, "stream": "a", "text": " two"},
             {"t": 0.1, "stream": "b", "text": "one"},
             {"t": 0.2, "stream": "b", "type": "error", "message": "malformed chunk"},
             {"t": 0.3, "stream": "b", "type": "error", "message": "lost; reconnecting in 1.0 s", "transient": True},
             {"t": 1.5, "stream": "b", "text": " two"}]
    hub = replay(session(tmp_path, lines))
    assert hub.snapshot("a").error is None and hub.snapshot("b").error == "malformed chunk"  # (shown again)
    assert any("reconnecting" in h.message for _, h in hub.patterns_since(0))
