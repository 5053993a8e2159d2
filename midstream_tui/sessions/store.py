"""Sessions: what a run saw, kept in one SQLite file per session (WAL mode, no server).

A ``Recorder`` attached to a hub takes, without ever blocking it:

- from the ingest workers, every stream's control and text events in full (open,
  request start/end, text deltas, usage, errors, flags, close) and, per audio
  chunk or video frame, the values the analysis derives (level and peak in dBFS;
  motion and brightness), never the media itself;
- from the analysis clock, a snapshot per stream each second (metrics, attractor,
  every signal's class), each pattern-log entry (rule actions, speech, detections
  included), final transcript utterances with word timings, changes of what is
  detected, and a small preview image of each video stream every 5 seconds.

A writer thread commits what arrived every half second in one transaction, so a
crash or ``kill -9`` loses at most the last half second (and of a text stream the last
``HOLD_CHARS`` characters, held back for ``redact``); SQLite's WAL journal
keeps the file consistent whatever happens to the process. Every string passes
through ``redact`` first. Times are seconds since the session started.
"""

from __future__ import annotations

import errno
import json
import math
import os
import queue
import re
import shutil
import sqlite3
import tempfile
import threading
import time
import weakref
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

try:
    import fcntl
except ImportError:  # (not a POSIX system: sessions are not locked)
    fcntl = None

from ..analyzers.base import Measured
from ..config import default_data_dir
from ..events import (
    REASONING,
    AudioChunk,
    ChoiceText,
    Event,
    Flag,
    OutputChunk,
    RequestFinished,
    RequestStarted,
    StreamClosed,
    StreamError,
    StreamOpened,
    TextDelta,
    Usage,
    VideoFrame,
)
from ..jsonsafe import encodable
from ..redact import redact
from ..snapshot import json_number

SCHEMA_VERSION = 1
SUFFIX = ".midstream.sqlite"
SNAPSHOT_INTERVAL = 1.0
DamagedRead = sqlite3.DatabaseError
"""What reading a session damaged past what opening it checks raises half-way (a page found malformed)."""
AFTER_END_UPDATES = 4
"""Snapshots of a stream recorded after the one that recorded its end, when the analysis changed it again."""
PREVIEW_INTERVAL = 5.0
FLUSH_INTERVAL = 0.5
HOLD_CHARS = 256
"""Text is recorded once this many characters have followed it (or its stream did something else): longer than
any secret ``redact`` knows the shape of."""
MARGIN = 64
"""Text this close before a redaction is written with it: the secret's prefix (``Authorization: Bearer``)."""
CHOICE_KEY = "\x00choice "
"""Between a stream's name and a later choice's index in the key its held text is kept under (a name has no NUL)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS stream (name TEXT PRIMARY KEY, kind TEXT, source TEXT, opened REAL, closed REAL,
                                   status TEXT, error TEXT);
CREATE TABLE IF NOT EXISTS event (id INTEGER PRIMARY KEY, stream TEXT, t REAL, type TEXT, data TEXT);
CREATE TABLE IF NOT EXISTS series (id INTEGER PRIMARY KEY, stream TEXT, name TEXT, t0 REAL, t1 REAL, n INTEGER,
                                   data BLOB);
CREATE TABLE IF NOT EXISTS snapshot (id INTEGER PRIMARY KEY, stream TEXT, t REAL, seq INTEGER, status TEXT,
                                     metrics TEXT, attractor TEXT, signal TEXT, signals TEXT, error TEXT);
CREATE TABLE IF NOT EXISTS pattern (id INTEGER PRIMARY KEY, stream TEXT, t REAL, kind TEXT, message TEXT, start REAL);
CREATE TABLE IF NOT EXISTS transcript (id INTEGER PRIMARY KEY, stream TEXT, start REAL, end REAL, text TEXT,
                                       engine TEXT, words TEXT);
CREATE TABLE IF NOT EXISTS detection (id INTEGER PRIMARY KEY, stream TEXT, t REAL, label TEXT, x REAL, y REAL,
                                      w REAL, h REAL, score REAL);
CREATE TABLE IF NOT EXISTS preview (id INTEGER PRIMARY KEY, stream TEXT, t REAL, height INTEGER, width INTEGER,
                                    data BLOB);
CREATE INDEX IF NOT EXISTS event_stream_t ON event (stream, t);
CREATE INDEX IF NOT EXISTS snapshot_stream_t ON snapshot (stream, t);
"""
TABLES = ("stream", "event", "series", "snapshot", "pattern", "transcript", "detection", "preview")


class StoreError(ValueError):
    """A session file that cannot be used; the message is for the user."""


def data_dir() -> Path:
    """Where sessions are recorded when no folder is given (the ``data_dir`` setting's default)."""
    return default_data_dir()


