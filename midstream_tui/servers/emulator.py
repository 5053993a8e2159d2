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
- ``GET /v1/realtime`` (WebSocket): the Realtime API with GA event names:
  session.created/updated, conversation.item.added/done, response.created,
  response.output_text.delta or response.output_audio.delta (base64 PCM16,
  24 kHz) with response.output_audio_transcript.delta, response.done with
  usage; a response stops at the ``max_output_tokens`` its ``response.create``
  or the session set (status ``incomplete``), and says that limit in its
  ``response.created`` and ``response.done``; response.cancel stops a
  response (status ``cancelled``);
  conversation.item.truncate is answered with conversation.item.truncated
  (and recorded in ``stats.truncations``);
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
import base64
import json
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web

from ..events import TextDelta
from ..sources.simulate import SimTextSource
from .base import LocalServer, ServerThread, same_origin

SCENARIOS = ("normal", "loop", "stall", "drift", "error", "drop", "malformed", "429", "500", "hang")
MIDSTREAM_FAULT_AT = 20  # chunks before an error/drop/malformed fault


@dataclass
class EmulatorStats:
    requests: list[dict] = field(default_factory=list)
    client_disconnects: int = 0
    audio_samples_in: int = 0
    """PCM16 samples received in realtime input audio buffers."""
    attempts: dict[str, int] = field(default_factory=dict)
    truncations: list[dict] = field(default_factory=list)
    """Realtime ``conversation.item.truncate`` events received: item_id, content_index, audio_end_ms."""


def _token_count(value: Any) -> bool:
    """Whether a client's limit on output tokens is a whole number the emulator honours (1 to 4096, as the API)."""
    return value.__class__ is int and 1 <= value <= 4096


def _error(status: int, message: str, kind: str, headers: dict | None = None) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return web.json_response(body, status=status, headers=headers)


