"""A watcher's side of the fleet: every agent's streams, read from NATS, behind the same surface as a ``Hub``.

``RemoteHub`` is what ``midstream watch`` gives the dashboard and the headless printer (``HubView``). It reads
the key-value bucket first (the newest snapshot of every stream, so the first screen is complete), then follows
the agents' subjects. Streams are named ``AGENT/STREAM`` and listed agent by agent. An agent that stops saying
anything is marked stale (its open streams show ``stale``), and after longer it is gone (its streams leave the
view). ``cancel`` asks the owning agent over request/reply; the answer (or its absence) reaches the pattern log.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import math
import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..clock import Clock, MonotonicClock
from ..hub import HubError
from ..snapshot import PatternHit, Snapshot
from . import wire
from .publish import connect
from .wire import FleetError, NatsTarget

STALE_S = 5.0
GONE_S = 60.0
MAX_ENDED = 500
"""Ended remote streams kept in view (the newest); older ones leave it, as a hub ages out ended streams."""
CANCEL_TIMEOUT_S = 3.0
MAPPINGS_KEPT = 16
"""Live messages whose clocks place an agent's start on the watcher's clock (``_Agent.mappings``)."""
MAX_SKEW_S = 5.0
"""How far from most of them one message's placing may be and still count (transit delays are well under it)."""


@dataclass
class _Agent:
    name: str
    t0: float = 0.0
    """The agent's start on this watcher's clock."""
    seen: float = -math.inf
    """When it last said anything (this watcher's clock; a bucket entry's age can put it before the start)."""
    stale: bool = False
    streams: set[str] = field(default_factory=set)
    run: str = ""
    """The run (start time and process) its newest live messages come from."""
    runs: dict[str, float] = field(default_factory=dict)
    t0_live: bool = False
    clash_said: bool = False
    mappings: deque = field(default_factory=lambda: deque(maxlen=MAPPINGS_KEPT))
    """The start each of its latest live messages implied (this watcher's clock minus the agent's own)."""