class _CopyConnection(sqlite3.Connection):
    """A read-only connection to a private copy of a session (``_read_copy``): the copy goes when it closes (or is
    collected, or the process ends)."""
    folder = ""

    def close(self) -> None:
        try:
            super().close()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def _read_copy(path: Path) -> sqlite3.Connection:
    """A session on read-only media whose journal (-wal) holds data but has no -shm beside it (copied, or its
    recording killed): SQLite can read it only where a -shm can be made, so it is read from a private copy.
    (Opened as immutable, it read as "not a MidStream session": everything it held was in the journal.)"""
    folder = tempfile.mkdtemp(prefix="midstream-session-")
    try:
        copy = Path(folder) / path.name
        shutil.copyfile(path, copy)
        shutil.copyfile(f"{path}-wal", f"{copy}-wal")
        conn = _connect(copy, readonly=True, factory=_CopyConnection)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    conn.folder = folder
    weakref.finalize(conn, shutil.rmtree, folder, True)
    return conn


def _connect(path: Path, readonly: bool = False, immutable: bool = False,
             factory: type[sqlite3.Connection] = sqlite3.Connection) -> sqlite3.Connection:
    if immutable:  # read-only media: no -shm can be made beside it; only what was checkpointed is read
        conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True, check_same_thread=False)
    elif readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, factory=factory)
    else:
        conn = sqlite3.connect(str(path), check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable against a process crash
    conn.execute("PRAGMA busy_timeout=5000")
    # text that is not UTF-8 (a damaged or hand-edited file) reads with U+FFFD where the bad bytes were: it ended
    # replay, export and analyze with "Could not decode to UTF-8" (an independent review)
    conn.text_factory = _text
    return conn


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _json(value: Any) -> str:
    return redact(json.dumps(value, allow_nan=False, separators=(",", ":")))


def _lock(path: Path) -> int | None:
    """An exclusive lock on ``path`` (``flock``, apart from SQLite's own locks) held by a run while it records
    there: the fd that holds it, or None when another run holds it. Without ``fcntl``: an fd, no lock."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
    return fd


def being_recorded(path: Path) -> bool:
    """A run is recording into ``path`` now (it holds the session's lock)."""
    if fcntl is None or not path.is_file():
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def _clean(row: tuple) -> tuple:
    """A row whose strings SQLite can store (``jsonsafe.encodable``)."""
    return tuple(encodable(v) if isinstance(v, str) else v for v in row)


class Recorder:
    """Records one hub's session into ``path`` (see the module's description)."""

    def __init__(self, path: str | Path, *, command: str = "", flush_interval: float = FLUSH_INTERVAL) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and not self.path.is_file():
            raise StoreError(f"{self.path}: exists; sessions are never overwritten")
        # The lock first, then the check: of two runs given the same file, one records and the other is told.
        try:
            self._lock_fd = _lock(self.path)
            for _ in range(50):  # another run's look (prune, `sessions`) holds it for a moment: wait that out
                if self._lock_fd is not None:
                    break
                time.sleep(0.02)
                self._lock_fd = _lock(self.path)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot record: {exc.strerror or exc}") from None
        if self._lock_fd is None:
            raise StoreError(f"{self.path}: another run is recording into it")
        if self.path.stat().st_size > 0:  # (empty: claimed for us)
            os.close(self._lock_fd)
            raise StoreError(f"{self.path}: exists; sessions are never overwritten")
        self.command = redact(command)
        self.flush_interval = flush_interval
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._hub = None
        self._t0 = 0.0
        self._log_seq = 0
        self._last_snapshot: dict[str, float] = {}
        self._after_end: dict[str, tuple[int, int]] = {}  # (seq recorded, updates left) of each ended stream
        self._last_preview: dict[str, float] = {}
        self._said: dict[str, int] = {}
        self._seen_detections: dict[str, tuple] = {}
        self._closed = False
        self.rows = 0
        """Rows committed so far."""
        self.flushes = 0
        self.error: str | None = None
        self._names: dict[str, str] = {}  # a live stream's name -> its name in the file (``_stored``)
        self._taken: set[str] = set()
        self._held: dict[str, list[tuple]] = {}
        """Text not yet written, by stream (a later choice's: by the stream's name, ``CHOICE_KEY`` and its index)."""
        self._choices_held: set[str] = set()  # streams with a later choice's text held, maybe
        self._held_lock = threading.RLock()
        self.lost = 0
        """Rows that could not be written (a full disk, say): the session is then marked incomplete."""
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._writer, name="session-writer", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self.error:
            raise StoreError(self.error)

    # -- wiring ------------------------------------------------------------------------------

    def attach(self, hub) -> Recorder:
        self._hub = hub
        self._t0 = hub.t0
        hub.attach_recorder(self)
        hub.on_tick(self.tick)
        return self

    def _rel(self, t: float) -> float:
        """``t`` on the run's clock, as the hub shows it: from the hub's start (which sets its ``t0`` again after it
        was attached: the recording ran late by the hub's start-up, 30 ms headless and 60 under the dashboard)."""
        return round(t - (self._hub.t0 if self._hub is not None else self._t0), 6)

    # -- from the ingest workers (any thread) ---------------------------------------------------

    def event(self, stream: str, ev: Event, measured: Measured) -> None:
        """One event the pipeline handled, and what its analyzer measured from it."""
        t = self._rel(ev.t)
        if isinstance(ev, TextDelta):
            self._hold(stream, ("event", stream, t, "text", {"text": ev.text, "tokens": ev.tokens,
                                                             "request_id": ev.request_id}))
            return
        if isinstance(ev, ChoiceText):  # a later choice's content (a request for several answers): held and
            # redacted as the text is, apart from it (a secret in it is seen whole within its choice)
            if isinstance(ev.choice, int) and not isinstance(ev.choice, bool) and ev.choice >= 1:
                data = {"choice": ev.choice, "text": ev.text, **({"ended": True} if ev.ended else {})}
                with self._held_lock:
                    self._choices_held.add(stream)
                    self._hold(f"{stream}{CHOICE_KEY}{ev.choice}", ("event", stream, t, "choice", data))
            elif ev.choice == REASONING and ev.text:  # the answer's reasoning: held with its text, in one window
                # for ``redact`` (a key the model began in its thinking and went on with in its answer)
                self._hold(stream, ("event", stream, t, "reasoning", {"text": ev.text}))
            elif ev.choice == 0 and ev.ended:  # the first answer's end (a request for several: its loop is over)
                self._hold(stream, ("event", stream, t, "choice", {"choice": 0, "text": "", "ended": True}))
            return
        if isinstance(ev, OutputChunk):  # (its text is not recorded, and held text stays held: it carries none)
            self._queue.put(("event", stream, t, "chunk", {"part": ev.part, "tokens": ev.tokens,
                                                           "request_id": ev.request_id}))
            return
        if isinstance(ev, Usage):  # (held text stays held: a server that sends its usage with every chunk released
            # each piece at once, unredacted, a key split across them written in pieces)
            self._queue.put(("event", stream, t, "usage", {"prompt_tokens": ev.prompt_tokens,
                                                           "completion_tokens": ev.completion_tokens}))
            return
        if stream in self._held:  # anything else of the stream: its held text goes first, in order
            self._release(stream, everything=True)
        if stream in self._choices_held:  # (and its later choices')
            with self._held_lock:  # (other ingest workers hold and release text meanwhile)
                self._choices_held.discard(stream)
                for key in [k for k in self._held if k.startswith(f"{stream}{CHOICE_KEY}")]:
                    self._release(key, everything=True)
        if isinstance(ev, AudioChunk):
            if measured.level_dbfs is not None:
                self._queue.put(("sample", stream, "level_dbfs", t, measured.level_dbfs))
                self._queue.put(("sample", stream, "peak_dbfs", t, measured.peak_dbfs))
        elif isinstance(ev, VideoFrame):
            if measured.motion is not None:
                self._queue.put(("sample", stream, "motion", t, measured.motion))
                self._queue.put(("sample", stream, "brightness", t, measured.brightness))
        elif isinstance(ev, StreamOpened):
            self._queue.put(("stream", stream, ev.kind, ev.source, t))
            # (its identity: a run of the exported events learns as the stream did, not as "replay:text"; its source
            # stays the file it is replayed from: a replay is judged as one, not as the endpoint it recorded)
            self._queue.put(("event", stream, t, "open", {"kind": ev.kind,
                                                          **({"identity": ev.identity} if ev.identity else {})}))
        elif isinstance(ev, RequestStarted):
            self._queue.put(("event", stream, t, "request", {"request_id": ev.request_id}))
        elif isinstance(ev, RequestFinished):
            self._queue.put(("event", stream, t, "request_end", {"request_id": ev.request_id, "reason": ev.reason,
                                                                 **({} if ev.streamed else {"streamed": False})}))
        elif isinstance(ev, StreamError):
            self._queue.put(("event", stream, t, "error", {"message": ev.message, "fatal": ev.fatal,
                                                           **({"transient": True} if ev.transient else {})}))
        elif isinstance(ev, Flag):
            self._queue.put(("event", stream, t, "flag", {"message": ev.message, "kind": ev.kind,
                                                          **({"condition": ev.condition} if ev.condition else {})}))
        elif isinstance(ev, StreamClosed):
            self._queue.put(("event", stream, t, "close", {"reason": ev.reason}))

    def _hold(self, stream: str, item: tuple) -> None:
        """Text is held back until ``HOLD_CHARS`` characters follow it, so that a secret a model streams in pieces
        (an echoed key, a few characters per chunk) is seen whole by ``redact`` before any piece is written."""
        with self._held_lock:
            held = self._held.setdefault(stream, [])
            held.append(item)
            self._release(stream, everything=False)

    def _release(self, stream: str, *, everything: bool) -> None:
        """Queue the held text of ``stream`` that has ``HOLD_CHARS`` after it (all of it: ``everything``), with one
        ``redact`` of the held window. The pieces a change by ``redact`` spans (and those within ``MARGIN``
        characters before it: a secret's prefix, ``Bearer `` or ``https://``, may end the piece before) are written
        as one: the first carries the redacted text, the others none (each keeps its time and token count)."""
        with self._held_lock:
            held = self._held.get(stream)
            if not held:
                return
            texts = [item[4]["text"] for item in held]
            joined = "".join(texts)
            settled = len(joined) if everything else len(joined) - HOLD_CHARS  # text before this is released
            if settled <= 0:
                return
            clean = redact(joined)
            start = 0  # where the first change begins, and where the last ends (in joined's positions)
            while start < min(len(joined), len(clean)) and joined[start] == clean[start]:
                start += 1
            same_tail, most = 0, min(len(joined), len(clean)) - start
            while same_tail < most and joined[-1 - same_tail] == clean[-1 - same_tail]:
                same_tail += 1
            end = len(joined) - same_tail
            changed = clean != joined
            free = min(settled, start - MARGIN) if changed else settled  # pieces ending by here go as they are
            pos = n = 0
            while n < len(held) and pos + len(texts[n]) <= free:
                pos += len(texts[n])
                n += 1
            for _ in range(n):
                self._queue.put(held.pop(0))
            texts = texts[n:]
            if changed and held and (everything or end + HOLD_CHARS <= len(joined)):
                upto, last = pos, 0
                while last < len(held) and (last == 0 or upto < end):  # the pieces the change reaches into
                    upto += len(texts[last])
                    last += 1
                held[0][4]["text"] = clean[pos: len(clean) - (len(joined) - upto)]
                for item in held[1:last]:
                    item[4]["text"] = ""
                for _ in range(last):
                    self._queue.put(held.pop(0))
                if held and everything:
                    self._release(stream, everything=True)
                    return
            if not held:
                self._held.pop(stream, None)

    # -- from the analysis clock (the event loop) ---------------------------------------------

    def tick(self, now: float) -> None:
        hub = self._hub
        if hub is None or self._closed:
            return
        for stream, snap in hub.snapshots().items():
            final = snap.status != "open"
            last = self._last_snapshot.get(stream, -math.inf)
            after = self._after_end.get(stream)
            if after is not None:
                # Ended, and its end recorded: what the analysis says of it afterwards (the estimate of its last
                # window — "settled into a cycle" —, its last figures) is recorded too, a few times at most. Only
                # the first snapshot after the end was, and a replay, an export and the summary showed less than
                # the run had (an independent review).
                seq, left = after
                if snap.seq != seq and left > 0:
                    self._after_end[stream] = (snap.seq, left - 1)
                    self._put_snapshot(stream, snap)
            elif now - last >= SNAPSHOT_INTERVAL or final:
                self._last_snapshot[stream] = math.inf if final else now
                self._put_snapshot(stream, snap)
                if final:
                    self._after_end[stream] = (snap.seq, AFTER_END_UPDATES)
                    self._queue.put(("stream_end", stream, self._rel(snap.t), snap.status, snap.error))
            finals = [s for s in snap.transcript if s.final]
            said = self._said.get(stream, 0)
            if finals and (said == 0 or finals[-1].end > said):
                for seg in finals:
                    if seg.end > said:
                        self._queue.put(("transcript", stream, self._rel(seg.start), self._rel(seg.end), seg.text,
                                         seg.engine, [[w.word, self._rel(w.start), self._rel(w.end)]
                                                      for w in seg.words]))
                self._said[stream] = finals[-1].end
            if snap.detections != self._seen_detections.get(stream, ()):
                self._seen_detections[stream] = snap.detections
                for d in snap.detections:
                    self._queue.put(("detection", stream, self._rel(d.t), d.label, d.x, d.y, d.w, d.h, d.score))
            if snap.preview is not None and now - self._last_preview.get(stream, -math.inf) >= PREVIEW_INTERVAL:
                self._last_preview[stream] = now
                image = np.ascontiguousarray(snap.preview)
                self._queue.put(("preview", stream, self._rel(snap.t), image.shape[0], image.shape[1],
                                 zlib.compress(image.tobytes(), 6)))
        for seq, hit in hub.patterns_since(self._log_seq):
            self._log_seq = seq
            self._queue.put(("pattern", hit.stream, self._rel(hit.t), hit.kind, hit.message,
                             None if hit.start is None else self._rel(hit.start)))

    def _put_snapshot(self, stream: str, snap) -> None:
        self._queue.put(("snapshot", stream, self._rel(snap.t), snap.seq, snap.status,
                         {k: json_number(v) for k, v in snap.metrics.items()}, snap.attractor.to_json(),
                         snap.signal_name, {v.name: v.attractor.to_json() for v in snap.signals[1:]}, snap.error))

    # -- the writer ---------------------------------------------------------------------------

    def _writer(self) -> None:
        conn = None
        try:
            conn = _connect(self.path)
            conn.executescript(SCHEMA)
            with conn:
                conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [
                    ("schema", str(SCHEMA_VERSION)), ("started", repr(time.time())),
                    ("command", self.command), ("status", "recording")])
        except (sqlite3.Error, OSError) as exc:
            self.error = f"{self.path}: cannot record: {exc}"
            if conn is not None:
                conn.close()
            # what was begun goes (it was claimed empty for this run): not a file `sessions` lists for ever as
            # "session format ?" (a disk full at the start)
            for leftover in (self.path, *(Path(f"{self.path}{end}") for end in ("-wal", "-shm", "-journal"))):
                try:
                    leftover.unlink(missing_ok=True)
                except OSError:  # (the folder itself cannot be written: nothing was left in it either)
                    continue
            os.close(self._lock_fd)
            self._ready.set()
            return
        self._ready.set()
        done = False
        while not done:
            items: list = []
            deadline = time.monotonic() + self.flush_interval
            while True:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    done = True
                    break
                items.append(item)
            if items:
                try:
                    self._write(conn, items)
                except (sqlite3.Error, ValueError) as exc:  # a full disk, say: keep the run alive, say so
                    self.error = f"recording failed: {exc}"
                    self.lost += len(items)
        status = "complete" if not self.lost else "incomplete"
        try:
            with conn:
                conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                 [("ended", repr(time.time())), ("status", status),
                                  *([("error", redact(self.error))] if self.lost else [])])
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            self.error = f"recording failed: {exc}"
        conn.close()
        os.close(self._lock_fd)

    def _write(self, conn: sqlite3.Connection, items: list) -> None:
        rows: dict[str, list] = {name: [] for name in TABLES}
        samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
        ends = []
        names = self._names
        for item in items:
            kind = item[0]
            stream = item[1]
            if stream not in names:
                names[stream] = self._stored(stream)
            item = (kind, names[stream], *item[2:])
            if kind == "sample":
                _, stream, name, t, v = item
                samples.setdefault((stream, name), []).append((t, v))
            elif kind == "event":
                _, stream, t, typ, data = item
                rows["event"].append((stream, t, typ, _json(data)))
            elif kind == "stream":
                _, stream, k, source, t = item
                rows["stream"].append((stream, k, redact(source), t))
            elif kind == "stream_end":
                ends.append(item[1:])
            elif kind == "snapshot":
                _, stream, t, seq, status, metrics, attractor, signal, signals, error = item
                rows["snapshot"].append((stream, t, seq, status, _json(metrics), _json(attractor), signal,
                                         _json(signals), redact(error) if error else None))
            elif kind == "pattern":
                _, stream, t, k, message, start = item
                rows["pattern"].append((stream, t, k, redact(message), start))
            elif kind == "transcript":
                _, stream, start, end, text, engine, words = item
                rows["transcript"].append((stream, start, end, redact(text), engine, _json(words)))
            elif kind == "detection":
                rows["detection"].append(item[1:])
            elif kind == "preview":
                rows["preview"].append(item[1:])
        for (stream, name), pairs in samples.items():
            arr = np.asarray(pairs, dtype=np.float64)
            rows["series"].append((stream, name, float(arr[0, 0]), float(arr[-1, 0]), len(arr),
                                   zlib.compress(arr.tobytes(), 1)))
        try:
            self._insert(conn, rows, ends)
        except UnicodeEncodeError:  # a lone surrogate somewhere: clean every string and write it all
            rows = {name: [_clean(r) for r in table] for name, table in rows.items()}
            self._insert(conn, rows, [_clean(e) for e in ends])
        self.rows += len(items)
        self.flushes += 1

    def _stored(self, stream: str) -> str:
        """The name ``stream`` is recorded under: without secrets (a key pasted as a name), in characters SQLite
        stores, and its own: two live streams whose names differ only in a secret (``?token=one``, ``?token=two``)
        or a lone surrogate were one row of the file, their events and snapshots interleaved under it."""
        base = encodable(redact(stream))
        name, n = base, 1
        while name in self._taken:
            n += 1
            name = f"{base} ({n})"
        self._taken.add(name)
        return name

    @staticmethod
    def _insert(conn: sqlite3.Connection, rows: dict[str, list], ends: list) -> None:
        """One transaction of everything ``_write`` gathered (``rows`` by table; ``ends``: streams that ended)."""
        rows = dict(rows)
        with conn:
            # (opened again, the stream keeps its first opening; its kind is the last it was said to be: a network
            # input added as video turns out to hold only audio once it is open)
            conn.executemany("INSERT INTO stream (name, kind, source, opened, status) VALUES (?, ?, ?, ?, 'open') "
                             "ON CONFLICT (name) DO UPDATE SET kind = excluded.kind", rows.pop("stream"))
            conn.executemany("INSERT INTO event (stream, t, type, data) VALUES (?, ?, ?, ?)", rows.pop("event"))
            conn.executemany("INSERT INTO series (stream, name, t0, t1, n, data) VALUES (?, ?, ?, ?, ?, ?)",
                             rows.pop("series"))
            conn.executemany("INSERT INTO snapshot (stream, t, seq, status, metrics, attractor, signal, signals, "
                             "error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows.pop("snapshot"))
            conn.executemany("INSERT INTO pattern (stream, t, kind, message, start) VALUES (?, ?, ?, ?, ?)",
                             rows.pop("pattern"))
            conn.executemany("INSERT INTO transcript (stream, start, end, text, engine, words) "
                             "VALUES (?, ?, ?, ?, ?, ?)", rows.pop("transcript"))
            conn.executemany("INSERT INTO detection (stream, t, label, x, y, w, h, score) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows.pop("detection"))
            conn.executemany("INSERT INTO preview (stream, t, height, width, data) VALUES (?, ?, ?, ?, ?)",
                             rows.pop("preview"))
            conn.executemany("UPDATE stream SET closed = ?, status = ?, error = ? WHERE name = ?",
                             [(t, status, redact(error) if error else None, name) for name, t, status, error in ends])

    def close(self) -> None:
        """Take the last snapshots, write everything queued, mark the session complete."""
        if self._closed:
            return
        if self._hub is not None:
            self.tick(math.inf)  # the final state of every stream, whatever the clock says
        for stream in list(self._held):
            self._release(stream, everything=True)
        self._closed = True
        self._queue.put(None)
        self._thread.join(30)


# -- reading sessions ---------------------------------------------------------------------------

@dataclass(frozen=True)
class SessionInfo:
    path: Path
    started: float
    ended: float | None
    status: str
    command: str
    streams: int
    duration: float
    size: int


def session_files(folder: Path | None = None) -> list[Path]:
    folder = folder or data_dir()
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.glob(f"*{SUFFIX}") if p.is_file()), key=_started_order)


