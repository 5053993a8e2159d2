"""Recorded sessions: the only part of MidStream that speaks SQL.

- ``store``: the schema, the ``Recorder`` a hub writes through, the read-only ``Session`` with every query
  a replay, an analysis or an export needs, and the data folder (listing, naming, pruning).
- ``replay``: ``RecordedHub``, a session played back through the hub's read surface (dashboard, NDJSON).
- ``analyze``: a session's recorded signals for ``midstream analyze``.
- ``export``: JSONL, CSV or Parquet files of a session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .store import (
    SUFFIX,
    DamagedRead,
    Recorder,
    Session,
    SessionInfo,
    StoreError,
    data_dir,
    info,
    new_session_path,
    prune,
    resolve,
    session_files,
)

if TYPE_CHECKING:
    from .analyze import recorded_signals
    from .export import FORMATS, export_session
    from .replay import RecordedHub

_LAZY = {"RecordedHub": "replay", "recorded_signals": "analyze", "export_session": "export", "FORMATS": "export"}


def __getattr__(name: str):
    """Replay, analysis and export load when first used (they import the analysis and perception stacks)."""
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["FORMATS", "SUFFIX", "DamagedRead", "RecordedHub", "Recorder", "Session", "SessionInfo", "StoreError",
           "data_dir", "export_session", "info", "new_session_path", "prune", "recorded_signals", "resolve",
           "session_files"]
