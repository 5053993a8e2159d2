"""What the pattern log shows: hits ordered by time, chatter merged, what to act on marked.

Analysis notices many small things (a phrase seen again, a short silence, a scene
cut) and a few that a person should act on (a rule acting, a loop, a stall, an
error). Shown as they come, the first kind buries the second: the default demo
logged ~260 entries in 2.5 minutes, mostly recurring phrases. The feed keeps every
entry in time order (hits from different streams and late speech finals arrive out
of order), shows each alert on its own line, and merges repeats of a low-priority
kind on one stream within ``MERGE_WINDOW`` seconds into the entry that opened the
window ("x4 in 60 s"). Pure data: the dashboard draws it, tests read it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from ..snapshot import PatternHit

ALERT, NOTICE, CHATTER = 0, 1, 2
PRIORITY = {
    # act on these: something is wrong or was done to a stream
    "rule": ALERT, "loop": ALERT, "stall": ALERT, "error": ALERT,
    # worth reading: what was said or seen, a loop that ended, a connection event
    "speech": NOTICE, "detection": NOTICE, "loop-end": NOTICE, "stall-end": NOTICE, "media": NOTICE, "webrtc": NOTICE,
    "gap": NOTICE,
    # context: frequent by nature
    "recurring": CHATTER, "silence": CHATTER, "scene-cut": CHATTER, "burst": CHATTER,
}
MERGE_WINDOW = 60.0
"""Seconds during which repeats of a chatter kind on one stream fold into one entry."""
MAX_ENTRIES = 500


def priority(kind: str) -> int:
    return PRIORITY.get(kind, NOTICE)


@dataclass
class FeedEntry:
    hit: PatternHit
    count: int = 1
    """Hits folded into this entry (this one and its repeats)."""
    last_t: float = field(default=float("nan"))

    @property
    def t(self) -> float:
        return self.hit.t

    @property
    def priority(self) -> int:
        return priority(self.hit.kind)


class PatternFeed:
    """Entries in time order, with repeats of chatter merged; bounded."""

    def __init__(self, merge_window: float = MERGE_WINDOW, max_entries: int = MAX_ENTRIES) -> None:
        self.merge_window = merge_window
        self.max_entries = max_entries
        self.entries: list[FeedEntry] = []
        self._keys: list[float] = []  # entry times, for ordered insertion
        self._open: dict[tuple[str, str], FeedEntry] = {}  # (stream, kind) -> the entry taking repeats
        self.version = 0
        """Bumped on every change, so a view redraws only when something changed."""
        self.alerts = 0
        self.total = 0

    def add(self, hits) -> int:
        """Take new hits; returns how many entries were added (merged hits add none)."""
        added = 0
        for hit in hits:
            self.total += 1
            if priority(hit.kind) == ALERT:
                self.alerts += 1
            if self._merge(hit):
                continue
            entry = FeedEntry(hit, last_t=hit.t)
            i = bisect.bisect_right(self._keys, hit.t)
            self._keys.insert(i, hit.t)
            self.entries.insert(i, entry)
            if priority(hit.kind) == CHATTER:
                self._open[(hit.stream, hit.kind)] = entry
            added += 1
        if len(self.entries) > self.max_entries:
            drop = len(self.entries) - self.max_entries
            gone = self.entries[:drop]
            del self.entries[:drop], self._keys[:drop]
            for e in gone:
                key = (e.hit.stream, e.hit.kind)
                if self._open.get(key) is e:
                    del self._open[key]
        if hits:
            self.version += 1
        return added

    def _merge(self, hit: PatternHit) -> bool:
        if priority(hit.kind) != CHATTER:
            return False
        entry = self._open.get((hit.stream, hit.kind))
        if entry is None or abs(hit.t - entry.t) > self.merge_window:
            return False
        entry.count += 1
        entry.last_t = max(entry.last_t, hit.t)
        return True


def entry_text(entry: FeedEntry, t0: float) -> tuple[str, str, str, str]:
    """(time, stream, kind, message) of an entry as shown; the message without its kind repeated."""
    hit = entry.hit
    message = hit.message
    spoken_kind = hit.kind.replace("-", " ")
    if message.lower().startswith(spoken_kind + " "):
        message = message[len(spoken_kind) + 1:]
    if entry.count > 1:
        span = max(0.0, entry.last_t - entry.t)
        message += f" · +{entry.count - 1} more in {span:.0f} s"
    return f"{hit.t - t0:6.1f}s", hit.stream, hit.kind, message