def _started_order(path: Path) -> tuple[float, int, str]:
    """Sessions in the order they began: by their time stamp, then the counter of those begun in the same
    second (``…-120000.midstream.sqlite`` before ``…-120000-2``, which sorts first by name: '-' < '.'). A session
    named otherwise (renamed, or recorded with ``--record NAME``) goes by when its file was last written."""
    stem = path.name[: -len(SUFFIX)]
    m = _STAMPED.fullmatch(stem)
    if m:
        try:
            return time.mktime(time.strptime(m.group(1), "%Y%m%d-%H%M%S")), int(m.group(2) or 1), ""
        except (ValueError, OverflowError):  # (digits that are no date)
            pass
    try:
        return path.stat().st_mtime, 0, stem
    except OSError:
        return 0.0, 0, stem


_STAMPED = re.compile(r"(\d{8}-\d{6})(?:-(\d+))?")


def new_session_path(folder: Path | None = None) -> Path:
    folder = folder or data_dir()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = folder / f"{stamp}{SUFFIX}"
    k = 1
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a file where the folder should be (exist_ok only forgives a folder)
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder)) from None
    while True:  # claimed by creating it (empty: SQLite makes it a database): two runs started in the same
        try:     # second (a fleet's agents) do not end up in one file
            with open(path, "x"):
                return path
        except FileExistsError:
            k += 1
            path = folder / f"{stamp}-{k}{SUFFIX}"


