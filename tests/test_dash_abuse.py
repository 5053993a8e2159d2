"""Abusive DASH manifests: a bad number names its attribute and value in one line and is not retried; a padding
width and a URL's length are bounded, and segment URLs are built as they are read, so a small manifest cannot
take the memory of a million long URLs."""

import subprocess
import sys
import tracemalloc

import pytest

from midstream_tui import Hub, open_sources
from midstream_tui.sources.dash import DashError, parse_duration, parse_manifest

CMD = [sys.executable, "-m", "midstream_tui"]

MPD = ('<MPD type="static" mediaPresentationDuration="{total}"><Period><AdaptationSet contentType="video">'
       '<Representation id="v" bandwidth="{bandwidth}"><SegmentTemplate {template} media="{media}">{timeline}'
       "</SegmentTemplate></Representation></AdaptationSet></Period></MPD>")


def mpd(total="PT10S", bandwidth="1000", template='timescale="1" duration="2"', media="s$Number$.m4s", timeline=""):
    return MPD.format(total=total, bandwidth=bandwidth, template=template, media=media, timeline=timeline)


def timeline(s):
    return mpd(template='timescale="1"', timeline=f"<SegmentTimeline>{s}</SegmentTimeline>")


NUMBERS = [  # (the manifest, the one-line error it must give)
    (mpd(template='timescale="0" duration="2"'),  # was ZeroDivisionError, and retried
     'bad manifest: SegmentTemplate timescale="0" (must be a whole number > 0)'),
    (mpd(template='timescale="-1000" duration="2"'),
     'bad manifest: SegmentTemplate timescale="-1000" (must be a whole number > 0)'),
    (mpd(template='timescale="nan" duration="2"'),
     'bad manifest: SegmentTemplate timescale="nan" (must be a whole number > 0)'),
    (mpd(template='timescale="' + "9" * 5000 + '" duration="2"'),  # int() of 5,000 digits: a ValueError of its own
     'bad manifest: SegmentTemplate timescale="' + "9" * 40 + '..." (larger than 2^63 - 1)'),
    (mpd(template='timescale="99999999999999999999" duration="2"'),
     'bad manifest: SegmentTemplate timescale="99999999999999999999" (larger than 2^63 - 1)'),
    (mpd(template='timescale="1" duration="0"'),
     'bad manifest: SegmentTemplate duration="0" (must be a whole number > 0)'),
    (mpd(template='timescale="1" duration="-2"'),
     'bad manifest: SegmentTemplate duration="-2" (must be a whole number > 0)'),
    (mpd(template='timescale="1" duration="2.5"'),
     'bad manifest: SegmentTemplate duration="2.5" (must be a whole number > 0)'),
    (mpd(template='timescale="1" duration="inf"'),
     'bad manifest: SegmentTemplate duration="inf" (must be a whole number > 0)'),
    (mpd(template='timescale="1" duration="2" startNumber="-1"'),
     'bad manifest: SegmentTemplate startNumber="-1" (must be a whole number >= 0)'),
    (mpd(template='timescale="1" duration="2" startNumber="one"'),
     'bad manifest: SegmentTemplate startNumber="one" (must be a whole number >= 0)'),
    (mpd(bandwidth="x"), 'bad manifest: Representation bandwidth="x" (must be a whole number >= 0)'),
    (mpd(bandwidth="-5"), 'bad manifest: Representation bandwidth="-5" (must be a whole number >= 0)'),
    (mpd(bandwidth="1e6"), 'bad manifest: Representation bandwidth="1e6" (must be a whole number >= 0)'),
    (timeline('<S t="1e3" d="2"/>'), 'bad manifest: S t="1e3" (must be a whole number >= 0)'),
    (timeline('<S t="-4" d="2"/>'), 'bad manifest: S t="-4" (must be a whole number >= 0)'),
    (timeline('<S t="0" d="0"/>'), 'bad manifest: S d="0" (must be a whole number > 0)'),
    (timeline('<S t="0" d="2.0"/>'), 'bad manifest: S d="2.0" (must be a whole number > 0)'),
    (timeline('<S t="0" d="2" r="x"/>'), 'bad manifest: S r="x" (must be a whole number >= -1)'),
    (timeline('<S t="0" d="2" r="-7"/>'), 'bad manifest: S r="-7" (must be a whole number >= -1)'),
    (mpd(template='timescale="1&#10;x" duration="2"'),  # a newline in the value stays out of the one line
     'bad manifest: SegmentTemplate timescale="1\\nx" (must be a whole number > 0)'),
    (mpd(total="P" + "9" * 400 + "D"),  # read as an infinite float: OverflowError in math.ceil
     'bad manifest: MPD mediaPresentationDuration="P' + "9" * 39 + '..." (longer than 1e+10 s)'),
    (mpd(total="10 s"), 'bad manifest: MPD mediaPresentationDuration="10 s" (not an ISO 8601 duration such as PT10S)'),
]


@pytest.mark.parametrize("text, message", NUMBERS, ids=[m[14:m.index(" (")][:60] for _, m in NUMBERS])
def test_a_bad_number_names_its_attribute_and_value_in_one_line(text, message):
    with pytest.raises(DashError) as info:
        parse_manifest(text, "http://h/m.mpd")
    assert str(info.value) == message


