"""The analyzer contract: ``ingest`` per event, ``update(now)`` looks for patterns, ``metrics`` only reads."""

import math
import random

from midstream_tui import ChoiceText, RequestFinished, RequestStarted, TextDelta
from midstream_tui.events import REASONING, Usage
from midstream_tui.analyzers import ANALYZERS, TextAnalyzer


def test_metrics_only_read_and_detection_happens_in_update():
    a = TextAnalyzer("llm")
    a.ingest(RequestStarted("llm", 0.0))
    words = "the sky is blue and the sea is " + "round and round we go " * 12
    for k, w in enumerate(words.split(" ")):
        a.ingest(TextDelta("llm", 0.1 + 0.05 * k, w + " "))
    first = repr(a.metrics(5.0, 0.0))  # (repr: NaN equals NaN there)
    assert repr(a.metrics(5.0, 0.0)) == first  # reading twice changes nothing
    assert not [h for h in a.take_hits() if h.kind == "loop"]  # metrics looked for nothing
    a.update(5.0)
    loops = [h for h in a.take_hits() if h.kind == "loop"]
    assert len(loops) == 1 and "round and round we go" in loops[0].message
    assert a.metrics(5.0, 0.0)["loop_words"] > 0


def test_a_later_choices_loop_is_its_requests_only():
    """Requests pushed without ``RequestStarted`` (the library's way): a later choice's loop in the first, and the
    first choice's end, were kept into the next, so a loop rule would have cut a healthy request (a review); a
    ``ChoiceText`` of an index that is not a whole number is read past (it ended in a TypeError of the stream)."""
    a = TextAnalyzer("llm")
    for k in range(40):
        a.ingest(TextDelta("llm", 0.1 * k, f" w{k}"))
        a.ingest(ChoiceText("llm", 0.1 * k, " round and", choice=1))
        a.ingest(ChoiceText("llm", 0.1 * k, "x", choice="2"))  # type: ignore[arg-type]
        a.update(0.1 * k)
    m = a.metrics(4.0, 0.0)
    assert m["loop_words"] >= 40 and m["loop_choice"] == 1, m
    a.ingest(ChoiceText("llm", 4.0, choice=0, ended=True))
    a.ingest(RequestFinished("llm", 4.0))
    for k in range(40):  # the next request: its text loops, no later choice does
        a.ingest(TextDelta("llm", 5 + 0.1 * k, " on and" if k >= 20 else f" v{k}"))
        a.update(5 + 0.1 * k)
    m = a.metrics(9.0, 0.0)
    assert m["loop_choice"] == 0 and 20 <= m["loop_words"] < 60, m
    a.ingest(RequestFinished("llm", 9.0))
    # a later choice's unit can be 512 words (170 before): one of 400 characters of Chinese is seen
    rng = random.Random(5)
    unit = "".join(rng.choice("我们一起去公园散步吧今天天气很好他说这是一个非常重要的问题") for _ in range(400))
    text = "好的：" + unit * 4
    for k in range(0, len(text), 7):
        a.ingest(ChoiceText("llm", 10 + 0.01 * k, text[k:k + 7], choice=1))
        a.update(10 + 0.01 * k)
    hits = [h.message for h in a.take_hits() if h.kind == "loop" and "in choice 1" in h.message]
    assert hits and hits[-1].split('"')[1].startswith(unit[:57]) and "(period 400 words, from its word 3)" in hits[-1]
    assert a.metrics(20.0, 0.0)["loop_choice"] == 1


