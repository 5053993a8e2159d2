"""Human-readable rendering of metrics, shared by the dashboard and headless text output.

Pure string formatting: no Textual import, so the headless mode and the tests
use the same labels and units the user sees on screen.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Mapping
from typing import Any

from .snapshot import Snapshot

IN_A_NAME = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""What a one-line field printed to a terminal (a stream's name, its source, an error, a hit's message, a file's
name) may not hold as it is: every control, newlines and tabs too (a peer's or a proxy client's name could forge
lines, retitle the window, write the clipboard), and the bidirectional overrides and isolates (it could show a
line's text in another order than it has)."""


def escaped(value: object) -> str:
    """``value`` as text with what ``IN_A_NAME`` matches escaped (``\\x1b``, ``\\x0a``, ``\\u202e``)."""
    return IN_A_NAME.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                         else f"\\u{ord(m.group()):04x}", str(value))


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


WIDEST = 12
"""Characters a number may take on a metric line; past it (1e300 from a peer, say) it is shown as 1e+300."""


def _fits(v: float, text: str) -> str:
    return text if len(text) <= WIDEST else f"{v:.3g}"


def num(v: Any, fmt: str = "{:.1f}", unit: str = "") -> str:
    if not _finite(v):
        return "–"
    s = _fits(v, fmt.format(v))
    return f"{s} {unit}" if unit else s


