"""MPEG-DASH input: the manifest read here, the segments fetched over HTTP and handed to PyAV as a byte stream.

The FFmpeg inside PyAV's wheel can write DASH but not read it (its DASH demuxer
needs libxml2), so MidStream reads the MPD itself (stdlib XML) and gives PyAV,
for each adaptation set it analyzes, the initialization segment followed by the
media segments in order: a fragmented MP4 that PyAV demuxes like a file.

Supported: SegmentTemplate with ``$RepresentationID$``, ``$Number$`` (``%0Nd``),
``$Time$`` and ``$Bandwidth$``, either a SegmentTimeline or a fixed ``@duration``;
BaseURL at MPD, Period, AdaptationSet and Representation level; ``static``
manifests (VOD) and ``dynamic`` ones (live: the manifest is read again every
``minimumUpdatePeriod`` and new segments are fetched as they appear). One
representation per adaptation set is taken: the highest bandwidth of the first
video set and of the first audio set.
"""

from __future__ import annotations

import http.client
import io
import math
import re
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

_NS = re.compile(r"^\{[^}]*\}")
_DURATION = re.compile(r"^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$")
_TEMPLATE = re.compile(r"\$(RepresentationID|Number|Time|Bandwidth)(?:%0(\d+)d)?\$")
MAX_MANIFEST = 4 << 20
MAX_SEGMENT = 256 << 20
MAX_SEGMENTS = 1_000_000
"""Segments one track may list (11 days of 1-second segments): a manifest's r="2000000000" built two billion URLs."""
MAX_WIDTH = 32
"""Digits a ``$Number%0Nd$``/``$Time%0Nd$`` tag may pad to (a 64-bit number has 20): ``%020000d`` made every URL
20 kB long."""
MAX_URL = 8192
"""Characters in one segment URL."""
MAX_VALUE = (1 << 63) - 1
"""The largest number attribute read (DASH's are 32- or 64-bit)."""
MAX_SECONDS = 1e10
"""The longest duration read (317 years): ``P99…9D`` was infinite and failed as an OverflowError."""


class DashError(ValueError):
    """A manifest MidStream cannot play; the message says why, in one line."""


def parse_duration(text: str | None) -> float | None:
    """ISO 8601 durations as DASH uses them (``PT3.0S``, ``PT1H2M``, ``P1DT2S``), in seconds."""
    if not text:
        return None
    seconds, why = _duration(text)
    if seconds is None:
        raise DashError(f"unreadable duration {_shown(text)}: {why}")
    return seconds


def _duration(text: str) -> tuple[float | None, str]:
    """Seconds, or None and why not."""
    m = _DURATION.match(text.strip().replace("P0Y0M", "P"))
    if not m or not any(m.groups()):
        return None, "not an ISO 8601 duration such as PT10S"
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in m.groups())
    total = days * 86400 + hours * 3600 + minutes * 60 + seconds
    if not total <= MAX_SECONDS:  # (also infinity: 400 digits read as a float are infinite)
        return None, f"longer than {MAX_SECONDS:g} s"
    return total, ""


def _shown(value: str, limit: int = 40) -> str:
    """``value`` quoted for a one-line message: cut short, control characters escaped."""
    cut = value if len(value) <= limit else value[:limit] + "..."
    return '"' + cut.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'


def _bad(el: ET.Element, name: str, value: str, why: str) -> DashError:
    return DashError(f"bad manifest: {_tag(el)} {name}={_shown(value)} ({why})")


def _whole(el: ET.Element, name: str, default: int, least: int = 0) -> int:
    """A whole-number attribute from ``least`` to ``MAX_VALUE``; absent or empty: ``default``."""
    value = el.get(name)
    if value is None or not value.strip():
        return default
    text = value.strip()
    must = f"must be a whole number {'> 0' if least == 1 else f'>= {least}'}"
    if not re.fullmatch(r"[+-]?[0-9]+", text):  # (no "1e3", "2.5", "nan", "inf", "0x10")
        raise _bad(el, name, value, must)
    if len(text.lstrip("+-").lstrip("0")) > 19:  # (before int(): 5,000 digits are a ValueError of their own)
        raise _bad(el, name, value, must if text.startswith("-") else "larger than 2^63 - 1")
    number = int(text)
    if number < least:
        raise _bad(el, name, value, must)
    if number > MAX_VALUE:
        raise _bad(el, name, value, "larger than 2^63 - 1")
    return number


