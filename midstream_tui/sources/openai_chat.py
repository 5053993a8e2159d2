"""``openai:chat``: Chat Completions streamed through the official ``openai`` client.

    openai:chat?model=gpt-4o-mini&prompt=Say+hello[&max_tokens=200][&base_url=...]
               [&requests=1][&timeout=60][&retries=2][&name=...]

Works with OpenAI and any OpenAI-compatible server (vLLM, llama.cpp, Ollama, the
local emulator). The key comes from ``OPENAI_API_KEY`` (environment or ``.env``),
never from the URI; the base URL from ``base_url=`` or ``OPENAI_BASE_URL``. A
loopback base URL needs no key. Each chunk with content is one ``TextDelta``
counting one token (approximate: servers may pack several); the server's
``usage`` arrives at the end (``stream_options.include_usage``) as exact counts.
Rate limits and 5xx are retried by the client with backoff (it honours
``retry-after``); what still fails, mid-stream errors, malformed SSE and cut
connections end the stream with a ``StreamError``, the partial output kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import openai

from ..clock import Clock
from ..events import (
    REASONING,
    ChoiceText,
    Event,
    OutputChunk,
    RequestFinished,
    RequestStarted,
    StreamClosed,
    StreamError,
    StreamOpened,
    TextDelta,
    Usage,
)
from ..redact import redact
from .base import Source, SourceError
from .params import identity_of, one_line, param, reject_unknown

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _host_of(base_url: str) -> str:
    """The host of an http(s) base URL; SourceError (one line, the URL redacted) for anything else."""
    try:
        parts = urlsplit(base_url)
        host, _port = parts.hostname, parts.port
    except ValueError as exc:
        raise SourceError(f"openai: the base URL {redact(base_url)!r} (base_url= or OPENAI_BASE_URL) is not a URL: "
                          f"{exc}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise SourceError(f"openai: the base URL {redact(base_url)!r} (base_url= or OPENAI_BASE_URL) is not an "
                          "http:// or https:// URL with a host")
    return host


class OpenAIChatSource(Source):
    kind = "text"

    def __init__(self, stream_id: str, uri: str, clock: Clock | None = None, *, model: str, prompt: str,
                 base_url: str | None = None, api_key: str | None = None, max_tokens: int | None = None,
                 requests: int = 1, timeout: float = 60.0, retries: int = 2) -> None:
        super().__init__(stream_id, uri, clock)
        self.model, self.prompt, self.max_tokens = model, prompt, max_tokens
        self.requests, self.timeout, self.retries = requests, timeout, retries
        self.base_url = base_url
        key = api_key
        host = _host_of(self.base_url) if self.base_url else None
        if not key:
            if host in LOOPBACK:
                key = "no-key-needed-for-a-local-server"
            else:
                raise SourceError("openai: set OPENAI_API_KEY (environment or .env), or base_url= / "
                                  "OPENAI_BASE_URL for a local OpenAI-compatible server")
        self._api_key = key  # never logged, printed or recorded
        self._stream = None
        self._finish = "stop"

    def identity(self, kind: str) -> str:
        return identity_of(self.uri, kind, self.base_url)  # the endpoint actually used: URI, or the settings

    def __repr__(self) -> str:  # no key in reprs
        return f"OpenAIChatSource({self.stream_id!r}, model={self.model!r}, base_url={self.base_url!r})"

    @classmethod
    def from_params(cls, stream_id: str, uri: str, params: dict[str, str], clock: Clock | None, *,
                    api_key: str | None = None, base_url: str | None = None):
        """``api_key`` and ``base_url``: the run's settings (OPENAI_API_KEY, OPENAI_BASE_URL); base_url= wins."""
        if "api_key" in params or "key" in params:
            raise SourceError("openai: never put a key in a source URI; set OPENAI_API_KEY or use .env")
        model = params.pop("model", "") or None
        if model is None:
            raise SourceError(f"{uri}: model= is required (for the local emulator: model=emu-normal)")
        src = cls(
            stream_id, uri, clock, model=model,
            prompt=params.pop("prompt", "Tell me about the sea."),
            base_url=params.pop("base_url", None) or base_url, api_key=api_key,
            max_tokens=param(params, "max_tokens", int, None, lambda v: v > 0, "an integer > 0"),
            requests=param(params, "requests", int, 1, lambda v: v >= 0, "an integer >= 0 (0: endless)"),
            timeout=param(params, "timeout", float, 60.0, lambda v: v > 0, "seconds > 0"),
            retries=param(params, "retries", int, 2, lambda v: 0 <= v <= 10, "0 to 10"),
        )
        reject_unknown(params, uri)
        return src

    def cancel(self) -> None:
        super().cancel()
        stream = self._stream
        if stream is not None:  # close the HTTP stream now rather than at the next chunk
            try:
                asyncio.get_running_loop().create_task(stream.close())
            except RuntimeError:
                pass

    async def events(self) -> AsyncIterator[Event]:
        sid = self.stream_id
        yield StreamOpened(sid, self.clock.now(), kind="text", source=self.uri, identity=self.identity("text"))
        client = openai.AsyncOpenAI(api_key=self._api_key, base_url=self.base_url, timeout=self.timeout,
                                    max_retries=self.retries)
        request = 0
        try:
            while not self.cancelled and (self.requests == 0 or request < self.requests):
                request += 1
                async for event in self._one_request(client, request):
                    yield event
                    if isinstance(event, StreamError) and event.fatal:
                        yield StreamClosed(sid, self.clock.now(), reason="error")
                        return
            yield StreamClosed(sid, self.clock.now(), reason="cancelled" if self.cancelled else "finished")
        finally:
            await client.close()

    async def _one_request(self, client: openai.AsyncOpenAI, request: int) -> AsyncIterator[Event]:
        """One request's lifecycle: start, the server's events, then finish or a recorded error."""
        sid = self.stream_id
        yield RequestStarted(sid, self.clock.now(), request_id=request)
        self._finish = "stop"
        try:
            async for event in self._request_events(client, request):
                yield event
                if isinstance(event, StreamError):
                    return
                if self.cancelled:
                    break
        except Exception as exc:  # noqa: BLE001 - every failure becomes a recorded stream error
            if self.cancelled:  # closing the stream ourselves surfaces as an error: it is a cancel
                yield RequestFinished(sid, self.clock.now(), request_id=request, reason="cancelled")
                return
            yield StreamError(sid, self.clock.now(), one_line(exc), fatal=True)
            return
        finally:
            self._stream = None
        yield RequestFinished(sid, self.clock.now(), request_id=request,
                              reason="cancelled" if self.cancelled else self._finish)

    async def _request_events(self, client: openai.AsyncOpenAI, request: int) -> AsyncIterator[Event]:
        """Chat Completions: text per chunk with content, usage from the final chunk."""
        sid = self.stream_id
        extra = {"max_tokens": self.max_tokens} if self.max_tokens else {}
        stream = await client.chat.completions.create(
            model=self.model, messages=[{"role": "user", "content": self.prompt}], stream=True,
            stream_options={"include_usage": True}, **extra)
        self._stream = stream
        async for chunk in stream:
            now = self.clock.now()
            if chunk.usage is not None:
                yield Usage(sid, now, prompt_tokens=chunk.usage.prompt_tokens or 0,
                            completion_tokens=chunk.usage.completion_tokens or 0)
            for choice in chunk.choices or ():
                delta = choice.delta
                content = (delta.content or getattr(delta, "refusal", None)) if delta else None  # (a refusal: text)
                if content:
                    yield TextDelta(sid, now, text=content, tokens=1, request_id=request)
                elif delta is not None:  # a reasoning model's thinking, a tool call's name or arguments: timed, not
                    # text (the legacy function_call too)
                    functions = [getattr(call, "function", None) for call in delta.tool_calls or ()]
                    functions.append(getattr(delta, "function_call", None))
                    tool = any(getattr(fn, "name", None) or getattr(fn, "arguments", None) for fn in functions)
                    thinking = getattr(delta, "reasoning_content", None) or getattr(delta, "reasoning", None)
                    if tool or (isinstance(thinking, str) and thinking):
                        yield OutputChunk(sid, now, "tool" if tool else "reasoning", request_id=request)
                    if isinstance(thinking, str) and thinking and not choice.index:  # (read for a loop too)
                        yield ChoiceText(sid, now, thinking, REASONING, request_id=request)
                if choice.finish_reason:
                    self._finish = choice.finish_reason


