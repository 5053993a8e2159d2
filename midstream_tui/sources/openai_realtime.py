"""``openai:realtime``: the Realtime API over WebSocket through the official ``openai`` client.

    openai:realtime?model=gpt-realtime&prompt=Hello[&audio=1][&input_wav=FILE][&base_url=...][&name=...]

Sends the prompt as a user text item (or, with ``input_wav``, the WAV's audio
into the input buffer, resampled to 24 kHz PCM16) and asks for a response; with ``audio=1``
the response is audio (PCM16, 24 kHz), which becomes a second stream
``<name>-audio`` next to the transcript's text stream. Events are dispatched on
their ``type`` string, with GA names and the beta ones (``response.text.delta``,
``response.audio.delta``, ``response.audio_transcript.delta``). Cancelling
sends ``response.cancel`` and closes the connection.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import numpy as np
import openai

from ..clock import Clock
from ..events import (
    AudioChunk,
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
from .base import SourceError
from .openai_chat import OpenAIChatSource
from .params import one_line, param

TEXT_DELTAS = ("response.output_text.delta", "response.text.delta",
               "response.output_audio_transcript.delta", "response.audio_transcript.delta")
AUDIO_DELTAS = ("response.output_audio.delta", "response.audio.delta")
REALTIME_RATE = 24_000


def read_wav_24k(path: str) -> np.ndarray:
    """A PCM16 WAV file as mono int16 at 24 kHz (the Realtime API's input format)."""
    import wave

    try:
        with wave.open(path, "rb") as w:
            if w.getsampwidth() != 2:
                raise SourceError(f"input_wav={path}: {8 * w.getsampwidth()}-bit audio; expected 16-bit PCM")
            rate, channels = w.getframerate(), w.getnchannels()
            data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    except (OSError, EOFError, wave.Error) as exc:
        raise SourceError(f"input_wav={path}: not a readable WAV file ({exc})") from None
    if data.size == 0:
        raise SourceError(f"input_wav={path}: no audio")
    mono = data.reshape(-1, channels).mean(axis=1)
    if rate != REALTIME_RATE:
        t_out = np.arange(int(mono.size * REALTIME_RATE / rate)) / REALTIME_RATE
        mono = np.interp(t_out, np.arange(mono.size) / rate, mono)
    return np.clip(np.round(mono), -32768, 32767).astype(np.int16)


class OpenAIRealtimeSource(OpenAIChatSource):
    def __init__(self, *args, audio: bool = False, input_pcm: np.ndarray | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.audio = audio
        self.input_pcm = input_pcm
        self._conn = None
        self._audio_open = False

    @classmethod
    def from_params(cls, stream_id: str, uri: str, params: dict[str, str], clock: Clock | None, *,
                    api_key: str | None = None, base_url: str | None = None):
        audio = param(params, "audio", int, 0, lambda v: v in (0, 1), "0 or 1")
        wav = params.pop("input_wav", None)
        src = super().from_params(stream_id, uri, params, clock, api_key=api_key, base_url=base_url)
        src.audio = bool(audio)
        src.input_pcm = read_wav_24k(wav) if wav else None
        return src

    def cancel(self) -> None:
        self._cancelled = True
        conn = self._conn
        if conn is not None:
            async def stop() -> None:
                try:
                    await conn.response.cancel()
                except Exception:  # noqa: BLE001 - the connection may be gone already; audit: ignore
                    pass
            try:
                asyncio.get_running_loop().create_task(stop())
            except RuntimeError:
                pass

    async def events(self) -> AsyncIterator[Event]:
        sid, audio_sid = self.stream_id, f"{self.stream_id}-audio"
        yield StreamOpened(sid, self.clock.now(), kind="text", source=self.uri, identity=self.identity("text"))
        self._audio_open = self.audio
        if self.audio:
            yield StreamOpened(audio_sid, self.clock.now(), kind="audio", source=self.uri,
                               identity=self.identity("audio"))
        client = openai.AsyncOpenAI(api_key=self._api_key, base_url=self.base_url, timeout=self.timeout,
                                    max_retries=self.retries)
        reason = "finished"
        try:
            async with client.realtime.connect(model=self.model) as conn:
                self._conn = conn
                await conn.session.update(session={"type": "realtime",
                                                   "output_modalities": ["audio" if self.audio else "text"]})
                request = 0
                while not self.cancelled and (self.requests == 0 or request < self.requests):
                    request += 1
                    async for event in self._one_response(conn, request, sid, audio_sid):
                        yield event
                        if isinstance(event, StreamError) and event.fatal:  # (a bad audio delta is not: the
                            reason = "error"                                 # session goes on)
                            return
            if self.cancelled:
                reason = "cancelled"
        except Exception as exc:  # noqa: BLE001 - connection failures become a recorded stream error
            reason = "cancelled" if self.cancelled else "error"
            if not self.cancelled:
                yield StreamError(sid, self.clock.now(), one_line(exc), fatal=True)
        finally:
            self._conn = None
            await client.close()
            now = self.clock.now()
            if self._audio_open:
                yield StreamClosed(audio_sid, now, reason=reason)
            yield StreamClosed(sid, now, reason=reason)

    async def _one_response(self, conn, request: int, sid: str, audio_sid: str) -> AsyncIterator[Event]:
        yield RequestStarted(sid, self.clock.now(), request_id=request)
        if self.input_pcm is not None:  # speak instead of typing: the WAV into the input buffer
            step = REALTIME_RATE // 10
            for i in range(0, self.input_pcm.size, step):
                chunk = self.input_pcm[i:i + step].astype("<i2").tobytes()
                await conn.input_audio_buffer.append(audio=base64.b64encode(chunk).decode())
            await conn.input_audio_buffer.commit()
        else:
            await conn.conversation.item.create(item={"type": "message", "role": "user",
                                                      "content": [{"type": "input_text", "text": self.prompt}]})
        await conn.response.create()
        async for event in conn:
            kind = getattr(event, "type", "")
            now = self.clock.now()
            if kind in TEXT_DELTAS and getattr(event, "delta", ""):
                yield TextDelta(sid, now, text=event.delta, tokens=1, request_id=request)
            elif (kind == "response.function_call_arguments.delta" and getattr(event, "delta", "")) or (
                    kind == "response.output_item.added" and getattr(getattr(event, "item", None), "type", "")
                    == "function_call" and getattr(event.item, "name", None)):
                yield OutputChunk(sid, now, "tool", request_id=request)  # (a tool call, its name or its arguments:
                # timed, not read as text)
            elif kind in AUDIO_DELTAS:
                try:
                    pcm = np.frombuffer(base64.b64decode(event.delta, validate=True), dtype="<i2").astype(np.int16)
                except (ValueError, TypeError) as exc:  # (not base64, or an odd number of bytes)
                    yield StreamError(audio_sid if self._audio_open else sid, now, f"bad audio delta: {exc}")
                    continue
                if pcm.size and not self._audio_open:  # audio not asked for (a server that speaks all the same)
                    self._audio_open = True
                    yield StreamOpened(audio_sid, now, kind="audio", source=self.uri, identity=self.identity("audio"))
                if pcm.size:
                    yield AudioChunk(audio_sid, now, samples=pcm, sample_rate=REALTIME_RATE)
            elif kind == "response.done":
                response = getattr(event, "response", None)
                usage = getattr(response, "usage", None)
                if usage is not None:
                    yield Usage(sid, now, prompt_tokens=getattr(usage, "input_tokens", 0) or 0,
                                completion_tokens=getattr(usage, "output_tokens", 0) or 0)
                status = getattr(response, "status", "completed") or "completed"
                yield RequestFinished(sid, now, request_id=request,
                                      reason="cancelled" if status == "cancelled" else "stop")
                return
            elif kind == "error":
                error = getattr(event, "error", None)
                message = getattr(error, "message", None) or "realtime error"
                yield StreamError(sid, now, f"error: {message}"[:300], fatal=True)
                return