def resolve(ref: str, folder: Path | None = None) -> Path:
    """A session by path, by name in the data folder, by its number in ``midstream sessions``, or ``last``."""
    path = Path(ref)
    if path.is_file():
        return path
    files = session_files(folder)
    if ref == "last" and files:
        return files[-1]
    if ref.isdigit() and 1 <= int(ref) <= len(files):
        return files[int(ref) - 1]
    for candidate in files:
        if candidate.name in (ref, ref + SUFFIX):
            return candidate
    raise StoreError(f"no session {ref!r} (see 'midstream sessions'; a path works too)")


def _open_session(path: Path, *, check: bool = False, indexes: bool = True) -> sqlite3.Connection:
    """A session opened read-only, its format checked; ``check``: its pages too (a damaged file is told in one
    line here, not by a query failing half-way through a replay or an export), and with ``indexes`` the tables
    that have them (an export reads every row in order, through none: it salvages a file whose index is
    damaged)."""
    try:
        conn = _connect(path, readonly=True)
        try:
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        except sqlite3.OperationalError:
            if os.access(path.parent, os.W_OK) or not os.access(path, os.R_OK):
                raise
            conn.close()  # a read-only folder: a session whose journal was folded in (a complete one) still reads
            journal = Path(f"{path}-wal")
            conn = _read_copy(path) if journal.exists() and journal.stat().st_size > 32 else _connect(
                path, immutable=True)
    except sqlite3.Error as exc:  # (a file cut short reads as "malformed")
        what = "the session file is damaged or truncated" if "malformed" in str(exc) else "not a MidStream session"
        raise StoreError(f"{path}: {what} ({exc})") from None
    try:
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if version is None or version[0] != str(SCHEMA_VERSION):
            raise StoreError(f"{path}: session format {version[0] if version else '?'} (expected {SCHEMA_VERSION})")
        have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not have >= set(TABLES):
            raise StoreError(f"{path}: not a MidStream session (no table {sorted(set(TABLES) - have)[0]!r})")
        if check and (verdict := conn.execute("PRAGMA quick_check(1)").fetchone()[0]) != "ok":
            raise StoreError(f"{path}: the session file is damaged ({verdict})")
        if check and indexes:
            # quick_check does not look into indexes: one with a flipped byte lost rows to a search through it, and
            # a stream's text was shorter in analyze and replay, silently. The tables with indexes are checked
            # whole (their rows are small: the samples and previews, the bulk of a file, have none).
            for (table,) in conn.execute("SELECT DISTINCT tbl_name FROM sqlite_master WHERE type = 'index' AND "
                                         "sql IS NOT NULL").fetchall():
                verdict = conn.execute(f'PRAGMA integrity_check("{table}")').fetchone()[0]
                if verdict != "ok":
                    raise StoreError(f"{path}: the session file is damaged ({verdict}; 'midstream export' reads "
                                     "its rows without the index)")
    except sqlite3.Error as exc:
        conn.close()
        what = "the session file is damaged or truncated" if "malformed" in str(exc) else "not a MidStream session"
        raise StoreError(f"{path}: {what} ({exc})") from None
    except StoreError:
        conn.close()
        raise
    return conn


