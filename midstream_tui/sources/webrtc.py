"""WebRTC through aiortc: a receiver source, and a publisher for files and simulated streams.

    webrtc://HOST:PORT/ROOM[?name=cam&ice=loopback&tls=1]

The receiver joins ROOM on a MidStream signaling server (``midstream signaling``)
as ``receiver``, answers the offer of the publisher that comes (a browser on the
server's page, ``midstream publish``, any WebRTC peer speaking the same JSON),
and turns its tracks into events: video into the stream ``<name>`` (RGB frames,
bitrate from the RTP payload bytes), audio into ``<name>-audio`` (48 kHz mono
PCM16). When the publisher leaves, the stream stays open and waits for the next
one; when the signaling server is unreachable, it retries with capped exponential
backoff and jitter.

The signaling token comes from ``MIDSTREAM_SIGNALING_TOKEN`` (environment or
``.env``), never from the URI: URIs are shown and recorded.

``ice=loopback`` offers only 127.0.0.1 as a host candidate (aioice leaves loopback
out by default), for peers on the same machine with no other interface in
common: tests and demos. It applies to the connections this source (or
publisher) makes, nothing else.
"""

from __future__ import annotations

import asyncio
import contextvars
import fractions
import functools
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlsplit

import aiohttp
import av
import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import candidate_from_sdp
from av.video.reformatter import VideoReformatter

from ..clock import Clock
from ..events import AudioChunk, Event, Flag, StreamClosed, StreamError, StreamOpened, VideoFrame
from .base import Backoff, Source, SourceError

TOKEN_ENV = "MIDSTREAM_SIGNALING_TOKEN"
AUDIO_RATE = 48_000
_LOOPBACK_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar("midstream_loopback_ice", default=False)


def _install_ice_hook() -> None:
    """Let a connection made under ``_LOOPBACK_ONLY`` gather 127.0.0.1 as its only host address."""
    import aioice.ice as ice

    if getattr(ice.get_host_addresses, "midstream_hook", False):
        return
    original = ice.get_host_addresses

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        if _LOOPBACK_ONLY.get():
            return ["127.0.0.1"] if use_ipv4 else []
        return original(use_ipv4=use_ipv4, use_ipv6=use_ipv6)

    host_addresses.midstream_hook = True  # type: ignore[attr-defined]
    ice.get_host_addresses = host_addresses


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    room: str
    ice_loopback: bool
    tls: bool
    codec: str
    name: str

    def ws_url(self, role: str) -> str:
        return f"{'wss' if self.tls else 'ws'}://{self.host}:{self.port}/ws/{quote(self.room, safe='')}?role={role}"


def parse_target(uri: str, *, allow: tuple[str, ...] = ("name", "ice", "tls", "codec")) -> Target:
    try:
        parts = urlsplit(uri)
    except ValueError as exc:  # ("webrtc://[::1/room": an IPv6 address not closed)
        raise SourceError(f"{uri}: {exc}; expected webrtc://HOST:PORT/ROOM") from None
    if parts.scheme != "webrtc":
        raise SourceError(f"{uri}: expected webrtc://HOST:PORT/ROOM")
    try:
        port = parts.port
    except ValueError:
        raise SourceError(f"{uri}: bad port") from None
    room = parts.path.strip("/")
    if not parts.hostname or not port or not room or "/" in room:
        raise SourceError(f"{uri}: expected webrtc://HOST:PORT/ROOM")
    try:
        params = dict(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query)))
    except ValueError:
        raise SourceError(f"{uri}: malformed query string") from None
    if "token" in params:
        raise SourceError(f"{uri}: a token in a URI would be shown and recorded; set {TOKEN_ENV} instead")
    unknown = sorted(set(params) - set(allow))
    if unknown:
        raise SourceError(f"{uri}: unknown parameter(s) {', '.join(unknown)}")
    ice = params.get("ice", "all")
    if ice not in ("all", "loopback"):
        raise SourceError(f"{uri}: ice={ice!r}: expected all or loopback")
    tls = params.get("tls", "0")
    if tls not in ("0", "1"):
        raise SourceError(f"{uri}: tls={tls!r}: expected 0 or 1")
    codec = params.get("codec", "any").lower()
    if codec not in ("any", "vp8", "h264"):
        raise SourceError(f"{uri}: codec={codec!r}: expected vp8 or h264")
    return Target(parts.hostname, port, room, ice == "loopback", tls == "1", codec, params.get("name") or room)