def test_a_loop_in_the_reasoning_counts_until_the_text_begins():
    """A model's thinking (``ChoiceText`` of choice ``REASONING``) is read for a loop as a later choice's content is:
    its loop is the request's (``loop_choice`` -1) while the thinking goes on; once the text begins it is over."""
    a = TextAnalyzer("llm")
    a.ingest(RequestStarted("llm", 0.0))
    for k in range(60):
        a.ingest(ChoiceText("llm", 0.1 * k, " Wait, check again.", choice=REASONING))
        a.update(0.1 * k)
    m = a.metrics(6.0, 0.0)
    assert m["loop_words"] >= 40 and m["loop_choice"] == -1 and m["chars"] == 0, m
    assert any(h.kind == "loop" and "in the reasoning" in h.message for h in a.take_hits())
    a.ingest(TextDelta("llm", 6.1, "The answer is 4. "))
    a.update(6.1)
    m = a.metrics(6.1, 0.0)
    assert m["loop_words"] == 0 and m["loop_choice"] == 0, m
    # the log says the loop is over, and when (it said nothing: the loop stayed open in the pattern log)
    ends = [h for h in a.take_hits() if h.kind == "loop-end"]
    assert len(ends) == 1 and ends[0].t == 6.1, ends
    assert ends[0].message.startswith("loop in the reasoning ended after ") and ends[0].message.endswith(
        " words, with its reasoning"), ends
    # a later choice that finishes in its loop: the same
    for k in range(60):
        a.ingest(ChoiceText("llm", 7 + 0.1 * k, " no, not that way.", choice=2))
        a.update(7 + 0.1 * k)
    assert a.metrics(13.0, 0.0)["loop_choice"] == 2
    a.ingest(ChoiceText("llm", 13.0, choice=2, ended=True))
    a.update(13.0)
    ends = [h.message for h in a.take_hits() if h.kind == "loop-end"]
    assert len(ends) == 1 and ends[0].startswith("loop in choice 2 ended after ") and "with its choice" in ends[0]
    assert a.metrics(13.0, 0.0)["loop_choice"] == 0
    # a request that ends (cut, say) with a choice still in its loop: the loop ends with it
    for k in range(60):
        a.ingest(ChoiceText("llm", 14 + 0.1 * k, " no, not that way.", choice=3))
        a.update(14 + 0.1 * k)
    a.ingest(RequestFinished("llm", 20.0))
    ends = [h.message for h in a.take_hits() if h.kind == "loop-end"]
    assert len(ends) == 1 and ends[0].startswith("loop in choice 3 ended after ") and "with its request" in ends[0]


def test_every_kind_has_an_analyzer():
    assert sorted(ANALYZERS) == ["audio", "text", "video"]


def test_taps_get_what_the_analyzer_measured():
    import numpy as np

    from midstream_tui import Hub, VirtualClock, open_sources, run_virtual
    from midstream_tui.events import TextDelta as Delta

    class Tap:
        def __init__(self):
            self.ttft, self.gaps, self.texts = [], [], 0

        def event(self, stream, ev, measured):
            self.texts += isinstance(ev, Delta) and bool(ev.text)
            if measured.ttft_s is not None:
                self.ttft.append(measured.ttft_s)
            if measured.gap_s is not None:
                self.gaps.append(measured.gap_s)

    clock = VirtualClock()
    hub = Hub(clock, analysis_interval=0.1)
    tap = Tap()
    hub.add_tap(tap)
    run_virtual(hub, open_sources(["sim:text?requests=3&max_tokens=30&seed=5"], clock), 30)
    m = hub.snapshot("text").metrics
    assert m["requests"] == 3 and len(tap.ttft) == 3 and len(tap.gaps) == tap.texts - 3
    assert tap.ttft[-1] * 1e3 == m["ttft_ms"]  # the same numbers the metrics show, measured once
    assert abs(np.median(tap.gaps) * 1e3 - m["itl_p50_ms"]) < 1e-6


def test_a_live_hub_and_a_replayed_session_offer_the_same_view(tmp_path):
    from midstream_tui import Hub, VirtualClock, open_sources, run_virtual
    from midstream_tui.hub import HubView
    from midstream_tui.sessions import RecordedHub, Recorder, Session

    clock = VirtualClock()
    hub = Hub(clock, analysis_interval=0.1)
    Recorder(tmp_path / "s.midstream.sqlite").attach(hub)
    run_virtual(hub, open_sources(["sim:text?requests=1&max_tokens=10"], clock), 5)
    hub.recorder.close()
    with Session(tmp_path / "s.midstream.sqlite") as session:
        replay = RecordedHub(session)
        assert isinstance(hub, HubView) and isinstance(replay, HubView)
        assert (hub.replay, replay.replay) == (False, True) and replay.meta is None and replay.warm


