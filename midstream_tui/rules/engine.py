"""Mid-stream rules: conditions on each stream's snapshot, actions taken before the stream ends.

Evaluated after every analysis tick. A rule fires once per episode: when its
condition becomes true for a stream, and again only after it has been false.

Conditions (``when``):
  loop    the stream ends in a repetition loop of at least ``min_words`` words
  stall   no token for ``seconds`` while a request is open (between requests is not a stall; with
          ``adaptive``, once the source is learned, gaps between tokens are judged against its learned
          gaps: max(2.5 s, 10 x its median gap), at most 6 x ``seconds``: see rules/learning.py); before a
          request's first token, no token for ``seconds`` (``adaptive``: 6 x ``seconds``) since it began
  regex   ``pattern`` (Python regular expression) matches newly arrived text (a search that takes longer than
          ``REGEX_TIMEOUT_S`` gives the rule up for that stream, said once: a pattern that backtracks without end
          hung the run, deaf to --duration and SIGTERM)
  metric  ``metric`` (any key of the snapshot's metrics) is ``above`` / ``below`` a value
Actions (``action``):
  flag     an entry in the pattern log (and the recording, headless output)
  cancel   flag, then cancel the stream's source (closes the HTTP stream)
  command  flag, then run ``command`` (a list: no shell) with MIDSTREAM_STREAM,
           MIDSTREAM_RULE and MIDSTREAM_DETAIL in its environment
``streams`` limits a rule to stream ids matching a glob (default ``*``).

A rules file is TOML with one ``[[rule]]`` table per rule (see README).
Without one, ``BUILTIN_RULES`` apply; ``--no-rules`` disables them.
"""

from __future__ import annotations

import difflib
import fnmatch
import math
import os
import subprocess
import tomllib
from dataclasses import dataclass, field

import regex

from ..events import Flag
from ..redact import redact
from ..snapshot import SOURCE_METRICS, Snapshot

CONDITIONS = ("loop", "stall", "regex", "metric")
ACTIONS = ("flag", "cancel", "command")


REGEX_TIMEOUT_S = 0.05
"""The longest one search of a rule's pattern may take (the ``regex`` package's timeout; ``re`` has none)."""
RULES_FILE_MAX = 1 << 20
"""A rules file larger than this is refused (``--rules /dev/zero`` read without end)."""


class RuleError(ValueError):
    """A rules file is wrong; the message names the file, the rule and the field."""