def test_good_numbers_still_read():
    m = parse_manifest(timeline('<S t="0" d="2" r="-1"/>'), "http://h/m.mpd")  # r="-1": to the end (10 s)
    assert [u for _, u in m.tracks[0].segments] == [f"http://h/s{n}.m4s" for n in range(1, 6)]
    m = parse_manifest(mpd(bandwidth=" 9000 ", template='timescale="1000" duration="2000" startNumber="0"'),
                       "http://h/m.mpd")
    assert [n for n, _ in m.tracks[0].segments] == [0, 1, 2, 3, 4]


def test_an_infinite_duration_is_refused():
    with pytest.raises(DashError, match="longer than"):
        parse_duration("PT" + "9" * 400 + "S")


async def test_a_zero_timescale_over_http_is_one_error_without_retries(http_server):
    root, base = http_server
    (root / "ts0.mpd").write_text(mpd(template='timescale="0" duration="2"'))
    hub = Hub(analysis_interval=0.05)
    for src in open_sources([f"{base}/ts0.mpd?reconnect=1"], hub.clock):  # (a ZeroDivisionError was retried)
        hub.add_source(src)
    await hub.run(120)  # liveness only: the run ends with the error
    snap = hub.snapshot("ts0")
    assert snap.status == "error"
    assert snap.error.endswith('bad manifest: SegmentTemplate timescale="0" (must be a whole number > 0)'), snap.error
    assert "ZeroDivisionError" not in snap.error and "attempts" not in snap.error
    assert hub.source("ts0").sessions == 0
    assert not any("reconnecting in" in h.message for _, h in hub.patterns_since(0))


def run_headless(url):
    return subprocess.run([*CMD, "run", "--headless", "--no-record", "--duration", "60", url],
                          capture_output=True, text=True, timeout=120)


def test_a_bad_bandwidth_at_the_command_line_is_one_line_naming_it(http_server):
    root, base = http_server
    (root / "bw.mpd").write_text(mpd(bandwidth="x"))
    proc = run_headless(f"{base}/bw.mpd?reconnect=1")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, (proc.returncode, proc.stderr[-800:])
    assert lines[0] == ('midstream: error: every source failed (bw: DashError: bad manifest: Representation '
                        'bandwidth="x" (must be a whole number >= 0))'), lines[0]
    assert "ValueError" not in proc.stdout + proc.stderr and "reconnecting" not in proc.stdout


# -- memory: the padding width, a URL's length, URLs built as read ---------------------------------------------

WIDE = ('<MPD type="static" mediaPresentationDuration="PT999999S"><Period><AdaptationSet contentType="video">'
        '<Representation id="v"><SegmentTemplate duration="1" media="s$Number%020000d$.m4s"/></Representation>'
        "</AdaptationSet></Period></MPD>")


def test_a_padding_width_beyond_32_digits_is_refused():
    text = WIDE.replace("PT999999S", "PT20S")  # 20 URLs of 20 kB: read without a word before
    with pytest.raises(DashError) as info:
        parse_manifest(text, "http://h/m.mpd")
    assert str(info.value) == ('bad manifest: template "s$Number%020000d$.m4s" pads $Number$ to 20000 digits '
                               "(at most 32)")
    m = parse_manifest(text.replace("%020000d", "%032d"), "http://h/m.mpd")
    assert m.tracks[0].segments[0][1] == "http://h/s" + "1".zfill(32) + ".m4s"


def test_the_260_byte_manifest_at_the_command_line_is_refused_up_front(http_server):
    """20,000 URLs of 20 kB each took 424 MB (up to a million of them: MemoryError under a memory cap)."""
    root, base = http_server
    (root / "wide.mpd").write_text(WIDE)
    assert len(WIDE.encode()) < 300
    proc = run_headless(f"{base}/wide.mpd")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, (proc.returncode, proc.stderr[-800:])
    assert "pads $Number$ to 20000 digits (at most 32)" in lines[0] and "MemoryError" not in lines[0], lines[0]


def test_a_segment_url_longer_than_8_kb_is_refused():
    with pytest.raises(DashError) as info:
        parse_manifest(mpd(media="a" * 9000 + "$Number$.m4s"), "http://h/m.mpd")
    assert str(info.value) == ('bad manifest: SegmentTemplate media="' + "a" * 40 + '..." makes URLs of 9,014 '
                               "characters (at most 8,192)")


def test_segment_urls_are_built_as_they_are_read():
    """20,000 legal URLs of 4 kB each: listed, they took 80 MB; the track holds their rule instead."""
    text = mpd(total="PT40000S", media="p" * 4000 + "$Number%08d$.m4s")
    tracemalloc.start()
    try:
        m = parse_manifest(text, "http://h/m.mpd")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    segments = m.tracks[0].segments
    assert len(segments) == 20_000
    assert peak < 2_000_000, peak  # (eagerly: more than 80 MB)
    assert segments[0] == (1, "http://h/" + "p" * 4000 + "00000001.m4s")
    assert segments[-1] == (20_000, "http://h/" + "p" * 4000 + "00020000.m4s")
    assert sum(1 for _ in segments) == 20_000