class SignalingRefused(Exception):
    """The signaling server answered and said no (token, origin, full room): retrying will not help."""


async def _connect(session: aiohttp.ClientSession, target: Target, role: str,
                   token: str | None) -> aiohttp.ClientWebSocketResponse:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        return await session.ws_connect(target.ws_url(role), headers=headers, heartbeat=20.0,
                                        timeout=aiohttp.ClientWSTimeout(ws_close=5.0))
    except aiohttp.WSServerHandshakeError as exc:
        if exc.status in (400, 401, 403):
            why = {401: "refused the signaling token", 403: "refused this origin"}.get(exc.status, "refused the request")
            raise SignalingRefused(f"signaling server {target.host}:{target.port} {why} (HTTP {exc.status})") from None
        raise


def _peer_connection(target: Target):
    _install_ice_hook()
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))  # no STUN: nothing leaves this network


def _prefer_codec(pc, codec: str) -> None:
    if codec == "any":
        return
    wanted = f"video/{'H264' if codec == 'h264' else 'VP8'}"
    prefs = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType in (wanted, "video/rtx")]
    for transceiver in pc.getTransceivers():
        if transceiver.kind == "video":
            transceiver.setCodecPreferences(prefs)


def _candidate(msg: dict):
    c = msg.get("candidate")
    if isinstance(c, dict) and isinstance(c.get("candidate"), str) and c["candidate"]:
        cand = candidate_from_sdp(c["candidate"].split(":", 1)[-1])
        cand.sdpMid, cand.sdpMLineIndex = c.get("sdpMid"), c.get("sdpMLineIndex")
        return cand
    return None


