"""What the LLM APIs' answers say, read from a copy of the bytes the client receives, and how each ends a
stream that was stopped.

One ``Reader`` per request reads either server-sent events (streamed) or one JSON body (not streamed) and
turns them into ``Part``s: content text, reasoning, tool-call arguments, usage, the finish reason, errors.
Reasoning and tool arguments are kept apart from content. ``cut_ending`` is what the client is sent instead of
the rest when a rule cuts the stream, in its protocol's own words, so its SDK ends cleanly (or, ``mode="error"``,
raises the error the protocol documents for a stream that failed).
"""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ..jsonsafe import MAX_DEPTH, loads
from .sse import SSEParser

APIS = ("chat", "completions", "responses", "messages")
"""OpenAI Chat Completions, legacy Completions, Responses; Anthropic Messages."""


class Part(NamedTuple):  # (a tuple: made for every chunk of every answer read, at a third of a dataclass's cost)
    kind: str
    """``text`` (content), ``reasoning``, ``tool`` (call arguments), ``choice`` (the output of a Chat Completions
    choice after the first, when a request asked for several: not the stream's text), ``ended`` (a choice of a
    request for several ended: ``choice`` says which, 0 the first), ``usage``, ``finish``,
    ``error``, ``chunk`` (an event that carries the answer: the unit of time-to-first-chunk and inter-chunk gaps)."""
    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    fatal: bool = False
    """An error the API itself sent (the answer ends with it), not bytes that could not be read."""
    choice: int = 0
    """A ``choice`` part that is a later choice's content (its text, or its refusal): that choice's index, so that
    its words are read for a repetition loop apart from the stream's; 0 for a later choice's reasoning or tool
    call (counted and timed only)."""


_CHUNK = Part("chunk")

OUTPUT_PART = {"reasoning": "reasoning", "tool": "tool", "choice": "text"}
"""The ``OutputChunk`` part of a chunk that carries no text of the stream's own: its reasoning, a tool call, a
later choice's output (output, not the stream's text)."""


def output_part(parts: list[Part], i: int) -> str:
    """The ``OutputChunk`` part of the chunk whose first output is ``parts[i]`` (reasoning, a tool call or a later
    choice's: one timed unit a chunk, as AIPerf counts its responses): a chunk of reasoning and of a tool call or a
    later choice's output is output."""
    kind = OUTPUT_PART[parts[i].kind]
    for later in parts[i + 1:]:
        if later.kind == "chunk" or kind != "reasoning":
            break
        if later.kind in ("tool", "choice"):
            kind = OUTPUT_PART[later.kind]
    return kind


@dataclass
class ReadState:
    """What the reader learned of the answer so far (for the cut ending and the metrics)."""

    id: str = ""
    model: str = ""
    created: int = 0
    response: dict | None = None  # Responses: the response object from response.created
    sequence: int = 0  # Responses: the last sequence_number
    open_block: int | None = None  # Messages: the content block under way
    output_tokens: int = 0
    deltas: int = 0
    """Messages: the ``content_block_delta`` events read so far, each at least one output token: what a cut's ending
    reports as the output while the server has not said (its ``message_start`` usage says 1 or so)."""
    finished: str = ""
    choices: set[int] = field(default_factory=lambda: {0})
    """Chat Completions: the choices the request asked for (``n``) and any other seen, and those ended: the
    answer has finished when every one of them has (or at ``[DONE]``)."""
    ended: set[int] = field(default_factory=set)
    choice_tokens: dict[int, int] = field(default_factory=dict)
    """Chat Completions, several choices: each one's output tokens so far, as a server's usage per chunk said."""
    extra: dict[str, Any] = field(default_factory=dict)


def _obj(data: str) -> dict | None:
    try:
        value = loads(data)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _dict(obj: dict, key: str) -> dict:
    """``obj[key]`` when it is an object, else an empty one (untrusted JSON)."""
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def _block_text(blocks: Any, kind: str) -> str:
    """The text of the content blocks of ``kind`` in a list of them (untrusted JSON)."""
    key = "refusal" if kind == "refusal" else "text"  # (a refusal's words are under its own key)
    return "".join(b[key] for b in (blocks if isinstance(blocks, list) else [])
                   if isinstance(b, dict) and b.get("type") == kind and isinstance(b.get(key), str))