def test_the_token_total_runs_on_through_later_requests_and_live_rows_end_with_the_stream():
    # after a request the server reported usage for, the next request's chunks still count up on screen (the
    # total was frozen at the reported sum until that request ended); an ended stream shows no frozen rate
    from midstream_tui import Hub, VirtualClock
    from midstream_tui.display import headline, metric_rows

    clock = VirtualClock()
    hub = Hub(clock, analysis_interval=0.1)
    hub.open_stream("llm", "text")
    hub.start_request("llm", t=0.0)
    for i in range(3):
        hub.push_text("llm", " word", t=0.1 + 0.1 * i)
    hub.push(Usage("llm", 0.4, prompt_tokens=2, completion_tokens=3))
    hub.finish_request("llm", t=0.4)
    hub.start_request("llm", t=1.0)
    for i in range(5):
        hub.push_text("llm", " more", t=1.1 + 0.1 * i)
    rows = dict(metric_rows(hub.analyze(1.6)["llm"]))
    assert rows["requests · tok"] == "2 · ≈8 tok" and rows["rate"] != "– (ended)"
    hub.push(Usage("llm", 1.7, prompt_tokens=2, completion_tokens=5))
    hub.close_stream("llm", t=1.8)
    snap = hub.analyze(1.9)["llm"]
    rows = dict(metric_rows(snap))
    assert rows["requests · tok"] == "2 · 8 tok" and rows["rate"] == "– (ended)" and rows["bytes/s"] == "– (ended)"
    assert headline(snap) == "8 tok"


def test_rates_read_from_the_rings_are_the_rates_of_their_values():
    # tokens/s and bytes/s are read from the rings where they are (no copy at each step): the same numbers, to the
    # last bit, as rate() of the values in order, rings wrapped or not, times out of order or NaN now and then
    from midstream_tui.analysis.stats import rate
    from midstream_tui.analyzers.base import Ring, ring_rate

    rng = random.Random(3)
    for _ in range(2000):
        cap = rng.choice([1, 2, 5, 64, 100, 300])
        times, weights = Ring(cap), Ring(cap)
        t = 0.0
        for _ in range(rng.randrange(0, 700)):
            t += rng.expovariate(20) - (rng.random() if rng.random() < 0.02 else 0.0)
            times.append(t if rng.random() > 0.01 else math.nan)
            weights.append(rng.randrange(5))
        now = t + rng.random() * 0.2
        window, since = rng.choice([0.5, 2.0, 5.0, 0.0, -1.0]), rng.choice([None, 0.0, t - 1, now])
        want = rate(times.values(), weights.values(), now, window, since)
        got = ring_rate(times, weights, now, window, since)
        assert got == want or (math.isnan(got) and math.isnan(want))  # (the same sum in the same order)


def _streamed(text: str, seed: int = 1) -> tuple[TextAnalyzer, int | None]:
    """``text`` through a text analyzer in deltas of 1-5 characters; where (in characters) its loop first reached 40
    words, the built-in rule's limit (None: never)."""
    a, rng, i, k, first = TextAnalyzer("s"), random.Random(seed), 0, 0, None
    a.ingest(RequestStarted("s", 0.0))
    while i < len(text):
        n = rng.randint(1, 5)
        a.ingest(TextDelta("s", 0.01 * k, text[i:i + n]))
        i, k = i + n, k + 1
        a.update(0.01 * k)
        if first is None and a.metrics(0.01 * k, 0.0)["loop_words"] >= 40:
            first = i
    return a, first


def test_a_loop_in_chinese_is_seen_as_it_streams_whatever_the_length_of_its_unit():
    """Chinese has no spaces: its text was read in words at spaces and line ends only, so a loop was seen at a line's
    end or the answer's; read a character a word with loops of 64 words at most, a looping paragraph of more than 64
    characters was never seen (a review). Each character is a word, and a unit can be a third of the 1,024 words
    searched: a paragraph of 80 or 300 characters looping is seen in its third repeat, with or without line ends.
    A unit can now be 1,024 words (a third of 3,072 searched): a Chinese paragraph of 400 or 900 characters, or
    one of English of 700 words, is seen in its third repeat too (one of 342 characters or more never was), its unit
    shown from where it starts (the words kept are a unit's and 64 more, not the window's)."""
    rng = random.Random(7)
    chars = "我们一起去公园散步吧今天天气很好他说这是一个非常重要的问题需要认真思考，"
    for size, end in ((80, ""), (80, "\n"), (300, "。\n"), (20, ""), (400, "。"), (900, "")):
        unit = "".join(rng.choice(chars) for _ in range(size)) + end
        a, first = _streamed("开始：" + unit * 4)
        assert first is not None and first <= 3 + 3 * len(unit) + 5, (size, end, first)
        loops = [h.message for h in a.take_hits() if h.kind == "loop"]
        assert loops and loops[0].split('"')[1].startswith(unit[:57]), loops  # (as written: no spaces put in)
        assert f"(period {len(unit.rstrip())} words, from word 3)" in loops[0], loops
    vocabulary = "the model said that a loop of words can run on for a long while before anyone sees it".split()
    unit = " ".join(rng.choice(vocabulary) + str(k % 7) for k in range(700)) + ".\n"
    a, first = _streamed("Here is the answer: " + unit * 4)
    assert first is not None and first <= 20 + 3 * len(unit) + 40, first
    loops = [h.message for h in a.take_hits() if h.kind == "loop"]
    assert loops and loops[0].split('"')[1].startswith(unit[:57]) and "(period 701 words, from word 5)" in loops[0]