class WebRTCSource(Source):
    kind = "video"

    @property
    def audio_id(self) -> str:
        """The peer's audio stream, made from the stream's id when asked (``open_sources`` may rename a source)."""
        return f"{self.stream_id}-audio"

    def __init__(self, stream_id: str, uri: str, clock: Clock | None, target: Target, *,
                 token: str | None = None) -> None:
        super().__init__(stream_id, uri, clock)
        self.target = target
        self._token = token  # shown to the signaling server only, never logged or recorded
        self.frames = 0
        self.audio_chunks = 0
        self.dropped = 0
        self.publishers = 0
        self._out: asyncio.Queue | None = None
        self._pc = None
        self._publisher: str | None = None
        self._video_bytes = 0
        self._stop = asyncio.Event()

    def cancel(self) -> None:
        super().cancel()
        self._stop.set()

    def _emit(self, event: Event | None) -> None:
        assert self._out is not None
        try:
            self._out.put_nowait(event)
        except asyncio.QueueFull:  # a live peer cannot wait: drop media, never control
            if isinstance(event, (VideoFrame, AudioChunk)):
                self.dropped += 1
            else:
                self._out._queue.append(event)  # type: ignore[attr-defined]

    async def events(self) -> AsyncIterator[Event]:
        now = self.clock.now()
        yield StreamOpened(self.stream_id, now, kind="video", source=self.uri, identity=self.identity("video"))
        yield StreamOpened(self.audio_id, now, kind="audio", source=self.uri, identity=self.identity("audio"))
        self._out = asyncio.Queue(maxsize=64)
        ctx = contextvars.copy_context()
        ctx.run(_LOOPBACK_ONLY.set, self.target.ice_loopback)
        runner = asyncio.get_running_loop().create_task(self._run(), context=ctx)
        failed = False
        try:
            while True:
                event = await self._out.get()
                if event is None:
                    break
                failed = failed or (isinstance(event, StreamError) and event.fatal)
                yield event
        finally:
            self._stop.set()
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        reason = "cancelled" if self.cancelled else ("error" if failed else "finished")
        now = self.clock.now()
        yield StreamClosed(self.audio_id, now, reason=reason)
        yield StreamClosed(self.stream_id, now, reason=reason)

    async def _run(self) -> None:
        backoff = Backoff()
        warned = False
        try:
            async with aiohttp.ClientSession() as session:
                while not self._stop.is_set():
                    try:
                        ws = await _connect(session, self.target, "receiver", self._token)
                    except SignalingRefused as exc:
                        self._emit(StreamError(self.stream_id, self.clock.now(), str(exc), fatal=True))
                        return
                    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
                        delay = backoff.next()
                        if not warned:
                            self._emit(StreamError(self.stream_id, self.clock.now(),
                                                   f"signaling {self.target.host}:{self.target.port} unreachable "
                                                   f"({type(exc).__name__}); retrying with backoff", transient=True))
                            warned = True
                        try:
                            await asyncio.wait_for(self._stop.wait(), delay)
                        except asyncio.TimeoutError:
                            pass
                        continue
                    backoff.reset()
                    warned = False
                    try:
                        await self._session(ws)
                    finally:
                        await ws.close()
                        await self._close_pc()
                    if not self._stop.is_set() and not warned:
                        self._emit(StreamError(self.stream_id, self.clock.now(),
                                               "signaling connection lost; reconnecting", transient=True))
                        warned = True
        finally:
            await self._close_pc()
            self._emit(None)

    async def _session(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            while True:
                recv = asyncio.ensure_future(ws.receive())
                done, _ = await asyncio.wait({recv, stop}, return_when=asyncio.FIRST_COMPLETED)
                if stop in done:
                    recv.cancel()
                    return
                msg = recv.result()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    return  # closed, or an error: the caller reconnects
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    continue
                if isinstance(data, dict):
                    await self._on_message(ws, data)
        finally:
            stop.cancel()

    async def _on_message(self, ws: aiohttp.ClientWebSocketResponse, msg: dict) -> None:
        kind, sender = msg.get("type"), msg.get("from")
        if kind == "offer" and isinstance(msg.get("sdp"), str):
            await self._answer(ws, sender, msg["sdp"])
        elif kind == "candidate" and self._pc is not None and sender == self._publisher:
            try:
                cand = _candidate(msg)
                if cand is not None:
                    await self._pc.addIceCandidate(cand)
            except Exception as exc:  # noqa: BLE001 - a bad candidate is the peer's problem, not a crash
                self._emit(StreamError(self.stream_id, self.clock.now(), f"bad ICE candidate: {exc}"[:200]))
        elif kind in ("peer-left", "bye") and (msg.get("id") or sender) == self._publisher:
            await self._close_pc()
            self._emit(Flag(self.stream_id, self.clock.now(), "publisher left; waiting for the next", kind="webrtc"))
        elif kind == "error":
            self._emit(StreamError(self.stream_id, self.clock.now(), f"signaling: {msg.get('message')}"[:200]))

    async def _answer(self, ws: aiohttp.ClientWebSocketResponse, sender: str | None, sdp: str) -> None:
        await self._close_pc()  # the newest offer wins: a publisher that restarts gets through
        pc = _peer_connection(self.target)
        self._pc, self._publisher = pc, sender
        self.publishers += 1

        @pc.on("track")
        def on_track(track) -> None:
            if track.kind == "video":
                self._count_video_bytes(pc, track)
            asyncio.ensure_future(self._consume(track, pc))

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # noqa: BLE001 - a malformed offer is recorded, the source keeps waiting
            self._emit(StreamError(self.stream_id, self.clock.now(), f"cannot answer the offer: {exc}"[:200]))
            await self._close_pc()
            return
        await ws.send_str(json.dumps({"type": "answer", "sdp": pc.localDescription.sdp, "to": sender}))
        self._emit(Flag(self.stream_id, self.clock.now(), f"publisher {sender} connected", kind="webrtc"))

    async def _consume(self, track, pc) -> None:
        """The track's frames, while ``pc`` is the connection under way (frames its decoder still held when it closed
        are not delivered: they would read as the source's data after its "reconnecting")."""
        loop = asyncio.get_running_loop()
        resampler = av.AudioResampler(format="s16", layout="mono", rate=AUDIO_RATE)
        to_rgb = VideoReformatter()  # one scaler context for the track, not one per frame
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if pc is not self._pc:
                return
            now = self.clock.now()
            if track.kind == "video":
                converted = await loop.run_in_executor(None, functools.partial(to_rgb.reformat, frame, format="rgb24"))
                if pc is not self._pc:
                    return
                rgb = converted.to_ndarray()
                size, self._video_bytes = self._video_bytes, 0
                self.frames += 1
                self._emit(VideoFrame(self.stream_id, now, frame=rgb, encoded_bytes=size))
            else:
                for chunk in resampler.resample(frame):
                    pcm = chunk.to_ndarray().reshape(-1)
                    if pcm.size:
                        self.audio_chunks += 1
                        self._emit(AudioChunk(self.audio_id, now, samples=pcm.copy(), sample_rate=AUDIO_RATE))

    def _count_video_bytes(self, pc, track) -> None:
        """Count the RTP payload bytes of the video track's receiver: the encoded size on the wire.

        aiortc's statistics have no byte counter per inbound stream; its DTLS transport hands
        each packet to ``receiver._handle_rtp_packet``, which this wraps (aiortc is pinned < 2).
        """
        for receiver in pc.getReceivers():
            if receiver.track is track and not hasattr(receiver, "_midstream_counted"):
                original = receiver._handle_rtp_packet

                async def counted(packet, arrival_time_ms, original=original):
                    self._video_bytes += len(packet.payload)
                    await original(packet, arrival_time_ms)

                receiver._handle_rtp_packet = counted
                receiver._midstream_counted = True

    async def _close_pc(self) -> None:
        pc, self._pc, self._publisher = self._pc, None, None
        if pc is not None:
            await pc.close()


def open_webrtc(uri: str, clock: Clock | None, stream_id: str | None = None,
                token: str | None = None) -> WebRTCSource:
    target = parse_target(uri, allow=("name", "ice", "tls"))
    return WebRTCSource(stream_id or target.name, uri, clock, target, token=token)


# -- publishing ------------------------------------------------------------------------------

class FeedTrack(MediaStreamTrack):
    """A track fed from a queue of PyAV frames; when nobody reads, the newest frames are kept."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=8)

    def feed(self, frame) -> None:
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(frame)

    async def recv(self):
        frame = await self.queue.get()
        if frame is None:
            self.stop()
            raise MediaStreamError
        return frame


VIDEO_TIME_BASE = fractions.Fraction(1, 90_000)


def _to_av(event: Event, t0: float, samples_sent: int):
    if isinstance(event, VideoFrame):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(event.frame), format="rgb24")
        frame.pts, frame.time_base = int(round((event.t - t0) * 90_000)), VIDEO_TIME_BASE
        return frame
    pcm = np.ascontiguousarray(event.samples, dtype=np.int16)
    if pcm.ndim == 1:  # mono as two equal channels: the Opus encoder's own upmix lowers mono by 3 dB (measured)
        pcm = np.repeat(pcm, 2)
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="stereo")
    frame.sample_rate = event.sample_rate
    frame.pts, frame.time_base = samples_sent, fractions.Fraction(1, event.sample_rate)
    return frame


async def publish(source: Source, target_uri: str, *, status: Callable[[str], None] = lambda s: None,
                  duration: float | None = None, token: str | None = None) -> dict[str, int]:
    """Publish a source's audio/video to the receiver(s) of a room until the source ends
    (``token``: the signaling server's, MIDSTREAM_SIGNALING_TOKEN in the CLI).

    Returns counts: frames and audio chunks fed, receivers offered, errors.
    """
    target = parse_target(target_uri, allow=("ice", "tls", "codec"))
    _LOOPBACK_ONLY.set(target.ice_loopback)  # this task's connections only
    kinds = getattr(source, "kinds", None) or (source.kind,)
    tracks = {k: FeedTrack(k) for k in kinds if k in ("video", "audio")}
    if not tracks:
        raise SourceError(f"{source.uri}: nothing to publish (needs audio or video)")
    relay = MediaRelay()
    counts = {"video_frames": 0, "audio_chunks": 0, "offers": 0, "answers": 0}
    peers: dict[str, object] = {}
    done = asyncio.Event()

    async def pump() -> None:
        t0, samples = None, 0
        try:
            async for event in source:
                if isinstance(event, (VideoFrame, AudioChunk)):
                    t0 = event.t if t0 is None else t0
                    kind = "video" if isinstance(event, VideoFrame) else "audio"
                    if kind in tracks:
                        tracks[kind].feed(_to_av(event, t0, samples))
                        if kind == "audio":
                            samples += event.samples.shape[0]
                        counts["video_frames" if kind == "video" else "audio_chunks"] += 1
                elif isinstance(event, StreamError) and event.fatal:
                    status(f"source error: {event.message}")
        finally:
            done.set()

    async def offer(ws, peer_id: str) -> None:
        old = peers.pop(peer_id, None)
        if old is not None:
            await old.close()
        pc = _peer_connection(target)
        peers[peer_id] = pc
        for track in tracks.values():
            pc.addTrack(relay.subscribe(track, buffered=False))
        _prefer_codec(pc, target.codec)
        pc.on("connectionstatechange", lambda: status(f"receiver {peer_id}: {pc.connectionState}"))
        await pc.setLocalDescription(await pc.createOffer())
        await ws.send_str(json.dumps({"type": "offer", "sdp": pc.localDescription.sdp, "to": peer_id}))
        counts["offers"] += 1
        status(f"offer sent to receiver {peer_id}")

    async def signaling(session: aiohttp.ClientSession) -> None:
        ws = await _connect(session, target, "publisher", token)
        status(f"joined room {target.room} on {target.host}:{target.port}; waiting for a receiver")
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    continue
                kind = data.get("type") if isinstance(data, dict) else None
                if kind == "welcome":
                    for peer in data.get("peers", []):
                        if isinstance(peer, dict) and peer.get("role") == "receiver":
                            await offer(ws, peer["id"])
                elif kind == "peer-joined" and data.get("role") == "receiver":
                    await offer(ws, data["id"])
                elif kind == "answer" and data.get("from") in peers and isinstance(data.get("sdp"), str):
                    await peers[data["from"]].setRemoteDescription(RTCSessionDescription(sdp=data["sdp"], type="answer"))
                    counts["answers"] += 1
                elif kind == "peer-left" and data.get("id") in peers:
                    await peers.pop(data["id"]).close()
                    status(f"receiver {data['id']} left")
                elif kind == "error":
                    status(f"signaling: {data.get('message')}")
        finally:
            if not ws.closed:
                await ws.send_str(json.dumps({"type": "bye"}))
                await ws.close()

    async with aiohttp.ClientSession() as session:
        feeder = asyncio.ensure_future(pump())
        signal_task = asyncio.ensure_future(signaling(session))
        waits = [asyncio.ensure_future(done.wait()), signal_task]
        try:
            finished, _ = await asyncio.wait(waits, timeout=duration, return_when=asyncio.FIRST_COMPLETED)
            if signal_task in finished and signal_task.exception() is not None:
                raise signal_task.exception()  # type: ignore[misc]
        finally:
            source.cancel()
            for track in tracks.values():
                track.feed(None)
            await asyncio.sleep(0)
            for task in (feeder, signal_task, *waits):
                task.cancel()
            await asyncio.gather(feeder, signal_task, *waits, return_exceptions=True)
            for pc in peers.values():
                await pc.close()
    return counts