def _seconds(el: ET.Element, name: str) -> float | None:
    """A duration attribute (``parse_duration``), its errors naming the element and attribute."""
    value = el.get(name)
    if not value:
        return None
    seconds, why = _duration(value)
    if seconds is None:
        raise _bad(el, name, value, why)
    return seconds


def _tag(el: ET.Element) -> str:
    return _NS.sub("", el.tag)


def _child(el: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in el if _tag(c) == name), None)


def _children(el: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in el if _tag(c) == name]


def fill(template: str, rep_id: str, bandwidth: int, number: int | None = None, t: int | None = None) -> str:
    def sub(m: re.Match) -> str:
        value = {"RepresentationID": rep_id, "Bandwidth": bandwidth, "Number": number, "Time": t}[m.group(1)]
        if value is None:
            raise DashError(f"template {_shown(template)} needs ${m.group(1)}$, which this manifest does not give")
        if not m.group(2) or m.group(1) == "RepresentationID":
            return str(value)
        if len(m.group(2).lstrip("0")) > 3 or int(m.group(2)) > MAX_WIDTH:  # (zfill(20000) for every segment)
            raise DashError(f"bad manifest: template {_shown(template)} pads ${m.group(1)}$ to "
                            f"{_shown(m.group(2), 12)[1:-1]} digits (at most {MAX_WIDTH})")
        return str(value).zfill(int(m.group(2)))

    return _TEMPLATE.sub(sub, template).replace("$$", "$")


class Segments(Sequence):
    """A track's segments, ``(number or time key, URL)`` in order, each URL built when it is read.

    Held as runs (first number, first time, duration, count), one per timeline entry or one for fixed
    durations: memory follows the manifest's size, not the number of segments times the URLs' length (a
    260-byte manifest listing 20,000 URLs of 20 kB each once took 424 MB)."""

    def __init__(self, media: str = "", rep_id: str = "", bandwidth: int = 0, base: str = "",
                 by_time: bool = False) -> None:
        self.media, self.rep_id, self.bandwidth, self.base = media, rep_id, bandwidth, base
        self._by_time = by_time  # the key: the time (a timeline addressed by $Time$) or the number
        self._runs: list[tuple[int, int, int, int]] = []
        self._starts: list[int] = []  # index of each run's first segment
        self._count = 0

    def add(self, number: int, t: int, d: int, count: int) -> None:
        """``count`` segments from ``number`` and time ``t``, ``d`` apart; the longest URL among them is checked."""
        if count <= 0:
            return
        self._runs.append((number, t, d, count))
        self._starts.append(self._count)
        self._count += count
        url = self._url(number + count - 1, t + (count - 1) * d)  # (numbers and times grow within a run)
        if len(url) > MAX_URL:
            raise DashError(f"bad manifest: SegmentTemplate media={_shown(self.media)} makes URLs of "
                            f"{len(url):,} characters (at most {MAX_URL:,})")

    def _url(self, number: int, t: int) -> str:
        return urljoin(self.base, fill(self.media, self.rep_id, self.bandwidth, number, t))

    def _item(self, number: int, t: int) -> tuple[int, str]:
        return (t if self._by_time else number, self._url(number, t))

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(self._count)[index]]
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError("segment index out of range")
        run = bisect_right(self._starts, index) - 1
        number, t, d, _ = self._runs[run]
        k = index - self._starts[run]
        return self._item(number + k, t + k * d)

    def __iter__(self) -> Iterator[tuple[int, str]]:
        for number, t, d, count in self._runs:
            for k in range(count):
                yield self._item(number + k, t + k * d)


@dataclass
class Track:
    kind: str
    rep_id: str
    init_url: str
    segments: Segments = field(default_factory=Segments)
    """(number or time key, URL), in order, built as they are read."""


@dataclass
class Manifest:
    dynamic: bool
    update_period: float
    tracks: list[Track]


