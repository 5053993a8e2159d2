"""An emulator of the OpenAI API, for offline demos and tests: the real wire protocol, local text.

It is not OpenAI: it is a local stand-in that speaks the same HTTP protocol,
so the official ``openai`` client talks to it unchanged. Supported now:

- ``POST /v1/chat/completions``: streaming (Server-Sent Events: a role chunk,
  content chunks, a chunk with ``finish_reason``, a ``usage`` chunk with
  ``"choices": []`` when ``stream_options.include_usage`` is set, then
  ``data: [DONE]``) and non-streaming responses;
- ``POST /v1/responses``: the Responses API event stream (``event:`` and
  ``data:`` lines with ``sequence_number``: response.created, in_progress,
  output_item.added, content_part.added, output_text.delta ..., output_text.done,
  content_part.done, output_item.done, response.completed with usage; ``error``
  events mid-stream), and non-streaming responses;
- ``GET /v1/models``.

The text comes from the same seeded generator as ``sim:text`` (seeded by the
prompt), paced like a model: a time to first token, then ``rate`` tokens/s.
The scenario is chosen by the model name, ``emu-<scenario>`` (any other model
name, such as ``gpt-4o-mini``, is served as ``normal``, so commands written for
a real server run unchanged; an unknown ``emu-`` scenario is a 404):

  normal     steady prose                 loop       falls into a repetition loop
  stall      frequent long pauses         drift      slows down steadily
  error      an error chunk mid-stream    drop       the connection is cut mid-stream
  malformed  a malformed SSE data line    429        rate limited once (retry-after), then normal
  500        always an internal error     hang       never answers

Every request is logged in ``requests``; a client that closes a stream early
is counted in ``client_disconnects``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import zlib
from dataclasses import dataclass, field

from aiohttp import web

from ..events import TextDelta
from ..sources.simulate import SimTextSource

SCENARIOS = ("normal", "loop", "stall", "drift", "error", "drop", "malformed", "429", "500", "hang")
MIDSTREAM_FAULT_AT = 20  # chunks before an error/drop/malformed fault


@dataclass
class EmulatorStats:
    requests: list[dict] = field(default_factory=list)
    client_disconnects: int = 0
    attempts: dict[str, int] = field(default_factory=dict)


def _error(status: int, message: str, kind: str, headers: dict | None = None) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return web.json_response(body, status=status, headers=headers)


class OpenAIEmulator:
    """The emulator as an aiohttp application; ``start()`` binds it (127.0.0.1 by default)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, rate: float = 50.0,
                 ttft_ms: float = 300.0, max_tokens: int = 300) -> None:
        self.host, self.port = host, port
        self.rate, self.ttft_ms, self.default_max_tokens = rate, ttft_ms, max_tokens
        self.stats = EmulatorStats()
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 20)
        app.add_routes([web.post("/v1/chat/completions", self._chat), web.post("/v1/responses", self._responses),
                        web.get("/v1/models", self._models)])
        return app

    async def start(self) -> str:
        # A short shutdown: a "hang" request must not hold the emulator open for a minute.
        self._runner = web.AppRunner(self.app(), handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # the real port when 0 was asked
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _models(self, request: web.Request) -> web.Response:
        data = [{"id": f"emu-{s}", "object": "model", "created": 0, "owned_by": "midstream-emulator"}
                for s in SCENARIOS]
        return web.json_response({"object": "list", "data": data})

    async def _begin(self, request: web.Request, api: str):
        """Parse and check a request; returns (body, model, scenario, prompt) or an error response."""
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "request body is not valid JSON", "invalid_request_error")
        field_name = "messages" if api == "chat" else "input"
        if not isinstance(body, dict) or not body.get(field_name) or not body.get("model"):
            return _error(400, f"'model' and '{field_name}' are required", "invalid_request_error")
        model = str(body["model"])
        scenario = model.removeprefix("emu-") if model.startswith("emu-") else "normal"
        if scenario not in SCENARIOS:
            return _error(404, f"the model '{model}' does not exist (emulator models: emu-"
                          + ", emu-".join(SCENARIOS) + ")", "invalid_request_error")
        given = body[field_name]
        if isinstance(given, str):
            prompt = given
        elif isinstance(given, list):
            prompt = " ".join(str(m.get("content", "")) if isinstance(m, dict) else str(m) for m in given)
        else:
            return _error(400, f"'{field_name}' must be a string or a list", "invalid_request_error")
        key = f"{api}:{model}:{prompt}"
        attempt = self.stats.attempts[key] = self.stats.attempts.get(key, 0) + 1
        self.stats.requests.append({"api": api, "model": model, "stream": bool(body.get("stream")),
                                    "attempt": attempt, "authorization": "Authorization" in request.headers})
        if scenario == "hang":
            await asyncio.sleep(3600)
        if scenario == "500":
            return _error(500, "emulated internal server error", "server_error")
        if scenario == "429" and attempt == 1:
            return _error(429, "emulated rate limit: retry shortly", "rate_limit_error",
                          headers={"retry-after-ms": "50", "retry-after": "0"})
        return body, model, scenario, prompt

    def _deltas(self, scenario: str, prompt: str, max_tokens: int) -> list[TextDelta]:
        behavior = scenario if scenario in ("loop", "stall", "drift") else "normal"
        source = SimTextSource("emulator", clock=None, rate=self.rate, seed=zlib.crc32(prompt.encode()),
                               behavior=behavior, ttft_ms=self.ttft_ms, requests=1, max_tokens=max_tokens)
        return [e for e in source.schedule(0.0) if isinstance(e, TextDelta)]

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        begun = await self._begin(request, "chat")
        if isinstance(begun, web.StreamResponse):
            return begun
        body, model, scenario, prompt = begun
        max_tokens = int(body.get("max_completion_tokens") or body.get("max_tokens") or self.default_max_tokens)
        deltas = self._deltas(scenario, prompt, max_tokens)
        cid = f"chatcmpl-emu-{len(self.stats.requests)}"
        created = int(time.time())
        finish = "length" if len(deltas) >= max_tokens else "stop"
        if not body.get("stream"):
            await asyncio.sleep(deltas[-1].t if deltas else 0)
            text = "".join(d.text for d in deltas)
            return web.json_response({
                "id": cid, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": finish}],
                "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(deltas),
                          "total_tokens": len(prompt.split()) + len(deltas)}})
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return await self._stream(request, scenario, model, cid, created, deltas, finish, include_usage,
                                  len(prompt.split()))

    async def _stream(self, request: web.Request, scenario: str, model: str, cid: str, created: int,
                      deltas: list[TextDelta], finish: str, include_usage: bool,
                      prompt_tokens: int) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)

        def chunk(delta: dict, finish_reason: str | None = None) -> bytes:
            data = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
            return f"data: {json.dumps(data)}\n\n".encode()

        start = time.monotonic()
        try:
            await resp.write(chunk({"role": "assistant", "content": ""}))
            for i, d in enumerate(deltas):
                delay = d.t - (time.monotonic() - start)
                if delay > 0:
                    await asyncio.sleep(delay)
                if i == MIDSTREAM_FAULT_AT:
                    if scenario == "error":
                        err = {"error": {"message": "emulated server error mid-stream", "type": "server_error"}}
                        await resp.write(f"data: {json.dumps(err)}\n\n".encode())
                        return resp
                    if scenario == "drop":
                        request.transport.close()  # cut the connection: no [DONE], no end of body
                        return resp
                    if scenario == "malformed":
                        await resp.write(b'data: {"id": "chatcmpl-emu", "choices": [\n\n')
                await resp.write(chunk({"content": d.text}))
            await resp.write(chunk({}, finish))
            if include_usage:
                usage = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                         "choices": [], "usage": {"prompt_tokens": prompt_tokens,
                                                  "completion_tokens": len(deltas),
                                                  "total_tokens": prompt_tokens + len(deltas)}}
                await resp.write(f"data: {json.dumps(usage)}\n\n".encode())
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
        except (ConnectionResetError, ConnectionError, asyncio.CancelledError):
            self.stats.client_disconnects += 1
        return resp


    async def _responses(self, request: web.Request) -> web.StreamResponse:
        """The Responses API: typed events (``event:`` + ``data:``) with sequence numbers."""
        begun = await self._begin(request, "responses")
        if isinstance(begun, web.StreamResponse):
            return begun
        body, model, scenario, prompt = begun
        max_tokens = int(body.get("max_output_tokens") or self.default_max_tokens)
        deltas = self._deltas(scenario, prompt, max_tokens)
        n = len(self.stats.requests)
        rid, mid = f"resp_emu_{n}", f"msg_emu_{n}"
        text = "".join(d.text for d in deltas)
        usage = {"input_tokens": len(prompt.split()), "output_tokens": len(deltas),
                 "total_tokens": len(prompt.split()) + len(deltas),
                 "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}

        def response(status: str, with_output: bool) -> dict:
            message = {"id": mid, "type": "message", "status": "completed", "role": "assistant",
                       "content": [{"type": "output_text", "text": text, "annotations": []}]}
            return {"id": rid, "object": "response", "created_at": int(time.time()), "model": model,
                    "status": status, "output": [message] if with_output else [], "parallel_tool_calls": True,
                    "tool_choice": "auto", "tools": [], "usage": usage if with_output else None}

        if not body.get("stream"):
            await asyncio.sleep(deltas[-1].t if deltas else 0)
            return web.json_response(response("completed", True))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        seq = 0

        async def send(kind: str, **payload) -> None:
            nonlocal seq
            data = {"type": kind, "sequence_number": seq, **payload}
            seq += 1
            await resp.write(f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode())

        start = time.monotonic()
        part = {"item_id": mid, "output_index": 0, "content_index": 0}
        try:
            await send("response.created", response=response("in_progress", False))
            await send("response.in_progress", response=response("in_progress", False))
            await send("response.output_item.added", output_index=0,
                       item={"id": mid, "type": "message", "status": "in_progress", "role": "assistant",
                             "content": []})
            await send("response.content_part.added", **part,
                       part={"type": "output_text", "text": "", "annotations": []})
            for i, d in enumerate(deltas):
                delay = d.t - (time.monotonic() - start)
                if delay > 0:
                    await asyncio.sleep(delay)
                if i == MIDSTREAM_FAULT_AT and scenario in ("error", "drop", "malformed"):
                    if scenario == "error":
                        await send("error", code="server_error", message="emulated server error mid-stream",
                                   param=None)
                    elif scenario == "drop":
                        request.transport.close()
                    else:
                        await resp.write(b"event: response.output_text.delta\ndata: {\"type\": \n\n")
                        continue
                    return resp
                await send("response.output_text.delta", **part, delta=d.text, logprobs=[])
            await send("response.output_text.done", **part, text=text, logprobs=[])
            await send("response.content_part.done", **part,
                       part={"type": "output_text", "text": text, "annotations": []})
            await send("response.output_item.done", output_index=0,
                       item=response("completed", True)["output"][0])
            await send("response.completed", response=response("completed", True))
            await resp.write_eof()
        except (ConnectionResetError, ConnectionError, asyncio.CancelledError):
            self.stats.client_disconnects += 1
        return resp


class EmulatorThread:
    """Runs an emulator on its own event loop in a daemon thread (for the demo and the CLI)."""

    def __init__(self, **kwargs) -> None:
        self.emulator = OpenAIEmulator(**kwargs)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="openai-emulator", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.emulator.start())
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
        return self.emulator.base_url

    def stop(self) -> None:
        if self._loop.is_running():
            fut = asyncio.run_coroutine_threadsafe(self.emulator.stop(), self._loop)
            try:
                fut.result(5)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(5)