class RemoteHub:
    """The streams of every agent matching ``agent_pattern`` (shell-style: ``web-*``), as a hub view."""

    replay = False
    warm = True
    meta = None

    def __init__(self, target: NatsTarget, agent_pattern: str = "*", *, clock: Clock | None = None,
                 analysis_interval: float = 0.1, stale_s: float = STALE_S, gone_s: float = GONE_S,
                 name: str = "watcher", say: Callable[[str], None] | None = None,
                 pattern_log_size: int = 1000, max_ended: int = MAX_ENDED) -> None:
        if not analysis_interval > 0:
            raise HubError("analysis interval must be > 0 seconds")
        self.target, self.agent_pattern = target, agent_pattern or "*"
        self.clock: Clock = clock or MonotonicClock()
        self.t0 = self.clock.now()
        self.analysis_interval = float(analysis_interval)
        # (at least three hellos' time: an agent is not called stale between two of them)
        self.stale_s = max(float(stale_s), 3 * wire.HELLO_S)
        self.gone_s = max(float(gone_s), self.stale_s)
        self.name = name
        self.max_ended = max_ended
        self.aged_out = 0
        self._say = say or (lambda line: None)
        self.running = False
        self.ticks = 0
        self.received = 0
        self.bytes_received = 0
        self.undecodable = 0
        """Messages on the fleet's subjects that could not be read, or named another agent than their subject's:
        counted, and said in the pattern log (the first, then at 100, 10,000, ...)."""
        self._offline: float | None = None  # since when this watcher has been cut off from NATS
        self.callback_error: Exception | None = None
        self.preexisting: set[str] = set()
        """Streams read from the bucket at the start: under way (or over) before this watcher joined."""
        self.slow_drops = 0
        """Messages the NATS client dropped because this watcher fell behind (slow consumer), counted."""
        self.first_screen_s = float("nan")
        """Seconds from connecting to having read every stream's state from the bucket."""
        self.nc = None
        self._agents: dict[str, _Agent] = {}
        self._snaps: dict[str, Snapshot] = {}
        self._remote_seq: dict[str, int] = {}
        self._where: dict[str, tuple[str, str]] = {}  # shown name -> (agent, stream)
        self._run: dict[str, str] = {}  # shown name -> the run of the agent its newest snapshot came from
        self._log: deque[tuple[int, PatternHit]] = deque(maxlen=pattern_log_size)
        self._log_seq = 0
        self._callbacks: list[Callable[[float], None]] = []
        self._tasks: set[asyncio.Task] = set()
        self._stop: asyncio.Event | None = None  # made in start(), on the running loop

    # ------------------------------------------------------------ the read surface (HubView)

    @property
    def streams(self) -> list[str]:
        return sorted(self._snaps, key=lambda n: self._where.get(n, (n, n)))

    @property
    def agents(self) -> dict[str, dict]:
        """Each agent seen: its streams and whether it is stale."""
        return {a.name: {"streams": len(a.streams), "stale": a.stale} for a in self._agents.values()}

    def snapshots(self) -> dict[str, Snapshot]:
        return {n: self._snaps[n] for n in self.streams}

    def snapshot(self, stream: str) -> Snapshot | None:
        return self._snaps.get(stream)

    def run_of(self, stream: str) -> str:
        """The run of the agent whose newest snapshot a stream shows ("" when not known). (The agent's own latest
        run, taken until 2026-12-06, counted an ended stream of a restarted agent's earlier run again, and a stream
        that only one of two agents clashing on a name has, twice.)"""
        return self._run.get(stream, "")

    def patterns_since(self, seq: int = 0) -> list[tuple[int, PatternHit]]:
        return [(s, h) for s, h in self._log if s > seq]

    def on_tick(self, callback: Callable[[float], None]) -> None:
        self._callbacks.append(callback)

    def add_source(self, source) -> None:
        raise HubError("a watcher shows other hosts' streams; it runs no sources of its own")

    def agent_of(self, stream: str) -> str | None:
        """The agent a shown stream (``AGENT/STREAM``) belongs to (its name may hold a "/" too)."""
        where = self._where.get(stream)
        return where[0] if where else None

    def cancel(self, stream: str) -> bool:
        """Ask the agent that owns ``stream`` to cancel it; False when it is not a live remote stream."""
        snap = self._snaps.get(stream)
        where = self._where.get(stream)
        if snap is None or where is None or snap.status != "open" or self.nc is None:
            return False
        task = asyncio.get_running_loop().create_task(self._cancel(stream, *where))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    # ------------------------------------------------------------ life

    async def start(self) -> None:
        if self.running:
            return
        self._stop = asyncio.Event()
        started = time.monotonic()
        self.nc = await connect(self.target, self.name, disconnected_cb=self._lost, reconnected_cb=self._back,
                                refused_cb=self._refused,
                                error_cb=self._error)
        self.running = True
        pattern = self.agent_pattern
        subject = f"{wire.PREFIX}.{wire.token(pattern)}.>" if not any(c in pattern for c in "*?[") \
            else f"{wire.PREFIX}.>"
        await self.nc.subscribe(subject, cb=self._on_message, pending_msgs_limit=200_000)
        await self._read_bucket()
        self.first_screen_s = time.monotonic() - started
        self._spawn(self._clock_loop())

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read_bucket(self, joining: bool = True) -> None:
        """The newest snapshot of every stream, from the key-value bucket (nothing there: nothing to read); at the
        start (``joining``), and again on reconnecting (what changed while this watcher was cut off)."""
        import nats.errors
        import nats.js.errors

        try:
            kv = await self.nc.jetstream().key_value(wire.BUCKET)
            watcher = await kv.watchall(ignore_deletes=True)
        except (nats.js.errors.BucketNotFoundError, nats.js.errors.NotFoundError):
            return
        except (nats.errors.Error, asyncio.TimeoutError) as exc:
            self._say(f"watch: the state bucket could not be read ({type(exc).__name__}); live updates only")
            return
        try:
            while True:
                try:
                    entry = await watcher.updates(timeout=5.0)
                except nats.errors.TimeoutError:
                    break
                if entry is None:  # every key's newest value has been delivered
                    break
                if entry.value:  # (the key is AGENT.STREAM, as tokens)
                    self._safely(entry.value, "snapshot", from_bucket=True, sender=entry.key.partition(".")[0],
                                 stored=entry.created, joining=joining)
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()

    async def _clock_loop(self) -> None:
        while self.running:
            await asyncio.sleep(self.analysis_interval)
            now = self.clock.now()
            self._age(now)
            self.ticks += 1
            for cb in list(self._callbacks):
                try:
                    cb(now)
                except Exception as exc:  # noqa: BLE001 - as the hub: the run ends and raises it (a closed pipe, ...)
                    self.callback_error = self.callback_error or exc
                    self._stop.set()
                    return

    async def stop(self) -> None:
        if not self.running and self.nc is None:
            return
        self.running = False
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        nc, self.nc = self.nc, None
        if nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), 3.0)
        if self._stop is not None:
            self._stop.set()

    async def run(self, duration: float | None = None) -> None:
        await self.start()
        try:
            if duration is None:
                await self._stop.wait()
            else:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), duration)
        finally:
            await self.stop()
        if self.callback_error is not None:
            raise self.callback_error

    async def _error(self, exc: BaseException) -> None:
        import nats.errors

        if isinstance(exc, nats.errors.SlowConsumerError):
            self.slow_drops += 1
            if self.slow_drops in (1, 1000) or self.slow_drops % 100_000 == 0:
                self._hit("", "fleet", f"falling behind: {self.slow_drops} messages dropped so far (slow consumer)")

    async def _lost(self) -> None:
        if self.running:
            if self._offline is None:
                self._offline = self.clock.now()
            self._say(f"watch: lost NATS at {self.target}; reconnecting")
            self._hit("", "fleet", f"lost NATS at {self.target}; reconnecting")

    def _refused(self, line: str) -> None:
        self._say(f"watch: {line}")
        self._hit("", "fleet", line)

    async def _back(self) -> None:
        self._say(f"watch: back on NATS at {self.target}")
        self._hit("", "fleet", f"back on NATS at {self.target}")
        if self._offline is not None:  # the time this watcher could not hear anyone says nothing of the agents:
            away = max(0.0, self.clock.now() - self._offline)  # (every agent was "gone", its ended streams dropped)
            self._offline = None
            for agent in self._agents.values():
                agent.seen += away
        if self.running:  # what moved on, or ended, meanwhile (an ended stream is never sent live again)
            self._spawn(self._read_bucket(joining=False))

    # ------------------------------------------------------------ what arrives

    async def _on_message(self, msg) -> None:
        parts = msg.subject.split(".")
        if len(parts) < 3:
            return
        self.received += 1
        self.bytes_received += len(msg.data)
        kind = parts[-1]
        if len(parts) == 3 and kind == "_hello" or len(parts) == 4 and kind in ("snapshot", "hit"):
            self._safely(msg.data, kind.lstrip("_"), sender=parts[1])

    def _safely(self, data: bytes, kind: str, from_bucket: bool = False, *, sender: str, stored: Any = None,
                joining: bool = True) -> None:
        try:
            self._take(data, kind, from_bucket, sender=sender, stored=stored, joining=joining)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError):
            self._unread("a map of the wrong shape")  # (another program on these subjects)

    def _take(self, data: bytes, kind: str, from_bucket: bool = False, *, sender: str, stored: Any = None,
              joining: bool = True) -> None:
        """One message. Live ones are placed on this watcher's clock by when they arrive (an agent's wall clock
        may be off); the bucket's copies (read at the start, and again on reconnecting: ``joining`` False) are
        dated by when the NATS server stored them (``stored``, a datetime), else by the agent's wall clock.
        ``sender``:
        the agent's token in the subject (or bucket key) it came on; a body naming another agent is refused, so
        that NATS permissions per agent subject also stop an agent from speaking as another."""
        try:
            msg = wire.decode(data)
        except FleetError:
            self._unread("not a MidStream message")
            return
        agent_name = msg.get("agent")
        if not isinstance(agent_name, str) or not fnmatch.fnmatchcase(agent_name, self.agent_pattern):
            return
        if wire.token(agent_name) != sender:
            self._unread(f"a body naming agent {agent_name!r} on agent {sender!r}'s subject")
            return
        now = self.clock.now()
        run = msg.get("run") if isinstance(msg.get("run"), str) else ""
        rel = wire._float(msg.get("now"))
        agent = self._agents.get(agent_name)
        new = agent is None
        if new:
            agent = self._agents[agent_name] = _Agent(agent_name)
        if from_bucket:
            # (the server's time, not the agent's: an agent's clock 2 minutes slow made its ended streams "gone"
            # before this watcher began, never shown; one fast made a long-dead agent look live)
            wall = stored.timestamp() if hasattr(stored, "timestamp") else wire._float(msg.get("wall"))
            age = max(0.0, time.time() - wall) if not math.isnan(wall) else self.gone_s
            if age >= self.gone_s and new:
                # an agent gone before this watcher began: not shown at all (was: "open" for --gone seconds)
                del self._agents[agent_name]
                return
            agent.seen = max(agent.seen, now - age)
            agent.stale = agent.stale or now - agent.seen >= self.stale_s  # (its streams say "stale" at once)
            if not agent.run and not math.isnan(rel):
                agent.t0 = now - age - rel
        else:
            if run != agent.run:
                self._new_run(agent, run, now)
            agent.seen = now
            if not math.isnan(rel):  # the earliest mapping is the one least delayed in transit ...
                start = now - rel
                agent.mappings.append(start)
                # ... among those that agree within MAX_SKEW_S with most of the latest: one message whose clock is
                # far off (a forged "now", 1e6 s ahead) is outvoted, and no longer shifts every time shown for good
                middle = statistics.median(agent.mappings) if len(agent.mappings) > 2 else start
                if not agent.t0_live or abs(agent.t0 - middle) > MAX_SKEW_S:  # (the start taken was the odd one)
                    agent.t0 = min(m for m in agent.mappings if abs(m - middle) <= MAX_SKEW_S)
                elif abs(start - middle) <= MAX_SKEW_S:
                    agent.t0 = min(agent.t0, start)  # (never later: times shown do not step back)
                agent.t0_live = True
            if agent.stale:
                agent.stale = False
                self._hit("", "fleet", f"agent {agent_name} is publishing again")
        if kind == "hello":
            return
        stream = msg.get("stream")
        if not isinstance(stream, str):
            return
        name = f"{agent_name}/{stream}"
        owner = self._where.get(name)
        if owner is not None and owner != (agent_name, stream):
            # Two agents' streams that read alike (agent "a", stream "b/c"; agent "a/b", stream "c"): the one seen
            # second is told apart by its agent's name in brackets, said once; merged, each hid half the other.
            shown = f"{name} [{agent_name}]"
            if kind == "snapshot" and shown not in self._where:
                self._hit("", "fleet", f"agent {agent_name}'s stream {stream} reads as {owner[0]}'s stream "
                                       f"{owner[1]} ({name}): shown as {shown}")
            name = shown
        if kind == "snapshot":
            seq = msg.get("seq")
            if not isinstance(seq, int) or isinstance(seq, bool):
                self._unread("a snapshot without a whole sequence number")
                return
            if from_bucket and joining:  # under way (or over) before this watcher joined: counted from then on
                self.preexisting.add(name)  # (also when a live message of it came first)
            newer = run == agent.run and (run != self._run.get(name) or seq > self._remote_seq.get(name, -1))
            if from_bucket and name in self._snaps and not (newer and not joining):
                return  # a live message came first and is newer (read again on reconnecting: the bucket's copy is
                # newer only when the stream moved on, or ended, while this watcher was cut off)
            if not from_bucket and seq < self._remote_seq.get(name, -1):
                return  # older than what is shown
            self._remote_seq[name] = seq
            previous = self._snaps.get(name)
            self._where[name] = (agent_name, stream)
            self._run[name] = run
            agent.streams.add(name)
            self._snaps[name] = wire.snapshot_from(msg, name, agent.t0, previous,
                                                   seq=(previous.seq + 1) if previous else 1)
        elif kind == "hit" and name in self._where:
            start = wire._float(msg.get("start"))
            self._log_hit(PatternHit(agent.t0 + wire._float(msg.get("t")), name, str(msg.get("kind", "")),
                                     str(msg.get("message", "")), None if math.isnan(start) else agent.t0 + start))

    def _unread(self, why: str) -> None:
        """A message that could not be taken: counted, and said (the first, then at 100, 10,000 and 1,000,000)."""
        self.undecodable += 1
        if self.undecodable in (1, 100, 10_000) or self.undecodable % 1_000_000 == 0:
            self._hit("", "fleet", f"{self.undecodable} message(s) on the fleet's subjects could not be taken so far "
                                   f"(the latest: {why[:120]}): another program, or a MidStream of another version?")

    def _new_run(self, agent: _Agent, run: str, now: float) -> None:
        """Messages of another run of an agent by that name: a restarted agent (its streams count again from the
        start), or a second agent given the same name (said: each needs its own ``--name``)."""
        other = agent.runs.get(agent.run)
        if agent.run and other is not None and now - other < 2 * wire.HELLO_S + 1.0 and run in agent.runs \
                and not agent.clash_said:
            agent.clash_said = True
            self._hit("", "fleet", f"two agents publish as {agent.name}: give each its own --name")
        agent.runs[run] = now
        if len(agent.runs) > 8:
            agent.runs.pop(next(iter(agent.runs)))
        if agent.run:
            for name in agent.streams:
                self._remote_seq.pop(name, None)
        agent.run = run
        agent.t0_live = False
        agent.mappings.clear()

    def _drop(self, name: str) -> None:
        self._snaps.pop(name, None)
        self._where.pop(name, None)
        self._run.pop(name, None)
        self._remote_seq.pop(name, None)

    def _age(self, now: float) -> None:
        ended = [n for n, s in self._snaps.items() if s.status not in ("open", "stale")]
        if len(ended) > self.max_ended:
            ended.sort(key=lambda n: self._snaps[n].t)
            for name in ended[: len(ended) - self.max_ended]:
                agent = self._agents.get(self._where.get(name, ("", ""))[0])
                if agent is not None:
                    agent.streams.discard(name)
                self._drop(name)
                self.aged_out += 1
        for agent in list(self._agents.values()):
            quiet = now - agent.seen
            if quiet >= self.gone_s and self._offline is None:  # (cut off, this watcher knows nothing of them:
                # stale, not gone — gone had dropped their ended streams for good)
                for name in agent.streams:
                    self._drop(name)
                del self._agents[agent.name]
                self._hit("", "fleet", f"agent {agent.name} gone: nothing for {quiet:.0f} s; its streams removed")
            elif quiet >= self.stale_s and not agent.stale:
                agent.stale = True
                self._hit("", "fleet", f"agent {agent.name} stale: nothing for {quiet:.1f} s")
            if agent.name in self._agents:
                for name in agent.streams:
                    snap = self._snaps.get(name)
                    if snap is None:
                        continue
                    live = snap.status in ("open", "stale")
                    want = "stale" if agent.stale and live else ("open" if live else snap.status)
                    if snap.status != want:
                        self._snaps[name] = _with(snap, status=want)

    def _hit(self, stream: str, kind: str, message: str) -> None:
        self._log_hit(PatternHit(self.clock.now(), stream, kind, message))

    def _log_hit(self, hit: PatternHit) -> None:
        self._log_seq += 1
        self._log.append((self._log_seq, hit))

    async def _cancel(self, name: str, agent: str, stream: str) -> None:
        import nats.errors

        try:
            reply = await self.nc.request(wire.agent_subject(agent, "cancel"),
                                          wire.encode({"stream": stream, "by": self.name}), timeout=CANCEL_TIMEOUT_S)
            answer = wire.decode(reply.data)
            said = (f"cancelled by agent {agent}" if answer.get("ok")
                    else f"not cancelled: agent {agent} says {answer.get('message', 'no')}")
        except nats.errors.NoRespondersError:
            said = f"not cancelled: agent {agent} is not listening"
        except (nats.errors.TimeoutError, asyncio.TimeoutError):
            said = f"not cancelled: no answer from agent {agent} in {CANCEL_TIMEOUT_S:.0f} s"
        except (nats.errors.Error, FleetError) as exc:
            said = f"not cancelled: {type(exc).__name__}"
        self._hit(name, "cancel", said)


def _with(snap: Snapshot, **changes) -> Snapshot:
    from dataclasses import replace

    return replace(snap, seq=snap.seq + 1, **changes)
