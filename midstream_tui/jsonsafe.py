"""``json.loads`` for untrusted lines: nesting is bounded, so a crafted file cannot raise RecursionError.

CPython's JSON decoder recurses once per nesting level; ``[[[[...`` a hundred
thousand levels deep ends in ``RecursionError`` (not a ``ValueError``), which
readers that catch malformed JSON do not expect. ``loads`` refuses anything
nested deeper than ``MAX_DEPTH`` with a ``ValueError`` instead. The depth check
runs only on lines with more than ``MAX_DEPTH`` brackets, so ordinary lines pay
two ``str.count`` calls.
"""

from __future__ import annotations

import json
import math

MAX_DEPTH = 64
"""Far deeper than any session line, SSE payload or series record (they nest 2-6 levels)."""


class TooDeep(ValueError):
    """JSON nested deeper than allowed."""


def depth(obj) -> int:
    """Nesting depth of a decoded JSON value (a scalar is 0), without recursion."""
    deepest = 0
    stack = [(obj, 1)]
    while stack:
        value, level = stack.pop()
        items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if items is None:
            continue
        deepest = max(deepest, level)
        stack.extend((v, level + 1) for v in items if isinstance(v, (dict, list)))
    return deepest


def loads(text: str | bytes, max_depth: int = MAX_DEPTH, **json_kwargs):
    """``json.loads`` (``json_kwargs`` passed on), but nesting deeper than ``max_depth`` is a ``TooDeep`` (a ``ValueError``)."""
    try:
        obj = json.loads(text, **json_kwargs)
    except RecursionError:  # CPython's decoder gives up past its recursion limit, cleanly
        raise TooDeep(f"JSON nested more than {max_depth} levels deep") from None
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8", "replace")
    if text.count("[") + text.count("{") > max_depth and depth(obj) > max_depth:
        raise TooDeep(f"JSON nested more than {max_depth} levels deep")
    return obj


def encodable(text: str) -> str:
    """``text`` as a string UTF-8 can encode: a lone UTF-16 surrogate (half of an emoji split across two chunks,
    or a ``\\ud83d`` escape in a JSON line) becomes U+FFFD, a pair of halves the character they make."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def finite(value):
    """``value`` with every float that JSON cannot hold (NaN, ±inf) replaced by None, in nested lists and dicts."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def unicode_safe(value):
    """``value`` with every string made ``encodable``, in nested lists and dicts; a key with a lone surrogate has it
    written out (``\\ud800``), so that two keys that differ only there stay two."""
    if isinstance(value, str):
        return encodable(value)
    if isinstance(value, dict):
        return {_key(k) if isinstance(k, str) else k: unicode_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [unicode_safe(v) for v in value]
    return value


def _key(key: str) -> str:
    if encodable(key) is key:
        return key
    paired = key.encode("utf-16", "surrogatepass").decode("utf-16", "surrogatepass")  # (halves of a pair joined)
    return "".join(f"\\u{ord(c):04x}" if 0xD800 <= ord(c) <= 0xDFFF else c for c in paired)


def dumps_line(value) -> str:
    """One JSON line any strict parser reads: NaN and ±inf as null, and no lone UTF-16 surrogate (a peer's
    ``"\\ud800"`` escape, kept by Python's decoder, written as such by its encoder: Rust's serde_json, for one,
    refuses the line) — U+FFFD in its place."""
    try:
        text = json.dumps(value, allow_nan=False)
    except ValueError:  # a value no JSON holds (a peer's NaN in a detection box, say): null
        text = json.dumps(finite(value), allow_nan=False)
    if "\\ud" in text:  # (rare: only then is every string looked at)
        text = json.dumps(finite(unicode_safe(value)), allow_nan=False)
    return text