class OpenAIEmulator(LocalServer):
    """The emulator as an aiohttp application; ``start()`` binds it (127.0.0.1 by default)."""

    # A local test peer: one client (a benchmark, ``count=N``) legitimately opens hundreds of
    # connections at once, so there is no per-client cap, and the overall cap is far above any burst.
    max_pending_per_client = None
    max_pending = 4096

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, rate: float = 50.0,
                 ttft_ms: float = 300.0, max_tokens: int = 300) -> None:
        super().__init__(host, port)
        self.rate, self.ttft_ms, self.default_max_tokens = rate, ttft_ms, max_tokens
        self.stats = EmulatorStats()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def app(self) -> web.Application:
        app = web.Application(client_max_size=25 << 20)  # the transcription API's upload limit
        app.add_routes([web.post("/v1/chat/completions", self._chat), web.post("/v1/responses", self._responses),
                        web.get("/v1/realtime", self._realtime), web.get("/v1/models", self._models),
                        web.post("/v1/audio/transcriptions", self._transcriptions)])
        return app

    async def start(self) -> str:
        await super().start()
        return self.base_url

    async def _transcriptions(self, request: web.Request) -> web.Response:
        """The transcription API (multipart upload), answered by pocketsphinx: real recognition, not OpenAI's."""
        try:
            form = await request.post()
        except ValueError:
            return _error(400, "expected a multipart/form-data body", "invalid_request_error")
        upload, model = form.get("file"), form.get("model")
        if not isinstance(upload, web.FileField) or not isinstance(model, str) or not model:
            return _error(400, "file and model are required", "invalid_request_error")
        data = upload.file.read()
        self.stats.requests.append({"api": "transcriptions", "model": model, "bytes": len(data)})
        try:
            text, words = await asyncio.to_thread(_recognize_upload, data)
        except ValueError as exc:
            return _error(400, f"could not decode the audio file: {exc}", "invalid_request_error")
        fmt = form.get("response_format", "json")
        if fmt == "text":
            return web.Response(text=text)
        body: dict = {"text": text}
        if fmt == "verbose_json":
            body |= {"task": "transcribe", "language": "english",
                     "duration": round(len(data) / 32_000, 3)}
            if "word" in form.getall("timestamp_granularities[]", []):
                body["words"] = [{"word": w.word, "start": round(w.start, 3), "end": round(w.end, 3)} for w in words]
        return web.json_response(body)

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


    async def _realtime(self, request: web.Request) -> web.WebSocketResponse:
        """The Realtime API over WebSocket (GA event names), text or PCM16 audio output."""
        model = request.query.get("model", "emu-normal")
        scenario = model.removeprefix("emu-") if model.startswith("emu-") else "normal"
        if not same_origin(request):  # a web page elsewhere must not drive a local server
            return _error(403, "origin not allowed", "invalid_request_error")
        ws = web.WebSocketResponse(max_msg_size=1 << 22)
        await ws.prepare(request)
        self.stats.requests.append({"api": "realtime", "model": model, "stream": True, "attempt": 1,
                                    "authorization": "Authorization" in request.headers})
        counter = iter(range(1, 1 << 30))
        session = {"type": "realtime", "object": "realtime.session", "id": "sess_emu", "model": model,
                   "output_modalities": ["text"]}
        prompt_parts: list[str] = []
        audio_in = 0
        audio_sent_ms: dict[str, float] = {}  # assistant item -> milliseconds of its audio sent
        task: asyncio.Task | None = None

        async def send(kind: str, **payload) -> None:
            await ws.send_json({"type": kind, "event_id": f"event_emu_{next(counter)}", **payload})

        async def respond(rid: str, limit: Any) -> None:
            prompt = " ".join(prompt_parts) or "hello"
            # the most output tokens: the response's own, else the session's, as the API takes them ("inf": none)
            limit = limit if _token_count(limit) or limit == "inf" else session.get("max_output_tokens", "inf")
            most = min(limit, self.default_max_tokens) if _token_count(limit) else self.default_max_tokens
            deltas = self._deltas(scenario if scenario in SCENARIOS else "normal", prompt, most)
            audio = "audio" in session.get("output_modalities", [])
            item = {"id": f"item_{rid}", "type": "message", "role": "assistant", "status": "in_progress",
                    "content": []}
            ids = {"response_id": rid, "item_id": item["id"], "output_index": 0, "content_index": 0}
            status, done_text = "completed", []
            try:
                await send("response.created", response={"id": rid, "object": "realtime.response",
                                                         "status": "in_progress", "output": [],
                                                         "max_output_tokens": limit})
                await send("response.output_item.added", response_id=rid, output_index=0, item=item)
                await send("response.content_part.added", **ids,
                           part={"type": "audio" if audio else "text", "text": "", "transcript": ""})
                start = time.monotonic()
                for i, d in enumerate(deltas):
                    delay = d.t - (time.monotonic() - start)
                    if delay > 0:
                        await asyncio.sleep(delay)
                    if i == MIDSTREAM_FAULT_AT and scenario == "error":
                        await send("error", error={"type": "server_error", "code": "server_error",
                                                   "message": "emulated server error mid-stream"})
                        status = "failed"
                        break
                    if i == MIDSTREAM_FAULT_AT and scenario == "drop":
                        request.transport.close()
                        return
                    done_text.append(d.text)
                    if audio:
                        # 24 kHz PCM16: a short tone per word, base64 as the API sends it
                        n = 480
                        pcm = (np.sin(np.arange(n) * 2 * np.pi * (200 + 40 * (i % 10)) / 24000) * 8000)
                        await send("response.output_audio.delta", **ids,
                                   delta=base64.b64encode(pcm.astype("<i2").tobytes()).decode())
                        audio_sent_ms[item["id"]] = audio_sent_ms.get(item["id"], 0.0) + n / 24

                        await send("response.output_audio_transcript.delta", **ids, delta=d.text)
                    else:
                        await send("response.output_text.delta", **ids, delta=d.text)
            except asyncio.CancelledError:
                status = "cancelled"
            text = "".join(done_text)
            if status != "failed":
                kind = "response.output_audio_transcript.done" if audio else "response.output_text.done"
                await send(kind, **ids, **({"transcript": text} if audio else {"text": text}))
            usage = {"total_tokens": len(done_text) + len(prompt_parts), "input_tokens": len(prompt_parts),
                     "output_tokens": len(done_text)}
            if status == "completed" and _token_count(limit) and len(done_text) >= limit:
                status = "incomplete"  # (the API's status when the limit stopped it)
            await send("response.done", response={"id": rid, "object": "realtime.response", "status": status,
                                                  "output": [], "usage": usage, "max_output_tokens": limit})

        try:
            await send("session.created", session=session)
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    event = json.loads(msg.data)
                    kind = event["type"]
                except (ValueError, KeyError, TypeError):
                    await send("error", error={"type": "invalid_request_error", "message": "malformed event"})
                    continue
                if kind == "session.update":
                    session.update({k: v for k, v in (event.get("session") or {}).items() if k != "type"})
                    await send("session.updated", session=session)
                elif kind == "conversation.item.create":
                    item = event.get("item") or {}
                    for part in item.get("content") or []:
                        if isinstance(part, dict) and part.get("text"):
                            prompt_parts.append(str(part["text"]))
                    item = {**item, "id": item.get("id") or f"item_user_{next(counter)}", "status": "completed"}
                    await send("conversation.item.added", item=item, previous_item_id=None)
                    await send("conversation.item.done", item=item, previous_item_id=None)
                elif kind == "input_audio_buffer.append":
                    received = len(base64.b64decode(event.get("audio", ""), validate=False))
                    audio_in += received
                    self.stats.audio_samples_in += received // 2
                elif kind == "input_audio_buffer.commit":
                    prompt_parts.append(f"[{audio_in // 2} audio samples]")
                    await send("input_audio_buffer.committed", item_id=f"item_audio_{next(counter)}",
                               previous_item_id=None)
                elif kind == "response.create":
                    if task is None or task.done():
                        asked = event.get("response") if isinstance(event.get("response"), dict) else {}
                        task = asyncio.ensure_future(respond(f"resp_emu_{next(counter)}",
                                                             asked.get("max_output_tokens")))
                elif kind == "conversation.item.truncate":
                    cut = {k: event.get(k) for k in ("item_id", "content_index", "audio_end_ms")}
                    whole = [isinstance(cut[k], int) and not isinstance(cut[k], bool) and cut[k] >= 0
                             for k in ("content_index", "audio_end_ms")]
                    if not all(whole) or cut["item_id"] not in audio_sent_ms:
                        await send("error", error={"type": "invalid_request_error", "message":
                                                   "truncate needs an assistant audio item_id, content_index "
                                                   "and audio_end_ms >= 0"})
                        continue
                    if cut["audio_end_ms"] > audio_sent_ms[cut["item_id"]]:  # as the API: not past the audio
                        await send("error", error={"type": "invalid_request_error", "message":
                                                   "audio_end_ms is past the end of the item's audio"})
                        continue
                    self.stats.truncations.append(cut)
                    await send("conversation.item.truncated", **cut)
                elif kind == "response.cancel":
                    if task is not None and not task.done():
                        task.cancel()
                        self.stats.client_disconnects += 1  # counted as a stream stopped by the client
                else:
                    await send("error", error={"type": "invalid_request_error",
                                               "message": f"unknown event type {kind!r}"})
        finally:
            if task is not None and not task.done():
                task.cancel()
        return ws


def _recognize_upload(data: bytes):
    """Decode an uploaded audio file (any format FFmpeg reads), resample to 16 kHz mono, recognize."""
    import io

    import av

    from ..perception.speech import RATE, recognize_wav

    try:
        with av.open(io.BytesIO(data)) as container:
            if not container.streams.audio:
                raise ValueError("no audio stream")
            resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
            pcm = b"".join(bytes(f.planes[0])[: f.samples * 2]
                           for frame in container.decode(audio=0) for f in resampler.resample(frame))
    except av.FFmpegError as exc:
        raise ValueError(str(exc).splitlines()[0][:200]) from None
    return recognize_wav(pcm)


class EmulatorThread(ServerThread):
    """Runs an emulator on its own event loop in a daemon thread (for the demo and the CLI)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(OpenAIEmulator(**kwargs), name="openai-emulator")
        self.emulator = self.server

    def start(self) -> str:
        super().start()
        return self.emulator.base_url