def test_a_loop_is_a_requests_own_and_a_longer_period_repeated_in_part_does_not_hide_it():
    """One stream, one prompt asked again (a load test, temperature 0; an ``openai:chat`` source that repeats): the
    same healthy answer of 400 or 1,000 words was a loop from the third request, and the fourth had 40 loop words
    from its first character (a rule would have cut it); the last request's loop length stayed the stream's until
    the next one's first word was read. An answer of prose ending in a loop, asked again: the passage said twice
    had the longest run, failed to repeat three times, and hid the loop (found among periods that loop only now).
    Three sections of one length ending in the same sentence are a recurring phrase, not a loop (an independent
    review found all three)."""
    rng = random.Random(4)
    vocabulary = ("the model reads each request and answers it with a short plan then a list of steps that explain "
                  "how to configure the server for a large number of users and what to check when it is slow").split()

    def requests(answer, times):
        a, rng2, t, firsts = TextAnalyzer("s"), random.Random(1), 0.0, []
        for _ in range(times):
            a.ingest(RequestStarted("s", t))
            i, first = 0, None
            while i < len(answer):
                n = rng2.randint(1, 5)
                t += 0.01
                a.ingest(TextDelta("s", t, answer[i:i + n]))
                i += n
                a.update(t)
                if first is None and a.metrics(t, 0.0)["loop_words"] >= 40:
                    first = i
            a.ingest(RequestFinished("s", t))
            a.update(t)
            firsts.append(first)
        return a, firsts

    for words in (300, 400, 1_000):
        _, firsts = requests(" ".join(rng.choice(vocabulary) for _ in range(words)) + ".\n", 5)
        assert firsts == [None] * 5, (words, firsts)
    prose = " ".join(rng.choice(vocabulary) for _ in range(300))
    answer = prose + " " + "I will check the server again. " * 33
    a, firsts = requests(answer, 3)
    assert all(len(prose) < first < len(prose) + 7 * 31 for first in firsts), firsts  # (40 words: 6 repeats)
    loops = [h.message for h in a.take_hits() if h.kind == "loop"]
    assert len(loops) == 3 and all('"I will check the server again." x3 (period 7 words' in m for m in loops), loops
    sections = "".join(" ".join(rng.choice(vocabulary) for _ in range(394)) + " Contact our sales team for details."
                       for _ in range(3))
    a, firsts = requests(sections, 1)
    recurring = [h.message for h in a.take_hits() if h.kind == "recurring"]
    assert firsts == [None] and any('"Contact our sales team for details' in m for m in recurring), recurring
    passage = " ".join(f"w{rng.randrange(5_000)}" for _ in range(400))  # said twice and begun again: no loop (not
    a, firsts = requests(f"{passage} {passage} {' '.join(passage.split()[:100])} and then on.", 1)  # three times),
    recurring = [h.message for h in a.take_hits() if h.kind == "recurring"]  # but a recurring phrase (a review)
    assert firsts == [None] and len(recurring) == 1 and "(at words 0, 400, 800)" in recurring[0], recurring


def test_a_line_of_one_mark_or_a_laugh_is_not_a_loop_but_one_word_for_ever_is():
    """40 dashes, 40 ー (a separator line in Japanese), 40 哈 (laughter) or 40 。 were a loop of 40 words, which the
    built-in rule cuts (a review). A run of one mark is now one word, and one word over and over a loop from 160."""
    for line in ("-" * 40, "=" * 60, "ー" * 40, "＝" * 40, "哈" * 40, "。" * 40, "…" * 40, "ｗ" * 40):
        a, first = _streamed(f"お知らせ Notice\n{line}\n以上です。 The end.")
        assert first is None and not [h for h in a.take_hits() if h.kind == "loop"], line
    a, first = _streamed("哈" * 300)
    assert 160 <= first <= 165, first
    a, first = _streamed("the " * 300)
    assert first is not None and 160 * 4 <= first <= 165 * 4, first


