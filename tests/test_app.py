"""The dashboard driven by keyboard through Textual's Pilot."""

import sys

import numpy as np

from conftest import ROOT, demo_hub, until
from midstream_tui import Hub, VirtualClock, open_sources, run_virtual
from midstream_tui.tui.app import MidStreamApp
from midstream_tui.tui.screens.help import HelpScreen
from midstream_tui.tui.widgets.attractor import AttractorPanel
from midstream_tui.tui.widgets.metrics import MetricsPanel
from midstream_tui.tui.widgets.pattern_log import PatternLog
from midstream_tui.tui.widgets.stream_list import StreamList


def text_of(widget) -> str:
    return str(widget.content)


async def test_arrow_and_vim_keys_move_between_streams():
    app = MidStreamApp(demo_hub(6), live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.selected == "llm"
        await pilot.press("j")
        assert app.selected == "llm-loop"
        await pilot.press("down", "down")
        assert app.selected == "video"
        assert app.hub.focus == "video"  # (the hub estimates the selected stream's attractor first)
        assert "fps" in text_of(app.query_one(MetricsPanel))
        assert app.query_one(MetricsPanel).border_title == "Metrics · video (video)"
        await pilot.press("j")
        assert app.selected == "llm"  # wraps around
        await pilot.press("k", "up")
        assert app.selected == "audio"
        assert "level/peak dB" in text_of(app.query_one(MetricsPanel))
        assert "▶ audio" in text_of(app.query_one(StreamList))


async def test_pattern_log_scrolls_by_keyboard():
    app = MidStreamApp(demo_hub(40), live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(PatternLog)
        await pilot.pause()
        entries = log.feed.entries
        assert len(entries) > 3 and log.auto_scroll and log.last_shown == len(entries) - 1
        await pilot.press("home")
        assert log.first_shown == 0 and not log.auto_scroll
        await pilot.press("pagedown")
        assert log.first_shown > 0
        await pilot.press("pageup")
        assert log.first_shown == 0
        await pilot.press("end")
        assert log.last_shown == len(entries) - 1 and log.auto_scroll


async def test_panels_toggle_with_digits():
    app = MidStreamApp(demo_hub(4), live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        for key, panel in (("1", StreamList), ("2", MetricsPanel), ("3", AttractorPanel), ("4", PatternLog)):
            await pilot.press(key)
            assert app.query_one(panel).display is False
            await pilot.press(key)
            assert app.query_one(panel).display is True
        await pilot.press("1", "2")  # the whole left column goes, the right one widens
        assert app.query_one("#left").display is False
        right = app.query_one("#right")
        assert right.size.width == 80


async def test_help_screen_opens_and_closes():
    app = MidStreamApp(demo_hub(2), live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)


async def test_refresh_rate_keys_change_render_clock_and_analysis_interval():
    app = MidStreamApp(demo_hub(2), live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("plus")
        # the render clock speeds up; analysis stays at the 5 Hz the numbers are redrawn at, at most
        assert app.refresh_ms == 50 and app.hub.analysis_interval == 0.2
        await pilot.press("minus", "minus", "minus")  # 50 -> 100 -> 200 -> 500
        assert app.refresh_ms == 500 and app.hub.analysis_interval == 0.5
        await pilot.press("minus", "minus", "minus")  # stops at the slowest step
        assert app.refresh_ms == 2000
        await pilot.press("equals_sign", "plus", "plus")
        assert app.refresh_ms == 200
        assert "5 Hz" in app.sub_title


async def test_command_palette_runs_actions():
    app = MidStreamApp(demo_hub(2), live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Select stream video")
        from textual.command import CommandList

        def offered() -> bool:  # the palette searches in a worker: wait until it offers the command
            found = app.screen.query(CommandList)
            return bool(found) and found.first().option_count > 0 and \
                "Select stream video" in str(found.first().get_option_at_index(0).prompt)

        assert await until(pilot, offered)
        await pilot.press("enter")
        assert await until(pilot, lambda: app.selected == "video")


async def test_live_dashboard_updates_pauses_and_cancels_mid_stream():
    hub = Hub()
    sources = open_sources(["sim:text?rate=80&ttft=50&seed=1", "sim:audio"], hub.clock)
    app = MidStreamApp(hub, sources, refresh_ms=50)
    async with app.run_test(size=(80, 24)) as pilot:
        snap = lambda s: hub.snapshot(s) if s in hub.streams else None  # noqa: E731
        assert await until(pilot, lambda: snap("text") is not None and snap("text").metrics["tokens"] > 20)
        assert await until(pilot, lambda: "tok/s" in text_of(app.query_one(StreamList)))
        # pause freezes the display while analysis goes on
        await pilot.press("p")
        renders, ticks = app.renders, hub.ticks
        assert await until(pilot, lambda: hub.ticks > ticks + 2)
        assert app.renders == renders
        assert "paused" in app.sub_title
        await pilot.press("p")
        assert await until(pilot, lambda: app.renders > renders)
        # cancel the selected (text) stream mid-stream
        await pilot.press("c")
        assert await until(pilot, lambda: snap("text").status == "cancelled")
        assert snap("audio").status == "open"
        assert await until(pilot, lambda: "cancelled" in text_of(app.query_one(StreamList)))
        await pilot.press("q")
    assert app.return_code == 0
    assert not hub.running and hub.stopped


async def test_example_dashboard_fed_by_user_code():
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import dashboard_on_hub
    finally:
        sys.path.pop(0)
    app = dashboard_on_hub.make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        snap = lambda: app.hub.snapshot("sensor") if "sensor" in app.hub.streams else None  # noqa: E731
        assert await until(pilot, lambda: snap() is not None and snap().metrics["tokens"] >= 10)
        assert app.selected == "sensor"
        await pilot.press("q")


async def test_s_switches_the_attractor_panel_between_signals():
    app = MidStreamApp(demo_hub(6), live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        info = app.query_one("#attractor-info")
        assert "word length" in str(info.content) and "1/2 (s)" in str(info.content)
        await pilot.press("s")
        assert "inter-token gap" in str(info.content) and "2/2 (s)" in str(info.content)
        await pilot.press("s")
        assert "word length" in str(info.content)


async def test_text_panel_shows_the_newest_text_of_text_streams_only():
    from midstream_tui.tui.widgets.text_view import TextView

    hub = demo_hub(6)
    app = MidStreamApp(hub, live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        view = app.query_one(TextView)
        newest_words = hub.snapshot("llm").text_tail.split()[-3:]
        assert view.display and " ".join(newest_words) in " ".join(str(view.content).split())
        await pilot.press("j", "j")  # audio
        assert not view.display
        await pilot.press("k", "k", "5")  # back to llm, then hide the panel by key
        assert not view.display
        await pilot.press("5")
        assert view.display


def test_token_counts_say_whether_they_are_the_servers_or_estimated():
    from midstream_tui.display import metric_rows

    hub = demo_hub(12, ["sim:text?seed=1&max_tokens=50&think=0.1&name=x"])  # usage after each request
    rows = dict(metric_rows(hub.snapshot("x")))
    assert rows["requests · tok"].endswith(" tok") and "≈" not in rows["requests · tok"]
    hub = Hub(VirtualClock())
    hub.push_text("y", "a b c", tokens=3, t=0.1)
    rows = dict(metric_rows(hub.analyze(now=1.0)["y"]))
    assert rows["requests · tok"] == "1 · ≈3 tok"


async def test_frame_preview_for_video_streams():
    from midstream_tui.tui.widgets.frame_preview import FramePreview, half_blocks
    from midstream_tui.tui.widgets.text_view import TextView

    hub = demo_hub(6)
    app = MidStreamApp(hub, live=False)
    async with app.run_test(size=(120, 40)) as pilot:
        preview, text = app.query_one(FramePreview), app.query_one(TextView)
        assert not preview.display and text.display
        await pilot.press("k")  # wraps to video
        assert app.selected == "video" and preview.display and not text.display
        assert "▀" in preview.picture_text
        assert "▀" in app.export_screenshot()  # on the screen, not only in the panel
        import dataclasses

        from midstream_tui.perception.vision import Detection
        found = dataclasses.replace(hub.snapshot("video"), detections=(Detection("face", .2, .2, .3, .4, 2.5, 0.0),))
        preview.draw(found, *preview.cells)
        rows = preview.picture_text.splitlines()
        assert rows[-1] == "face 2.5" and all(set(r) == {"▀"} for r in rows[:-1])
        caption = preview.render_line(len(rows) - 1)  # in the panel's colours, as text would be
        assert all(seg.style.bgcolor == preview.rich_style.bgcolor and seg.style.bold for seg in caption)
        # a label from a peer: drawn as symbols (a caption is a hand-made Segment: it never was a Content)
        hostile = dataclasses.replace(found, detections=(Detection("face\x1b]0;PWNED\x07", .2, .2, .3, .4, 2.5, 0.),))
        preview.draw(hostile, *preview.cells)
        drawn = preview.render_line(len(preview.picture_text.splitlines()) - 1).text
        assert "\x1b" not in drawn and "\x07" not in drawn and "face␛]0;PWNED" in drawn
    image = hub.snapshot("video").preview
    assert image.shape == (90, 160, 3) and not image.flags.writeable
    drawn = half_blocks(image, 16, 9)
    assert [line.text for line in drawn] == ["▀" * 16] * 9
    ys, xs = (np.arange(18) * 90) // 18, (np.arange(16) * 160) // 16
    for r, line in enumerate(drawn):  # each cell: the top pixel as foreground, the one below as background
        cells = [seg.style for seg in line for _ in seg.text]
        assert [s.color.triplet for s in cells] == [tuple(image[ys[2 * r], x]) for x in xs]
        assert [s.bgcolor.triplet for s in cells] == [tuple(image[ys[2 * r + 1], x]) for x in xs]


# -- 80x24 as a first-class layout, and the small things a user trips over ---------------------------------


async def test_at_80x24_each_kind_gets_the_panels_it_needs_whole():
    from midstream_tui.tui.widgets.frame_preview import FramePreview

    app = MidStreamApp(demo_hub(8), live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        attractor = app.query_one(AttractorPanel)
        # text: the text panel takes the plot's room; the estimate stays as one line
        assert attractor.has_class("-collapsed") and app.text_view.display and app.text_view.size.height >= 7
        await pilot.press("j", "j")  # audio (not transcribed): the phase portrait gets the room
        await pilot.pause()
        assert not attractor.has_class("-collapsed") and app.query_one("#attractor-plot").size.height >= 8
        await pilot.press("j")  # video: a frame preview a person can read
        await pilot.pause()
        preview = app.query_one(FramePreview)
        assert preview.display and preview.size.height >= 10 and preview.size.width >= 30
        for key in ("k", "k", "k"):  # every kind's metrics fit their panel, title included
            metrics = app.query_one(MetricsPanel)
            lines = str(metrics.content).splitlines()
            assert len(lines) <= metrics.content_region.height
            assert all(len(line) <= metrics.content_region.width for line in lines)
            assert len(metrics.border_title) <= metrics.size.width - 4
            await pilot.press(key)
            await pilot.pause()


async def test_panels_say_they_wait_for_the_marked_streams_first_data():
    hub = Hub(VirtualClock())
    hub.pipeline("llm", "text")  # known, nothing arrived yet
    app = MidStreamApp(hub, live=False)
    async with app.run_test(size=(80, 24)):
        assert "▶ llm" in text_of(app.query_one(StreamList))
        assert "waiting for llm's first data" in text_of(app.query_one(MetricsPanel))
        assert "waiting for llm" in str(app.query_one("#attractor-info").content)


async def test_an_ended_stream_shows_what_it_delivered_not_a_frozen_rate():
    hub = Hub(VirtualClock())
    hub.start_request("llm", t=0.0)
    for k in range(40):
        hub.push_text("llm", " word", t=0.1 + k * 0.05)
    hub.close_stream("llm", "cancelled", t=2.2)
    hub.analyze(now=3.0)
    app = MidStreamApp(hub, live=False)
    async with app.run_test(size=(80, 24)):
        row = text_of(app.query_one(StreamList))
        assert "cancelled" in row and "40 tok" in row and "tok/s" not in row


async def test_hiding_panels_never_strands_one_or_leaves_a_blank_screen(tmp_path):
    from midstream_tui.rules import MetaLearner
    from midstream_tui.tui.widgets.meta_panel import MetaPanel

    hub = demo_hub(4)
    hub.meta = MetaLearner(tmp_path / "m.json")
    app = MidStreamApp(hub, live=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("1", "2")  # the meta panel alone in its column takes the column
        await pilot.pause()
        meta = app.query_one(MetaPanel)
        assert meta.display and meta.has_class("-alone") and meta.size.height > 30
        await pilot.press("3", "4", "5", "6")
        await pilot.pause()
        hint = app.query_one("#all-hidden")
        assert hint.display and "press 1 to 6" in str(hint.content)
        await pilot.press("1")
        assert not hint.display


async def test_a_terminal_made_small_gives_the_meta_panels_room_to_the_metrics(tmp_path):
    from midstream_tui.rules import MetaLearner
    from midstream_tui.tui.widgets.meta_panel import MetaPanel

    hub = demo_hub(4)
    hub.meta = MetaLearner(tmp_path / "m.json")
    app = MidStreamApp(hub, live=False)
    async with app.run_test(size=(120, 40)) as pilot:
        meta, metrics = app.query_one(MetaPanel), app.query_one("#metrics")
        assert meta.display
        await pilot.resize_terminal(60, 20)
        await pilot.pause()
        assert not meta.display and metrics.size.height >= 5  # (with the meta panel, the metrics had none)
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        assert meta.display
        await pilot.press("6")  # the user's choice stands from now on
        await pilot.resize_terminal(60, 20)
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        assert not meta.display


async def test_a_proposal_is_accepted_only_once_it_is_shown(tmp_path):
    from midstream_tui.rules import MetaLearner

    hub = demo_hub(4)
    hub.meta = learner = MetaLearner(tmp_path / "m.json")
    proposal = learner.tuner._make("stop-loops", "min_words", 40, 30, "a test proposal")
    app = MidStreamApp(hub, live=False)
    async with app.run_test(size=(80, 24)) as pilot:  # small: the meta panel starts hidden
        await pilot.press("a")
        assert proposal.status == "pending"
        await pilot.press("6")
        await pilot.pause()
        assert "min_words 40→30" in str(app.query_one("#meta").content)
        await pilot.press("a")
        assert proposal.status != "pending"  # acted on (refused here: no rule engine runs in this test)


async def test_a_replay_says_so_and_keeps_responses_apart(tmp_path):
    from midstream_tui.sessions import RecordedHub
    from midstream_tui.sessions import Recorder, Session

    path = tmp_path / "two.midstream.sqlite"
    hub = Hub(VirtualClock())
    recorder = Recorder(path, command="test").attach(hub)
    hub.open_stream("llm", "text", t=0.0)
    for k, text in enumerate(["first answer.", "second answer."]):
        hub.start_request("llm", t=k)
        hub.push_text("llm", text, t=k + 0.1)
        hub.finish_request("llm", t=k + 0.2)
    hub.analyze(now=2.0)
    recorder.close()
    session = Session(path)
    replay = RecordedHub(session, speed=50.0)
    app = MidStreamApp(replay, [], refresh_ms=100)
    async with app.run_test(size=(100, 30)) as pilot:
        assert "replay x50" in app.sub_title and "live" not in app.sub_title
        assert await until(pilot, lambda: "second" in (replay.snapshot("llm").text_tail
                                                         if replay.snapshot("llm") else ""))
        assert replay.snapshot("llm").text_tail == "first answer.\nsecond answer."
    session.close()


async def test_a_mark_can_be_changed(tmp_path):
    from midstream_tui.rules import MetaLearner
    from midstream_tui.rules import BUILTIN_RULES, RuleEngine

    clock = VirtualClock()
    hub = Hub(clock, analysis_interval=0.1)
    learner = MetaLearner(tmp_path / "m.json")
    learner.attach(hub, RuleEngine(hub, list(BUILTIN_RULES)))
    run_virtual(hub, open_sources(["sim:text?name=ok&requests=1&seed=3"], clock), 20)
    app = MidStreamApp(hub, live=False)
    async with app.run_test(size=(120, 40)) as pilot:
        bad = learner.what.models["bad"]
        await pilot.press("g")
        assert bad.seen == 1 and bad.positives == 0
        await pilot.press("b")  # the user changes their mind: the label changes, no second example
        assert bad.seen == 1 and bad.positives == 1 and bad.examples[-1][1] == 1
        await pilot.press("b")  # the same mark again changes nothing
        assert bad.seen == 1 and bad.positives == 1


async def test_a_new_panel_is_a_widget_and_one_entry_in_the_registry(monkeypatch):
    # The walkthrough in the README's Architecture section, followed: a Panel widget, an entry in PANELS.
    # The app places it, titles it, redraws it on its clock from the View it hands every panel, and its
    # toggle (here the stream list's key, 1) hides and shows it with the others.
    from textual.widgets import Static

    from midstream_tui.tui import app as app_module, panels
    from midstream_tui.tui.widgets.base import Panel, View

    class TokenCount(Panel, Static):
        def applies(self, view: View) -> bool:
            return view.snap is not None and view.snap.kind == "text"

        def drawn_from(self, view: View):
            return view.selected, view.snap.seq

        def title(self, view: View) -> str:
            return f"Tokens · {view.selected}"

        def show(self, view: View) -> None:
            self.update(f"{view.snap.metrics['tokens']} tokens so far")

    entry = panels.Panel("tokens", "Tokens", "left", 1, TokenCount, 200, "how many tokens so far", "streams")
    monkeypatch.setattr(panels, "PANELS", (*panels.PANELS, entry))
    monkeypatch.setattr(app_module, "PANELS", panels.PANELS)
    hub = demo_hub(6)
    app = MidStreamApp(hub, live=False)
    async with app.run_test(size=(120, 40)) as pilot:
        tokens = app.query_one("#tokens", TokenCount)
        assert app.selected == "llm" and tokens.display
        assert tokens.border_title == "Tokens · llm"
        assert text_of(tokens) == f"{hub.snapshot('llm').metrics['tokens']} tokens so far"
        await pilot.press("down", "down", "down")  # video: not a text stream, so it does not apply
        assert app.selected == "video" and not tokens.display
        await pilot.press("up", "up")
        assert tokens.display and tokens.border_title == "Tokens · llm-loop"
        await pilot.press("1")
        assert not tokens.display and not app.query_one(StreamList).display
        await pilot.press("1")
        assert tokens.display


async def test_the_pattern_log_keeps_up_while_hidden():
    # The hub keeps only its newest hits; a hidden log still takes them in on every tick, so showing it
    # again shows all that happened meanwhile (and its title counts them).
    from midstream_tui.events import Flag

    hub = Hub(VirtualClock())
    hub.push_text("s", "hello", t=0.0)
    hub.analyze(now=0.0)
    app = MidStreamApp(hub, live=False)
    async with app.run_test(size=(120, 40)) as pilot:
        log = app.query_one(PatternLog)
        await pilot.press("4")
        assert not log.display
        for batch in range(3):  # 1,800 hits in all, more than the hub keeps
            for i in range(600):
                hub.push(Flag("s", 1.0 + batch + i / 1000, f"note {batch}-{i}", kind="media"))
            hub.analyze(now=2.0 + batch)
            app.render_tick()
        await pilot.press("4")
        assert log.display and log.feed.total == 1800
        assert log.border_title.startswith("Patterns · 1800")


async def test_a_tick_while_a_panel_has_no_children_yet_skips_it():
    """The render timer can fire while a panel's own children are still being mounted (or already torn down):
    that panel is drawn on a later tick; the app does not stop with NoMatches (seen once under load)."""
    app = MidStreamApp(demo_hub(6), live=False)
    async with app.run_test(size=(120, 40)) as pilot:
        info = app.query_one("#attractor-info")
        parent = info.parent
        await info.remove()
        app.render_tick(force=True)
        await pilot.pause()
        await parent.mount(info, before=0)
        app.render_tick(force=True)  # drawn once its children are there
        await pilot.pause()
        assert app.is_running and "conf" in str(app.query_one("#attractor-info").render())


async def test_a_text_panel_repaints_only_the_lines_that_changed_and_draws_them_as_a_static_would():
    """The metrics, stream list and meta panels repaint only the rows that differ from those shown; every cell
    (character and style) is what a Static with the same text shows, long lines wrapped alike, and a theme
    change is drawn in the new colours."""
    from textual.app import App
    from textual.geometry import Region
    from textual.widgets import Static

    from midstream_tui.tui.widgets.lines import LineStatic

    def cells(widget) -> list:
        strips = widget.render_lines(Region(0, 0, widget.size.width, widget.size.height))
        return [[(ch, seg.style) for seg in strip for ch in seg.text] for strip in strips]

    first = ["[$text-muted]status        [/] open", "[$text-muted]tokens/s      [/] [b]41.2[/]",
             "[$text-error]" + "a long error that the panel wraps over more than one line " * 2 + "[/]",
             "[$text-muted]ttft ms       [/] [b]120[/]"]
    second = [first[0], "[$text-muted]tokens/s      [/] [b]39.8[/]", first[2], first[3]]

    class Pair(App):
        CSS = "LineStatic, Static { width: 40; height: 10; border: round $accent; }"

        def compose(self):
            yield LineStatic(id="lines")
            yield Static(id="static")

    app = Pair()
    async with app.run_test(size=(80, 24)) as pilot:
        lines, static = app.query_one(LineStatic), app.query_one("#static", Static)
        lines.set_lines(first)
        static.update("\n".join(first))
        await pilot.pause()
        assert cells(lines) == cells(static) and len(lines.render_lines(Region(0, 0, 40, 10))) == 10
        assert str(lines.content) == str(static.render())
        drawn: list[int] = []
        render_line = lines.render_line
        lines.render_line = lambda y: (drawn.append(y), render_line(y))[1]
        lines.set_lines(second)
        static.update("\n".join(second))
        await pilot.pause()
        assert drawn == [1]  # the changed value's row, nothing else
        assert cells(lines) == cells(static)
        drawn.clear()
        lines.set_lines(second)  # the same lines again: nothing to repaint
        await pilot.pause()
        assert drawn == []
        # a theme whose base colours are the same but whose $text-warning is not: drawn in the new colours
        warned = [*second, "[$text-warning]cancelled[/]"]
        app.theme = "ansi-dark"
        lines.set_lines(warned)
        static.update("\n".join(warned))
        await pilot.pause()
        assert cells(lines) == cells(static)
        before = cells(static)
        app.theme = "ansi-light"
        await pilot.pause()
        assert cells(lines) == cells(static) != before
        # lines of one row each: only the changed ones are rendered again, in their places (each cell keeps
        # its line number, which mouse selection reads)
        short = [first[0], first[1], first[3], "[$text-success]open[/] [b]3[/]"]
        for shown in (short, [short[0], "[$text-muted]tokens/s      [/] [b]7.5[/]", short[2], short[3]],
                      [short[0], short[1], short[2], "[$text-warning]stalled[/] [i]0[/]"]):
            lines.set_lines(shown)
            static.update("\n".join(shown))
            await pilot.pause()
            assert cells(lines) == cells(static)
        # a block centred on its widest line: a changed line moves the others (the rows of text are compared:
        # below them a centred Static's blank rows carry a "not reversed" flag that draws the same)
        lines.styles.content_align_horizontal = static.styles.content_align_horizontal = "center"
        for shown in (["rate 41.2", "a much longer line here"], ["rate 7", "a much longer line here"],
                      ["rate 7", "short"]):
            lines.set_lines(shown)
            static.update("\n".join(shown))
            await pilot.pause()
            assert cells(lines)[:3] == cells(static)[:3]
        lines.styles.content_align_horizontal = static.styles.content_align_horizontal = "left"
        lines.update("one\n[b]two[/]")  # as a Static's update: its lines
        await pilot.pause()
        assert str(lines.content) == "one\ntwo" and lines.render_line(1).text.startswith("two")


async def test_the_attractor_plot_is_drawn_cell_for_cell_as_plotext_through_rich():
    """The portrait turns plotext's coloured text into lines itself (rich's decoder cost three times plotext's
    drawing): every cell, character and style, is what textual-plotext's own widget draws, in each theme (less
    the cells' places in the text, for mouse selection, which a chart of dots does not offer)."""
    from textual.app import App
    from textual.geometry import Region
    from textual_plotext import PlotextPlot

    from midstream_tui.tui.widgets.attractor import Portrait

    def cells(widget) -> list:
        strips = widget.render_lines(Region(0, 0, widget.size.width, widget.size.height))
        return [[(ch, seg.style.clear_meta_and_links()) for seg in strip for ch in seg.text] for strip in strips]

    class Pair(App):
        CSS = "PlotextPlot { width: 50; height: 16; }"

        def compose(self):
            yield Portrait(id="ours")
            yield PlotextPlot(id="theirs")

    rng = np.random.default_rng(3)
    x = rng.standard_normal(300)
    app = Pair()
    async with app.run_test(size=(60, 40)) as pilot:
        for theme in ("textual-dark", "textual-light", "nord"):
            app.theme = theme
            for plot in app.query(PlotextPlot):
                plot.plt.clear_data()
                plot.plt.scatter(x[:-3].tolist(), x[3:].tolist(), marker="braille")
                plot.plt.title("x(t) vs x(t+3)")
                plot.refresh()
            await pilot.pause()
            ours, theirs = cells(app.query_one("#ours")), cells(app.query_one("#theirs"))
            braille = sum("\u2800" <= ch <= "\u28ff" for row in ours for ch, _ in row)
            assert len(ours) == 16 and braille > 50
            assert ours == theirs, theme


async def test_a_consumer_that_fails_stops_the_run_and_says_so():
    """A tick consumer (an exporter, say) that raises ends a headless run; the dashboard stops the run too, says
    why in an error that stays and in its title, and keeps what it saw on screen."""
    hub = Hub(analysis_interval=0.1)
    ticks = []

    def consumer(now):
        ticks.append(now)
        if len(ticks) == 5:
            raise RuntimeError("exporter broke")

    hub.on_tick(consumer)
    sources = open_sources(["sim:text?rate=200&ttft=0"])
    app = MidStreamApp(hub, sources, refresh_ms=100)
    async with app.run_test(size=(120, 40)) as pilot:
        # Stopped, not just "not running": the stop's last analysis step still counts what had arrived before it
        # (the analysis clock ends first; a run once read 184 tokens there and 192 after that step).
        assert await until(pilot, lambda: app.failure is not None and hub.stopped), "the run was not stopped"
        assert app.failure == "exporter broke" and app.sub_title.startswith("stopped: exporter broke")
        errors = [n.message for n in app._notifications if n.severity == "error"]
        assert errors == ["exporter broke. Streams seen so far stay on screen; q quits."]
        seen = hub.snapshot("text").metrics["tokens"]
        await pilot.pause(0.5)
        assert hub.snapshot("text").metrics["tokens"] == seen > 0  # stopped, and still shown
        assert "text" in text_of(app.query_one(StreamList))
        await pilot.press("q")


# ------------------------------------------------------------------ defects found by driving it in tmux

async def test_the_state_stays_in_view_beside_a_long_title():
    """A proxy's URLs (or a replay's file name) filled 80 columns: "live", "paused" or "stopped: ..." was cut off."""
    title = "MidStream proxy · http://127.0.0.1:18392/v1 → http://127.0.0.1:18391/v1"
    app = MidStreamApp(demo_hub(2), live=False, title=title)
    async with app.run_test(size=(80, 24)) as pilot:
        from textual.widgets._header import HeaderTitle

        line = lambda: str(app.query_one(HeaderTitle).render())  # noqa: E731
        await pilot.press("p")
        assert await until(pilot, lambda: "paused" in line())
        assert "streams · 10 Hz" in line() and "MidStream proxy" in line() and len(line()) <= 80
        await pilot.resize_terminal(140, 30)
        assert await until(pilot, lambda: title in line())  # room again: the whole title


async def test_the_arrow_keys_reach_every_stream_of_a_long_list():
    """With more streams than rows, the arrows cycled through the few rows shown (5 of 33 at 80x24)."""
    hub = demo_hub(2, uris=[f"sim:text?name=t{i:02d}&seed={i}" for i in range(30)])
    app = MidStreamApp(hub, live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        rows = app.query_one(StreamList).rows
        assert rows < 30 and app.query_one(StreamList).border_title == "Streams · 30"
        seen = set()
        for _ in range(30):
            await pilot.press("down")
            seen.add(app.selected)
            assert f"▶ {app.selected}" in text_of(app.query_one(StreamList))  # shown where it is
        assert seen == set(hub.streams)


async def test_a_short_terminal_still_counts_the_streams_it_cannot_show():
    app = MidStreamApp(demo_hub(2), live=False)
    async with app.run_test(size=(50, 12)) as pilot:
        await pilot.pause()
        listed_text = text_of(app.query_one(StreamList))
        total = len(app.hub.streams)
        assert "more:" in listed_text and app.query_one(StreamList).border_title == f"Streams · {total}", listed_text
        assert app.query_one(StreamList).content_region.height >= len(listed_text.splitlines())  # none cut off


async def test_a_narrow_terminal_stacks_the_columns_and_a_small_one_keeps_the_streams():
    # At 40 columns the right column got 6 (a letter or two of each line of the attractor, the text, the patterns).
    app = MidStreamApp(demo_hub(2), live=False)
    async with app.run_test(size=(40, 30)) as pilot:
        await pilot.pause()
        left, right = app.query_one("#left"), app.query_one("#right")
        assert left.display and right.display
        assert left.region.width == right.region.width == 40 and left.region.bottom <= right.region.y
        assert "status" in text_of(app.query_one("#metrics"))
        await pilot.resize_terminal(40, 12)  # too short for both: the streams and their metrics
        await pilot.pause()
        assert left.display and not right.display and left.region.width == 40
        assert "more:" in text_of(app.query_one(StreamList)) and "status" in text_of(app.query_one("#metrics"))
        for key in ("1", "2"):  # the streams and the metrics hidden: the right column has the room
            await pilot.press(key)
        await pilot.pause()
        assert not left.display and right.display and right.region.width == 40
        for key in ("1", "2"):
            await pilot.press(key)
        await pilot.resize_terminal(100, 30)  # wide again: side by side, as before
        await pilot.pause()
        assert left.display and right.display
        assert left.region.right <= right.region.x and left.region.y == right.region.y


async def test_the_palette_selects_a_stream_the_filter_hides():
    """Selecting a stream by name did nothing while the list was narrowed to others."""
    app = MidStreamApp(demo_hub(2), live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        app.stream_filter = "ended"
        app.select_stream("llm-loop")  # what the palette's "Select stream llm-loop" calls
        await pilot.pause()
        assert app.selected == "llm-loop" and app.stream_filter == "all"
        assert "▶ llm-loop" in text_of(app.query_one(StreamList))


async def test_control_characters_from_a_stream_never_reach_the_terminal():
    # an LLM's reply or a peer's names are not trusted: ESC ] 0 ; retitles the window, ESC ] 52 ; writes the
    # clipboard, ESC [ 2 J clears the screen. They are drawn as symbols (ESC as ␛), never sent as they are.
    from midstream_tui.tui import terminal_safety

    assert terminal_safety.INSTALLED
    hub = Hub(VirtualClock())
    name = "s\x1b]0;PWNED\x1b\\"
    hub.push_text(name, "hi \x1b]52;c;cm0gLXJmIH4K\x1b\\ \x1b[2J\x1b[31mRED \x9b31m\x07 end", tokens=9, t=0.1)
    hub.push_text("x[/] [link=http://example.org]y", "a name with markup in it is text", tokens=6, t=0.1)
    hub.push_text("bell\x07[/]", "a BEL takes no cell, a bracket one", tokens=8, t=0.1)
    hub.analyze(now=1.0)
    app = MidStreamApp(hub, live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        shown = app.export_screenshot()
        assert "\x1b" not in shown and "\x9b" not in shown and "\x07" not in shown
        rows = [r for r in text_of(app.query_one(StreamList)).splitlines() if "open" in r]
        assert len(rows) == 3 and len({r.index("open") for r in rows}) == 1, rows  # one column, whatever the names
        assert "␛]0;PWNED" in shown and "␛[2J␛[31mRED" in shown
        await pilot.press("j")  # the stream whose name holds markup: shown as it is (it had ended the app)
        await pilot.pause()
        shown = app.export_screenshot()
        assert app.selected.startswith("x[/]") and "x[/]" in shown and "[link=http://example.org]" in shown
        assert "\x1b]8" not in shown


async def test_any_name_or_value_is_drawn_as_text_and_every_row_stays_one_row():
    # An independent review: a proxy client's model "gpt-4o[2" ended the dashboard (and the proxy) with a
    # MarkupError — Textual's escape leaves a "[" before a digit; a CJK name wrapped its row and pushed streams out;
    # "≈1118 tok" took 9 cells of 8; a value ending in a backslash escaped its closing tag ("[/]" shown).
    hub = Hub(VirtualClock())
    names = ["gpt-4o[2", "m[", "[1", "a\x1b[31m", "end\\", "漢字漢字漢字漢字漢字漢字漢字漢字", "tab\there",
             "emu-normal#123456"]
    for i, name in enumerate(names):
        hub.push_text(name, "word [2 \\ " * 5, tokens=1118 if i == 0 else 3, t=0.1)
    hub.analyze(now=1.0)
    app = MidStreamApp(hub, live=False)
    async with app.run_test(size=(80, 40)) as pilot:
        for _ in range(len(names)):
            await pilot.pause()
            rows = [r for r in text_of(app.query_one(StreamList)).splitlines() if r.strip()]
            assert len(rows) == len(names), rows  # one row each: none wrapped
            await pilot.press("j")
        await pilot.pause()
        shown = app.export_screenshot()
        assert "gpt-4o[2" in shown and "…#123456" in shown and "[/]" not in shown.replace("x[/]", "")


async def test_the_selection_stays_put_through_filters_and_moves_to_a_live_stream_when_its_own_ages_out():
    # An independent review: selecting an ended request and pressing f twice (live, then ended) lost it; and when
    # the selected ended request aged out the oldest took its place — the next to age out — so the selection
    # moved by itself every few seconds.
    from midstream_tui.events import StreamClosed

    hub = Hub(VirtualClock())
    for i in range(60):
        hub.push_text(f"r{i}", "done ", tokens=1, t=0.1 + i / 100)
        hub.push(StreamClosed(f"r{i}", 1.0 + i / 100, reason="finished"))
    hub.analyze(now=3.0)
    app = MidStreamApp(hub, live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.select_stream("r5")
        for _ in range(2):  # live (none), ended
            await pilot.press("f")
            await pilot.pause()
        assert app.stream_filter == "ended" and app.selected == "r5"
        assert "▶ r5" in text_of(app.query_one(StreamList))
        await pilot.press("f", "f")  # (back to all)
        hub.push_text("live", "still going ", tokens=1, t=3.5)
        hub.analyze(now=4.0)
        hub.max_ended = 10  # r5 ages out (as the analysis step does, long after the streams ended)
        hub._age_out(list(hub._pipelines.values()), 1000.0)
        app.render_tick(force=True)
        await pilot.pause()
        assert "r5" not in hub.streams and app.selected == "live"


async def test_paging_the_pattern_log_while_it_is_hidden_says_so():
    # An independent review: PgUp then PgDn with the log hidden (4) ended the app (range() with a step of 0).
    from midstream_tui.events import Flag

    hub = demo_hub(6)
    for i in range(60):  # (a log longer than a page)
        hub.push(Flag("llm", 6.0 + i / 100, f"note {i}", kind="media"))
    hub.analyze(now=7.0)
    app = MidStreamApp(hub, live=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert len(app.query_one(PatternLog).feed.entries) > 30
        log = app.query_one(PatternLog)
        await pilot.press("4")
        await pilot.pause()
        log.top, log.last_shown = 0, 0  # (paged up before it was hidden: the next page down measures rows)
        for key in ("pagedown", "pageup", "pagedown", "home", "end"):
            await pilot.press(key)
            await pilot.pause()
        assert app.is_running
        await pilot.press("4", "pageup", "pagedown")  # shown again: paging works
        await pilot.pause()
        assert app.is_running


def test_numbers_far_out_of_range_take_a_line_not_a_screen():
    # (a peer's level of 1e300 dB was 301 digits over eight rows, pushing the other streams out of the list)
    from dataclasses import replace

    from midstream_tui.display import headline, metric_rows

    hub = demo_hub(6)
    for stream in ("llm", "audio", "video"):
        snap = hub.snapshot(stream)
        huge = {k: (1e300 if isinstance(v, float) else v) for k, v in snap.metrics.items()}
        for metrics in (huge, {k: (-v if isinstance(v, float) else v) for k, v in huge.items()}):
            shown = replace(snap, metrics=metrics)
            assert len(headline(shown)) <= 20, headline(shown)
            assert all(len(value) <= 40 for _name, value in metric_rows(shown)), metric_rows(shown)