def _int(v: Any) -> int:
    """A count from untrusted JSON: a finite number >= 0 (rounded down), else 0."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0 <= v < 1e15):
        return 0
    return int(v)


def _delta_parts(delta: dict, into: list[Part], own: bool, index: Any = 0) -> None:
    """The output in a Chat Completions delta (or a whole answer's message), untrusted JSON: its content (or the
    refusal the model gave instead: the answer's text too), its reasoning, its tool calls (``own``: the first
    choice's, each of its kind; else all ``choice``, the content's with the choice's ``index``)."""
    for key in ("content", "refusal"):
        text = delta.get(key)
        if text and text.__class__ is str:
            into.append(Part("text", text) if own else Part("choice", text, choice=_later(index)))
    for key in ("reasoning_content", "reasoning"):
        text = delta.get(key)
        if text and text.__class__ is str:
            into.append(Part("reasoning" if own else "choice", text))
    calls = delta.get("tool_calls")
    if calls.__class__ is list:
        for call in calls:
            if call.__class__ is dict:
                into += _tool_parts(call.get("function"), own)
    legacy = delta.get("function_call")
    if legacy is not None:
        into += _tool_parts(legacy, own)


def _named_call(item: Any, *keys: str) -> str:
    """The name a tool call in an item or content block starts with, and what of its input the block already holds
    (``keys``), untrusted JSON: a Responses ``function_call``/``custom_tool_call`` item, a Messages ``tool_use``/
    ``server_tool_use`` block (their name is output the model generated, as a Chat Completions tool call's is)."""
    if item.__class__ is not dict or item.get("type") not in TOOL_ITEMS:
        return ""
    text = item.get("name") if item.get("name").__class__ is str else ""
    for key in keys:
        value = item.get(key)
        if value.__class__ is str:
            text += value
        elif isinstance(value, (dict, list)) and value:  # (a whole answer's tool input: its JSON)
            text += json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text


TOOL_ITEMS = ("function_call", "custom_tool_call", "tool_use", "server_tool_use")


def _reasoning_text(item: Any) -> str:
    """A whole answer's reasoning: a Responses ``reasoning`` item's summary and content texts, a Messages
    ``thinking`` block's (untrusted JSON)."""
    if item.__class__ is not dict:
        return ""
    if item.get("type") == "thinking":
        return item["thinking"] if item.get("thinking").__class__ is str else ""
    if item.get("type") != "reasoning":
        return ""
    return "".join(_block_text(item.get(key), kind) for key, kind in (("summary", "summary_text"),
                                                                      ("content", "reasoning_text")))


MESSAGES_EVENTS = frozenset(("message_start", "content_block_start", "content_block_delta", "content_block_stop",
                             "message_delta", "message_stop", "ping"))


def api_of(kind: str, obj: dict) -> str:
    """The API an event of a captured stream belongs to, by its shape (``kind``: its ``type``, else its SSE name)."""
    if kind.startswith("response."):
        return "responses"
    if kind in MESSAGES_EVENTS:
        return "messages"
    choices = obj.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    if obj.get("object") == "text_completion" or (isinstance(first, dict) and "text" in first and "delta" not in first):
        return "completions"
    return "chat"


def _tool_parts(fn: Any, own: bool = True) -> list[Part]:
    """A Chat Completions tool call's function (or the legacy ``function_call``), untrusted JSON: its name and its
    arguments, each output the model generated (a chunk with only the name is a chunk, as AIPerf counts it)."""
    if fn.__class__ is not dict:
        return []
    return [Part("tool" if own else "choice", text) for text in (fn.get("name"), fn.get("arguments"))
            if text and text.__class__ is str]


def _later(index: Any) -> int:
    """A later choice's index as the server gave it (untrusted JSON), if it is one a reader follows; else 0."""
    return index if index.__class__ is int and 0 < index < MAX_CHOICES else 0


_SEQUENCE = re.compile(r'"sequence_number"\s*:\s*(\d{1,15})')
MAX_CHOICES = 128
"""The most answers a Chat Completions request asks for (OpenAI's limit on ``n``): the choices a reader keeps
track of (one of a higher index is read as output, and does not hold the answer's end). The ``lite`` reader of
a request for several decodes every chunk with an ``"index"`` that is not 0 (a later choice's, or a later tool
call's), to know every choice the answer has before it calls it finished."""
_SEQUENCE_BYTES = re.compile(rb'"sequence_number"\s*:\s*(\d{1,15})')
BULK_EVENTS = {"responses": ("response.output_text.delta", "response.text.delta", "response.refusal.delta",
                             "response.reasoning_text.delta", "response.reasoning_summary_text.delta",
                             "response.reasoning.delta", "response.function_call_arguments.delta",
                             "response.custom_tool_call_input.delta"),
               "messages": ("content_block_delta",)}
"""The events that carry an answer's text, per API: what a ``lite`` reader skips (they say nothing its ending
needs)."""


class Reader:
    """Reads one answer of ``api``; ``streamed``: server-sent events, else one JSON body.

    ``lite``: only what the protocol's ending for a cut needs (``state``: the answer's id, model, the Responses
    sequence number, the Messages block under way, whether it has finished) and where its events end: the
    events that only carry text are framed but not decoded (Chat Completions chunks with a ``null`` finish reason,
    the ``BULK_EVENTS``), so that the gateway's relay spends next to nothing per chunk; the analysis reads its own
    copy (``feed`` then returns no parts)."""

    MAX_BODY = 16 << 20  # a non-streamed body kept for reading (the client gets all of it regardless)

    def __init__(self, api: str, streamed: bool, lite: bool = False, choices: int = 1) -> None:
        if api not in APIS:
            raise ValueError(f"unknown API {api!r}")
        self.api, self.streamed, self.lite = api, streamed, lite
        self._bulk = BULK_EVENTS.get(api, ())
        self._bulk_names = frozenset(name.encode() for name in self._bulk)
        self.sse = SSEParser()
        self._chunks = streamed and api in ("chat", "completions")
        self.state = ReadState(choices=set(range(max(1, min(choices, MAX_CHOICES)))))
        self._many = choices > 1
        self._body = bytearray()
        self.body_truncated = False

    @property
    def at_boundary(self) -> bool:
        return self.sse.at_boundary

    @property
    def cut_safe(self) -> bool:
        """Where the answer can be ended with an event of the proxy's own (``SSEParser.cut_safe``)."""
        return self.sse.cut_safe

    def feed(self, chunk: bytes) -> list[Part]:
        if not self.streamed:
            if len(self._body) + len(chunk) > self.MAX_BODY:
                self.body_truncated = True
            else:
                self._body += chunk
            return []
        if self._chunks and not self.lite:
            whole = self._whole_events(chunk)
            if whole is not None:
                return whole
        parts: list[Part] = []
        if self.lite:
            if self._quick(chunk):
                return parts
            for ev in self.sse.feed(chunk):
                if not self._skippable(ev.name, ev.data):
                    self._event(ev.name, ev.data)
            return parts
        for ev in self.sse.feed(chunk):
            parts.extend(self._event(ev.name, ev.data))
        return parts

    def _whole_events(self, chunk: bytes) -> list[Part] | None:
        """The parts of a chunk of whole ``data:`` lines, after whole events (a Chat Completions answer's chunks,
        nearly always): read as the parser would, without it. None: not such a chunk (the parser reads it)."""
        if (not chunk.endswith(b"\n\n") or chunk[:6] != b"data: " or b"\r" in chunk or not self.sse.at_boundary
                or len(chunk) > self.sse.max_line):  # (a line longer than that is dropped by the parser, counted)
            return None
        events = chunk[6:-2].split(b"\n\ndata: ")
        if any(b"\n" in data for data in events):  # (more lines to an event, comments, other fields)
            return None
        self.sse.passed_start()
        parts: list[Part] = []
        for data in events:
            if data == b"[DONE]":
                self._done()
                continue
            obj = None
            if data.count(b"[") + data.count(b"{") <= MAX_DEPTH:  # (deeper: jsonsafe's own check, below)
                try:
                    obj = json.loads(data.decode())
                except ValueError:  # (bytes that are not UTF-8 are read as the parser decodes them)
                    pass
            if obj.__class__ is dict:
                parts += self._chat_chunk(obj)
            else:
                parts += self._event("message", data.decode("utf-8", "replace"))
        return parts

    def _quick(self, chunk: bytes) -> bool:
        """A chunk of whole events, after whole events, none of which a ``lite`` reader needs to decode: its
        state is then as the parser would leave it, without parsing (the common case, by far)."""
        if not chunk.endswith(b"\n\n") or b"\r" in chunk or not self.sse.at_boundary:
            return False
        if self.api in ("chat", "completions"):
            n = chunk.count(b'"finish_reason"')
            quick = (bool(self.state.id) and n > 0
                     and n == chunk.count(b'"finish_reason":null') + chunk.count(b'"finish_reason": null')
                     and (not self._many or chunk.count(b'"index"')
                          == chunk.count(b'"index":0') + chunk.count(b'"index": 0')))
            if quick:
                self.sse.passed_start()
            return quick
        events = chunk[:-2].split(b"\n\n")
        for event in events:
            line, _, _ = event.partition(b"\n")
            if line[:7] != b"event: " or line[7:] not in self._bulk_names:
                return False
        self.sse.passed_start()
        if self.api == "messages":
            self.state.deltas += len(events)
        if self.api == "responses":
            numbers = _SEQUENCE_BYTES.findall(chunk)
            if numbers:
                self.state.sequence = max(self.state.sequence, *map(int, numbers))
        return True

    def _skippable(self, name: str, data: str) -> bool:
        """An event a ``lite`` reader need not decode: it only carries text (the Responses sequence number is
        still taken from it)."""
        if self.api in ("chat", "completions"):  # (one choice, not the last: OpenAI, vLLM, llama.cpp, Ollama)
            return (bool(self.state.id) and ('"finish_reason":null' in data or '"finish_reason": null' in data)
                    and data.count('"finish_reason"') == 1
                    and (not self._many or data.count('"index"') == data.count('"index":0') + data.count('"index": 0')))
        if name not in self._bulk:
            return False
        if self.api == "messages":
            self.state.deltas += 1
        if self.api == "responses":
            found = _SEQUENCE.search(data)
            if found is not None:
                self.state.sequence = max(self.state.sequence, int(found.group(1)))
        return True

    def end(self) -> list[Part]:
        """The body is complete (a non-streamed answer is read now)."""
        if self.streamed:
            return []
        if self.body_truncated:
            return [Part("error", f"answer body over {self.MAX_BODY >> 20} MiB: not read")]
        obj = _obj(self._body.decode("utf-8", "replace"))
        if obj is None:
            return [Part("error", "answer is not a JSON object")] if self._body else []
        return self._whole(obj)

    def read(self, kind: str, obj: dict) -> list[Part]:
        """The parts of one event already decoded (``kind``: its ``type``, else its SSE name): a captured stream
        read again (``open_sse``) with the same definitions as a live one."""
        if self.api in ("chat", "completions"):
            return self._chat_chunk(obj)
        return self._responses_event(kind, obj) if self.api == "responses" else self._messages_event(kind, obj)

    # -- streamed ---------------------------------------------------------------------------------

    def _event(self, name: str, data: str) -> list[Part]:
        if self.api in ("chat", "completions"):
            if data.strip() == "[DONE]":
                self._done()
                return []
            obj = _obj(data)
            if obj is None:
                return [Part("error", f"malformed chunk: {data[:80]!r}")]
            return self._chat_chunk(obj)
        obj = _obj(data)
        if obj is None:
            return [Part("error", f"malformed {name} event: {data[:80]!r}")]
        kind = str(obj.get("type") or name)
        return self._responses_event(kind, obj) if self.api == "responses" else self._messages_event(kind, obj)

    def _done(self) -> None:
        """``[DONE]``: the answer has ended, whatever its choices said (one may never have said a finish reason)."""
        self.state.finished = self.state.finished or self.state.extra.get("finish") or "stop"

    def _chat_chunk(self, obj: dict) -> list[Part]:
        st = self.state
        get = obj.get
        error = get("error")
        if error.__class__ is dict:
            return [Part("error", str(error.get("message") or error)[:200], fatal=True)]
        value = get("id")
        if value:
            st.id = value if value.__class__ is str else str(value)
        value = get("model")
        if value:
            st.model = value if value.__class__ is str else str(value)
        value = get("created")
        if value is not None:
            value = value if value.__class__ is int and 0 < value < 10 ** 15 else _int(value)
            if value:
                st.created = value
        parts: list[Part] = []  # the first choice's output (the stream's text, reasoning, tool calls), then
        others: list[Part] | None = None  # the output of later choices (a request for several: ``n``), then its finish
        finish = ""
        ended = False
        ends: list[Part] | None = None  # the choices that ended, in a request for several
        choices = get("choices")
        for choice in choices if choices.__class__ is list else ():
            if choice.__class__ is not dict:
                continue
            index = choice.get("index")
            own = index is None or (index == 0 and index.__class__ is int)  # (no index: the first; one that is not a
            # number: a later choice)
            into = parts if own else (others := others if others is not None else [])
            if self.api == "completions":
                text = choice.get("text")
                if text and text.__class__ is str:
                    into.append(Part("text", text) if own else Part("choice", text, choice=_later(index)))
            else:
                delta = choice.get("delta")
                if delta.__class__ is dict:
                    _delta_parts(delta, into, own, index)
            reason = choice.get("finish_reason")
            if own:
                if reason:  # (the request's finish reason is its first choice's)
                    finish = str(reason)
                    st.ended.add(0)
                    ended = True
                    if self._many or len(st.choices) > 1:  # (a request for several, or a capture of one)
                        (ends := ends if ends is not None else []).append(Part("ended", choice=0))
            elif index.__class__ is int and 0 < index < MAX_CHOICES:
                if reason:
                    st.ended.add(index)
                    ended = True
                    (ends := ends if ends is not None else []).append(Part("ended", choice=index))
                else:
                    st.choices.add(index)
        if others:
            parts += others
        if parts:
            parts.insert(0, _CHUNK)
        if ends:  # (after the chunk's output; a chunk that only ends choices is no chunk of output)
            parts += ends
        if finish:
            st.extra["finish"] = finish
            parts.append(Part("finish", finish))
        if ended and st.ended >= st.choices:  # every choice asked for or seen has ended (computed once a chunk)
            st.finished = st.extra.get("finish") or "stop"
        usage = get("usage")
        if usage.__class__ is dict:
            st.output_tokens = out = _int(usage.get("completion_tokens"))
            if choices.__class__ is list and len(choices) == 1 and len(st.choices) > 1:
                # a chunk of one choice of several with the usage so far: vLLM's continuous usage gives that
                # choice's own count (its final usage, without choices, the request's): the request's is the sum
                index = choices[0].get("index") if choices[0].__class__ is dict else None
                if index.__class__ is int and 0 <= index < MAX_CHOICES:
                    st.choice_tokens[index] = out
                    st.output_tokens = sum(st.choice_tokens.values())
            parts.append(Part("usage", prompt_tokens=_int(usage.get("prompt_tokens")),
                              completion_tokens=st.output_tokens))
        return parts

    def _responses_event(self, kind: str, obj: dict) -> list[Part]:
        st = self.state
        st.sequence = max(st.sequence, _int(obj.get("sequence_number")))
        delta = obj.get("delta") if isinstance(obj.get("delta"), str) else ""
        if kind == "response.created" and isinstance(obj.get("response"), dict):
            st.response = obj["response"]
            st.id, st.model = str(st.response.get("id", "")), str(st.response.get("model", ""))
            return []
        if kind in ("response.output_text.delta", "response.text.delta", "response.refusal.delta") and delta:
            return [Part("chunk"), Part("text", delta)]
        if kind in ("response.reasoning_text.delta", "response.reasoning_summary_text.delta", "response.reasoning.delta") and delta:
            return [Part("chunk"), Part("reasoning", delta)]
        if kind in ("response.function_call_arguments.delta", "response.custom_tool_call_input.delta") and delta:
            return [Part("chunk"), Part("tool", delta)]
        if kind == "response.output_item.added":  # a tool call's name: its first chunk of output
            name = _named_call(obj.get("item"))
            return [Part("chunk"), Part("tool", name)] if name else []
        if kind in ("response.completed", "response.incomplete", "response.failed"):
            resp = _dict(obj, "response")
            parts = []
            usage = resp.get("usage")
            if isinstance(usage, dict):
                st.output_tokens = _int(usage.get("output_tokens"))
                parts.append(Part("usage", prompt_tokens=_int(usage.get("input_tokens")),
                                  completion_tokens=st.output_tokens))
            st.finished = kind.rpartition(".")[2]
            if kind == "response.failed":
                err = _dict(resp, "error")
                parts.append(Part("error", str(err.get("message") or "response failed")[:200], fatal=True))
            return parts + [Part("finish", st.finished)]
        if kind == "error":
            return [Part("error", str(obj.get("message") or obj.get("error") or "error event")[:200], fatal=True)]
        return []

    def _messages_event(self, kind: str, obj: dict) -> list[Part]:
        st = self.state
        if kind == "message_start" and isinstance(obj.get("message"), dict):
            msg = obj["message"]
            st.id, st.model = str(msg.get("id", "")), str(msg.get("model", ""))
            usage = _dict(msg, "usage")
            st.extra["input_tokens"] = _int(usage.get("input_tokens"))
            return []
        if kind == "content_block_start":
            st.open_block = _int(obj.get("index"))
            name = _named_call(obj.get("content_block"))  # a tool call's name: its first chunk of output
            return [Part("chunk"), Part("tool", name)] if name else []
        if kind == "content_block_stop":
            st.open_block = None
            return []
        if kind == "content_block_delta":
            st.deltas += 1
        if kind == "content_block_delta" and isinstance(obj.get("delta"), dict):
            d = obj["delta"]
            dtype = d.get("type")
            if dtype == "text_delta" and isinstance(d.get("text"), str) and d["text"]:
                return [Part("chunk"), Part("text", d["text"])]
            if dtype == "thinking_delta" and isinstance(d.get("thinking"), str) and d["thinking"]:
                return [Part("chunk"), Part("reasoning", d["thinking"])]
            if dtype == "input_json_delta" and isinstance(d.get("partial_json"), str) and d["partial_json"]:
                return [Part("chunk"), Part("tool", d["partial_json"])]
            return []
        if kind == "message_delta":
            parts = []
            usage = _dict(obj, "usage")
            if "output_tokens" in usage:
                st.output_tokens = _int(usage.get("output_tokens"))
                parts.append(Part("usage", prompt_tokens=st.extra.get("input_tokens", 0),
                                  completion_tokens=st.output_tokens))
            delta = _dict(obj, "delta")
            if delta.get("stop_reason"):
                st.finished = str(delta["stop_reason"])
                parts.append(Part("finish", st.finished))
            return parts
        if kind == "error":
            err = _dict(obj, "error")
            return [Part("error", str(err.get("message") or "error event")[:200], fatal=True)]
        return []  # ping, message_stop, unknown types

    # -- not streamed -----------------------------------------------------------------------------

    def _whole(self, obj: dict) -> list[Part]:
        if isinstance(obj.get("error"), dict):
            return [Part("error", str(obj["error"].get("message") or obj["error"])[:200], fatal=True)]
        parts: list[Part] = []
        extra: list[Part] = []  # a chat answer's reasoning and tool calls
        text, finish = "", ""
        if self.api in ("chat", "completions"):
            choices = obj.get("choices")
            for k, choice in enumerate(choices if isinstance(choices, list) else ()):
                if not isinstance(choice, dict):  # (the first is the request's; the others, ``n``, are counted)
                    continue
                if self.api == "chat":
                    _delta_parts(_dict(choice, "message"), extra, own=k == 0, index=k)
                elif isinstance(choice.get("text"), str) and choice["text"]:
                    extra.append(Part("text", choice["text"]) if k == 0 else
                                 Part("choice", choice["text"], choice=_later(k)))
                if _later(k):  # (each later choice of a whole answer has ended)
                    extra.append(Part("ended", choice=k))
                if k == 0:
                    finish = str(choice.get("finish_reason") or "")
            text = "".join(part.text for part in extra if part.kind == "text")
            extra = [part for part in extra if part.kind != "text"]
            usage = _dict(obj, "usage")
            prompt, completion = _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens"))
        elif self.api == "responses":
            output = obj.get("output")
            items = [item for item in (output if isinstance(output, list) else []) if isinstance(item, dict)]
            text = "".join(_block_text(item.get("content"), "output_text") + _block_text(item.get("content"),
                                                                                        "refusal")
                           for item in items if item.get("type", "message") == "message")
            extra = _whole_extra(items, "arguments", "input")
            finish = str(obj.get("status") or "")
        else:
            content = obj.get("content")
            text = _block_text(content, "text")
            extra = _whole_extra(content if isinstance(content, list) else [], "input")
            finish = str(obj.get("stop_reason") or "")
        if self.api in ("responses", "messages"):
            usage = _dict(obj, "usage")
            prompt, completion = _int(usage.get("input_tokens")), _int(usage.get("output_tokens"))
        # the whole answer is one chunk, its text first (one timed unit: ``AnswerReading`` times a chunk's text, or
        # else its reasoning or tool call; a reasoning part before the chunk had made two chunks of one body)
        whole = [Part("text", text)] if isinstance(text, str) and text else []
        if whole or extra:
            parts += [Part("chunk"), *whole, *extra]
        if prompt or completion:
            parts.append(Part("usage", prompt_tokens=prompt, completion_tokens=completion))
        if finish:
            parts.append(Part("finish", finish))
        return parts


def _whole_extra(items: list, *keys: str) -> list[Part]:
    """A whole Responses or Messages answer's reasoning and tool calls (its output items, its content blocks)."""
    parts = []
    for item in items:
        for kind, text in (("reasoning", _reasoning_text(item)), ("tool", _named_call(item, *keys))):
            if text:
                parts.append(Part(kind, text))
    return parts


_BLANK_LINES = (b"\n\n", b"\r\r", b"\r\n\r\n", b"\n\r\n")


def next_event_start(reader: Reader, chunk: bytes) -> int | None:
    """Where in ``chunk`` an event starts, given what ``reader`` was fed before it: 0 between events, else just past
    the first blank line within the chunk (found by search, not parsing: a blank line split across two chunks is
    missed, and the next one is taken); None when there is none."""
    if reader.sse.at_boundary:
        return 0
    ends = [i + len(blank) for blank in _BLANK_LINES if (i := chunk.find(blank)) >= 0]
    return min(ends) if ends else None


def _sse(name: str | None, obj: dict | str) -> bytes:
    data = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
    return (f"event: {name}\n" if name else "").encode() + f"data: {data}\n\n".encode()


CUT_FINISH = "content_filter"
"""The finish reason a cut Chat Completions / Completions stream ends with: OpenAI's value for output the
platform stopped (the ``midstream`` field says which rule, and why)."""


def cut_ending(reader: Reader, rule: str, reason: str, mode: str = "stop") -> bytes:
    """What the client is sent, in its protocol, when ``rule`` cuts its stream for ``reason``. After a CR that
    may be the first half of a CRLF (the answer cut just after it), the LF comes first: the line ends as a CRLF
    stream ends it (a reader that splits lines at LF read the ending as a line ``CR data: ...`` and dropped it),
    and as a CR-only stream would have it (a CR then an LF is one line end)."""
    lead = b"\n" if reader.sse.held_cr else b""
    return lead + _cut_ending(reader, rule, reason, mode)


def _cut_ending(reader: Reader, rule: str, reason: str, mode: str) -> bytes:
    """``cut_ending``'s events.

    ``stop``: the stream ends as a stopped stream does (Chat Completions / Completions: a last chunk with a
    finish reason and a ``midstream`` field, then ``[DONE]``; Responses: ``response.incomplete``; Messages: the
    open content block's stop, ``message_delta`` with a stop reason, ``message_stop``). ``error``: the protocol's
    in-stream error event (the SDKs raise it)."""
    st, note = reader.state, {"cut": True, "rule": rule, "reason": reason}
    if reader.api in ("chat", "completions"):
        if mode == "error":
            return _sse(None, {"error": {"message": f"stopped by midstream rule {rule}: {reason}",
                                         "type": "midstream_cut", "code": "midstream_cut"}}) + b"data: [DONE]\n\n"
        # every choice still under way ends (a request may have asked for several: ``n``)
        chat = reader.api == "chat"
        choices = [{"index": index, "delta" if chat else "text": {} if chat else "", "finish_reason": CUT_FINISH}
                   for index in sorted((st.choices | {0}) - st.ended)] or [
            {"index": 0, "delta" if chat else "text": {} if chat else "", "finish_reason": CUT_FINISH}]
        chunk = {"id": st.id or "midstream-cut", "object": "chat.completion.chunk" if chat else "text_completion",
                 "created": st.created or int(time.time()), "model": st.model, "choices": choices, "midstream": note}
        return _sse(None, chunk) + b"data: [DONE]\n\n"
    if reader.api == "responses":
        seq = st.sequence + 1
        if mode == "error":
            return _sse("error", {"type": "error", "code": "midstream_cut", "param": None, "sequence_number": seq,
                                  "message": f"stopped by midstream rule {rule}: {reason}"})
        resp = dict(st.response or {"id": st.id or "midstream-cut", "object": "response", "model": st.model})
        # No "output": response.created's is empty, and the text of what was sent is not read here (its deltas are
        # only framed). Without one, the OpenAI SDK fills in the items it put together from the deltas, as the
        # client received them; with response.created's [], its output_text read "" after a whole paragraph.
        resp.pop("output", None)
        resp.update(status="incomplete", incomplete_details={"reason": "content_filter"}, midstream=note)
        return _sse("response.incomplete", {"type": "response.incomplete", "sequence_number": seq, "response": resp})
    # Anthropic Messages
    if mode == "error":
        return _sse("error", {"type": "error", "error": {"type": "midstream_cut",
                                                         "message": f"stopped by midstream rule {rule}: {reason}"}})
    out = b""
    if st.open_block is not None:
        out += _sse("content_block_stop", {"type": "content_block_stop", "index": st.open_block})
    out += _sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                  "usage": {"output_tokens": max(st.output_tokens, st.deltas)}, "midstream": note})
    return out + _sse("message_stop", {"type": "message_stop"})