def test_the_content_signal_of_chinese_text_is_its_runs_of_characters_not_a_constant():
    """Each Chinese character a word of length 1 made the content signal constant: every answer's attractor read as
    a settled point, fully confident (a review). A run of them up to a mark counts as one word's length."""
    text = "今天天气很好，我们一起去公园散步吧。他说这是一个非常重要的问题，需要认真思考。" * 3
    a, _ = _streamed(text)
    values = a.signals()["word length (chars)"]
    assert values.tolist() == [6, 1, 10, 1, 13, 1, 6, 1] * 3, values


def test_a_mark_for_ever_is_still_a_loop_and_a_tables_separator_row_is_not():
    """A run of one mark had become one word: ``!!!…`` (or ``....``, an emoji) without a space for ever was one
    growing word, never a loop; and a Markdown table's aligned separator row of 10-12 columns (``|:---:|``) was a
    loop of 40 words or more, which the built-in rule cuts (a second review). A mark's run is a word of at most 16,
    a unit without a letter or digit counts from 160 words, and a carry read past 4,096 characters keeps its last
    word (it may go on)."""
    for text in ("Wow" + "!" * 12_000, "Wait" + "." * 12_000, "Hi " + "\U0001F600" * 12_000):
        a, first = _streamed(text)
        assert first is not None and first <= 4_200, (text[:5], first)
    for cell in ("|:---:", "| :---: ", "|---", "|:---", "|---:"):
        table = "| " + " | ".join(f"h{i}" for i in range(12)) + " |\n" + cell * 12 + "|\n" + \
            "| " + " | ".join(str(i) for i in range(12)) + " |\n"
        a, first = _streamed("A table:\n\n" + table + "\nThat is all.")
        assert first is None and not [h for h in a.take_hits() if h.kind == "loop"], cell


def test_line_ends_or_spaces_for_ever_and_a_run_without_a_space_are_loops():
    """A model that emits line ends or spaces for ever wrote no word: no loop was seen and the built-in rule never
    cut it; nor ``0000…``, ``hahaha…`` or ``abcabc…`` for ever without a space (one growing word, read every 4,096
    characters). Past 256 whitespace characters in a row, each 16 are a blank word (one that does not count in a
    loop's length), a run of letters or digits is read in words of 32 at most, and a carry every 1,024 characters.
    Whitespace other than spaces and line ends (tabs, carriage returns, no-break spaces, U+2028) ends the words read
    as they do (it was read every 1,024 characters: such a loop was cut at about 3,100)."""
    for text, unit, by in (("Done.\n" + "\n" * 6_000, "⏎", 2_900), ("Done. " + " " * 6_000, "␣", 2_900),
                           ("Code:" + "\t\n" * 3_000, "⏎", 2_900), ("Code:" + "\n    " * 1_200, "⏎", 2_900),
                           ("x" + "\u2028" * 5_000, "⏎", 2_900), ("x" + "\r" * 5_000, "⏎", 2_900),
                           ("x" + "\t" * 5_000, "␣", 2_900), ("x" + "\xa0" * 5_000, "␣", 2_900),
                           ("Result: " + "0" * 12_000, "0" * 32, 6_300),
                           ("x " + "\u200b" * 5_000, "<U+200B>x16", 3_200),  # (a unit that shows nothing: named)
                           ("x " + ("\u200b" * 1_120 + " done ") * 8, "<U+200B>x1024...", 9_000),  # (words shown:
                           # the unit's first 64; those of a longer one end in "...", whatever they show)
                           ("Ok " + "ha" * 6_000, "ha" * 16, 6_300), ("x " + "abc" * 4_000, "abc" * 33, 2_100)):
        a, first = _streamed(text)
        assert first is not None and first <= by, (unit, first)
        loops = [h.message for h in a.take_hits() if h.kind == "loop"]
        assert loops and loops[0].split('"')[1].startswith(unit[:57]), loops
    rng = random.Random(3)
    blob = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(6_000))
    table = "\n".join(f"{i:<24}{i * i:>32}{'ok':>24}" for i in range(200))
    code = "\n".join(" " * (4 * (i % 9)) + f"call_{i}(value_{i % 7})" for i in range(300))
    # (a blank between the words of a loop does not count: a right-aligned column of one value, or a matrix of
    # wide cells that are mostly 0, is one word over and over, as without the spaces; a review found both cut)
    column = "Exit codes:\n" + "".join(f"{0:>20}\n" for _ in range(25))
    matrix = "\n".join("".join(f"{0:>18}" for j in range(8)) for i in range(8))
    points = "".join(f"Point {i}: {rng.choice(['yes', 'no', 'maybe'])}.\n\n\n\n" for i in range(100))
    for text in (blob, table, code, column, matrix, points,
                 "Pneumonoultramicroscopicsilicovolcanoconiosis is long. " * 3):
        a, first = _streamed(text)
        assert first is None and not [h for h in a.take_hits() if h.kind == "loop"], text[:40]
    # (blanks only from 256 whitespace characters in a row: a block of code indented 20 spaces, looping, is cut in
    # its third repeat as before, and a value in a column 100 wide at 160 of it; with a blank per indent, the
    # first was never seen, its words and blanks over the third of the window a unit can be: a second review)
    block = "".join(f"{' ' * 20}value_{i} = compute(value_{i}, 1)\n" for i in range(38))
    for text, unit, at in (("Here is the code:\n" + block * 12, "value_0", 18 + 3 * len(block)),
                           ("Values:\n" + f"{0:>100}\n" * 200, "0", 8 + 160 * 101)):
        a, first = _streamed(text)
        assert first is not None and at - 20 <= first <= at + 20, (unit, first, at)
        assert [h.message for h in a.take_hits() if h.kind == "loop"][0].startswith(f'repetition loop "{unit}')


