"""The Source interface: an async iterator of events that can be cancelled."""

from __future__ import annotations

import abc
import random
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from ..clock import Clock, MonotonicClock
from ..events import Event, StreamClosed, StreamKind


class SourceError(ValueError):
    """A source URI or parameter is wrong; the message is meant for the user."""


class Backoff:
    """Capped exponential backoff with full jitter, for reconnecting network sources."""

    def __init__(self, first: float = 0.5, cap: float = 10.0, rng: random.Random | None = None) -> None:
        self.first, self.cap, self.attempt = first, cap, 0
        self.rng = rng or random.Random()

    def reset(self) -> None:
        self.attempt = 0

    def next(self) -> float:
        ceiling = min(self.cap, self.first * (2 ** self.attempt))
        self.attempt += 1
        return self.rng.uniform(ceiling / 2, ceiling)


class Source(abc.ABC):
    """Produces the events of one stream.

    Sources know protocols and timing, nothing about analysis or UI. The hub
    iterates ``events()``; ``cancel()`` may be called at any time (from the UI,
    a rule, or shutdown) and makes the iterator end with ``StreamClosed``.
    """

    kind: StreamKind
    lossless: bool = False
    """True for sources that can wait (files): a full queue then pauses them
    instead of dropping their data. Live sources cannot wait: drops are counted."""

    def __init__(self, stream_id: str, uri: str = "", clock: Clock | None = None) -> None:
        self.stream_id = stream_id
        self.uri = uri
        self.clock: Clock = clock or MonotonicClock()
        self._cancelled = False
        self.sink: Callable[[Event], bool] | None = None
        """Set by the consumer (the hub) before iterating: a thread-safe way in for a source whose events are
        made in a thread of its own (a decoder). Such a source may hand an event to it directly instead of
        through ``events()`` — no hop through the event loop for each frame — and must then keep its order:
        what it yields after it handed events over comes after them. The sink returns False when it is full
        and the source is lossless (wait and offer again); a live source's event is taken or dropped and
        counted."""

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        self._cancelled = True

    def identity(self, kind: str) -> str:
        """What this source's stream of ``kind`` comes from, the same across runs (``StreamOpened.identity``)."""
        from .params import identity_of

        return identity_of(self.uri, kind)

    def stream_metrics(self, stream: str) -> dict[str, Any]:
        """Counters this source keeps about one of its streams (packets it could not decode, network
        gaps), merged into that stream's snapshot metrics. Called from analysis threads: plain reads only."""
        return {}

    @abc.abstractmethod
    def events(self) -> AsyncIterator[Event]:
        """The stream's events, ending with ``StreamClosed`` or a fatal ``StreamError``."""

    def __aiter__(self) -> AsyncIterator[Event]:
        return self.events()


class ScheduledSource(Source):
    """A source whose events are computed ahead as (time, event) pairs.

    ``schedule(t0)`` is a plain generator of events stamped on the clock; the
    async iterator sleeps until each one is due. Simulations and replays use it,
    and tests can consume ``schedule`` directly, with no clock at all.
    """

    @abc.abstractmethod
    def schedule(self, t0: float = 0.0) -> Iterator[Event]:
        """Events with timestamps ``t0 + offset``, in time order."""

    async def events(self) -> AsyncIterator[Event]:
        t0 = self.clock.now()
        last_t = t0
        for event in self.schedule(t0):
            if self._cancelled:
                yield StreamClosed(self.stream_id, max(last_t, self.clock.now()), reason="cancelled")
                return
            await self.clock.sleep_until(event.t)
            if self._cancelled:
                yield StreamClosed(self.stream_id, max(event.t, self.clock.now()), reason="cancelled")
                return
            last_t = event.t
            yield event