def info(path: Path) -> SessionInfo:
    conn = _open_session(path)
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta"))
        streams = conn.execute("SELECT count(*) FROM stream").fetchone()[0]
        last = conn.execute("SELECT max(m) FROM (SELECT max(t) AS m FROM snapshot UNION ALL "
                            "SELECT max(t) FROM event)").fetchone()[0]
        size = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
        started, ended = float(meta.get("started", "0")), float(meta["ended"]) if "ended" in meta else None
        duration = float(last or 0.0)
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: the session file is damaged ({exc})") from None
    except (ValueError, TypeError) as exc:
        raise StoreError(f"{path}: the session's description is damaged ({exc})") from None
    finally:
        conn.close()
    status = meta.get("status", "?")
    if status == "recording":  # still being written, or its run ended without closing it
        status = "recording" if being_recorded(path) else "interrupted"
    return SessionInfo(path, started, ended, status, meta.get("command", ""), streams, duration, size)


def prune(folder: Path, keep_mb: float, keep_days: float, protect: Path | None = None) -> list[Path]:
    """Delete the oldest sessions beyond ``keep_days`` or a total of ``keep_mb``; returns what went."""
    files = session_files(folder)
    removed: list[Path] = []
    now = time.time()
    sizes = {p: sum(q.stat().st_size for q in (p, Path(f"{p}-wal")) if q.exists()) for p in files}
    total = sum(sizes.values())
    for path in files:  # oldest first (names are timestamps)
        if path == protect or being_recorded(path):  # (another run's recording, still going: never deleted)
            continue
        too_old = now - path.stat().st_mtime > keep_days * 86400
        if too_old or total > keep_mb * 1e6:
            total -= sizes[path]
            for victim in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                victim.unlink(missing_ok=True)
            removed.append(path)
    return removed


