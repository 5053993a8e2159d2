"""Media through PyAV (FFmpeg inside the wheel): files, HLS, DASH, MPEG-TS over UDP, RTMP pull.

    clip.mp4[?realtime=0][&name=cam]        a media file (paced by its timestamps unless realtime=0)
    http://127.0.0.1:8000/live/index.m3u8   HLS (VOD or live), DASH (.mpd), udp://..., rtmp://...

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
from urllib.parse import urlsplit

import av

from ..clock import Clock
from ..events import AudioChunk, Event, StreamClosed, StreamError, StreamOpened, VideoFrame
from .base import Source, SourceError
from .simulate import _param, _reject_unknown

MEDIA_SUFFIXES = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".ts", ".wav", ".mp3", ".ogg", ".flac", ".m4a")
NETWORK_SCHEMES = ("http", "https", "udp", "rtmp", "rtsp", "srt")
AUDIO_RATE = 48_000


class _LoopGone(Exception):
    """The event loop the reader feeds has finished."""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


class MediaSource(Source):
    def __init__(self, stream_id: str, uri: str, clock: Clock | None, *, url: str, kinds: tuple[str, ...],
                 realtime: bool, options: dict[str, str] | None = None) -> None:
        super().__init__(stream_id, uri, clock)
        self.url, self.kinds, self.realtime, self.options = url, kinds, realtime, options or {}
        self.kind = "video" if "video" in kinds else "audio"
        self.lossless = urlsplit(url).scheme not in NETWORK_SCHEMES  # a file can wait, a live input cannot
        self.audio_id = f"{stream_id}-audio" if self.kind == "video" else stream_id

    def _read(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue) -> None:
        """The reader thread: demux, decode, resample; puts events (None at the end)."""
        def put(event: Event | None) -> None:
            if loop.is_closed():  # the run ended while FFmpeg was blocked in a read: stop quietly
                raise _LoopGone
            try:
                asyncio.run_coroutine_threadsafe(queue.put(event), loop).result()
            except (RuntimeError, concurrent.futures.CancelledError):
                raise _LoopGone from None

        container = None
        try:
            container = av.open(self.url, options=self.options, timeout=(10.0, 10.0))
            streams = [s for s in container.streams if s.type in ("video", "audio")]
            if not streams:
                raise SourceError("no audio or video in the input")
            resampler = av.AudioResampler(format="s16", layout="mono", rate=AUDIO_RATE)
            start_wall, first_pts = time.monotonic(), None
            pending = 0  # encoded video bytes not yet credited to a frame (decoders hold frames back)
            for packet in container.demux(streams):
                if self.cancelled:
                    break
                if packet.stream.type == "video":
                    pending += packet.size
                for frame in packet.decode():
                    if frame.time is not None and self.realtime:
                        first_pts = frame.time if first_pts is None else first_pts
                        delay = (frame.time - first_pts) - (time.monotonic() - start_wall)
                        if delay > 0:
                            time.sleep(min(delay, 1.0))
                    now = self.clock.now()
                    if packet.stream.type == "video" and self.kind == "video":
                        put(VideoFrame(self.stream_id, now, frame=frame.to_ndarray(format="rgb24"),
                                       encoded_bytes=pending))
                        pending = 0
                    elif packet.stream.type == "audio":
                        for chunk in resampler.resample(frame):
                            pcm = chunk.to_ndarray().reshape(-1)
                            if pcm.size:
                                put(AudioChunk(self.audio_id, now, samples=pcm.copy(), sample_rate=AUDIO_RATE))
        except _LoopGone:
            pass
        except Exception as exc:  # noqa: BLE001 - FFmpeg and I/O errors become a recorded stream error
            if not self.cancelled:
                try:
                    put(StreamError(self.stream_id, self.clock.now(), _one_line(exc), fatal=True))
                except _LoopGone:
                    pass
        finally:
            if container is not None:
                container.close()
            try:
                put(None)
            except _LoopGone:
                pass

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


def open_media(uri: str, clock: Clock | None, stream_id: str | None = None) -> MediaSource | None:
    """A MediaSource for a media file or network URL, or None if ``uri`` is not one."""
    parts = urlsplit(uri)
    if parts.scheme in NETWORK_SCHEMES:
        if parts.scheme in ("http", "https") and not parts.path.endswith((".m3u8", ".mpd", *MEDIA_SUFFIXES)):
            return None
        name = stream_id or Path(parts.path).stem or parts.hostname or "media"
        if name in ("index", "playlist", "stream", "manifest", "live"):
            name = f"{parts.hostname}-{name}"
        # network input: which kinds it holds is only known once it plays; video first
        return MediaSource(name, uri, clock, url=uri, kinds=("video", "audio"), realtime=True)
    if parts.scheme not in ("", "file") or not parts.path.lower().endswith(MEDIA_SUFFIXES):
        return None
    params = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
    realtime = _param(params, "realtime", int, 1, lambda v: v in (0, 1), "0 or 1")
    name = params.pop("name", None) or stream_id or Path(parts.path).stem
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
    return MediaSource(name, uri, clock, url=str(path), kinds=kinds, realtime=bool(realtime))
