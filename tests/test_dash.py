"""The DASH manifest reader (PyAV's FFmpeg has no DASH demuxer): templates, timelines, live edges, bad input."""

import time

import pytest

from midstream_tui import Hub, open_sources
from midstream_tui.sources.dash import DashError, fill, parse_duration, parse_manifest

MPD = """<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="{type}" {extra}>
  <BaseURL>media/</BaseURL>
  <Period id="0">
    <AdaptationSet contentType="video">
      <Representation id="lo" bandwidth="300000"/>
      <Representation id="hi" bandwidth="900000">
        <SegmentTemplate timescale="1000" initialization="$RepresentationID$/init.mp4"
                         media="$RepresentationID$/$Number%04d$.m4s" startNumber="5" duration="2000"/>
      </Representation>
    </AdaptationSet>
    <AdaptationSet mimeType="audio/mp4">
      <Representation id="a" bandwidth="64000">
        <SegmentTemplate timescale="48000" initialization="a-init.mp4" media="a-$Time$.m4s">
          <SegmentTimeline><S t="0" d="96000" r="2"/><S d="48000"/></SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>"""


def test_durations_and_templates():
    assert parse_duration("PT3.0S") == 3.0
    assert parse_duration("PT1H2M3.5S") == 3723.5
    assert parse_duration("P1DT2S") == 86402
    assert parse_duration("P0Y0M0DT0H0M10S") == 10
    with pytest.raises(DashError):
        parse_duration("3 seconds")
    assert fill("c-$RepresentationID$-$Number%05d$-$$.m4s", "v1", 100, 42) == "c-v1-00042-$.m4s"
    with pytest.raises(DashError, match=r"\$Time\$"):
        fill("$Time$.m4s", "v", 1, number=3)


def test_static_manifest_with_fixed_durations_and_a_timeline():
    m = parse_manifest(MPD.format(type="static", extra='mediaPresentationDuration="PT7S"'),
                       "http://h/live/manifest.mpd")
    assert not m.dynamic and [t.kind for t in m.tracks] == ["video", "audio"]
    video, audio = m.tracks
    assert video.rep_id == "hi"  # the highest bandwidth
    assert video.init_url == "http://h/live/media/hi/init.mp4"
    assert [u for _, u in video.segments] == [f"http://h/live/media/hi/{n:04d}.m4s" for n in range(5, 9)]  # 7 s / 2 s
    assert [u.rsplit("/", 1)[1] for _, u in audio.segments] == ["a-0.m4s", "a-96000.m4s", "a-192000.m4s",
                                                                 "a-288000.m4s"]


def test_dynamic_manifest_starts_near_the_live_edge():
    start = time.time() - 100.0
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start))
    m = parse_manifest(MPD.format(type="dynamic", extra=f'availabilityStartTime="{stamp}" minimumUpdatePeriod="PT1S"'),
                       "http://h/x.mpd", now=start + 100.0)
    numbers = [n for n, _ in m.tracks[0].segments]
    # 100 s / 2 s per segment from number 5: the newest complete one is 54; begin two before it
    assert m.dynamic and m.update_period == 1.0 and numbers == [52, 53, 54]


@pytest.mark.parametrize("text, message", [
    ("not xml at all", "not an MPD manifest"),
    ("<html><body/></html>", "root element 'html'"),
    ('<MPD type="static"><Period><AdaptationSet contentType="video"><Representation id="v">'
     '<SegmentList/></Representation></AdaptationSet></Period></MPD>', "only SegmentTemplate"),
    ('<MPD type="static"><Period/></MPD>', "no audio or video"),
    # two billion segments (built one by one, this took gigabytes and never began playing)
    (MPD.format(type="static", extra='mediaPresentationDuration="PT10S"').replace('r="2"', 'r="2000000000"'),
     "more than 1,000,000 segments"),
    (MPD.format(type="static", extra='mediaPresentationDuration="PT100000000S"'), "more than 1,000,000 segments"),
])
def test_bad_manifests_say_why(text, message):
    with pytest.raises(DashError, match=message):
        parse_manifest(text, "http://h/m.mpd")