class Session:
    """A recorded session, read-only."""

    def __init__(self, path: str | Path, *, indexes: bool = True) -> None:
        self.path = Path(path)
        self.conn = _open_session(self.path, check=True, indexes=indexes)
        self.conn.row_factory = sqlite3.Row

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def streams(self) -> list[dict]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM stream ORDER BY opened, rowid")]

    # -- what is stored encoded (JSON text, compressed blobs): damage inside a row is one StoreError ---------------

    def damaged(self, where: str, what: str) -> StoreError:
        """The error for a row that cannot be read (``where``: which row; ``what``: what is wrong with it)."""
        return StoreError(f"{self.path}: the session file is damaged ({where}: {what})")

    def json_of(self, text: str | bytes | None, where: str, kind: type = dict) -> Any:
        """A JSON column's value, which must be a ``kind`` (empty or NULL: an empty one)."""
        if text is None or text == "":
            return kind()
        try:
            value = json.loads(text)
        except (ValueError, TypeError) as exc:  # (JSONDecodeError and UnicodeDecodeError are ValueErrors)
            raise self.damaged(where, f"not JSON: {exc}") from None
        if not isinstance(value, kind):
            raise self.damaged(where, f"not a JSON {'object' if kind is dict else 'array'}")
        return value

    def unzip(self, data: bytes | None, where: str, size: int | None = None) -> bytes:
        """A compressed blob's bytes (``size``: how many there must be, or a multiple of it when negative)."""
        try:
            raw = zlib.decompress(data)
        except (zlib.error, TypeError) as exc:  # (TypeError: not a blob at all)
            raise self.damaged(where, f"cannot decompress: {exc}") from None
        if size is not None and (len(raw) % -size if size < 0 else len(raw) != size):
            raise self.damaged(where, f"{len(raw)} bytes decompressed, expected {abs(size)}"
                                      f"{' or a multiple' if size < 0 else ''}")
        return raw

    def rows(self, table: str) -> Iterator[dict]:
        if table not in TABLES:
            raise StoreError(f"no table {table!r}")
        order = {"transcript": "start", "stream": "opened", "series": "stream, name, t0"}.get(table, "t")
        for row in self.conn.execute(f"SELECT * FROM {table} ORDER BY {order}"):  # noqa: S608 - fixed names
            yield dict(row)

    def series(self, stream: str, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(times, values) of one recorded per-sample series."""
        parts = [np.frombuffer(self.unzip(r["data"], f"series row {r['id']}", -16), np.float64).reshape(-1, 2)
                 for r in self.conn.execute("SELECT id, data FROM series WHERE stream = ? AND name = ? ORDER BY t0",
                                            (stream, name))]
        if not parts:
            return np.zeros(0), np.zeros(0)
        arr = np.concatenate(parts)
        return arr[:, 0].copy(), arr[:, 1].copy()

    def series_names(self) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in self.conn.execute("SELECT DISTINCT stream, name FROM series ORDER BY 1, 2")]

    def text_events(self) -> Iterator[dict]:
        """Events in the JSONL session format that ``midstream run FILE.jsonl`` replays."""
        for r in self.conn.execute("SELECT id, stream, t, type, data FROM event ORDER BY t, id"):
            data = self.json_of(r["data"], f"event row {r['id']}")
            if r["type"] == "flag":
                continue  # flags are the analysis' own output, not input to replay
            yield {"t": r["t"], "stream": r["stream"], "type": r["type"], **data}

    # -- what a replay and an analysis of the record read, stream by stream ------------------------

    def snapshots_of(self, stream: str) -> list[dict]:
        """The stream's recorded snapshots in time order (t, seq, status, metrics, attractor, signal, signals,
        error; JSON columns as text; and its id)."""
        return [dict(r) for r in self.conn.execute(
            "SELECT id, t, seq, status, metrics, attractor, signal, signals, error FROM snapshot WHERE stream = ? "
            "ORDER BY t", (stream,))]

    def output_of(self, stream: str) -> Iterator[tuple[float, str, dict]]:
        """A text stream's output in order: (t, "text" or "request", the event's data)."""
        for r in self.conn.execute("SELECT id, t, type, data FROM event WHERE stream = ? "
                                   "AND type IN ('text', 'request') ORDER BY t, id", (stream,)):
            yield r["t"], r["type"], self.json_of(r["data"], f"event row {r['id']}")

    def transcripts_of(self, stream: str) -> list[dict]:
        """Final utterances in order of their start (words as JSON text)."""
        return [dict(r) for r in self.conn.execute("SELECT * FROM transcript WHERE stream = ? ORDER BY start",
                                                   (stream,))]

    def detections_of(self, stream: str) -> list[dict]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM detection WHERE stream = ? ORDER BY t", (stream,))]

    def previews_of(self, stream: str) -> list[tuple[float, int, int, bytes]]:
        """(t, height, width, zlib-compressed RGB bytes) of the stream's preview images, in time order."""
        return [(r["t"], r["height"], r["width"], r["data"]) for r in self.conn.execute(
            "SELECT t, height, width, data FROM preview WHERE stream = ? ORDER BY t", (stream,))]

    def patterns(self) -> list[dict]:
        """The pattern log of every stream, in time order."""
        return [dict(r) for r in self.conn.execute("SELECT * FROM pattern ORDER BY t, id")]

    def pattern_counts(self, stream: str) -> dict[str, int]:
        """How many pattern-log entries of each kind the stream had."""
        return dict(self.conn.execute("SELECT kind, count(*) FROM pattern WHERE stream = ? GROUP BY kind",
                                      (stream,)).fetchall())

    def last_metrics(self, stream: str) -> dict:
        """The metrics of the stream's last snapshot ({} if it has none)."""
        row = self.conn.execute("SELECT id, metrics FROM snapshot WHERE stream = ? ORDER BY t DESC LIMIT 1",
                                (stream,)).fetchone()
        return self.json_of(row["metrics"], f"snapshot row {row['id']}") if row else {}
