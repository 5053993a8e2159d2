"""Simulated sources: deterministic, realistic shapes, clear errors for bad URIs."""

import itertools

import numpy as np
import pytest

from midstream_tui import AudioChunk, SourceError, StreamClosed, StreamOpened, TextDelta, VideoFrame, open_source
from midstream_tui.sources import open_sources


def take(uri, n):
    return list(itertools.islice(open_source(uri).schedule(0.0), n))


def test_same_seed_same_stream_different_seed_different_stream():
    a = take("sim:text?seed=7", 300)
    b = take("sim:text?seed=7", 300)
    c = take("sim:text?seed=8", 300)
    assert [(e.t, getattr(e, "text", None)) for e in a] == [(e.t, getattr(e, "text", None)) for e in b]
    assert [getattr(e, "text", None) for e in a] != [getattr(e, "text", None) for e in c]


def test_text_stream_shape():
    events = take("sim:text?rate=50&seed=1&ttft=300", 400)
    assert isinstance(events[0], StreamOpened) and events[0].kind == "text"
    deltas = [e for e in events if isinstance(e, TextDelta)]
    times = np.array([d.t for d in deltas])
    assert np.all(np.diff(times) >= 0)
    text = "".join(d.text for d in deltas)
    assert len(text.split()) > 100 and text.count(".") > 2
    gaps = np.diff(times)
    assert 0.01 < np.median(gaps) < 0.04  # around 1/50 s
    assert gaps.min() < 0.005  # bursts
    assert deltas[0].t > 0.1  # a time to first token


def test_loop_behavior_repeats_a_phrase():
    deltas = [e.text for e in take("sim:text?behavior=loop&seed=2", 400) if isinstance(e, TextDelta)]
    tail = "".join(deltas[-120:])
    unit = "".join(deltas[-40:-30])
    assert tail.count(unit) >= 5


def test_finite_requests_end_with_stream_closed():
    events = list(open_source("sim:text?requests=2&max_tokens=20&seed=1").schedule(0.0))
    assert isinstance(events[-1], StreamClosed)
    assert sum(isinstance(e, TextDelta) for e in events) == 40


def test_audio_chunks_are_20ms_of_48k_pcm16():
    chunks = [e for e in take("sim:audio?seed=3", 201) if isinstance(e, AudioChunk)]
    assert len(chunks) == 200
    assert all(c.samples.shape == (960,) and c.samples.dtype == np.int16 for c in chunks)
    assert chunks[-1].t == pytest.approx(200 * 0.02, abs=0.01)
    assert not chunks[0].samples.flags.writeable


def test_video_frames_720p_30fps():
    frames = [e for e in take("sim:video?seed=4", 61) if isinstance(e, VideoFrame)]
    assert frames[0].frame.shape == (720, 1280, 3) and frames[0].frame.dtype == np.uint8
    assert frames[-1].t == pytest.approx(60 / 30, abs=0.01)
    assert not np.array_equal(frames[0].frame, frames[10].frame)  # things move


def test_duration_ends_media_streams():
    events = list(open_source("sim:audio?duration=1").schedule(0.0))
    assert isinstance(events[-1], StreamClosed)
    assert sum(isinstance(e, AudioChunk) for e in events) == 50


@pytest.mark.parametrize("uri, message", [
    ("sim:nope", "unknown simulated stream"),
    ("bogus://x", "unknown source"),
    ("", "empty source"),
    ("sim:text?rate=fast", "rate='fast'"),
    ("sim:text?rate=-1", "rate='-1'"),
    ("sim:text?rate=nan", "rate='nan'"),
    ("sim:text?behavior=wild", "behavior"),
    ("sim:text?colour=red", "unknown parameter(s) colour"),
    ("sim:video?width=100000", "width"),
    ("webrtc://127.0.0.1:9/room?token=abc", "set MIDSTREAM_SIGNALING_TOKEN"),
    ("webrtc://127.0.0.1/room", "expected webrtc://HOST:PORT/ROOM"),
    ("webrtc://[::1/room", "Invalid IPv6 URL"),  # (a traceback until 2026-12-06, here and below)
    ("rtmp://[::1/live", "Invalid IPv6 URL"),
    ("http://[::1/x.m3u8", "Invalid IPv6 URL"),
    ("webrtc://127.0.0.1:9/room?ice=lan", "ice='lan'"),
    ("/nonexistent/clip.mp4", "no such file"),
    ("clip.mp4?realtime=2", "realtime='2'"),
    ("openai:realtime?model=x&audio=2&base_url=http://127.0.0.1:9/v1", "audio='2'"),
    ("openai:responses?prompt=hi&base_url=http://127.0.0.1:9/v1", "model= is required"),
    ("openai:chat?prompt=hi&base_url=http://127.0.0.1:9/v1", "model= is required"),
    ("openai:chat?model=x&api_key=sk-123", "never put a key in a source URI"),
])
def test_bad_uris_raise_one_line_errors(uri, message):
    with pytest.raises(SourceError) as err:
        open_source(uri)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_duplicate_names_get_unique_stream_ids():
    ids = [s.stream_id for s in open_sources(["sim:text", "sim:text", "sim:text?name=x"])]
    assert ids == ["text", "text-2", "x"]


def test_a_new_scheme_is_one_entry_in_the_table(monkeypatch):
    """The README's walkthrough for adding a source, followed: a ScheduledSource, its options read with
    params.param, and one entry in SCHEMES."""
    from midstream_tui import VirtualClock
    from midstream_tui.sources import SCHEMES, ScheduledSource
    from midstream_tui.sources.params import param, query, reject_unknown

    class Ticks(ScheduledSource):
        kind = "text"

        def __init__(self, stream_id, uri, clock, n):
            super().__init__(stream_id, uri, clock)
            self.n = n

        def schedule(self, t0=0.0):
            yield StreamOpened(self.stream_id, t0, kind="text", source=self.uri, identity=self.identity("text"))
            for k in range(self.n):
                yield TextDelta(self.stream_id, t0 + 0.1 * (k + 1), f"tick{k} ")
            yield StreamClosed(self.stream_id, t0 + 0.1 * (self.n + 1))

    def open_ticks(uri, parts, stream_id, clock, settings):
        params = query(uri, parts.query)
        src = Ticks(params.pop("name", None) or stream_id or "ticks", uri, clock,
                    param(params, "n", int, 3, lambda v: 0 < v <= 1000, "1 to 1000"))
        reject_unknown(params, uri)
        return src

    monkeypatch.setitem(SCHEMES, "ticks", open_ticks)
    src, = open_sources(["ticks:?n=4&name=t"], VirtualClock())
    events = list(src.schedule(0.0))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["tick0 ", "tick1 ", "tick2 ", "tick3 "]
    assert events[0].identity == "file:text"  # (a scheme identity_of does not know: named by its kind)
    with pytest.raises(SourceError, match="unknown parameter"):
        open_sources(["ticks:?n=2&colour=red"])
    with pytest.raises(SourceError, match="n='0'"):
        open_sources(["ticks:?n=0"])
