"""Events: what sources emit and the hub consumes.

Every event names its stream and carries ``t``, the time in seconds on the hub's
clock at which it happened (for simulated sources: when it was scheduled). Events
are frozen; array payloads are made read-only when the event is built so that the
hub, the analysis threads and the UI can share them without copying.
"""

from __future__ import annotations

import math

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

StreamKind = Literal["text", "audio", "video"]
STREAM_KINDS: tuple[str, ...] = ("text", "audio", "video")


@dataclass(frozen=True, slots=True)
class Event:
    stream: str
    t: float


@dataclass(frozen=True, slots=True)
class StreamOpened(Event):
    kind: StreamKind
    source: str = ""
    """The URI or description the stream came from (never contains secrets)."""
    identity: str = ""
    """What the stream comes from, the same across runs: a model at its endpoint, a simulator's behaviour,
    a media kind at a host (``sources.params.identity_of``); what the meta-learner learns per. Empty: unknown."""


@dataclass(frozen=True, slots=True)
class RequestStarted(Event):
    """A new request/response begins on a stream (TTFT is measured from here)."""

    request_id: int = 0


@dataclass(frozen=True, slots=True)
class TextDelta(Event):
    text: str
    tokens: int = 1
    """Tokens carried by this delta, as reported or estimated by the source."""
    request_id: int = 0


@dataclass(frozen=True, slots=True)
class OutputChunk(Event):
    """A chunk of an answer's output that is not its text: ``part`` "reasoning" (a reasoning model's thinking),
    "tool" (a tool call's name or arguments) or "text" (output that is not the stream's text: a later choice's,
    when a request asked for several). Counted and timed as a chunk (time to first token, the gaps between chunks,
    output tokens: as AIPerf and vLLM count them), never read as text."""

    part: str = "reasoning"
    tokens: int = 1
    request_id: int = 0


REASONING = -1
"""The ``choice`` of a ``ChoiceText`` that is the answer's reasoning (a reasoning model's thinking, Anthropic's
``thinking`` blocks, a Responses reasoning summary): read for a repetition loop apart from the text, as a later
choice's content is (a model looping in its thinking streamed on unseen: nothing read it)."""


@dataclass(frozen=True, slots=True)
class ChoiceText(Event):
    """Content of a later choice of a request that asked for several answers (``n``): its words are read for a
    repetition loop apart from the stream's text (a loop there is the request's: a rule that cuts a looping stream
    cuts the request while the choice goes on). Not timed or counted (the ``OutputChunk`` of its chunk is), not the
    stream's text; recorded apart from it (a ``choice`` event of the session). ``choice`` ``REASONING`` (-1): the
    answer's reasoning, read alike until its text begins."""

    text: str = ""
    choice: int = 1
    ended: bool = False
    """The choice's answer ended (its finish reason came; ``choice`` 0: the first's, the stream's text): a loop it
    ended in is no longer one a cut could stop."""
    request_id: int = 0


@dataclass(frozen=True, slots=True)
class RequestFinished(Event):
    request_id: int = 0
    reason: str = "stop"
    streamed: bool = True
    """False: the answer came whole (not streamed): it has no time per token."""


@dataclass(frozen=True, slots=True)
class Usage(Event):
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True, slots=True)
class AudioChunk(Event):
    samples: np.ndarray = field(repr=False)
    """int16 PCM, shape (frames,) for mono or (frames, channels)."""
    sample_rate: int = 48_000
    discontinuity: bool = False
    """This chunk does not continue the one before it (a file played again from its start, an input
    reopened): speech or sound is not carried across."""

    def __post_init__(self) -> None:
        if isinstance(self.samples, np.ndarray):
            self.samples.flags.writeable = False

    @property
    def channels(self) -> int:
        return 1 if self.samples.ndim == 1 else int(self.samples.shape[1])

    @property
    def nbytes(self) -> int:
        return int(self.samples.nbytes)

    @property
    def duration(self) -> float:
        return self.samples.shape[0] / float(self.sample_rate)


@dataclass(frozen=True, slots=True)
class VideoFrame(Event):
    frame: np.ndarray = field(repr=False)
    """uint8 RGB, shape (height, width, 3)."""
    encoded_bytes: int | None = None
    """Bytes received on the wire for this frame (may be 0 when a packet carried several);
    None for a raw frame, which counts at its decoded size."""
    media_t: float | None = None
    """The frame's position in its media (seconds from the input's start), when the source knows it."""
    discontinuity: bool = False
    """This frame does not continue the one before it (a file played again from its start, an input reopened)."""

    def __post_init__(self) -> None:
        if isinstance(self.frame, np.ndarray):
            self.frame.flags.writeable = False

    @property
    def nbytes(self) -> int:
        return int(self.frame.nbytes) if self.encoded_bytes is None else self.encoded_bytes


@dataclass(frozen=True, slots=True)
class StreamError(Event):
    message: str
    fatal: bool = False
    transient: bool = False
    """The source is recovering from it (a retry under way): the stream shows it until its data comes again."""


@dataclass(frozen=True, slots=True)
class Flag(Event):
    """Something outside the analysis (a rule, a user) marks the stream; it goes to the pattern log."""

    message: str
    kind: str = "rule"
    condition: str = ""
    """For a rule's flag: what it judged (``loop``, ``stall``, ``regex``, ``metric``), so the analyzer can tell
    a stall a rule already flagged from a new one."""
    since: float = math.nan
    """For a stall: when the pause began (the time of the last token before it)."""


@dataclass(frozen=True, slots=True)
class StreamClosed(Event):
    reason: str = "finished"


KIND_OF_EVENT: dict[type, str] = {TextDelta: "text", OutputChunk: "text", ChoiceText: "text", RequestStarted: "text",
                                  RequestFinished: "text", Usage: "text", AudioChunk: "audio", VideoFrame: "video"}
"""The kind of stream a data or request event belongs to (StreamOpened says its own)."""