REASONING_EVENTS = ("response.reasoning_text.delta", "response.reasoning_summary_text.delta",
                    "response.reasoning.delta")
"""Responses events carrying a reasoning model's thinking (timed as chunks, not read as text)."""
TOOL_EVENTS = ("response.function_call_arguments.delta", "response.custom_tool_call_input.delta")
"""Responses events carrying a tool call's input (timed as chunks, not read as text)."""


class OpenAIResponsesSource(OpenAIChatSource):
    """``openai:responses``: the Responses API event stream, same parameters as ``openai:chat``.

    Dispatches on each event's ``type`` string (unknown types are skipped, as
    new ones appear): ``response.output_text.delta`` carries text,
    ``response.completed`` the usage, ``error`` and ``response.failed`` end
    the stream with an error, the partial output kept.
    """

    async def _request_events(self, client: openai.AsyncOpenAI, request: int) -> AsyncIterator[Event]:
        sid = self.stream_id
        extra = {"max_output_tokens": self.max_tokens} if self.max_tokens else {}
        stream = await client.responses.create(model=self.model, input=self.prompt, stream=True, **extra)
        self._stream = stream
        async for event in stream:
            now = self.clock.now()
            kind = getattr(event, "type", "")
            if kind in ("response.output_text.delta", "response.refusal.delta") and getattr(event, "delta", ""):
                yield TextDelta(sid, now, text=event.delta, tokens=1, request_id=request)
            elif kind in REASONING_EVENTS + TOOL_EVENTS and getattr(event, "delta", ""):
                part = "tool" if kind in TOOL_EVENTS else "reasoning"
                yield OutputChunk(sid, now, part, request_id=request)
                if part == "reasoning" and isinstance(event.delta, str):  # (read for a loop too)
                    yield ChoiceText(sid, now, event.delta, REASONING, request_id=request)
            elif kind == "response.output_item.added" and getattr(getattr(event, "item", None), "type", "") in (
                    "function_call", "custom_tool_call") and getattr(event.item, "name", None):
                yield OutputChunk(sid, now, "tool", request_id=request)  # (a tool call's name: its first chunk)
            elif kind in ("response.completed", "response.incomplete"):
                usage = getattr(event.response, "usage", None)
                if usage is not None:
                    yield Usage(sid, now, prompt_tokens=usage.input_tokens or 0,
                                completion_tokens=usage.output_tokens or 0)
                self._finish = "stop" if kind == "response.completed" else "length"
            elif kind in ("error", "response.failed"):
                message = getattr(event, "message", None) or str(getattr(event, "response", "") or kind)
                yield StreamError(sid, now, f"{kind}: {message}"[:300], fatal=True)
                return
