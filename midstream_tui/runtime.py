"""One run's context: what is attached to the hub (perception, rules, the meta-learner, the session recorder),
and its orderly close.

``midstream run`` and ``demo`` build a ``RunContext`` from their options, attach it to the hub they run, and
close it on every way out (quit, Ctrl+C, errors): the learner's state is saved, the recorder flushed, and
what happened is said in one line each. The coming ``proxy``, ``watch`` and ``--publish`` modes plug in here.

    with RunContext(RunOptions(record="")) as run:
        hub = run.attach(Hub())
        ...
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .display import escaped
from .hub import Hub
from .perception import Perception
from .rules import BUILTIN_RULES, MetaLearner, Rule, RuleEngine, default_path
from .sessions import Recorder, StoreError, data_dir, new_session_path, prune


@dataclass(frozen=True)
class RunOptions:
    """What a run attaches to its hub."""

    rules: tuple[Rule, ...] = BUILTIN_RULES
    """Mid-stream rules (none: ``()``)."""
    perception: Perception = field(default_factory=Perception)
    learn: bool = True
    """Use and update what was learned (meta-learning state beside the sessions)."""
    meta_auto: bool = False
    """Apply rule-change proposals within their bounds without asking."""
    record: str | None = ""
    """Record the session: ``""`` into the data folder (pruned to the keep limits), a path, or None (off)."""
    command: str = "midstream"
    """The command line, kept in the recording."""
    keep_mb: float = 1000.0
    keep_days: float = 30.0
    data_dir: Path | None = None
    """Where sessions are recorded and learning is kept (the ``data_dir`` setting; None: its default)."""


def _to_stderr(line: str) -> None:
    try:
        print(f"midstream: {line}", file=sys.stderr, flush=True)
    except (OSError, ValueError):  # the terminal went away (an SSH connection dropped): nobody to tell
        pass


class RunError(Exception):
    """The run cannot start as asked (a recording path that cannot be written): one line."""


class RunContext:
    """Perception, rules, the learner and the recorder of one run, attached to its hub and closed in order."""

    def __init__(self, options: RunOptions, *, say: Callable[[str], None] | None = None) -> None:
        self.options = options
        self._say = say or _to_stderr
        self.engine: RuleEngine | None = None
        self.learner: MetaLearner | None = None
        self.recorder: Recorder | None = None
        self.hub: Hub | None = None

    def attach(self, hub: Hub) -> Hub:
        """Attach everything the options ask for to ``hub`` (once); returns the hub."""
        if self.hub is not None:
            raise RuntimeError("a run context attaches to one hub")
        self.hub = hub
        opts = self.options
        hub.perception = opts.perception
        self.engine = RuleEngine(hub, list(opts.rules)) if opts.rules else None
        if opts.learn:
            self.learner = MetaLearner(default_path(opts.data_dir or data_dir())).attach(hub, self.engine, auto=opts.meta_auto)
        self.recorder = self._recorder()
        if self.recorder is not None:
            self.recorder.attach(hub)
        return hub

    def _recorder(self) -> Recorder | None:
        opts = self.options
        if opts.record is None:
            return None
        try:
            if opts.record:
                return Recorder(opts.record, command=opts.command)
            folder = opts.data_dir or data_dir()
            path = new_session_path(folder)
            prune(folder, opts.keep_mb, opts.keep_days)
            return Recorder(path, command=opts.command)
        except (StoreError, OSError) as exc:
            if opts.record:
                if isinstance(exc, OSError) and exc.strerror:  # (a store error names its file itself)
                    where = exc.filename or opts.record
                    raise RunError(f"--record {opts.record}: cannot write there ({where}: {exc.strerror})") from None
                raise RunError(str(exc)) from None
            self._say(f"warning: not recording ({exc}); --no-record silences this")
            return None

    def why_cut(self, stream: str) -> tuple[str, str]:
        """(rule, reason) of the newest cancel of ``stream`` by a rule; a cancel without one was the user's."""
        for hit in reversed(self.engine.hits if self.engine is not None else []):
            if hit.stream == stream and hit.action == "cancel":
                return hit.rule, hit.detail
        return "cancel", "cancelled by the user"

    @property
    def recording(self) -> Path | None:
        return self.recorder.path if self.recorder is not None else None

    def close(self) -> None:
        """What was learned is kept for the next run; the recording is flushed (on every way out)."""
        try:
            if self.learner is not None:
                learner, self.learner = self.learner, None
                try:
                    learner.save()
                except OSError as exc:
                    self._say(f"warning: meta-learning state not saved ({exc.strerror or exc})")
        finally:
            if self.recorder is not None:
                recorder, self.recorder = self.recorder, None
                recorder.close()
                if recorder.lost:
                    self._say(f"session recorded in {escaped(recorder.path)}, incomplete: {recorder.lost} items could "
                              f"not be written ({recorder.error})")
                else:
                    said = f" ({recorder.error})" if recorder.error else ""
                    self._say(f"session recorded in {escaped(recorder.path)}{said}")

    def __enter__(self) -> RunContext:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