async def test_a_bad_manifest_over_http_is_one_recorded_error_without_retries(http_server):
    root, base = http_server
    (root / "bad.mpd").write_text("<MPD><Period/></MPD>")
    hub = Hub(analysis_interval=0.05)
    for src in open_sources([f"{base}/bad.mpd"], hub.clock):
        hub.add_source(src)
    await hub.run(120)  # liveness only: the run ends with the error
    snap = hub.snapshot("bad")
    assert snap.status == "error" and "no audio or video adaptation set" in snap.error
    # no backoff loop on an error that cannot change: one attempt, no retry notices
    assert "attempts" not in snap.error and hub.source("bad").sessions == 0
    assert not any("reconnecting in" in h.message for _, h in hub.patterns_since(0))


class SlowConsumer:
    """A hub tap that takes 60 ms per video frame: analysis slower than the video's 30 fps."""

    def __init__(self):
        self.frames = 0

    def event(self, stream, ev, measured):
        from midstream_tui.events import VideoFrame

        if isinstance(ev, VideoFrame):
            self.frames += 1
            time.sleep(0.06)


async def test_a_dash_vod_waits_for_a_slow_consumer_instead_of_dropping_frames(http_server):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_media import write_clip

    root, base = http_server
    write_clip(root / "manifest.mpd", seconds=4.0, size=(160, 120), fmt="dash", options={"seg_duration": "1"})
    hub = Hub(analysis_interval=0.05)
    slow = SlowConsumer()
    hub.add_tap(slow)
    for src in open_sources([f"{base}/manifest.mpd?name=vod"], hub.clock):
        hub.add_source(src)
    await hub.run(120)
    video, audio = hub.snapshot("vod"), hub.snapshot("vod-audio")
    assert video.status == "closed" and audio.status == "closed"
    assert video.metrics["drops"] == 0 and video.metrics["frames"] == 120 == slow.frames  # all of them, late
    assert audio.metrics["audio_s"] > 3.9


async def test_a_dash_vod_behind_a_login_and_a_server_that_breaks_off_still_plays_whole(tmp_path, free_port):
    """``user:password@`` in the URL becomes Basic auth (urllib took it for part of the host name), and a segment
    cut short (IncompleteRead, once uncaught: the stream ended "closed" after 7 of 120 frames) is a reconnection
    that resumes."""
    import base64
    import http.server
    import sys
    import threading
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_media import write_clip

    write_clip(tmp_path / "manifest.mpd", seconds=4.0, size=(160, 120), fmt="dash", options={"seg_duration": "1"})
    login = "Basic " + base64.b64encode(b"alice:s3cret pw").decode()  # audit: ignore (test value)
    cut: set[str] = set()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server name
            if self.headers.get("Authorization") != login:  # (urllib answers the challenge; it never sends first)
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="media"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = (tmp_path / self.path.lstrip("/").split("?")[0]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.path.endswith(".m4s") and "chunk-stream0-00002" in self.path and self.path not in cut:
                cut.add(self.path)  # the first time: half of it, then the connection closes
                self.wfile.write(data[: len(data) // 2])
                self.close_connection = True
                return
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        hub = Hub(analysis_interval=0.05)
        url = f"http://alice:s3cret%20pw@127.0.0.1:{free_port}/manifest.mpd?name=vod&realtime=0"  # audit: ignore
        for src in open_sources([url], hub.clock):
            hub.add_source(src)
        await hub.run(120)
    finally:
        server.shutdown()
        server.server_close()
    video = hub.snapshot("vod")
    said = [h.message for _, h in hub.patterns_since(0)]
    assert cut and any("broke off" in m and "reconnecting" in m for m in said), said
    assert video.status == "closed" and video.metrics["frames"] == 120, (video.metrics["frames"], video.error)
    assert "s3cret" not in " ".join(said) + str(video.error)