def test_a_recurring_phrase_in_japanese_is_twelve_characters_not_a_set_ending():
    """Each character of Japanese is a word, so a phrase of six of them (``いたします。``, ``でございます``: a set ending)
    was a recurring phrase three times in a short business email. A phrase there is now twelve characters; one
    that recurs is still said, and English is read in phrases of six words as before."""
    email = ("お世話になっております。株式会社サンプルの田中でございます。先日はお打ち合わせのお時間をいただき、誠にありがとうございました。"
             "ご提案いただいた内容につきまして、社内で検討いたしました結果をご報告いたします。\n"
             "まず、納期についてでございますが、来月末までの対応は可能と判断いたしました。詳細なスケジュールを別途お送りいたします。\n"
             "次に、費用についてでございますが、見積書の金額で進めさせていただければと存じます。\n"
             "また、担当者の変更についてご連絡いたします。来週より、山田が本件を担当いたします。\n")
    a, _ = _streamed(email)
    assert not [h.message for h in a.take_hits() if h.kind == "recurring"]
    said = "本件は来週の会議で改めて検討いたします。"
    a, _ = _streamed(f"まず納期です。{said}次に費用の話です。{said}最後に担当者の変更です。{said}以上です。")
    hits = [h.message for h in a.take_hits() if h.kind == "recurring"]
    assert len(hits) == 1 and "本件は来週の会議" in hits[0].split('"')[1] and len(hits[0].split('"')[1]) == 12, hits
    # (a review: a passage with a Latin word in it was said again on each side of it, the dropped phrases having
    # broken the chain of "the same passage, a word further on"; and, with a phrase not looked up while the text was
    # in a loop, the text after a loop that came in one delta was not looked up at all)
    said = "我们计划在今年年底之前完成全部的A轮融资工作并且扩大团队规模到一百人以上。"
    a, _ = _streamed("开始。" + "".join(f"{filler}第{i}段：{said}" for i, filler in enumerate(("", "今天天气不错。",
                                                                                        "我们先休息一下再继续往下讲吧。"))))
    assert len([h for h in a.take_hits() if h.kind == "recurring"]) == 1
    a = TextAnalyzer("s")
    a.ingest(RequestStarted("s", 0.0))
    a.ingest(TextDelta("s", 0.1, "はじめに。" + "我不知道。" * 40))
    a.update(0.2)
    said = "本件は来週の会議で改めて検討いたします。"
    a.ingest(TextDelta("s", 0.3, f"{said}次に費用の話です。{said}最後に担当者の変更です。{said}以上です。"))
    a.update(0.4)
    hits = [h.message for h in a.take_hits() if h.kind in ("recurring", "loop")]
    assert len(hits) == 2 and "本件は来週の会議" in hits[1], hits
    a, _ = _streamed("First, the deadline. We will review it again at next week's meeting. Then the cost. We will "
                     "review it again at next week's meeting. Last, the owner. We will review it again at next week's "
                     "meeting. That is all.")
    hits = [h.message for h in a.take_hits() if h.kind == "recurring"]
    assert len(hits) == 1 and hits[0].startswith('recurring phrase ". We will review it again" x3'), hits
    # six words of which half or more are Chinese or Japanese characters are a few words too (``パッケージ:``,
    # ``いません。%``: gettext catalogues of eight packages in ja, zh_CN and zh_TW had 3,001 phrases said, 1,590 now,
    # the rest whole phrases); a mixed phrase of twelve, mostly such characters, is still said
    a, _ = _streamed("".join(f"パッケージ: {name}を削除します。設定ファイル{name}.confはすでに存在していません。%s\n"
                             for name in ("vim", "git-core", "curl tools", "less")))  # (at unequal gaps)
    hits = [h.message.split('"')[1] for h in a.take_hits() if h.kind == "recurring"]
    assert hits == ["を削除します。設定ファイ", ". confはすでに存在していま"], hits  # (not パッケージ: nor ません。%)