def count(v: Any) -> str:
    """A count as a whole number; "–" for what is not one (a peer's inf, NaN or text; a review found inf tokens
    shown as "nan")."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
        return "–"
    return _fits(v, f"{int(v)}")


def _loop(m: dict) -> str:
    """The loop a text stream ends in, in words, and in which answer of a request for several when not the first."""
    where = m.get("loop_choice")
    known = not isinstance(where, bool) and isinstance(where, numbers.Real) and math.isfinite(where)
    return f"{count(m.get('loop_words', 0))} w" + (f" in #{count(where)}" if known and where >= 1 else
                                                   " think" if known and where == -1 else "")  # (in the reasoning)


def pair(a: Any, b: Any, fmt: str = "{:.1f}", unit: str = "") -> str:
    if not _finite(a) and not _finite(b):
        return "–"
    return f"{num(a, fmt)} / {num(b, fmt)}" + (f" {unit}" if unit else "")


def byte_rate(v: Any) -> str:
    if not _finite(v):
        return "–"
    for unit, scale in (("GB/s", 1e9), ("MB/s", 1e6), ("kB/s", 1e3)):
        if v >= scale:
            return f"{_fits(v / scale, f'{v / scale:.1f}')} {unit}"
    return f"{_fits(v, f'{v:.0f}')} B/s"


def bit_rate(mbps: Any) -> str:
    """Mbit/s shown in the unit that keeps digits: encoded video is often kbit/s, raw video Gbit/s."""
    if not _finite(mbps):
        return "–"
    if mbps >= 1000:
        return f"{_fits(mbps / 1000, f'{mbps / 1000:.1f}')} Gbit/s"
    if mbps >= 1:
        return f"{_fits(mbps, f'{mbps:.1f}')} Mbit/s"
    return f"{_fits(mbps * 1000, f'{mbps * 1000:.0f}')} kbit/s"


def duration(seconds: Any) -> str:
    if not _finite(seconds):
        return "–"
    if abs(seconds) >= 1e9:  # (over 30 years: a peer's nonsense, not a stream's age)
        return f"{seconds:.3g}s"
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{seconds:.1f}s"


def _khz(hz: Any) -> Any:
    return hz / 1000 if _finite(hz) else hz


Row = tuple[str, Callable[[Mapping[str, Any]], str | None]]
"""A label and how to show it; None leaves the row out (a metric this stream does not have)."""

METRIC_ROWS: dict[str, list[Row]] = {
    "text": [
        ("rate", lambda m: num(m.get("tokens_per_s"), "{:.1f}", "tok/s")),
        ("TTFT last/p50", lambda m: pair(m.get("ttft_ms"), m.get("ttft_p50_ms"), "{:.0f}", "ms")),
        ("ITL p50/p99", lambda m: pair(m.get("itl_p50_ms"), m.get("itl_p99_ms"), "{:.1f}", "ms")),
        ("TPOT p50", lambda m: num(m.get("tpot_ms"), "{:.1f}", "ms")),
        # The server's count where it reported usage, plus the chunks counted since (a request under way):
        # marked approximate while any of it is counted.
        ("requests · tok", lambda m: f"{count(m.get('requests', 0))} · " + _tokens(m)),
        ("bytes/s", lambda m: byte_rate(m.get("bytes_per_s"))),
        ("rep-4 · loop", lambda m: f"{num(m.get('rep4'), '{:.2f}')} · {_loop(m)}"),
        ("zlib · novel", lambda m: f"{num(m.get('compression'), '{:.2f}')} · {num(m.get('novelty4'), '{:.2f}')}"),
    ],
    "audio": [
        ("chunks/s", lambda m: num(m.get("chunks_per_s"), "{:.1f}")),
        ("bitrate", lambda m: num(m.get("bitrate_kbps"), "{:.0f}", "kbit/s")),
        ("level/peak dB", lambda m: pair(m.get("level_dbfs"), m.get("peak_dbfs"), "{:.1f}")),
        ("gap p50/p99", lambda m: pair(m.get("interval_p50_ms"), m.get("interval_p99_ms"), "{:.1f}", "ms")),
        ("silence (10 s)", lambda m: num(m.get("silence_pct"), "{:.0f}", "%")),
        ("voice · speech", lambda m: f"{num(m.get('voice_pct'), '{:.0f}', '%')} · {duration(m.get('speech_s'))}"),
        ("centroid/roll", lambda m: pair(_khz(m.get("centroid_hz")), _khz(m.get("rolloff_hz")), "{:.1f}", "kHz")),
        ("utt · w · rtf", lambda m: None if "transcribe" not in m else
            f"{count(m.get('utterances', 0))} · {count(m.get('words', 0))} · "
            f"{num(m.get('transcribe_rtf'), '{:.2f}')}"),
        ("format", lambda m: f"{count(m.get('sample_rate', 0))} Hz · {count(m.get('channels', 0))} ch"),
    ],
    "video": [
        ("fps", lambda m: num(m.get("fps"), "{:.1f}")),
        ("resolution", lambda m: str(m.get("resolution") or "–")),
        ("gap p50/p99", lambda m: pair(m.get("interval_p50_ms"), m.get("interval_p99_ms"), "{:.1f}", "ms")),
        ("bitrate", lambda m: bit_rate(m.get("bitrate_mbps"))),
        ("motion · light", lambda m: f"{num(m.get('motion'), '{:.3f}')} · {num(m.get('brightness'), '{:.2f}')}"),
        ("jitter", lambda m: num(m.get("jitter_ms"), "{:.1f}", "ms")),
        ("cuts · late", lambda m: f"{count(m.get('scene_cuts', 0))} · {count(m.get('late_frames', 0))}"),
        ("faces · bodies", lambda m: None if "detect" not in m else
            f"{count(m.get('faces', 0))} · {count(m.get('bodies', 0))} · "
            f"{num(m.get('detect_p50_ms'), '{:.0f}', 'ms')}"),
    ],
}

def _tokens(m: Mapping[str, Any]) -> str:
    reported, since = m.get("tokens_reported") or 0, m.get("tokens_since_usage") or 0
    if not reported:
        return f"≈{count(m.get('tokens', 0))} tok"
    if not _finite(reported) or not _finite(since):
        return "– tok"
    return f"≈{count(reported + since)} tok" if since else f"{count(reported)} tok"


LIVE_ROWS = frozenset({"rate", "bytes/s", "chunks/s", "bitrate", "level/peak dB", "fps"})
"""Rows that say how a stream is flowing now: once it ended, "–", not its last value frozen."""


def _damage(m: Mapping[str, Any]) -> str | None:
    """Undecodable packets skipped and network gaps, for media inputs; no row while there are none."""
    bad, gaps = m.get("decode_errors", 0) or 0, m.get("gaps", 0) or 0
    if not bad and not gaps:
        return None
    return f"{bad} · {gaps}" + (f" (max {m.get('gap_max_s', 0):.1f} s)" if gaps else "")


COMMON_ROWS: list[Row] = [
    ("bad pkt · gaps", _damage),
    ("uptime", lambda m: duration(m.get("uptime_s"))),
    ("drops · queue", lambda m: f"{count(m.get('drops', 0))} · {count(m.get('queue', 0))}"),
]


def metric_rows(snap: Snapshot) -> list[tuple[str, str]]:
    """(label, value) rows for a stream, kind-specific first."""
    rows = METRIC_ROWS.get(snap.kind, []) + COMMON_ROWS
    ended = snap.status != "open"
    shown = ((label, "– (ended)" if ended and label in LIVE_ROWS else fn(snap.metrics)) for label, fn in rows)
    return [(label, value) for label, value in shown if value is not None]


def headline(snap: Snapshot) -> str:
    """The one number that says most about a stream, for the stream list.

    A rate for an open stream; once it ended, what it delivered (a rate frozen at
    its last value would read as if the stream were still going)."""
    m = snap.metrics
    if snap.status != "open":
        if snap.kind == "text":
            return _tokens(m) if m.get("tokens_reported") else f"{count(m.get('tokens', 0))} tok"
        return duration(m.get("uptime_s"))
    if snap.kind == "text":
        return num(m.get("tokens_per_s"), "{:.0f}", "tok/s")
    if snap.kind == "audio":
        return num(m.get("level_dbfs"), "{:.0f}", "dB")
    if snap.kind == "video":
        return num(m.get("fps"), "{:.0f}", "fps")
    return ""


def attractor_line(snap: Snapshot, attractor=None) -> str:
    a = snap.attractor if attractor is None else attractor
    if a.type == "unknown":
        return f"unknown · {a.reason}"
    # An exponent describes deterministic dynamics only: for noise it means nothing.
    deterministic = a.type in ("strange", "limit cycle")
    doubt = a.evidence.get("lyapunov_unreliable") if isinstance(a.evidence, dict) else None
    if deterministic and doubt:  # the fit says its exponent cannot be trusted: why, not a number
        lyap = f"λ unreliable ({doubt})"
    else:
        lyap = f"λ {a.lyapunov:+.3f}" if deterministic and _finite(a.lyapunov) else "λ –"
    # the type and its confidence first: a narrow panel cuts the end of the line (a doubt's reason can be long)
    return f"{a.type} · conf {a.confidence:.2f} · {lyap} · lag {a.lag}"