@dataclass(frozen=True)
class Rule:
    name: str
    when: str
    action: str = "flag"
    min_words: int = 40
    seconds: float = 5.0
    pattern: str | None = None
    metric: str | None = None
    above: float | None = None
    below: float | None = None
    streams: str = "*"
    command: tuple[str, ...] = ()
    adaptive: bool = False
    """stall: judge against the source's learned gaps (meta-learning level 0): never under 2.5 s (or ``seconds``
    if lower), never over 6 x ``seconds``."""
    _regex: regex.Pattern | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        # (a rules file's values can be of any TOML type: a wrong one ended the run with a traceback in its tick)
        if not isinstance(self.name, str) or not self.name.strip():
            raise RuleError(f"rule {self.name!r}: name= must be words")
        for key in ("when", "action", "streams"):
            if not isinstance(getattr(self, key), str):
                raise RuleError(f"rule {self.name!r}: {key}={getattr(self, key)!r}, expected a string")
        for key in ("pattern", "metric"):
            if getattr(self, key) is not None and not isinstance(getattr(self, key), str):
                raise RuleError(f"rule {self.name!r}: {key}={getattr(self, key)!r}, expected a string")
        if not isinstance(self.adaptive, bool):
            raise RuleError(f"rule {self.name!r}: adaptive={self.adaptive!r}, expected true or false")
        if not isinstance(self.min_words, int) or isinstance(self.min_words, bool):  # (nan never fired, silently)
            raise RuleError(f"rule {self.name!r}: min_words={self.min_words!r}, expected a whole number")
        for key in ("seconds", "above", "below"):
            value = getattr(self, key)
            if isinstance(value, bool) or value is not None and not isinstance(value, (int, float)):
                raise RuleError(f"rule {self.name!r}: {key}={value!r}, expected a number")
        if self.when not in CONDITIONS:
            raise RuleError(f"rule {self.name!r}: when={self.when!r}, expected one of {', '.join(CONDITIONS)}")
        if self.action not in ACTIONS:
            raise RuleError(f"rule {self.name!r}: action={self.action!r}, expected one of {', '.join(ACTIONS)}")
        if self.when == "regex":
            if not self.pattern:
                raise RuleError(f"rule {self.name!r}: when='regex' needs pattern=")
            try:
                object.__setattr__(self, "_regex", regex.compile(self.pattern))
            except (regex.error, ValueError, OverflowError) as exc:
                raise RuleError(f"rule {self.name!r}: bad pattern: {exc}") from None
        if self.when == "metric" and (not self.metric or (self.above is None and self.below is None)):
            raise RuleError(f"rule {self.name!r}: when='metric' needs metric= and above= or below=")
        if self.action == "command" and not self.command:
            raise RuleError(f"rule {self.name!r}: action='command' needs command=[...]")
        if self.min_words < 1 or not self.seconds > 0:
            raise RuleError(f"rule {self.name!r}: min_words must be >= 1 and seconds > 0")
        for key in ("seconds", "above", "below"):  # (a NaN bound is a rule that never fires, silently)
            value = getattr(self, key)
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise RuleError(f"rule {self.name!r}: {key}={value!r}, expected a finite number")


FIRST_TOKEN_FACTOR = 6.0
"""An adaptive stall rule (the built-in one) waits this many times its ``seconds`` for a request's first token
before it says stall: a long prompt or a reasoning model takes a while (the learned limit between tokens is at
most as much, see rules/learning.py); a rule that is not adaptive waits its ``seconds``."""


BUILTIN_RULES = (
    Rule("stop-loops", "loop", "cancel", min_words=40),
    Rule("stall", "stall", "flag", seconds=5.0, adaptive=True),
)