def test_the_content_signal_ends_a_run_at_a_space_and_a_request_and_a_replay_counts_as_the_live_analyzer():
    """A run of Chinese characters ran on across spaces, line ends and requests (a poem without marks gave no
    point at all), and a replay counted words its own way, each recorded delta alone (a word split across two was
    two): two reviews."""
    from midstream_tui.analyzers.text import WordLengths

    requests = [["床前明", "月光\n疑是", "地上霜 ", "Hell", "o wo", "n", "der", "ful w", "orld", ", ag", "ain", ".",
                 " --- ok"], ["人工智能", "是计算机", "科", "学的一", "个分支"]]
    a = TextAnalyzer("s")
    for k, pieces in enumerate(requests):
        a.ingest(RequestStarted("s", 2.0 * k))
        for j, piece in enumerate(pieces):
            a.ingest(TextDelta("s", 2.0 * k + 0.1 * j, piece))
        a.ingest(RequestFinished("s", 2.0 * k + 1.9))
    live = a.signals()["word length (chars)"].tolist()
    assert live == [5, 5, 5, 9, 5, 1, 5, 1, 3, 2, 15], live
    replayed = WordLengths()  # (what a replay and `midstream analyze` use, fed the recorded pieces)
    assert [n for pieces in requests for n in [m for p in pieces for m in replayed.feed(p)] + replayed.end()] == live


def test_a_recorded_sessions_content_signal_is_the_live_one(tmp_path):
    """Through the recorder and back (`midstream analyze`'s reading, and the replay's): the same word lengths as the
    live analyzer had, words and runs of Chinese characters split across deltas included."""
    from midstream_tui import Hub, VirtualClock
    from midstream_tui.events import StreamOpened
    from midstream_tui.sessions import RecordedHub, Recorder, Session
    from midstream_tui.sessions.analyze import recorded_signals

    hub = Hub(VirtualClock(), analysis_interval=0.1)
    recorder = Recorder(tmp_path / "s.midstream.sqlite", command="test").attach(hub)
    pieces = ["床前明", "月光\n疑是", "地上霜 ", "Hell", "o wo", "n", "der", "ful w", "orld", ", ag", "ain", ".",
              " 人工智能", "是计算机", "科", "学的一", "个分支。"]
    hub.push(StreamOpened("one", 0.0, kind="text", source="test"))
    hub.start_request("one", t=0.0)
    for k, piece in enumerate(pieces):
        hub.push_text("one", piece, tokens=1, t=k / 50)
    hub.finish_request("one", t=0.5)
    hub.analyze(now=1.0)
    recorder.tick(1.0)
    live = hub._pipelines["one"].analyzer.signals()["word length (chars)"].tolist()
    recorder.close()
    assert live == [5, 5, 5, 9, 5, 1, 5, 1, 15, 1], live
    with Session(tmp_path / "s.midstream.sqlite") as session:
        (stream,) = recorded_signals(session)
        assert stream["signals"]["word length (chars)"].tolist() == live
        replay = RecordedHub(session)
        assert [s.signal_v.tolist() for s in replay._streams] == [live]
