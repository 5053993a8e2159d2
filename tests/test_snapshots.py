"""SVG snapshots of the dashboard (kept in snapshots/), from virtual-time demo data.

The hub is fed 8 s of the seeded demo streams in virtual time and the app is
built with live=False: no clock, no workers, so the picture is exactly
reproducible. Update deliberately with `make snapshots` and review the SVGs.
"""

from conftest import demo_hub
from midstream_tui.tui.app import MidStreamApp


def app():
    return MidStreamApp(demo_hub(8.0), live=False)


def test_dashboard_80x24(dashboard_snapshot):
    # the text stream selected: its text under a one-line attractor estimate
    assert dashboard_snapshot(app(), terminal_size=(80, 24))


def test_dashboard_audio_selected_80x24(dashboard_snapshot):
    # an audio stream has no panel of its own (not transcribed): the phase portrait gets the room
    assert dashboard_snapshot(app(), terminal_size=(80, 24), press=["j", "j"])


def test_dashboard_video_selected_80x24(dashboard_snapshot):
    # the frame preview gets the plot's room: a readable picture, not 20x5 cells
    assert dashboard_snapshot(app(), terminal_size=(80, 24), press=["j", "j", "j"])


def test_dashboard_120x40(dashboard_snapshot):
    assert dashboard_snapshot(app(), terminal_size=(120, 40))


def test_dashboard_video_selected_120x40(dashboard_snapshot):
    assert dashboard_snapshot(app(), terminal_size=(120, 40), press=["j", "j", "j"])


def test_help_screen_80x24(dashboard_snapshot):
    assert dashboard_snapshot(app(), terminal_size=(80, 24), press=["question_mark"])
