"""Media through PyAV (FFmpeg inside the wheel): files, HLS, DASH, MPEG-TS over UDP, RTMP pull.

    clip.mp4[?realtime=0][&name=cam]        a media file (paced by its timestamps unless realtime=0;
                                            loop=1 plays it again and again)
    http://127.0.0.1:8000/live/index.m3u8   HLS (VOD or live), DASH (.mpd), udp://..., rtmp://... (pull)
    rtmp://127.0.0.1:1935/live/s?listen=1   wait for a publisher; listen again when it leaves
    ...&restream=rtmp://ingest/app/KEY      forward the packets unchanged (remuxed) while analysing
    ...&reconnect=5                         network inputs: retries after a failure (capped
                                            exponential backoff with jitter; 0: none)
    ...&gap=3                               network inputs: seconds without data reported as a
                                            network gap (pattern log, ``gaps`` metric; 0: off)
    ...&realtime=0                          network VOD (HLS, DASH, http files): read as fast as
                                            analysis takes it instead of at the media's pace

MidStream's own parameters (name, listen, reconnect, restream, gap, realtime) are
taken out of a network URL; the rest of its query goes to FFmpeg (e.g. udp's
fifo_size). SRT needs an FFmpeg built with libsrt, which PyAV's wheel is not:
refused clearly.

A packet the decoder rejects (corrupt bytes) is skipped and counted (the
``decode_errors`` metric, one pattern entry per run of bad packets); decoding goes
on with the next one. A network input that ends early is an error (or a
reconnection that resumes where it stopped), never a normal end: a VOD (known
duration) must have played to its end, a live HLS playlist must say it ended
(#EXT-X-ENDLIST), any other live input that stops is an input that went away. An
input known to be VOD can wait, so a slow consumer holds it back instead of
dropping its frames, as with files.

Video becomes the stream ``<name>`` (RGB frames, with the encoded packet size,
so the bitrate is the real one), audio the stream ``<name>-audio`` (resampled
to 48 kHz mono PCM16). Demuxing and decoding run in a thread; events reach the
event loop through a bounded queue, so a slow consumer holds the reader back
instead of growing memory. Other FFmpeg errors end the stream with a one-line error.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import math
import os
import threading
import time
from collections.abc import AsyncIterator
from typing import Any
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import av
from av.video.reformatter import VideoReformatter

from ..clock import Clock
from ..events import AudioChunk, Event, Flag, StreamClosed, StreamError, StreamOpened, VideoFrame
from ..redact import rtmp_key, without_rtmp_key
from .base import Backoff, Source, SourceError
from .params import one_line, param, reject_unknown

MEDIA_SUFFIXES = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".ts", ".m2ts", ".flv", ".mpg", ".mpeg", ".wav", ".mp3",
                  ".ogg", ".oga", ".opus", ".flac", ".m4a", ".aac")
AUDIO_SUFFIXES = (".wav", ".mp3", ".oga", ".opus", ".flac", ".m4a", ".aac")
"""Files that hold sound only: one audio stream, no empty video stream beside it, when served over HTTP too."""
NETWORK_SCHEMES = ("http", "https", "udp", "rtmp", "rtsp", "srt")
AUDIO_RATE = 48_000
SINK_WAIT_S = 0.0125
"""Seconds the reader of a lossless input (a file) waits for room in a full analysis queue before offering again."""
LIVE_SCHEMES = ("udp", "rtmp", "rtsp")
"""Network inputs that are live by nature: when one ends, the input went away."""
STABLE_MEDIA_S = 10.0
"""Media seconds a live session must have played for a reconnection after it to get the full retry budget back."""
READ_TIMEOUT_S = 10.0
"""Seconds a network input may take to open, or to send its next data, before it counts as timed out."""
GAP_S = 3.0
"""Default seconds without data from a network input that make a reported gap."""
UNDECODABLE_LIMIT = 100
"""Bad packets in a row, with nothing decoded yet, after which a stream is judged undecodable."""
END_TOLERANCE_S = 0.5
"""How far short of its announced duration a VOD may end and still count as complete."""
FILE_TOLERANCE = 0.01
"""A local file may also end this fraction of its declared duration short and count as complete (rounding,
priming and padding of the codecs: a few tens of milliseconds in files measured)."""
DECLARED_FORMATS = ("matroska", "mov", "avi", "flac")
"""Containers (FFmpeg's first format name) whose duration is written in the file itself, not estimated from
what it holds: a file of them that delivers less was cut short. (MPEG-TS and MPEG-PS durations are read from the
file's last timestamps, MP3 and ADTS ones often guessed from the bitrate: no promise there.)"""
OGG_TAIL = 1 << 18
"""Bytes read from the end of an Ogg file to find its last pages (a page holds at most 65,307)."""


class _LoopGone(Exception):
    """The event loop the reader feeds has finished."""


class InputEndedEarly(ConnectionError):
    """A network input ended before its end: a truncated VOD or a live input that went away."""


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _OGG_TABLE[((crc >> 24) ^ byte) & 0xFF]
    return crc


def _ogg_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else r << 1
        table.append(r & 0xFFFFFFFF)
    return table


_OGG_TABLE = _ogg_table()


def _ogg_walk(tail: bytes, at: int) -> tuple[bool, int] | None:
    """Follow Ogg pages from ``at`` to the end of ``tail`` (the file's end): (cut, granule of the last page)
    when the first page checks out (its CRC) and the chain of pages reaches the end, None if it does not."""
    verified, granule = False, -1
    while True:
        head = tail[at:at + 27]
        if head[:4] != b"OggS" or (len(head) > 4 and head[4] != 0):
            return None
        if len(head) >= 14:
            granule = int.from_bytes(head[6:14], "little", signed=True)
        if len(head) < 27 or at + 27 + head[26] > len(tail):
            return (True, granule) if verified else None
        end = at + 27 + head[26] + sum(tail[at + 27:at + 27 + head[26]])
        if end > len(tail):
            return (True, granule) if verified else None
        if not verified:
            page = bytearray(tail[at:end])
            page[22:26] = bytes(4)
            if _ogg_crc(bytes(page)) != int.from_bytes(head[22:26], "little"):
                return None
            verified = True
        if end == len(tail):
            return False, granule
        at = end


def ogg_cut(path: str) -> tuple[bool, int] | None:
    """Whether an Ogg file ends in the middle of a page (a copy or a recording cut short; FFmpeg plays the whole
    pages and says nothing), and the granule position (the media time, in the stream's units, -1 if none) that
    last page reaches. None when the end of the file cannot be read as Ogg pages."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            start = max(0, size - OGG_TAIL)
            f.seek(start)
            tail = f.read()
    except OSError:
        return None
    at = tail.find(b"OggS")
    while at != -1:
        verdict = _ogg_walk(tail, at)
        if verdict is not None:
            return verdict
        at = tail.find(b"OggS", at + 1)
    return None


class _Restream:
    """Forwards the input's packets unchanged (remuxed, not re-encoded) to another URL or file."""

    def __init__(self, url: str, inputs: list) -> None:
        scheme = urlsplit(url).scheme
        fmt = {"rtmp": "flv", "rtmps": "flv", "udp": "mpegts", "srt": "mpegts"}.get(scheme)
        self.url = url
        self.container = av.open(url, "w", format=fmt, timeout=(10.0, 10.0))
        self.map = {s.index: self.container.add_stream_from_template(s) for s in inputs}
        self.packets = 0

    def send(self, packet) -> None:
        if packet.dts is None:  # FFmpeg's flush packets carry nothing to forward
            return
        packet.stream = self.map[packet.stream.index]
        self.container.mux(packet)
        self.packets += 1

    def close(self) -> None:
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - the destination went away; nothing left to flush to; audit: ignore
            pass


def is_picture(stream) -> bool:
    """A still picture stored as a video stream (an audio file's cover art): not a video to play."""
    try:
        return bool(stream.disposition & av.stream.Disposition.attached_pic)
    except (AttributeError, TypeError):  # (a PyAV without dispositions: every stream is what it says)
        return False


UNKNOWN_WAV_LENGTH = 0x7FFF0000
"""A data length from here up says "not known" rather than a length, as 0 does: writers to a pipe cannot go
back to fill it in and put a placeholder there — 0xFFFFFFFF, 0x80000000 (``arecord``), 0x7FFFF000 (SoX),
0x7FFFFFFF. (A real one would be a WAV file of 2 GiB, where the format ends.)"""


def wav_shortfall(path: str) -> str | None:
    """A RIFF/WAVE file whose data chunk declares more audio than the file holds (a copy or a recording cut
    short): what it declares and what is there, in seconds. None when it is whole, not a WAV file, or does not
    say how long it is."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            riff = f.read(12)
            if riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
                return None
            at, byte_rate = 12, 0
            for _ in range(1000):  # chunk by chunk (a big LIST or JUNK chunk may come first)
                f.seek(at)
                head = f.read(8)
                if len(head) < 8:
                    return None
                tag, length = head[:4], int.from_bytes(head[4:], "little")
                if tag == b"fmt ":
                    fmt = f.read(16)
                    byte_rate = int.from_bytes(fmt[8:12], "little") if len(fmt) >= 12 else 0
                elif tag == b"data":
                    held = size - (at + 8)
                    if length == 0 or length >= UNKNOWN_WAV_LENGTH or held >= length or not byte_rate:
                        return None
                    return (f"the file is cut short: its header declares {length / byte_rate:.2f} s of audio, it "
                            f"holds {max(held, 0) / byte_rate:.2f} s")
                at += 8 + length + (length & 1)  # chunks are padded to an even length
    except OSError:
        return None
    return None


class MediaSource(Source):
    def __init__(self, stream_id: str, uri: str, clock: Clock | None, *, url: str, kinds: tuple[str, ...],
                 realtime: bool, options: dict[str, str] | None = None, listen: bool = False,
                 reconnect: int = 0, restream: str | None = None, backoff: Backoff | None = None,
                 loop: bool = False, gap: float = GAP_S, hide: str | None = None) -> None:
        super().__init__(stream_id, uri, clock)
        self.hide = hide
        """A secret in ``url`` (an RTMP stream key) that FFmpeg's messages may quote: never said."""
        self._audio_open = False
        """Whether the audio stream of a video input was opened (a network input's once it shows it has audio)."""
        self._became_audio = False
        """Whether the input is a network input that opened without video: its stream became its audio stream."""
        self._video_late = False
        """Whether such an input showed video later (a publisher that came back with a camera): it is then a stream
        of its own, ``NAME-video``."""
        self._byte_end = 0
        """Where the last packet read ends in the input (bytes): whether a file over HTTP gave any media."""
        self._failed_ends: dict[int, int] = {}
        """Where the last packet ended when a file over HTTP without a length ended in an I/O error (bytes): how
        many reads ended there."""
        self.url, self.kinds, self.realtime, self.options = url, kinds, realtime, dict(options or {})
        self.kind = "video" if "video" in kinds else "audio"
        parts = urlsplit(url)
        self.network = parts.scheme in NETWORK_SCHEMES
        self.live_kind = parts.scheme in LIVE_SCHEMES
        self.http_file = parts.scheme in ("http", "https") and not parts.path.endswith((".m3u8", ".mpd"))
        # a file (local or one resource served over HTTP) can wait, a live input cannot
        self.lossless = not self.network or self.http_file
        self.listen, self.reconnect, self.restream, self.loop = listen, reconnect, restream, loop
        self.dash = urlsplit(url).path.endswith(".mpd")
        self.backoff = backoff or Backoff()
        self.sessions = 0
        """Inputs opened so far (publishers accepted, reconnections made)."""
        self.restreamed = 0
        """Packets forwarded to the restream destination."""
        self.gap = gap if self.network else 0.0
        self.decode_errors: dict[str, int] = {}
        """Packets skipped because the decoder rejected them, per stream id."""
        self.gaps = 0
        self.gap_max_s = 0.0
        self._waiting: dict[int, float] = {}
        """Reader slot -> when it began waiting for the input's next packet (after its first one)."""
        self._gap_noted: set[float] = set()
        self._failed = False
        """A fatal error was put: the input's streams close as "error"."""
        self._resume_at: dict[str, float] = {}
        """Media time each kind of a truncated VOD reached: a reconnection skips what was delivered."""
        self._delivered = 0
        """Frames and chunks handed over, over all sessions."""
        self._said_error = False
        self._reading_since: float | None = None
        """When the reader began (monotonic): how long a server that sent nothing kept it waiting."""
        if listen:
            self.options.setdefault("listen", "1")
            self.options["timeout"] = "1"  # seconds to wait for a publisher before checking for cancel

    @property
    def audio_id(self) -> str:
        """The stream the input's audio goes to: its own of a video input (``NAME-audio``), else the input's. (Made
        from the stream's id when asked: ``open_sources`` renames a source whose name another has, and the second of
        two files named ``clip.mp4`` sent its audio to the first's ``clip-audio`` until 2026-12-07.)"""
        return f"{self.stream_id}-audio" if self.kind == "video" else self.stream_id

    @property
    def video_id(self) -> str | None:
        """The stream the input's video goes to: the input's own, or ``NAME-video`` when it showed video only after
        its stream had become its audio; None for audio only."""
        return self.stream_id if self.kind == "video" else f"{self.stream_id}-video" if self._video_late else None

    def _read(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue) -> None:
        """The reader thread: (re)open the input, demux, decode; puts events (None at the end)."""
        def put(event: Event | None) -> None:
            if loop.is_closed():  # the run ended while FFmpeg was blocked in a read: stop quietly
                raise _LoopGone
            if isinstance(event, StreamError):
                self._said_error = True
                if event.fatal:  # (not a retry notice)
                    self._failed = True
            elif isinstance(event, (VideoFrame, AudioChunk)):
                self._delivered += 1
            sink = self.sink
            if sink is not None and event is not None:  # straight to the consumer, no hop through the loop
                while not sink(event):  # a lossless source's queue is full: wait for room
                    if self.cancelled or loop.is_closed() or not loop.is_running():
                        raise _LoopGone
                    time.sleep(SINK_WAIT_S)
                return
            handing = queue.put(event)

            def gone() -> _LoopGone:
                # A loop that closed before it ran the hand-over never will: the coroutine is closed here, or
                # Python warns at exit that it was never awaited.
                if loop.is_closed():
                    with contextlib.suppress(RuntimeError, ValueError):
                        handing.close()
                return _LoopGone()
            try:  # the end (None) goes through the loop, after every event handed over
                future = asyncio.run_coroutine_threadsafe(handing, loop)
            except RuntimeError:
                handing.close()
                raise _LoopGone from None
            while True:
                try:
                    future.result(timeout=0.5)
                    return
                except concurrent.futures.TimeoutError:
                    # nobody takes events any more (the run was stopped): do not wait for ever
                    if self.cancelled or loop.is_closed() or not loop.is_running():
                        future.cancel()
                        raise gone() from None
                except (RuntimeError, concurrent.futures.CancelledError):
                    raise gone() from None

        failures = 0
        self._reading_since = time.monotonic()
        try:
            while not self.cancelled:
                frames = 0
                try:
                    frames = self._play(put)
                    if self.listen and not self.cancelled:
                        put(Flag(self.stream_id, self.clock.now(), "publisher left; listening again", kind="media"))
                        continue
                    if self.loop and frames and not self.cancelled:
                        continue  # a file played in a loop (demos): from the start again
                    break  # the input ended: a file, a VOD playlist, a live stream that finished
                except _LoopGone:
                    raise
                except Exception as exc:  # noqa: BLE001 - FFmpeg and I/O errors
                    if self.cancelled:
                        break
                    exc = self._timed_out(exc)
                    if self.listen:
                        if isinstance(exc, TimeoutError) and not getattr(exc, "after_frames", 0):
                            continue  # nobody published within the timeout: keep listening
                        put(Flag(self.stream_id, self.clock.now(),
                                 f"publisher left ({self._plain(exc)}); listening again", kind="media"))
                        continue
                    if getattr(exc, "after_frames", 0) and (self._resumable or getattr(exc, "after_media_s", 0.0)
                                                            >= STABLE_MEDIA_S):
                        # progress: a resumable input delivered frames it had not delivered before (so
                        # retries are bounded by its length), a live one played for a while. A live input
                        # that keeps ending after a few frames uses up its retries.
                        failures = 0
                        self.backoff.reset()
                    if not self.network or failures >= self.reconnect or (
                            isinstance(exc, ValueError) and not isinstance(exc, av.error.FFmpegError)):
                        # a ValueError (a manifest MidStream cannot play, an input without media) says
                        # the same thing on every attempt: no retry. (FFmpeg's InvalidDataError is a ValueError
                        # too, but what a network input sends next may read: garbage on a UDP port, then a
                        # stream, ended the source for good.)
                        tried = f" after {failures + 1} attempts" if failures else ""
                        put(StreamError(self.stream_id, self.clock.now(), self._plain(exc) + tried, fatal=True))
                        break
                    failures += 1
                    delay = self.backoff.next()
                    if getattr(exc, "unannounced", False):  # (``_ended_there_before``: maybe its end, maybe not)
                        put(Flag(self.stream_id, self.clock.now(), "the server closed the connection without having "
                                 "said how long the file is (FFmpeg: an I/O error): reading it again to tell its end "
                                 f"from a lost connection, in {delay:.1f} s ({failures}/{self.reconnect})",
                                 kind="media"))
                    else:
                        said = f"{self._plain(exc)}; reconnecting in {delay:.1f} s ({failures}/{self.reconnect})"
                        put(StreamError(self.stream_id, self.clock.now(), said, transient=True))
                    deadline = time.monotonic() + delay
                    while not self.cancelled and time.monotonic() < deadline:
                        time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        except _LoopGone:
            pass
        finally:
            try:
                put(None)
            except _LoopGone:
                pass

    def _plain(self, exc: BaseException) -> str:
        """``exc`` in one line, without the secret FFmpeg quotes with the URL."""
        said = one_line(exc)
        for secret in ([self.hide, *(p for p in self.hide.split("/") if len(p) >= 4)] if self.hide else []):
            said = said.replace(secret, "***")
        return said

    def _where(self) -> str:
        """The server of a network input, fit to show (its path may end in a stream key)."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname or ''}{':' + str(parts.port) if parts.port else ''}"

    def _timed_out(self, exc: Exception) -> Exception:
        """PyAV's timeout interrupts FFmpeg, which says "Immediate exit requested": say that it timed out."""
        if not (self.network and isinstance(exc, av.error.ExitError)):
            return exc
        said = ConnectionError(f"{self._where()}: timed out (nothing received for {READ_TIMEOUT_S:.0f} s)")
        for key in ("after_frames", "after_media_s"):
            if hasattr(exc, key):
                setattr(said, key, getattr(exc, key))
        return said

    def cancel(self) -> None:
        """Also: a server pulled from that has sent nothing by now (the run ends, the stream is stopped) is a
        source that failed, said before its streams close, not a stream that simply closed empty."""
        silent = (not self.cancelled and self.network and not self.listen and not self.dash
                  and urlsplit(self.url).scheme != "udp" and not self._delivered and not self._said_error
                  and self._reading_since is not None and self.sink is not None)
        super().cancel()
        if silent:
            waited = time.monotonic() - (self._reading_since or time.monotonic())
            try:
                self.sink(StreamError(self.stream_id, self.clock.now(),
                                      f"the server at {self._where()} sent nothing in {waited:.1f} s"))
            except Exception:  # noqa: BLE001 - the run is ending; nothing more to say it to; audit: ignore
                pass

    def _open(self) -> list:
        """The input's containers: one, or for DASH one per track (video, audio), each fed its segments."""
        if self.dash:
            from .dash import SegmentStream, load_manifest

            manifest = load_manifest(self.url)
            if not manifest.dynamic:
                self.lossless = True  # a VOD: the segments wait on the server
            return [av.open(SegmentStream(self.url, track.kind, manifest, lambda: self.cancelled), "r",
                            format="mp4") for track in manifest.tracks]
        # PyAV's own timeout (an interrupt callback) deadlocks an RTMP listen with a publisher
        # connecting (measured); a listen relies on FFmpeg's ``timeout`` option instead.
        return [av.open(self.url, options=self.options,
                        timeout=None if self.listen else (READ_TIMEOUT_S, READ_TIMEOUT_S))]

    def _play(self, put) -> int:
        """One input session from open to end; returns the frames delivered. Errors carry ``after_frames``."""
        containers: list = []
        counts = [0]
        reached: dict[str, float] = {}
        held: dict[str, float] = {}
        try:
            containers = self._open()
            if not self.network and self.sessions == 0:
                short = wav_shortfall(self.url)
                if short:  # FFmpeg plays what is there and says nothing: the stream says it
                    put(StreamError(self.audio_id, self.clock.now(), short))
            if not any(s.type in self.kinds and not is_picture(s) for c in containers for s in c.streams):
                raise SourceError(f"no {' or '.join(self.kinds)} in the input")
            shown = {s.type for c in containers for s in c.streams if not is_picture(s)}
            if self.network and self.kind == "video" and "video" not in shown and self.sessions == 0:
                # an input with no video (an audio-only HLS or RTMP input): its stream, added as video before the
                # input could be opened, is its audio stream (there was an empty video stream beside "-audio")
                self.kind, self.kinds = "audio", ("audio",)
                put(StreamOpened(self.stream_id, self.clock.now(), kind="audio", source=self.uri,
                                 identity=self.identity("audio")))
                self._became_audio = True
            elif self._became_audio and "video" in shown and not self._video_late:
                # ... and that shows video in a later session (a publisher back with a camera): a stream of its own
                # (a review: it was dropped without a word)
                self._video_late, self.kinds = True, ("video", "audio")
                put(StreamOpened(self.video_id, self.clock.now(), kind="video", source=self.uri,
                                 identity=self.identity("video")))
            elif (self.network and self.kind == "video" and not self._audio_open
                    and any(s.type == "audio" for c in containers for s in c.streams)):
                self._audio_open = True  # (read by ``events`` once this reader has ended: it closes the stream)
                put(StreamOpened(self.audio_id, self.clock.now(), kind="audio", source=self.uri,
                                 identity=self.identity("audio")))
            self.sessions += 1
            if len(containers) == 1:
                container = containers[0]
                duration = container.duration / 1e6 if container.duration and container.duration > 0 else None
                if self.network and duration is not None:
                    self.lossless = True  # a VOD: it can wait for a slow consumer
                if self._resumable and not self.http_file:
                    # a playlist seeks to a segment (each starts with a keyframe); a file over HTTP is read
                    # again from its start, since a seek there can land mid-GOP (or be ignored by a server
                    # without Range support) and silently lose the frames up to the next keyframe (measured)
                    self._seek_to_resume(container)
                self._byte_end = 0
                self._demux(container, put, counts, 0, restream=self.restream, reached=reached, held=held)
                if self.http_file and not self.cancelled:
                    short = _response_shortfall(container, self._byte_end)
                    if short:  # FFmpeg ended without a word: the rest of the file is read again
                        raise InputEndedEarly(short)
                    short = self._http_shortfall(container, duration, max(
                        [*reached.values(), *held.values(), *self._resume_at.values()], default=0.0))
                    if short:
                        put(StreamError(self.stream_id, self.clock.now(), short))
                if self.network and not self.listen and not self.cancelled:
                    # what every session delivered: a resumed one skips what the ones before it did
                    self._check_complete(duration, max([*reached.values(), *self._resume_at.values()], default=0.0))
                if not self.network and not self.cancelled and self.sessions == 1:
                    short = self._file_shortfall(container, duration, max([*reached.values(), *held.values()],
                                                                          default=0.0))
                    if short:  # FFmpeg plays what is there and says nothing: the stream says it
                        put(StreamError(self.stream_id, self.clock.now(), short))
                self._resume_at = {}
                return counts[0]
            if self.restream:
                put(StreamError(self.stream_id, self.clock.now(), "restream is not available for DASH input"))
            # one thread per track: each is paced by its own timestamps from the same start
            counts = [0] * len(containers)
            errors: list[BaseException] = []
            start = time.monotonic()

            def side(i: int) -> None:
                try:
                    self._demux(containers[i], put, counts, i, start=start, reached=reached)
                except BaseException as exc:  # noqa: BLE001 - handed to the main reader below
                    errors.append(exc)

            helpers = [threading.Thread(target=side, args=(i,), daemon=True) for i in range(1, len(containers))]
            for thread in helpers:
                thread.start()
            side(0)
            for thread in helpers:
                thread.join()
            if errors:
                raise errors[0]
            self._resume_at = {}
            return sum(counts)
        except _LoopGone:
            raise
        except Exception as exc:
            exc.after_frames = sum(counts)  # type: ignore[attr-defined]
            exc.after_media_s = max(reached.values(), default=0.0)  # type: ignore[attr-defined]
            if self._resumable:  # a VOD or file cut short: a reconnection resumes where it stopped
                for kind, t in reached.items():
                    self._resume_at[kind] = max(self._resume_at.get(kind, 0.0), t)
            raise
        finally:
            for container in containers:
                container.close()

    def _ended_there_before(self, exc: Exception, container, held: dict[str, float]) -> str | None:
        """Whether a file over HTTP without a length ends in an I/O error where an earlier read of it ended: its end.

        A response with neither a length nor chunked encoding ends when the server closes the connection; FFmpeg
        calls that end an I/O error (EIO: "Stream ends prematurely"), as it does a connection lost half-way — an
        HTTP/1.0 response, one with ``Connection: close``, one of HTTP/1.1 that just closes. The first end at a
        place reconnects (marked ``unannounced`` on ``exc``: read again from the start, skipping what was
        delivered); a later read ending where one did, with the last packet ending at the same byte, is the end
        (its last frames, which the decoders held when the error came, are delivered then): "" is returned. A file
        that declares a longer duration than it reached there is read a third time; ending there again, it ends,
        cut short, as a local file does: what it holds of what it declares is returned, to be said (a duration
        tag can be longer than the content; a server can cut every response at one byte). A response that
        announced its length and stops short of it is cut, however often (FFmpeg's size of the input is then that
        length; of one without a length, an error code). None: not the end. Where a place is the last whole
        packet's end, two losses of the connection within one packet (a large video frame) look alike: then the
        file is taken as ended early, said in a line. With ``reconnect=0`` (no second read) the first such end is
        the end, said in a line as well (until 2026-12-07 it was an error, and the frames the decoders held were
        lost): that is how HTTP/1.0 ends a response."""
        if not (self.http_file and isinstance(exc, OSError) and exc.errno == errno.EIO):
            return None
        size = getattr(container, "size", None)
        if size is not None and size >= 0:  # (PyAV can give None for an input of unknown size: a CI run's TypeError)
            return None
        at = self._byte_end
        reads = self._failed_ends[at] = self._failed_ends.get(at, 0) + 1
        if at <= 0 or (reads < 2 and self.reconnect > 0):  # (with no retries, the first such end is taken)
            exc.unannounced = True  # type: ignore[attr-defined]
            return None
        fmt = (container.format.name or "").split(",")[0]
        duration = container.duration / 1e6 if container.duration and container.duration > 0 else None
        reached = max(held.values(), default=0.0)
        if not (fmt in (*DECLARED_FORMATS, "wav") and duration is not None
                and reached < duration - max(END_TOLERANCE_S, FILE_TOLERANCE * duration)):
            return ""
        if reads < 3 and self.reconnect > 0:
            return None
        return f"the file is cut short: it holds {reached:.2f} s of the {duration:.2f} s it declares"

    @property
    def _resumable(self) -> bool:
        """A network input with a fixed content (a VOD, a file over HTTP): reopened, it starts from the
        beginning again, so a reconnection skips what was delivered. A live input goes on from now."""
        return self.network and self.lossless and not self.live_kind and not self.listen

    def _seek_to_resume(self, container) -> None:
        """Reopened after a VOD was cut short: start near where it stopped (frames before it are skipped)."""
        if not self._resume_at:
            return
        start = container.start_time / 1e6 if container.start_time else 0.0
        try:
            container.seek(int((start + max(0.0, min(self._resume_at.values()) - 1.0)) * 1e6), backward=True)
        except Exception:  # noqa: BLE001 - not seekable: read from the start, skipping what was delivered; audit: ignore
            pass

    def _file_shortfall(self, container, duration: float | None, held: float) -> str | None:
        """A local file that delivered less than it declares (a copy or a download cut short): what it declares
        and what it held, in seconds. None when it is whole, or does not say how long it is."""
        fmt = (container.format.name or "").split(",")[0]
        if fmt == "ogg":
            cut = ogg_cut(self.url)
            if not cut or not cut[0]:
                return None
            audio = [s for s in container.streams if s.type == "audio"]
            if cut[1] >= 0 and len(audio) == len(container.streams) and audio[0].time_base:
                origin = container.start_time / 1e6 if container.start_time else 0.0
                reaches = float(cut[1] * audio[0].time_base) - origin
                if reaches > held:
                    return (f"the file is cut short: it holds {held:.2f} s of the {reaches:.2f} s its last page "
                            "reaches (that page is incomplete)")
            return f"the file is cut short: its last page is incomplete; it holds {held:.2f} s"
        if fmt not in DECLARED_FORMATS or duration is None:
            return None
        if held < duration - max(END_TOLERANCE_S, FILE_TOLERANCE * duration):
            return f"the file is cut short: it holds {held:.2f} s of the {duration:.2f} s it declares"
        return None

    def _http_shortfall(self, container, duration: float | None, held: float) -> str | None:
        """A file over HTTP whose response ended normally short of the duration its container declares (a chunked
        response cut before its last chunk, which FFmpeg takes for the end; a file cut short on the server, served
        with its true length): read again the first time it ends at a place (raises ``InputEndedEarly``: the
        connection may have been lost), and if a read ends there again, what it holds of what it declares is
        returned, to be said as a local file's is. Until 2026-12-07 both ended closed without a word (a review: an
        MP4 of 3 s gave 1.6 s). A format that declares no duration (MPEG-TS, FLV) cut so is still taken as ended."""
        fmt = (container.format.name or "").split(",")[0]
        if fmt not in DECLARED_FORMATS or duration is None \
                or held >= duration - max(END_TOLERANCE_S, FILE_TOLERANCE * duration):
            return None
        short = f"the file is cut short: it holds {held:.2f} s of the {duration:.2f} s it declares"
        at = -1 - self._byte_end  # (apart from the places of ``_failed_ends``)
        reads = self._failed_ends[at] = self._failed_ends.get(at, 0) + 1
        if reads < 2 and self.reconnect > 0:
            raise InputEndedEarly(f"{short}, the response having ended without an error: reading it again")
        return short

    def _check_complete(self, duration: float | None, reached: float) -> None:
        """A network input ended without an error: was that its real end? Raises InputEndedEarly if not."""
        if self.http_file:
            # one resource over HTTP: a normal end of the response is its end, whether or not the container
            # stores a duration (.ts and .flv do not; an estimated one can be off). FFmpeg reports a body
            # cut short of its announced length as an error, which reconnects and resumes — except where it
            # ends without a word (``_response_shortfall``, checked before this).
            return
        if duration is not None:
            if reached < duration - END_TOLERANCE_S:
                raise InputEndedEarly(f"the input ended after {reached:.1f} s of its {duration:.1f} s "
                                      "(the server stopped sending)")
            return
        if urlsplit(self.url).path.endswith(".m3u8") and _hls_finished(self.url):
            return  # a live HLS stream that said it ended
        # live HLS without #EXT-X-ENDLIST, udp, rtmp or rtsp pulls: a live input that stopped went away
        raise InputEndedEarly(f"the live input ended after {reached:.1f} s (no more data from the server)")

    def _bad_packets(self, put, stream: str, kind: str, burst: list) -> None:
        """Report a run of undecodable packets as one pattern entry: [count, first time, last time, error]."""
        n, t0, t1, why = burst
        where = f" at {t0:.2f} s" if t1 - t0 < 0.005 else f" at {t0:.2f}-{t1:.2f} s"
        put(Flag(stream, self.clock.now(), f"skipped {n} undecodable {kind} packet{'s' if n > 1 else ''}{where} "
                                           f"of the media ({why})", kind="media"))

    def _note_gap(self, put, waited: float, then: str) -> None:
        self.gaps += 1
        self.gap_max_s = max(self.gap_max_s, waited)
        put(Flag(self.stream_id, self.clock.now(), f"network gap: {waited:.1f} s without data, {then}", kind="gap"))

    def _demux(self, container, put, counts: list[int], slot: int, *, restream: str | None = None,
               start: float | None = None, reached: dict[str, float], held: dict[str, float] | None = None) -> None:
        """Demux and decode one container into events; ``counts[slot]`` counts what was delivered and
        ``reached[kind]`` is the media time each kind reached (seconds from the input's start); ``held[kind]``
        the end of the last packet of each kind, decodable or not."""
        streams = [s for s in container.streams if s.type in self.kinds and not is_picture(s)]
        forward = None
        if restream:
            try:
                forward = _Restream(restream, streams)
            except Exception as exc:  # noqa: BLE001 - the destination is down: analysis goes on
                put(StreamError(self.stream_id, self.clock.now(), f"restream to {_redact(restream)} failed: {one_line(exc)}"))
        origin = container.start_time / 1e6 if container.start_time is not None else None
        resume = dict(self._resume_at)
        # A live stream pulled from a server (UDP, RTMP, RTSP) arrives at its own pace: pacing it again by
        # its timestamps would only hold back what FFmpeg's probe buffered (~2 s of latency, hiding as much
        # of any network gap). Files, VODs, segmented live streams (HLS, DASH) and publishers pushing to a
        # listen URL (which may send faster than real time) are paced.
        pace = self.realtime and (not self.network or self.lossless or self.dash or self.listen
                                  or urlsplit(self.url).path.endswith(".m3u8"))
        bursts: dict[str, list] = {}  # stream id -> the run of bad packets under way
        decoded_any: set[str] = set()
        # the first frame and chunk of a session after the first (a loop, a reconnection) say they do not
        # continue what came before
        restarted = {"audio": self.sessions > 1, "video": self.sessions > 1}
        spliced: dict[str, list[float]] = {}  # kind -> [last continuous time, offset, last step]
        try:
            resampler = av.AudioResampler(format="s16", layout="mono", rate=AUDIO_RATE)
            # one converter to RGB for the whole session: frame.to_ndarray(format=...) builds (and frees) a
            # scaler context per frame, which cost 3x the conversion itself
            to_rgb = VideoReformatter()
            start_wall, first_pts = start or time.monotonic(), None
            pending = 0  # encoded video bytes not yet credited to a frame (decoders hold frames back)
            packets = iter(container.demux(streams))
            first = True
            gap_ended = 0.0
            flushed: set[int] = set()  # streams whose flush packet (the end) came
            resyncs = stuck = 0  # runs of "try again" (data with no packet in it), and how many since the last packet
            last_pts: dict[str, float] = {}
            while not self.cancelled:
                asked = time.monotonic()
                if not first:
                    self._waiting[slot] = asked
                failure = None
                try:
                    packet = next(packets, None)
                except IndexError:
                    # PyAV's demux ends by flushing every stream FFmpeg knows of, one that appeared mid-file
                    # too (damaged data: an MPEG-TS packet with a corrupt PID), which it has no Stream for
                    # (measured: "list index out of range"). Its packets were skipped; the input has ended.
                    put(Flag(self.stream_id, self.clock.now(), "skipped the packets of a stream that appeared "
                             "mid-file (damaged data?)", kind="media"))
                    packets = iter([_flush_packet(s) for s in streams if s.index not in flushed])
                    self._waiting.pop(slot, None)
                    continue
                except BlockingIOError:
                    # FFmpeg's EAGAIN: its demuxer read a stretch with no packet in it (an MPEG-TS file padded with
                    # zero bytes, damaged data) and asks to be called again; PyAV's iterator has ended with the
                    # error, a new one reads on from there (measured: about one a 64 KiB of zeros; 20 MiB of
                    # them, 319 and then the end). Many in a row with no packet between: an input that only says
                    # that, ended as an error.
                    self._waiting.pop(slot, None)
                    resyncs += stuck == 0
                    stuck += 1
                    if stuck > RESYNC_LIMIT:
                        raise
                    if stuck > 100:
                        time.sleep(0.001)  # (a network input that says it at once: not a busy loop)
                    packets = iter(container.demux(streams))
                    continue
                except Exception as exc:  # noqa: BLE001 - raised below, once the gap (if any) is noted
                    # (not after data with no packet in it: any place inside it reads as the same place — and
                    # the packet FFmpeg held until it gave up on that data comes out after it)
                    end = None if resyncs else self._ended_there_before(exc, container, held or {})
                    if resyncs and self.http_file and isinstance(exc, OSError) and exc.errno == errno.EIO:
                        exc = _in_padding(exc)
                    if end is not None:
                        reads = self._failed_ends[self._byte_end]
                        how = (f"on {reads} reads after the same packet (ending at byte {self._byte_end})" if reads > 1
                               else f"after byte {self._byte_end}, with reconnect=0 (not read again to tell its end "
                                    "from a lost connection)")
                        put(Flag(self.stream_id, self.clock.now(), "the server closed the connection without having "
                                 f"said how long the file is, {how}: taken as the file's end", kind="media"))
                        if end:
                            put(StreamError(self.stream_id, self.clock.now(), end))
                        packets = iter([_flush_packet(s) for s in streams if s.index not in flushed])  # held frames
                        self._waiting.pop(slot, None)
                        continue
                    packet, failure = None, exc
                self._waiting.pop(slot, None)
                if stuck and resyncs == 1 and packet is not None:  # (said at once: a live input's session may
                    # never end but by being stopped; later ones are counted at the end)
                    at = max((held or reached).values(), default=0.0)
                    put(Flag(self.stream_id, self.clock.now(), f"read past data with no packet in it (padding or "
                             f"damaged data) after {at:.2f} s of the media", kind="media"))
                stuck = 0
                waited = time.monotonic() - asked
                data = packet is not None and packet.size > 0  # (PyAV ends with empty packets)
                if gap_ended:  # the packet that ended a gap can be a leftover flushed as the input ends
                    self._note_gap(put, gap_ended, "then data again" if data else "then the input ended")
                    gap_ended = 0.0
                if not first and self.gap and waited >= self.gap:
                    if data:
                        gap_ended = waited
                    else:
                        self._note_gap(put, waited, "then the input ended")
                if failure is not None:
                    raise failure
                first = False
                if packet is None:
                    break
                is_video = packet.stream.type == "video"
                target = self.video_id if is_video else self.audio_id
                if not data:
                    flushed.add(packet.stream.index)
                elif held is not None and packet.pts is not None and packet.time_base:
                    t = float(packet.pts * packet.time_base) - (origin or 0.0)
                    step = float(packet.duration * packet.time_base) if packet.duration else \
                        max(0.0, t - last_pts.get(packet.stream.type, t))
                    last_pts[packet.stream.type] = t
                    held[packet.stream.type] = max(held.get(packet.stream.type, 0.0), t + step)
                if data and packet.pos is not None and packet.pos >= 0:
                    self._byte_end = max(self._byte_end, packet.pos + packet.size)
                if is_video:
                    pending += packet.size
                try:
                    decoded = packet.decode()
                except av.error.FFmpegError as exc:  # one bad packet (corrupt bytes), not the end of the stream
                    self.decode_errors[target] = self.decode_errors.get(target, 0) + 1
                    t = float(packet.pts * packet.time_base) if packet.pts is not None and packet.time_base else 0.0
                    t -= origin or 0.0
                    burst = bursts.setdefault(target, [0, t, t, one_line(exc)])
                    burst[0] += 1
                    burst[2] = t
                    if target not in decoded_any and burst[0] >= UNDECODABLE_LIMIT:
                        raise SourceError(f"{packet.stream.type}: none of the first {burst[0]} packets could be "
                                          f"decoded ({burst[3]})") from None
                    decoded = []
                else:
                    if target in bursts:
                        self._bad_packets(put, target, packet.stream.type, bursts.pop(target))
                if forward is not None:
                    try:
                        forward.send(packet)
                        self.restreamed += 1
                    except Exception as exc:  # noqa: BLE001
                        put(StreamError(self.stream_id, self.clock.now(),
                                        f"restream to {_redact(restream)} stopped: {one_line(exc)}"))
                        forward.close()
                        forward = None
                for frame in decoded:
                    decoded_any.add(target)
                    if frame.time is not None:
                        before = spliced.get(packet.stream.type, [math.nan, 0.0, 0.0])[:]
                        at = _continuous(spliced, packet.stream.type, frame)
                        if self.lossless and before[2] and at - before[0] > max(MISSING_S, 3 * before[2]):
                            # a VOD or file whose media jumps ahead: a segment the server did not send
                            put(Flag(target, self.clock.now(), f"{at - before[0]:.1f} s of the {packet.stream.type} "
                                     f"missing at {before[0] - (origin or 0.0):.1f} s of the media (a segment "
                                     "lost?)", kind="media"))
                        if origin is None:
                            origin = at
                        media_t = at - origin
                        if media_t <= resume.get(packet.stream.type, -1.0):
                            continue  # delivered before the input was cut short
                        if pace:
                            first_pts = at if first_pts is None else first_pts
                            delay = (at - first_pts) - (time.monotonic() - start_wall)
                            if delay > 0:
                                time.sleep(min(delay, 1.0))
                        if not is_video and frame.sample_rate:
                            media_t += frame.samples / frame.sample_rate  # the end of this audio
                        reached[packet.stream.type] = max(reached.get(packet.stream.type, 0.0), media_t)
                    now = self.clock.now()
                    if is_video:
                        put(VideoFrame(self.video_id, now, frame=to_rgb.reformat(frame, format="rgb24").to_ndarray(),
                                       encoded_bytes=pending, media_t=media_t if frame.time is not None else None,
                                       discontinuity=restarted["video"]))
                        pending, restarted["video"] = 0, False
                        counts[slot] += 1
                    elif not is_video:
                        for chunk in resampler.resample(frame):
                            pcm = chunk.to_ndarray().reshape(-1)
                            if pcm.size:
                                put(AudioChunk(self.audio_id, now, samples=pcm.copy(), sample_rate=AUDIO_RATE,
                                               discontinuity=restarted["audio"]))
                                restarted["audio"] = False
                                counts[slot] += 1
            if (resyncs > 1 or stuck) and not self.cancelled:
                put(Flag(self.stream_id, self.clock.now(), f"read past data with no packet in it (padding or damaged "
                         f"data) {resyncs} time{'s' if resyncs > 1 else ''} in all", kind="media"))
            if bursts and not decoded_any and not self.cancelled:
                # the input ended with not one packet decoded (a WAV whose header says 0 channels: 45 skipped and
                # "closed", exit 0): a failure, as an input that delivered nothing is
                target, burst = next(iter(bursts.items()))
                raise SourceError(f"{'video' if target == self.video_id else 'audio'}: "
                                  f"none of its {burst[0]} packets could be decoded ({burst[3]})")
        finally:
            if forward is not None:
                forward.close()
            for target, burst in bursts.items():  # bad packets up to the end
                try:
                    self._bad_packets(put, target, "video" if target == self.video_id else "audio", burst)
                except _LoopGone:
                    break

    def stream_metrics(self, stream: str) -> dict[str, Any]:
        metrics: dict[str, Any] = {"decode_errors": self.decode_errors.get(stream, 0)}
        if self.network and stream == self.stream_id:
            metrics["gaps"] = self.gaps
            metrics["gap_max_s"] = self.gap_max_s
        return metrics

    def _gap_under_way(self) -> float:
        """Seconds the oldest reader has been waiting for data, if that makes a gap not yet reported."""
        if not self.gap:
            return 0.0
        now = time.monotonic()
        for since in list(self._waiting.values()):
            if now - since >= self.gap and since not in self._gap_noted:
                self._gap_noted.add(since)
                return now - since
        return 0.0

    async def events(self) -> AsyncIterator[Event]:
        loop = asyncio.get_running_loop()
        now = self.clock.now()
        yield StreamOpened(self.stream_id, now, kind=self.kind, source=self.uri, identity=self.identity(self.kind))  # type: ignore[arg-type]
        # A network input's kinds are known once it is open: its audio stream opens then (``_play``), if it has
        # one. (A video-only HLS or RTMP input showed an empty "0 Hz · 0 ch" audio stream.)
        paired = self.kind == "video" and "audio" in self.kinds
        if paired and not self.network:
            self._audio_open = True
            yield StreamOpened(self.audio_id, now, kind="audio", source=self.uri, identity=self.identity("audio"))
        queue: asyncio.Queue = asyncio.Queue(maxsize=32)
        threading.Thread(target=self._read, args=(loop, queue), name=f"media-{self.stream_id}",
                         daemon=True).start()
        while True:
            if self.gap:  # watch for a network gap while the reader is blocked in FFmpeg
                try:
                    event = await asyncio.wait_for(queue.get(), min(0.5, self.gap / 2))
                except asyncio.TimeoutError:
                    waited = self._gap_under_way()
                    if waited:
                        yield Flag(self.stream_id, self.clock.now(),
                                   f"network gap: no data for {waited:.1f} s so far", kind="gap")
                    continue
            else:
                event = await queue.get()
            if event is None:
                break
            yield event
        reason = "cancelled" if self.cancelled else ("error" if self._failed else "finished")
        now = self.clock.now()
        if self._audio_open:
            yield StreamClosed(self.audio_id, now, reason=reason)
        if self._video_late:
            yield StreamClosed(self.video_id, now, reason=reason)
        yield StreamClosed(self.stream_id, now, reason=reason)


def _in_padding(exc: OSError) -> OSError:
    """The I/O error that ended a response without a length after data with no packet in it, saying so (FFmpeg
    says only "Input/output error"): such an end is never taken as the file's end, since a connection lost in
    zero padding (a recorder's preallocated file) reads the same on every attempt as a file that ends in it (the
    packet FFmpeg held comes out after the padding, so the last packet is the same on every read)."""
    said = OSError(errno.EIO, "the connection ended, with no length said, after data with no packet in it (zero "
                   "padding or damaged data), where a lost connection looks the same: not read as the file's end")
    said.__cause__ = exc
    return said


RESYNC_LIMIT = 100_000
RESYNC_LIMIT = 100_000
"""FFmpeg's "try again" (EAGAIN) this many times in a row with no packet between (about 6 GiB of zeros in an
MPEG-TS file): the input is taken to say nothing else, and ends as an error."""
MISSING_S = 0.5
"""A jump ahead this long in the timestamps of a VOD or a file (which send everything) is media that is missing."""
JUMP_BACK_S = 0.5
JUMP_AHEAD_S = 10.0
"""A frame's timestamp this far before the previous one's (or after it): a discontinuity (an HLS
#EXT-X-DISCONTINUITY, MPEG-TS files joined, an encoder restarted), not time going by."""


def _continuous(spliced: dict[str, list[float]], kind: str, frame) -> float:
    """``frame``'s time on a media clock that runs on across timestamp discontinuities: after a jump, the
    media goes on one frame after where it was (pacing, the media time reached and the check that a VOD was
    played to its end all go by this clock; by the raw timestamps a joined file played at twice its rate and a
    VOD with a discontinuity looked cut short)."""
    raw = float(frame.time)
    state = spliced.get(kind)
    if state is None:
        spliced[kind] = [raw, 0.0, 0.0]
        return raw
    last, offset, step = state
    at = raw + offset
    if at < last - JUMP_BACK_S or at > last + JUMP_AHEAD_S:
        if not step:
            rate = getattr(frame, "sample_rate", 0) or 0
            step = frame.samples / rate if rate and getattr(frame, "samples", 0) else 0.04
        offset = last + step - raw
        at = raw + offset
    elif at > last:
        step = at - last
    state[:] = [max(at, last), offset, step]
    return at


def _flush_packet(stream):
    """An empty packet of ``stream``: decoding it returns the frames its decoder still holds."""
    packet = av.Packet()
    packet.stream = stream
    return packet


def _response_shortfall(container, read_to: int) -> str | None:
    """A file over HTTP that gave no media at all before its "end" (a connection closed early that FFmpeg took for
    the end: measured with a server that keeps a connection it then closes), said in words; else None. (Comparing
    where the last packet ends with the size the server announced also caught files cut later, but called valid
    MPEG-TS files with null-packet padding, zero bytes at the end or a second program cut: a review.)"""
    if read_to <= 0:  # (FFmpeg's size of the input is then an error code: measured -38)
        return "the response ended before any media was read (the server stopped sending)"
    return None


def _hls_finished(url: str) -> bool:
    """Whether an HLS playlist (or the first variant of a master playlist) now carries #EXT-X-ENDLIST."""
    from urllib.parse import urljoin

    from .dash import MAX_MANIFEST, fetch

    try:
        text = fetch(url, MAX_MANIFEST, timeout=5.0).decode("utf-8", "replace")
        if "#EXT-X-STREAM-INF" in text:
            variant = next((line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")),
                           None)
            if variant is None:
                return False
            text = fetch(urljoin(url, variant), MAX_MANIFEST, timeout=5.0).decode("utf-8", "replace")
    except (OSError, ValueError):
        return False
    return "#EXT-X-ENDLIST" in text


def _redact(url: str) -> str:
    """A destination URL fit to show: its path ends in a stream key on most platforms (an RTMP one: all of it after
    the app, ``rtmp_key``; a trailing slash showed the key in full)."""
    parts = urlsplit(url)
    if not parts.scheme:
        return url
    server = f"{parts.scheme}://{parts.hostname or ''}{':' + str(parts.port) if parts.port else ''}"  # (no login)
    if rtmp_key(url):
        return f"{server}/{parts.path.lstrip('/').partition('/')[0]}/***"
    head, _, _ = parts.path.rstrip("/").rpartition("/")
    return f"{server}{head}/***"


OWN_PARAMS = ("name", "listen", "reconnect", "restream", "gap", "realtime")


def _split_own(url: str) -> tuple[str, dict[str, str]]:
    """Take MidStream's parameters out of a network URL's query; the rest is FFmpeg's."""
    parts = urlsplit(url)
    own: dict[str, str] = {}
    rest = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in OWN_PARAMS:
            own[key] = value
        else:
            rest.append((key, value))
    return urlunsplit(parts._replace(query=urlencode(rest, safe="/:"))), own


def open_media(uri: str, clock: Clock | None, stream_id: str | None = None) -> MediaSource | None:
    """A MediaSource for a media file or network URL, or None if ``uri`` is not one."""
    parts = urlsplit(uri)
    if parts.scheme in NETWORK_SCHEMES:
        if parts.scheme in ("http", "https") and not parts.path.endswith((".m3u8", ".mpd", *MEDIA_SUFFIXES)):
            return None
        if parts.scheme == "srt":
            raise SourceError(f"{uri}: SRT is not available: the FFmpeg inside PyAV is built without libsrt")
        url, own = _split_own(uri)
        listen = param(own, "listen", int, 0, lambda v: v in (0, 1), "0 or 1")
        if listen and parts.scheme != "rtmp":
            raise SourceError(f"{uri}: listen=1 is for rtmp:// (udp:// always listens)")
        reconnect = param(own, "reconnect", int, 5, lambda v: 0 <= v <= 1000, "retries 0..1000")
        gap = param(own, "gap", float, GAP_S, lambda v: v == 0 or 0.5 <= v <= 3600, "0 (off) or 0.5..3600 s")
        realtime = param(own, "realtime", int, 1, lambda v: v in (0, 1), "0 or 1")
        restream = own.pop("restream", None)
        if restream is not None and not restream:
            raise SourceError(f"{uri}: restream= needs a destination URL")
        # an RTMP URL ends in the stream key (rtmp://host/app/KEY): the key is a password to that stream, so
        # it is neither the stream's name nor shown (a review found it in the dashboard, the NDJSON and the
        # recording); the stream is named after the app
        hide = rtmp_key(uri)
        app = parts.path.strip("/").partition("/")[0]
        default = (app if parts.scheme == "rtmp" else Path(parts.path).stem) or parts.hostname or "media"
        name = own.pop("name", None) or stream_id or default
        if name in ("index", "playlist", "stream", "manifest", "live", "s", "app"):
            name = f"{parts.hostname}-{name}"
        shown = uri if restream is None else uri.replace(quote(restream, safe=""), _redact(restream)).replace(
            restream, _redact(restream))
        shown = without_rtmp_key(shown)
        # network input: which kinds it holds is only known once it plays (video first), unless it is an audio file
        audio_only = parts.scheme in ("http", "https") and parts.path.lower().endswith(AUDIO_SUFFIXES)
        return MediaSource(name, shown, clock, url=url, kinds=("audio",) if audio_only else ("video", "audio"),
                           realtime=bool(realtime),
                           listen=bool(listen), reconnect=reconnect, restream=restream, gap=gap, hide=hide)
    if parts.scheme not in ("", "file") or not parts.path.lower().endswith(MEDIA_SUFFIXES):
        return None
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    realtime = param(params, "realtime", int, 1, lambda v: v in (0, 1), "0 or 1")
    loop = param(params, "loop", int, 0, lambda v: v in (0, 1), "0 or 1")
    name = params.pop("name", None) or stream_id or Path(parts.path).stem
    restream = params.pop("restream", None)
    reject_unknown(params, uri)
    path = Path(parts.path)
    if path.is_dir():
        raise SourceError(f"{parts.path}: is a directory, not a media file")
    if not path.is_file():
        raise SourceError(f"{parts.path}: no such file")
    if restream and urlsplit(restream).scheme in ("", "file"):  # (it was rewritten while being read)
        dest = Path(urlsplit(restream).path)
        if dest.exists() and dest.resolve() == path.resolve():
            raise SourceError(f"{parts.path}: restream= names the file being read; give another destination")
    try:  # probe: which kinds the file holds decides the stream ids
        with av.open(str(path)) as probe:
            kinds = tuple(sorted({s.type for s in probe.streams if s.type in ("video", "audio") and not is_picture(s)},
                                 reverse=True))
    except Exception as exc:  # noqa: BLE001
        raise SourceError(f"{parts.path}: not a readable media file ({one_line(exc)})") from None
    if not kinds:
        raise SourceError(f"{parts.path}: no audio or video streams")
    return MediaSource(name, uri, clock, url=str(path), kinds=kinds, realtime=bool(realtime), restream=restream,
                       loop=bool(loop))
