"""What every source does with its URI: read its query parameters, refuse unknown ones, say errors in one line.

Each ``from_params`` takes the parameters it knows out of the query's dict with
``param`` (cast, range check, default), then calls ``reject_unknown`` on what is
left, so a misspelt option is an error, never silently ignored.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from .base import SourceError


def query(uri: str, text: str) -> dict[str, str]:
    """The query string of ``uri`` as a dict; a malformed one is a SourceError."""
    try:
        return dict(parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text)))
    except ValueError:
        raise SourceError(f"{uri}: malformed query string {text!r}") from None


def param(params: dict[str, str], name: str, cast: Callable[[str], Any], default: Any,
          check: Callable[[Any], bool] = lambda v: True, what: str = "") -> Any:
    """Take ``name`` out of ``params``: cast and checked, or ``default`` when absent (NaN and inf are refused)."""
    raw = params.pop(name, None)
    if raw is None:
        return default
    try:
        value = cast(raw)
    except (TypeError, ValueError):
        raise SourceError(f"parameter {name}={raw!r}: expected {what or cast.__name__}") from None
    if isinstance(value, float) and not math.isfinite(value) or not check(value):
        raise SourceError(f"parameter {name}={raw!r}: expected {what}")
    return value


def reject_unknown(params: dict[str, str], uri: str) -> None:
    """Parameters nobody took are a mistake (a typo, an option of another source): say which."""
    if params:
        names = ", ".join(sorted(params))
        raise SourceError(f"{uri}: unknown parameter(s) {names}")


def one_line(exc: BaseException) -> str:
    """An exception as one line for a stream error: its type and the first line of its message."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]