# -- Realtime audio -------------------------------------------------------------------------------------------

REALTIME_RATE = 24_000
"""The Realtime API's PCM rate (16-bit mono, little-endian); G.711 is 8 kHz."""


def _g711_tables() -> tuple[np.ndarray, np.ndarray]:
    """16-bit linear samples of every μ-law and A-law byte (ITU-T G.711)."""
    b = np.arange(256, dtype=np.int32)
    u = ~b & 0xFF
    mag = (((u & 0x0F) << 3) + 0x84 << ((u >> 4) & 7)) - 0x84
    ulaw = np.where(u & 0x80, -mag, mag)
    a = b ^ 0x55
    exp, man = (a >> 4) & 7, a & 0x0F
    mag = np.where(exp == 0, (man << 4) + 8, ((man << 4) + 0x108) << np.maximum(exp - 1, 0))
    alaw = np.where(a & 0x80, mag, -mag)
    return ulaw.astype(np.int16), alaw.astype(np.int16)


ULAW, ALAW = _g711_tables()


def realtime_audio_format(session: Any) -> tuple[str, int] | None:
    """(codec, rate) of the audio a Realtime session sends, from its ``session.created``/``updated``: the GA
    shape (``audio.output.format`` {type: audio/pcm | audio/pcmu | audio/pcma, rate}) or the beta one
    (``output_audio_format``: pcm16 | g711_ulaw | g711_alaw). None: the session does not say."""
    if not isinstance(session, dict):
        return None
    out = _dict(_dict(session, "audio"), "output")
    fmt = out.get("format", session.get("output_audio_format"))
    if isinstance(fmt, dict):
        kind, rate = fmt.get("type"), fmt.get("rate")
        codec = {"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}.get(kind) \
            if isinstance(kind, str) else None
    else:
        codec, rate = (fmt if isinstance(fmt, str) and fmt in ("pcm16", "g711_ulaw", "g711_alaw") else None), None
    if codec is None:
        return None
    default = REALTIME_RATE if codec == "pcm16" else 8_000
    rate = rate if isinstance(rate, int) and not isinstance(rate, bool) and 8_000 <= rate <= 192_000 else default
    return codec, rate


def decode_realtime_audio(delta: str, codec: str) -> np.ndarray:
    """One audio delta's samples (int16). Raises ValueError for what is not base64 of that codec."""
    raw = base64.b64decode(delta, validate=True)
    if codec == "pcm16":
        if len(raw) % 2:
            raise ValueError(f"{len(raw)} bytes is not a whole number of 16-bit samples")
        return np.frombuffer(raw, dtype="<i2").astype(np.int16)
    table = ULAW if codec == "g711_ulaw" else ALAW
    return table[np.frombuffer(raw, dtype=np.uint8)]
