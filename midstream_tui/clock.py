"""Injectable clocks, so that time is a parameter and tests are deterministic.

Every timestamp in MidStream is seconds on one clock owned by the hub. Sources
schedule themselves with ``sleep_until`` on that clock; the hub and the UI read
``now``. Swapping the clock is how tests, snapshots and accelerated replay run.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the clock started."""
        ...

    async def sleep_until(self, t: float) -> None:
        """Return once ``now() >= t``."""
        ...


class MonotonicClock:
    """Wall time from ``time.monotonic``, optionally sped up by ``speed``."""

    def __init__(self, speed: float = 1.0) -> None:
        if not speed > 0:
            raise ValueError(f"clock speed must be > 0, got {speed!r}")
        self.speed = float(speed)
        self._t0 = time.monotonic()

    def now(self) -> float:
        return (time.monotonic() - self._t0) * self.speed

    async def sleep_until(self, t: float) -> None:
        delay = (t - self.now()) / self.speed
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            # Yield anyway so a fast source cannot starve the loop.
            await asyncio.sleep(0)


class VirtualClock:
    """Time that only moves when someone sleeps: runs as fast as the CPU allows.

    ``now()`` is the latest time any sleeper asked for, so concurrent sources
    interleave roughly, but every event keeps its scheduled timestamp and all
    per-stream numbers are reproducible.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance_to(self, t: float) -> None:
        if t > self._now:
            self._now = float(t)

    async def sleep_until(self, t: float) -> None:
        self.advance_to(t)
        await asyncio.sleep(0)


class FrozenClock(VirtualClock):
    """A clock stopped at one instant (for snapshots of the dashboard)."""

    async def sleep_until(self, t: float) -> None:  # noqa: ARG002 - time never moves
        await asyncio.sleep(0)
