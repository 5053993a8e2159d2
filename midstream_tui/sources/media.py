"""Media through PyAV (FFmpeg inside the wheel): files, HLS, DASH, MPEG-TS over UDP, RTMP pull.

    clip.mp4[?realtime=0][&name=cam]        a media file (paced by its timestamps unless realtime=0;
                                            loop=1 plays it again and again)
    http://127.0.0.1:8000/live/index.m3u8   HLS (VOD or live), DASH (.mpd), udp://..., rtmp://... (pull)
    rtmp://127.0.0.1:1935/live/s?listen=1   wait for a publisher; listen again when it leaves
    ...&restream=rtmp://ingest/app/KEY      forward the packets unchanged (remuxed) while analysing
    ...&reconnect=5                         network inputs: retries after a failure (capped
                                            exponential backoff with jitter; 0: none)

MidStream's own parameters (name, listen, reconnect, restream) are taken out of a
network URL; the rest of its query goes to FFmpeg (e.g. udp's fifo_size). SRT
needs an FFmpeg built with libsrt, which PyAV's wheel is not: refused clearly.

Video becomes the stream ``<name>`` (RGB frames, with the encoded packet size,
so the bitrate is the real one), audio the stream ``<name>-audio`` (resampled
to 48 kHz mono PCM16). Demuxing and decoding run in a thread; events reach the
event loop through a bounded queue, so a slow consumer holds the reader back
instead of growing memory. FFmpeg errors end the stream with a one-line error.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import av

from ..clock import Clock
from ..events import AudioChunk, Event, Flag, StreamClosed, StreamError, StreamOpened, VideoFrame
from .base import Backoff, Source, SourceError
from .simulate import _param, _reject_unknown

MEDIA_SUFFIXES = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".ts", ".m2ts", ".flv", ".mpg", ".mpeg", ".wav", ".mp3",
                  ".ogg", ".opus", ".flac", ".m4a", ".aac")
NETWORK_SCHEMES = ("http", "https", "udp", "rtmp", "rtsp", "srt")
AUDIO_RATE = 48_000


class _LoopGone(Exception):
    """The event loop the reader feeds has finished."""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


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


class MediaSource(Source):
    def __init__(self, stream_id: str, uri: str, clock: Clock | None, *, url: str, kinds: tuple[str, ...],
                 realtime: bool, options: dict[str, str] | None = None, listen: bool = False,
                 reconnect: int = 0, restream: str | None = None, backoff: Backoff | None = None,
                 loop: bool = False) -> None:
        super().__init__(stream_id, uri, clock)
        self.url, self.kinds, self.realtime, self.options = url, kinds, realtime, dict(options or {})
        self.kind = "video" if "video" in kinds else "audio"
        self.network = urlsplit(url).scheme in NETWORK_SCHEMES
        self.lossless = not self.network  # a file can wait, a live input cannot
        self.audio_id = f"{stream_id}-audio" if self.kind == "video" else stream_id
        self.listen, self.reconnect, self.restream, self.loop = listen, reconnect, restream, loop
        self.dash = urlsplit(url).path.endswith(".mpd")
        self.backoff = backoff or Backoff()
        self.sessions = 0
        """Inputs opened so far (publishers accepted, reconnections made)."""
        self.restreamed = 0
        """Packets forwarded to the restream destination."""
        if listen:
            self.options.setdefault("listen", "1")
            self.options["timeout"] = "1"  # seconds to wait for a publisher before checking for cancel

    def _read(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue) -> None:
        """The reader thread: (re)open the input, demux, decode; puts events (None at the end)."""
        def put(event: Event | None) -> None:
            if loop.is_closed():  # the run ended while FFmpeg was blocked in a read: stop quietly
                raise _LoopGone
            try:
                asyncio.run_coroutine_threadsafe(queue.put(event), loop).result()
            except (RuntimeError, concurrent.futures.CancelledError):
                raise _LoopGone from None

        failures = 0
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
                    if self.listen:
                        if isinstance(exc, TimeoutError) and not getattr(exc, "after_frames", 0):
                            continue  # nobody published within the timeout: keep listening
                        put(Flag(self.stream_id, self.clock.now(),
                                 f"publisher left ({_one_line(exc)}); listening again", kind="media"))
                        continue
                    if getattr(exc, "after_frames", 0):
                        failures = 0
                        self.backoff.reset()
                    if not self.network or failures >= self.reconnect or isinstance(exc, ValueError):
                        # a ValueError (a manifest MidStream cannot play, an input without media) says
                        # the same thing on every attempt: no retry
                        tried = f" after {failures + 1} attempts" if failures else ""
                        put(StreamError(self.stream_id, self.clock.now(), _one_line(exc) + tried, fatal=True))
                        break
                    failures += 1
                    delay = self.backoff.next()
                    put(StreamError(self.stream_id, self.clock.now(),
                                    f"{_one_line(exc)}; reconnecting in {delay:.1f} s ({failures}/{self.reconnect})"))
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

    def _open(self) -> list:
        """The input's containers: one, or for DASH one per track (video, audio), each fed its segments."""
        if self.dash:
            from .dash import SegmentStream, load_manifest

            manifest = load_manifest(self.url)
            return [av.open(SegmentStream(self.url, track.kind, manifest, lambda: self.cancelled), "r",
                            format="mp4") for track in manifest.tracks]
        # PyAV's own timeout (an interrupt callback) deadlocks an RTMP listen with a publisher
        # connecting (measured); a listen relies on FFmpeg's ``timeout`` option instead.
        return [av.open(self.url, options=self.options, timeout=None if self.listen else (10.0, 10.0))]

    def _play(self, put) -> int:
        """One input session from open to end; returns the frames delivered. Errors carry ``after_frames``."""
        containers: list = []
        counts = [0]
        try:
            containers = self._open()
            if not any(s.type in ("video", "audio") for c in containers for s in c.streams):
                raise SourceError("no audio or video in the input")
            self.sessions += 1
            if len(containers) == 1:
                self._demux(containers[0], put, counts, 0, restream=self.restream)
                return counts[0]
            if self.restream:
                put(StreamError(self.stream_id, self.clock.now(), "restream is not available for DASH input"))
            # one thread per track: each is paced by its own timestamps from the same start
            counts = [0] * len(containers)
            errors: list[BaseException] = []
            start = time.monotonic()

            def side(i: int) -> None:
                try:
                    self._demux(containers[i], put, counts, i, start=start)
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
            return sum(counts)
        except _LoopGone:
            raise
        except Exception as exc:
            exc.after_frames = sum(counts)  # type: ignore[attr-defined]
            raise
        finally:
            for container in containers:
                container.close()

    def _demux(self, container, put, counts: list[int], slot: int, *, restream: str | None = None,
               start: float | None = None) -> None:
        """Demux and decode one container into events; ``counts[slot]`` counts what was delivered."""
        streams = [s for s in container.streams if s.type in ("video", "audio")]
        forward = None
        if restream:
            try:
                forward = _Restream(restream, streams)
            except Exception as exc:  # noqa: BLE001 - the destination is down: analysis goes on
                put(StreamError(self.stream_id, self.clock.now(), f"restream to {_redact(restream)} failed: {_one_line(exc)}"))
        try:
            resampler = av.AudioResampler(format="s16", layout="mono", rate=AUDIO_RATE)
            start_wall, first_pts = start or time.monotonic(), None
            pending = 0  # encoded video bytes not yet credited to a frame (decoders hold frames back)
            for packet in container.demux(streams):
                if self.cancelled:
                    break
                is_video = packet.stream.type == "video"
                if is_video:
                    pending += packet.size
                decoded = packet.decode()
                if forward is not None:
                    try:
                        forward.send(packet)
                        self.restreamed += 1
                    except Exception as exc:  # noqa: BLE001
                        put(StreamError(self.stream_id, self.clock.now(),
                                        f"restream to {_redact(restream)} stopped: {_one_line(exc)}"))
                        forward.close()
                        forward = None
                for frame in decoded:
                    if frame.time is not None and self.realtime:
                        first_pts = frame.time if first_pts is None else first_pts
                        delay = (frame.time - first_pts) - (time.monotonic() - start_wall)
                        if delay > 0:
                            time.sleep(min(delay, 1.0))
                    now = self.clock.now()
                    if is_video and self.kind == "video":
                        put(VideoFrame(self.stream_id, now, frame=frame.to_ndarray(format="rgb24"),
                                       encoded_bytes=pending))
                        pending = 0
                        counts[slot] += 1
                    elif not is_video:
                        for chunk in resampler.resample(frame):
                            pcm = chunk.to_ndarray().reshape(-1)
                            if pcm.size:
                                put(AudioChunk(self.audio_id, now, samples=pcm.copy(), sample_rate=AUDIO_RATE))
                                counts[slot] += 1
        finally:
            if forward is not None:
                forward.close()

    async def events(self) -> AsyncIterator[Event]:
        loop = asyncio.get_running_loop()
        now = self.clock.now()
        yield StreamOpened(self.stream_id, now, kind=self.kind, source=self.uri)  # type: ignore[arg-type]
        if self.kind == "video" and "audio" in self.kinds:
            yield StreamOpened(self.audio_id, now, kind="audio", source=self.uri)
        queue: asyncio.Queue = asyncio.Queue(maxsize=32)
        threading.Thread(target=self._read, args=(loop, queue), name=f"media-{self.stream_id}",
                         daemon=True).start()
        failed = False
        while True:
            event = await queue.get()
            if event is None:
                break
            failed = failed or isinstance(event, StreamError)
            yield event
        reason = "cancelled" if self.cancelled else ("error" if failed else "finished")
        now = self.clock.now()
        if self.kind == "video" and "audio" in self.kinds:
            yield StreamClosed(self.audio_id, now, reason=reason)
        yield StreamClosed(self.stream_id, now, reason=reason)