def load_rules(path: str) -> list[Rule]:
    try:
        with open(path, "rb") as f:
            raw = f.read(RULES_FILE_MAX + 1)
        if len(raw) > RULES_FILE_MAX:
            raise RuleError(f"{path}: larger than {RULES_FILE_MAX >> 20} MiB: not a rules file")
        data = tomllib.loads(raw.decode("utf-8"))
    except OSError as exc:
        raise RuleError(f"{path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError:  # TOML is UTF-8: a binary file, another encoding
        raise RuleError(f"{path}: not valid TOML (not UTF-8 text)") from None
    tables = data.get("rule")
    if not isinstance(tables, list) or not tables:
        raise RuleError(f"{path}: no [[rule]] tables")
    rules = []
    known = {f for f in Rule.__dataclass_fields__ if not f.startswith("_")}
    names: set[str] = set()
    for i, table in enumerate(tables, start=1):
        if not isinstance(table, dict):
            raise RuleError(f"{path}: rule {i}: expected a [[rule]] table, got {table!r}")
        unknown = set(table) - known
        if unknown:
            raise RuleError(f"{path}: rule {i}: unknown field(s) {', '.join(sorted(unknown))}")
        table = dict(table)
        table.setdefault("name", f"rule-{i}")
        if "when" not in table:
            raise RuleError(f"{path}: rule {table['name']!r}: when= is required")
        if "command" in table:
            cmd = table["command"]
            if not isinstance(cmd, list) or not all(isinstance(c, str) for c in cmd):
                raise RuleError(f"{path}: rule {table['name']!r}: command must be a list of strings")
            table["command"] = tuple(cmd)
        try:
            rule = Rule(**table)
        except RuleError as exc:
            raise RuleError(f"{path}: {exc}") from None
        except TypeError as exc:
            raise RuleError(f"{path}: rule {i}: {exc}") from None
        if rule.name in names:  # (a rule's episodes are kept by its name: two of one name fired as neither should)
            raise RuleError(f"{path}: rule {i}: name {rule.name!r} is taken by an earlier rule; names must differ")
        names.add(rule.name)
        rules.append(rule)
    return rules


@dataclass(frozen=True)
class RuleHit:
    t: float
    rule: str
    stream: str
    action: str
    detail: str
    words: int = 0
    """Words the stream had produced when the rule fired (text streams)."""


class RuleEngine:
    """Evaluates rules on the hub's snapshots after every analysis tick and acts."""

    def __init__(self, hub, rules=BUILTIN_RULES) -> None:
        self.hub = hub
        self.rules = list(rules)
        self.hits: list[RuleHit] = []
        self.cancelled: set[str] = set()
        """Streams a rule's cancel action stopped (the learner tells these from a user's cancel)."""
        self._active: set[tuple[str, str]] = set()
        self._scanned: dict[tuple[str, str], int] = {}
        self._judged_seq: dict[str, int] = {}
        self._judged_with: list[Rule] | None = None
        self._globs: dict[tuple[str, str], bool] = {}
        self._misnamed: set[str] = set()
        self._gave_up: set[tuple[str, str]] = set()
        """(rule, stream): a search of the rule's pattern timed out on the stream's text."""
        """Metric rules already said to name a metric the streams do not have (said once per rule)."""
        hub.on_tick(self.tick)

    def _applies(self, rule: Rule, stream: str) -> bool:
        key = (rule.streams, stream)
        hit = self._globs.get(key)
        if hit is None:
            hit = self._globs[key] = fnmatch.fnmatchcase(stream, rule.streams)
        return hit

    def _check(self, rule: Rule, snap: Snapshot) -> tuple[bool, str]:
        m = snap.metrics
        if rule.when == "loop":
            words = int(m.get("loop_words") or 0)
            choice = m.get("loop_choice")  # (a loop in a later choice of a request for several answers)
            where = (f" in choice {int(choice)}" if isinstance(choice, (int, float)) and 1 <= choice < 1e6 else
                     " in the reasoning" if choice == -1 else "")
            return words >= rule.min_words, f"repetition loop of {words} words{where}"
        if rule.when == "stall":
            phase = m.get("request_phase", 2)  # text streams say; others are always "streaming"
            if phase == 1:  # no token yet: the wait for the first (a silent upstream, a hung one)
                # ... while nothing at all came: a proxied answer that streams reasoning or tool calls (chunks, not
                # text) is busy, not stalled (its pauses are not judged before its first text, as before)
                waited = m.get("waiting_first_s")
                ok = (snap.status == "open" and isinstance(waited, float) and math.isfinite(waited)
                      and not m.get("chunks"))
                limit = rule.seconds * (FIRST_TOKEN_FACTOR if rule.adaptive else 1.0)
                return (ok and waited >= limit,
                        f"no first token for {waited:.1f} s (limit {limit:g} s before the first)" if ok else "")
            since = m.get("since_token_s")
            ok = snap.status == "open" and phase != 0 and isinstance(since, float) and math.isfinite(since)
            limit, why = rule.seconds, f"limit {rule.seconds:g} s"
            meta = getattr(self.hub, "meta", None)
            if ok and rule.adaptive and meta is not None and phase == 2:  # between tokens: the source's gaps
                limit, why = meta.stall_threshold(snap.stream, rule.seconds)
            return ok and since >= limit, f"no token for {since:.1f} s ({why})" if ok else ""
        if rule.when == "metric":
            v = m.get(rule.metric)
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                return False, ""
            hit = (rule.above is not None and v > rule.above) or (rule.below is not None and v < rule.below)
            return hit, f"{rule.metric} = {v:.4g}"
        # regex: only text that arrived since the last look (with an overlap for matches across chunks)
        key = (rule.name, snap.stream)
        chars = int(m.get("chars") or 0)
        seen = self._scanned.get(key, 0)
        self._scanned[key] = chars
        new = chars - seen
        if new <= 0 or not snap.text_tail:
            return False, ""
        region_start = max(0, len(snap.text_tail) - new - 200)
        region = snap.text_tail[region_start:]
        offset = chars - len(region)
        if key in self._gave_up:
            return False, ""
        try:
            for match in rule._regex.finditer(region, timeout=REGEX_TIMEOUT_S):
                if offset + match.end() > seen:
                    text = match.group(0)
                    return True, f"matched {redact(text)[:40]!r}"
        except TimeoutError:
            self._gave_up.add(key)
            self.hub.push(Flag(snap.stream, snap.t, kind="rules",
                               message=f"rule {rule.name}: its pattern took over {REGEX_TIMEOUT_S * 1000:.0f} ms "
                                       "on this stream's text (it backtracks without end): not looked for here "
                                       "any more"))
        return False, ""

    def tick(self, now: float) -> None:
        rules = self.rules
        if rules is not self._judged_with:  # rules changed (a proposal applied): judge every stream again
            self._judged_with, self._judged_seq = rules, {}
        for stream, snap in self.hub.snapshots().items():
            if self._judged_seq.get(stream) == snap.seq:
                continue  # an ended stream's last snapshot, already judged: nothing can have changed
            self._judged_seq[stream] = snap.seq
            for rule in rules:
                if not self._applies(rule, stream):
                    continue
                fired, detail = self._check(rule, snap)
                if rule.when == "metric" and snap.status != "open" and rule.name not in self._misnamed:
                    self._say_misnamed(rule, snap, now)
                key = (rule.name, stream)
                if fired and key not in self._active:
                    self._active.add(key)
                    self._act(rule, snap, detail, now)
                elif not fired:
                    self._active.discard(key)

    def _say_misnamed(self, rule: Rule, snap: Snapshot, now: float) -> None:
        """A metric rule whose metric a stream ended without, while it had one named almost the same, and that no
        other stream has either (a misspelling: the rule could never fire) gets one line in the pattern log. A
        metric that is merely absent is not reported: some come only from some sources (``SOURCE_METRICS``)."""
        if rule.metric in snap.metrics or rule.metric in SOURCE_METRICS:
            return
        if any(rule.metric in other.metrics for other in self.hub.snapshots().values()):
            return
        close = difflib.get_close_matches(rule.metric, [k for k in snap.metrics if isinstance(k, str)], n=1,
                                          cutoff=0.8)
        if close:
            self._misnamed.add(rule.name)
            self.hub.push(Flag(snap.stream, now, kind="rules",
                               message=f"rule {rule.name}: no metric {rule.metric!r} on this stream, so it cannot "
                                       f"fire; did you mean {close[0]!r}?"))

    def _act(self, rule: Rule, snap: Snapshot, detail: str, now: float) -> None:
        words = int(snap.metrics.get("tokens") or 0)
        self.hits.append(RuleHit(now, rule.name, snap.stream, rule.action, detail, words))
        message = f"{rule.name}: {detail} -> {rule.action}"
        if rule.action == "cancel":
            self.cancelled.add(snap.stream)  # before the cancel: the learner may judge the stream at once
            if not self.hub.cancel(snap.stream):
                self.cancelled.discard(snap.stream)
                message += " (already ended)"
        elif rule.action == "command":
            env = {**os.environ, "MIDSTREAM_STREAM": snap.stream, "MIDSTREAM_RULE": rule.name,
                   "MIDSTREAM_DETAIL": detail}
            try:
                subprocess.Popen(list(rule.command), env=env, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            except OSError as exc:
                message += f" (command failed: {exc.strerror or exc})"
        since = math.nan
        if rule.when == "stall":
            waited = snap.metrics.get("since_token_s", math.nan)
            if snap.metrics.get("request_phase") == 1:
                waited = snap.metrics.get("waiting_first_s", math.nan)
            since = snap.t - waited
        self.hub.push(Flag(snap.stream, now, message=message, kind="rule", condition=rule.when, since=since))