def parse_manifest(text: str, url: str, now: float | None = None) -> Manifest:
    """Tracks (one video, one audio at most) with their segment URLs, from an MPD document."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise DashError(f"not an MPD manifest: {exc}") from None
    if _tag(root) != "MPD":
        raise DashError(f"not an MPD manifest (root element {_tag(root)!r})")
    dynamic = root.get("type", "static") == "dynamic"
    update = _seconds(root, "minimumUpdatePeriod") or 2.0
    total = _seconds(root, "mediaPresentationDuration")
    base = _base(root, url)
    periods = _children(root, "Period")
    if not periods:
        raise DashError("the manifest has no Period")
    period = periods[-1] if dynamic else periods[0]  # live: the newest period; VOD: the first
    pbase = _base(period, base)
    tracks: list[Track] = []
    for aset in _children(period, "AdaptationSet"):
        reps = _children(aset, "Representation")
        if not reps:
            continue
        kind = _kind(aset, reps[0])
        if kind is None or any(t.kind == kind for t in tracks):
            continue
        rep = max(reps, key=lambda r: _whole(r, "bandwidth", 0))
        template = _child(rep, "SegmentTemplate")
        if template is None:  # (an Element with no children is falsy: no `or` here)
            template = _child(aset, "SegmentTemplate")
        if template is None:
            raise DashError("only SegmentTemplate manifests are supported (no SegmentList or SegmentBase)")
        rbase = _base(rep, _base(aset, pbase))
        rep_id, bandwidth = rep.get("id", ""), _whole(rep, "bandwidth", 0)
        init = template.get("initialization")
        media = template.get("media")
        if not media:
            raise DashError("SegmentTemplate without a media template")
        timeline = _child(template, "SegmentTimeline")
        track = Track(kind, rep_id, urljoin(rbase, fill(init, rep_id, bandwidth)) if init else "",
                      Segments(media, rep_id, bandwidth, rbase, by_time=timeline is not None and "$Time$" in media))
        if len(track.init_url) > MAX_URL:
            raise DashError(f"bad manifest: SegmentTemplate initialization={_shown(init or '')} makes a URL of "
                            f"{len(track.init_url):,} characters (at most {MAX_URL:,})")
        timescale = _whole(template, "timescale", 1, least=1)
        start_number = _whole(template, "startNumber", 1)
        if timeline is not None:
            number, t = start_number, 0
            for s in _children(timeline, "S"):
                t = _whole(s, "t", t)
                if not s.get("d", "").strip():
                    raise DashError("a SegmentTimeline entry without a duration")
                d = _whole(s, "d", 0, least=1)
                repeat = _whole(s, "r", 0, least=-1)
                if repeat < 0:  # until the end of the period
                    end = (total or 0.0) * timescale
                    repeat = max(0, math.ceil((end - t) / d) - 1)
                if len(track.segments) + repeat + 1 > MAX_SEGMENTS:
                    raise DashError(f"a track of more than {MAX_SEGMENTS:,} segments (SegmentTimeline r={repeat})")
                track.segments.add(number, t, d, repeat + 1)
                number += repeat + 1
                t += (repeat + 1) * d
        else:
            if not template.get("duration", "").strip():
                raise DashError("SegmentTemplate needs a SegmentTimeline or a duration")
            duration = _whole(template, "duration", 0, least=1)
            seconds = duration / timescale
            if dynamic:
                start = _wallclock(root.get("availabilityStartTime"))
                now = time.time() if now is None else now
                last = start_number + int((now - start) / seconds) - 1
                first = max(start_number, last - 2)  # begin near the live edge
            else:
                if total is None:
                    raise DashError("a static manifest without mediaPresentationDuration")
                first, last = start_number, start_number + math.ceil(total / seconds) - 1
            if last - first + 1 > MAX_SEGMENTS:
                raise DashError(f"a track of more than {MAX_SEGMENTS:,} segments ({last - first + 1:,} of "
                                f"{seconds:g} s)")
            track.segments.add(first, (first - start_number) * duration, duration, last - first + 1)
        tracks.append(track)
    if not tracks:
        raise DashError("the manifest has no audio or video adaptation set")
    tracks.sort(key=lambda tr: tr.kind != "video")  # video first
    return Manifest(dynamic, update, tracks)


def _kind(aset: ET.Element, rep: ET.Element) -> str | None:
    for value in (aset.get("contentType"), aset.get("mimeType"), rep.get("mimeType")):
        if value and value.split("/")[0] in ("video", "audio"):
            return value.split("/")[0]
    return None


def _base(el: ET.Element, parent: str) -> str:
    base = _child(el, "BaseURL")
    return urljoin(parent, base.text.strip()) if base is not None and base.text else parent


def _wallclock(text: str | None) -> float:
    from datetime import datetime, timezone

    if not text:
        raise DashError("a dynamic manifest without availabilityStartTime")
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise DashError(f"unreadable availabilityStartTime {text!r}") from None
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)).timestamp()


def _request(url: str) -> tuple[urllib.request.OpenerDirector | None, str]:
    """An opener for ``url`` and the URL to ask for and to name in messages: a ``user:password@`` in it
    (urllib would take it for part of the host name) becomes Basic auth answered to that host's challenge only,
    never sent to a host a redirect leads to; it is in neither URL."""
    parts = urlsplit(url)
    login, at, hostport = parts.netloc.rpartition("@")
    if not at:
        return None, url
    clean = urlunsplit(parts._replace(netloc=hostport))
    user, _, password = login.partition(":")
    logins = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    logins.add_password(None, f"{parts.scheme}://{hostport}/", unquote(user), unquote(password))
    return urllib.request.build_opener(urllib.request.HTTPBasicAuthHandler(logins)), clean


def fetch(url: str, limit: int, timeout: float = 10.0) -> bytes:
    opener, url = _request(url)
    try:
        with (opener.open(url, timeout=timeout) if opener is not None
              else urllib.request.urlopen(url, timeout=timeout)) as resp:  # noqa: S310 - http(s) checked by the caller
            data = resp.read(limit + 1)
            declared = resp.headers.get("Content-Length", "")
        if declared.isdigit() and len(data) < int(declared) <= limit:  # (a read of a set size does not raise)
            raise http.client.IncompleteRead(data, int(declared) - len(data))
    except urllib.error.HTTPError as exc:
        raise DashError(f"{url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ConnectionError(f"{url}: {getattr(exc, 'reason', exc)}") from None
    except http.client.HTTPException as exc:  # a body cut short (IncompleteRead), a garbled answer: not an end
        raise ConnectionError(f"{url}: the server broke off the answer ({type(exc).__name__})") from None
    if len(data) > limit:
        raise DashError(f"{url}: larger than {limit >> 20} MB")
    return data


def load_manifest(url: str) -> Manifest:
    data = fetch(url, MAX_MANIFEST)
    try:
        return parse_manifest(data.decode("utf-8"), url)
    except UnicodeDecodeError:
        raise DashError("the manifest is not UTF-8 text") from None


class SegmentStream(io.RawIOBase):
    """One track's init segment then its media segments, as a readable byte stream for PyAV."""

    def __init__(self, url: str, kind: str, manifest: Manifest, cancelled: Callable[[], bool]) -> None:
        self.url, self.kind, self.cancelled = url, kind, cancelled
        self._chunks = self._segments(manifest)
        self._buf = b""
        self.segments_read = 0

    def readable(self) -> bool:
        return True

    def _track(self, manifest: Manifest) -> Track:
        for track in manifest.tracks:
            if track.kind == self.kind:
                return track
        raise DashError(f"the manifest no longer has a {self.kind} track")

    def _segments(self, manifest: Manifest) -> Iterator[bytes]:
        track = self._track(manifest)
        if track.init_url:
            yield fetch(track.init_url, MAX_SEGMENT)
        seen: set[int] = set()
        while True:
            for key, url in self._track(manifest).segments:
                if key in seen:
                    continue
                if self.cancelled():
                    return
                if manifest.dynamic:  # (a VOD's segments are read once: no set of a million keys)
                    seen.add(key)
                yield fetch(url, MAX_SEGMENT)
                self.segments_read += 1
            if not manifest.dynamic:
                return
            deadline = time.monotonic() + manifest.update_period
            while time.monotonic() < deadline:
                if self.cancelled():
                    return
                time.sleep(0.1)
            manifest = load_manifest(self.url)

    def readinto(self, buffer) -> int:
        while not self._buf:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._buf = chunk
        n = min(len(buffer), len(self._buf))
        buffer[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n