def _redact(url: str) -> str:
    """A destination URL fit to show: its path ends in a stream key on most platforms."""
    parts = urlsplit(url)
    if not parts.scheme:
        return url
    head, _, _ = parts.path.rpartition("/")
    return f"{parts.scheme}://{parts.hostname or ''}{':' + str(parts.port) if parts.port else ''}{head}/***"


OWN_PARAMS = ("name", "listen", "reconnect", "restream")


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
        listen = _param(own, "listen", int, 0, lambda v: v in (0, 1), "0 or 1")
        if listen and parts.scheme != "rtmp":
            raise SourceError(f"{uri}: listen=1 is for rtmp:// (udp:// always listens)")
        reconnect = _param(own, "reconnect", int, 5, lambda v: 0 <= v <= 1000, "retries 0..1000")
        restream = own.pop("restream", None)
        if restream is not None and not restream:
            raise SourceError(f"{uri}: restream= needs a destination URL")
        name = own.pop("name", None) or stream_id or Path(parts.path).stem or parts.hostname or "media"
        if name in ("index", "playlist", "stream", "manifest", "live", "s"):
            name = f"{parts.hostname}-{name}"
        shown = uri if restream is None else uri.replace(quote(restream, safe=""), _redact(restream)).replace(
            restream, _redact(restream))
        # network input: which kinds it holds is only known once it plays; video first
        return MediaSource(name, shown, clock, url=url, kinds=("video", "audio"), realtime=True,
                           listen=bool(listen), reconnect=reconnect, restream=restream)
    if parts.scheme not in ("", "file") or not parts.path.lower().endswith(MEDIA_SUFFIXES):
        return None
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    realtime = _param(params, "realtime", int, 1, lambda v: v in (0, 1), "0 or 1")
    loop = _param(params, "loop", int, 0, lambda v: v in (0, 1), "0 or 1")
    name = params.pop("name", None) or stream_id or Path(parts.path).stem
    restream = params.pop("restream", None)
    _reject_unknown(params, uri)
    path = Path(parts.path)
    if not path.is_file():
        raise SourceError(f"{parts.path}: no such file")
    try:  # probe: which kinds the file holds decides the stream ids
        with av.open(str(path)) as probe:
            kinds = tuple(sorted({s.type for s in probe.streams if s.type in ("video", "audio")}, reverse=True))
    except Exception as exc:  # noqa: BLE001
        raise SourceError(f"{parts.path}: not a readable media file ({_one_line(exc)})") from None
    if not kinds:
        raise SourceError(f"{parts.path}: no audio or video streams")
    return MediaSource(name, uri, clock, url=str(path), kinds=kinds, realtime=bool(realtime), restream=restream,
                       loop=bool(loop))
