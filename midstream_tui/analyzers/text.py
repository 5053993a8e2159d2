"""LLM token streams: TTFT, inter-token latency, throughput, repetition loops and recurring phrases."""

from __future__ import annotations

import itertools
import math
import re
import zlib
from collections import deque
from typing import Any

import numpy as np

from ..analysis.patterns import Loop, RecurringNgrams, compression_ratio, ngram_novelty, seq_rep_n, trailing_loop
from ..analysis.stats import Summary, summarize
from ..events import REASONING, ChoiceText, Event, OutputChunk, RequestFinished, RequestStarted, TextDelta, Usage
from ..snapshot import PatternHit
from .base import NOTHING, STALL_FLOOR_S, Measured, Ring, StreamAnalyzer, ring_rate, stall_limit

_UNSPACED = ("\u2e80-\u2fdf\u3001-\u303f\u3040-\u30ff\u3100-\u312f\u31a0-\u31bf\u31f0-\u31ff\u3400-\u4dbf"
             "\u4e00-\u9fff\uf900-\ufaff\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff9f\U00020000-\U0003134f")
"""Scripts written without spaces between words: CJK ideographs (Chinese, Japanese kanji), kana, bopomofo, and the CJK
and full-width punctuation written with them (not full-width letters and digits: ＷＥＢ is a word, as WEB is; nor Thai,
Lao, Khmer or Myanmar, alphabets whose phrases are spaced). Each of their characters is read as a word: a loop in
Chinese or Japanese text is a run of characters repeated, seen as it streams (read as one word up to the next space or
line end, it was seen late, often only at the answer's end). A Chinese character is close to a word of English in what
it carries and in tokens (one or two), so a loop's length in them is weighed as one in words; a loop's unit can be up
to ``LOOP_UNIT_MAX`` words long, a paragraph of a thousand characters or words."""
WORD_MAX = 32
"""Characters of a run of letters or digits read as one word at most: a longer run is read in pieces of this many
(``0000…``, ``hahaha…`` or ``abcabc…`` for ever without a space was one growing word, never a loop; in pieces it is
one, of words of 32). Few words of any language are longer (hashes and base64 are, and never repeat)."""
_WORD = re.compile(rf"[{_UNSPACED}]|[^\W{_UNSPACED}]{{1,{WORD_MAX}}}|([^\w\s])\1{{0,15}}")
"""A word: a character of a script written without spaces, a run of other word characters (up to ``WORD_MAX``), or
a run of one punctuation mark or symbol, up to 16 of it (a line of 40 dashes is three words, not a loop of 40;
``!!!…`` for ever is a loop of words of 16)."""
BLANK_AFTER = 256
BLANK_RUN = 16
"""Whitespace characters in a row past ``BLANK_AFTER`` that are read as one word, a blank (``⏎`` if the run has
held a line end, else ``␣``; one word id for both): a model that emits line ends or spaces for ever (a known way for
generation to degenerate) had written no word at all, so no loop was seen and the stream was never cut; it is now a
loop of blanks, one word over and over, cut from ``SINGLE_WORD_LOOP`` of them (2,816 characters). A run shorter
than ``BLANK_AFTER`` (a paragraph's break, a line's indent, a table's padding: none in written text comes close)
is read as before, as nothing: blanks among words took the window's room (a looping block of code indented 20 spaces
was no longer seen) and changed with where the deltas fell. Blanks do not count in a loop's length
(``loop_words``)."""
_TOKEN = re.compile(rf"{_WORD.pattern}|(\s+)")
BLANK_LINE, BLANK_SPACE = "⏎", "␣"
BLANKS = frozenset((BLANK_LINE, BLANK_SPACE))
NO_BLANK = (0, False)
_BLANK_ID = zlib.crc32(BLANK_LINE.encode())
_LINE_END = re.compile("[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")  # (what ``str.splitlines`` splits at)
_PIECE = re.compile(rf"[^\W{_UNSPACED}]{{{WORD_MAX}}}")
_THROUGH_UNSPACED = re.compile(rf".*[{_UNSPACED}]", re.S)
_THROUGH_SPACE = re.compile(r".*\s", re.S)
_UNSPACED_CHAR = re.compile(rf"[{_UNSPACED}]")
_NO_SPACE_BEFORE = re.compile(rf"[^\w\s]|[{_UNSPACED}]")
LOOP_UNIT_MAX = 1024
"""Words of a loop's unit at most (a later choice's: half): a paragraph of a thousand words, or of as many characters
of Chinese or Japanese, repeated (341 until 2026-12-07, later: a Chinese paragraph of 400 characters over and over
was never a loop)."""
LOOP_WINDOW = 3 * LOOP_UNIT_MAX
"""Words searched for the loop the text ends in (a later choice's: half): a loop repeats its unit at least three
times."""
STRUCTURE_GAP = 341
"""A phrase seen three times this many words apart or less, at equal gaps, is not said as recurring: a loop, or
lines of one shape (rows of a table, a run of similar statements in code). Further apart it is (a loop of a unit that
long is said as both, once it is one)."""
UNIT_SHOWN = 64
"""Words of a loop's unit kept to show it (its first ones: more than the 60 characters shown); the words themselves
are kept for ``LOOP_UNIT_MAX`` and this many more, not for the whole window (their ids are)."""
SINGLE_WORD_LOOP = 160
"""One word over and over, or a unit with no letter or digit, is a loop only from this many words (laughter, a
separator line of ー, an ellipsis of 。, a Markdown table's ``|:---:|`` row are not: 40 of them made a 40-word loop,
which the built-in rule cuts); a unit of two words or more with a letter or digit from 16."""
PHRASE_CHARS = 12
"""Characters of a script written without spaces that make a recurring phrase (of other words: ``PHRASE_WORDS``, 6).
Six, like six words, made Japanese business prose say its set endings (``でございます``, ``いたします。``) as
recurring phrases: twelve are about as many words as six of English."""
RUN_MAX = 32
"""Characters of a script written without spaces counted as one word of the content signal at most (a run with no
mark or space in it)."""


def _words(text: str, blank: tuple[int, bool] = NO_BLANK) -> tuple[list[str], tuple[int, bool]]:
    """The words of ``text`` (see ``BLANK_RUN`` for its blanks); ``blank``: the whitespace run just before it (its
    length, whether it has held a line end), returned as its end leaves it."""
    out: list[str] = []
    length, line = blank
    for m in _TOKEN.finditer(text):
        if m.group(2) is None:
            out.append(m.group())
            length, line = 0, False
        else:
            run = m.group()
            line = line or _LINE_END.search(run) is not None
            before, length = length, length + len(run)
            if length >= BLANK_AFTER + BLANK_RUN:
                blanks = (length - BLANK_AFTER) // BLANK_RUN - max(0, before - BLANK_AFTER) // BLANK_RUN
                out.extend([BLANK_LINE if line else BLANK_SPACE] * blanks)
    return out, (length, line)


def _word_id(word: str) -> int:
    """A word's id in the loop window: the same for a word in any case, and for both blanks."""
    return _BLANK_ID if word in BLANKS else zlib.crc32(word.lower().encode("utf-8", "replace"))


def _loop_in(ids: np.ndarray, words: deque[str], unit_max: int = LOOP_UNIT_MAX) -> tuple[Loop | None, int]:
    """The repetition loop a window of word ids ends in, if any, and its length in words that are not blanks (see
    ``SINGLE_WORD_LOOP``: one word over and over, blanks between or not, or a unit with no letter or digit, counts
    from 160 of them; blanks alone, from 160 blanks); ``words``: the last words of the window (at least
    ``unit_max``)."""
    loop = trailing_loop(ids, max_period=max(1, min(unit_max, ids.size // 3)))
    if loop is None:
        return None, 0
    # (the window ends in at least three copies of the unit, so its last ``period`` words are the unit's, turned)
    plain_count = loop.period - int(np.count_nonzero(ids[ids.size - loop.period:] == _BLANK_ID))
    # (a blank between each word of a loop does not make it longer: "␣ 0" is a unit of one word)
    length = (loop.run + loop.period) * plain_count // loop.period if plain_count else loop.run + loop.period
    if length >= SINGLE_WORD_LOOP:
        return loop, length
    unit = list(itertools.islice(words, len(words) - loop.period, None))
    plain = [w for w in unit if w not in BLANKS]
    if len(set(plain)) <= 1 or not any(c.isalnum() for w in plain for c in w):
        if loop.run + loop.period >= min(ids.size, unit_max) and ids.size >= 2 * SINGLE_WORD_LOOP:  # (so many
            # blanks between that all the window, or a unit's longest, is the loop before it counts 160 words)
            return loop, SINGLE_WORD_LOOP
        return None, 0
    return loop, length


def _shown_unit(loop: Loop, size: int, words: deque[str]) -> str:
    """A loop's unit as text (``_unit``), from a copy of it in ``words``, the last of a window of ``size`` ids: one
    that starts where the loop does (the first copy can be older than the words kept)."""
    show = min(loop.period, UNIT_SHOWN)
    copy = loop.start + (size - loop.start) // loop.period * loop.period  # the last copy's start (maybe at the end)
    if size - copy < show:
        copy -= loop.period  # (the one before it, whole)
    at = len(words) - (size - copy)
    text = _unit(list(itertools.islice(words, at, at + show)))
    if loop.period > show and not text.endswith("..."):  # (words that show as little: a run of invisible ones)
        text = text[:57] + "..."
    return text


def _word_lengths(text: str, run: int = 0) -> tuple[list[int], int]:
    """The content signal's values for the words of ``text``: each one's length, a run of letters of a script
    written without spaces counting as one word (up to a mark, a space or ``RUN_MAX`` of them); ``run``: such
    letters just before ``text`` (returned: those its end leaves open)."""
    out: list[int] = []
    end = 0
    for m in _WORD.finditer(text):
        w = m.group()
        if run and m.start() > end:  # (a space ends it)
            out.append(run)
            run = 0
        end = m.end()
        if len(w) == 1 and w.isalnum() and _UNSPACED_CHAR.match(w):
            run += 1
            if run == RUN_MAX:
                out.append(run)
                run = 0
        else:
            if run:
                out.append(run)
                run = 0
            out.append(len(w))
    if run and end < len(text):
        out.append(run)
        run = 0
    return out, run


class WordLengths:
    """The content signal's values of a text that comes in pieces (a recorded stream's deltas), counted as the live
    analyzer counts them: a word split across pieces is one word, read with the piece that ends it."""

    def __init__(self) -> None:
        self.carry, self.run = "", 0

    def feed(self, text: str) -> list[int]:
        self.carry += text
        cut = _word_end(self.carry, text)
        if cut <= 0:
            return []
        out, self.run = _word_lengths(self.carry[:cut], self.run)
        self.carry = self.carry[cut:]
        return out

    def end(self) -> list[int]:
        """The rest, at a request's end."""
        out: list[int] = []
        if self.carry.strip():
            out, self.run = _word_lengths(self.carry, self.run)
        self.carry = ""
        if self.run:
            out.append(self.run)
            self.run = 0
        return out


def _joined(words: list[str]) -> str:
    """Words as text: a space between two, but not before punctuation or a blank (it is one), nor after a blank, nor
    next to a character of a script written without spaces, nor between two pieces of a run longer than
    ``WORD_MAX``."""
    out: list[str] = []
    for w in words:
        if out and not (_NO_SPACE_BEFORE.match(w) or _UNSPACED_CHAR.match(out[-1]) or out[-1] in BLANKS
                        or _PIECE.fullmatch(out[-1]) and _PIECE.fullmatch(w)):  # (after a blank, or between two
            # pieces of a longer run: none)
            out.append(" ")
        out.append(w)
    return "".join(out)


def _unit(words: list[str]) -> str:
    """A loop's repeated words as text (punctuation back against its word), at most 60 characters; a character that
    shows nothing (a zero-width space, a joiner, a control) as its code point (a loop of them read ``""``)."""
    unit = _joined(words)
    if not unit.isprintable():
        unit = _INVISIBLE.sub(lambda m: f"<U+{ord(m[1]):04X}>" + (f"x{len(m[0])}" if len(m[0]) > 1 else ""), unit)
    return unit[:57] + "..." if len(unit) > 60 else unit


_INVISIBLE = re.compile("([\x00-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff])\\1*")


CARRY_MAX = 1024
"""Characters of text without a space, a line end or a character of a script written without spaces past which they
are read as words all the same (text without a break would otherwise wait for its end, and be searched again with
every delta)."""


def _word_end(carry: str, text: str) -> int:
    """Where the words of ``carry`` (ending in the delta ``text``) can be read up to: its last whitespace, or
    the end of its last character of a script written without spaces (a word of its own), or all of it past
    ``CARRY_MAX``; <= 0: not yet (a word may go on in the next delta)."""
    cut = max(carry.rfind(" "), carry.rfind("\n"))
    if cut < len(carry) - len(text) and not text.isalnum():  # (no space or line end in the delta: other whitespace?)
        through = _THROUGH_SPACE.match(text)  # (a tab, a carriage return, a no-break space, U+2028...)
        if through is not None:
            cut = len(carry) - len(text) + through.end() - 1
    if not text.isascii():
        through = _THROUGH_UNSPACED.match(text)
        if through is not None:
            cut = max(cut, len(carry) - len(text) + through.end())
    if cut <= 0 and len(carry) > CARRY_MAX:  # read all the same, but its last word, which may go on
        last = None
        for last in _WORD.finditer(carry):  # (from its start: a word begins where the reading will)
            pass
        return last.start() if last is not None and last.start() > 0 else len(carry)
    return cut


def _part(index: int) -> str:
    return "reasoning" if index == REASONING else "choice"


def _in_choice(index: int) -> str:
    """Where a loop of a request's other output is: a later choice, or the reasoning."""
    return "in the reasoning" if index == REASONING else f"in choice {index}"


class _LaterChoice:
    """The words of a later choice of the request under way (a request for several answers, ``n``), read for a
    repetition loop as the stream's own text is."""

    __slots__ = ("carry", "blank", "ids", "words", "new", "loop_words", "t")

    def __init__(self) -> None:
        self.t = 0.0  # when its last content came
        self.carry = ""
        self.blank = NO_BLANK
        self.ids = Ring(LOOP_WINDOW // 2, np.int64)
        self.words: deque[str] = deque(maxlen=LOOP_UNIT_MAX // 2 + UNIT_SHOWN)
        self.new = False
        self.loop_words = 0

    def add(self, text: str, end: bool = False) -> None:
        self.carry += text
        cut = len(self.carry) if end else _word_end(self.carry, text)
        if cut > 0:
            words, self.blank = _words(self.carry[:cut], self.blank)
            for w in words:
                self.ids.append(_word_id(w))
                self.words.append(w)
                self.new = True
            self.carry = self.carry[cut:]


class TextAnalyzer(StreamAnalyzer):
    """LLM token streams: TTFT, inter-token latency, throughput, repetition loops."""

    kind = "text"
    signal_name = "word length (chars)"
    """Content: a repetition loop makes it periodic, so a loop is a limit cycle."""
    timing_signal_name = "inter-token gap (ms)"
    queue_capacity = 8192
    RATE_WINDOW = 5.0
    SUMMARY_INTERVAL = 0.5
    """Seconds of stream time between recomputations of the figures over a stream's recent window (its gap
    percentiles, its repetition measures): they move slowly, are drawn twice a second, and cost as much for a
    token as for a hundred — a proxy's hundreds of streams made them most of the analysis' time. Recomputed
    once more when the stream ends, so its final figures are exact. Loop detection runs on every step."""
    PHRASE_WORDS = 6
    TAIL_CHARS = 2000
    MAX_CHOICES = 128
    """Later choices of a request read for loops (OpenAI's limit on ``n``; a reader follows as many)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.delta_t = Ring(8192)
        self.delta_tokens = Ring(8192)
        self.itl = Ring(4096)  # seconds between chunks of one request
        self.ttft = Ring(512)
        self.ttfo = Ring(512)
        self.e2e = Ring(512)
        self.tpot = Ring(512)
        self.word_ids = Ring(LOOP_WINDOW, np.int64)
        self.word_len = Ring(1024)
        """The content signal: each word's length in characters (a run of characters of a script written without
        spaces, up to a mark or another word, counts as one word: each of them alone would make it constant)."""
        self._run = 0
        self.word_t = Ring(LOOP_WINDOW)
        self.words: deque[str] = deque(maxlen=LOOP_UNIT_MAX + UNIT_SHOWN)
        self.tokens = 0
        self.tokens_reported = 0
        self._since_usage = 0
        """Tokens counted since the last usage report (a request under way, or a server that sends none)."""
        self.requests = 0
        self.requests_done = 0
        self._carry = ""
        self._blank = NO_BLANK  # the whitespace run at the end of the words read (see BLANK_RUN)
        self._req_start = math.nan
        self._req_first = math.nan
        self._req_last = math.nan
        self._req_tokens = 0
        self._req_output = math.nan  # when the request's first output that is not reasoning came (TTFO)
        self._req_usage = 0  # the output tokens the server reported for the request under way (0: none)
        self._req_started = False  # the request under way began with a RequestStarted (so it has a TTFT)
        self._stall_threshold = STALL_FLOOR_S
        self._stall_flagged = math.nan  # the start of the pause a stall rule flagged while it went on
        self._itl = summarize(np.zeros(0))
        self._in_loop = False
        self._loop_words = 0
        self._loop_period = 0  # the period of the loop the text ended in at the last update (0: none)
        self._req_word = 0
        """The first word of the request under way: a loop is searched for in its words only (the same answer to the
        same prompt, twice on one stream, was a loop from the third, and a rule cut the fourth at its first word)."""
        self._new_words = False
        self._choices: dict[int, _LaterChoice] = {}
        """The later choices of the request under way that have not ended, by index (a request for several
        answers)."""
        self._choice_loop = (0, 0)  # the longest loop in a later choice under way: its words, its choice
        self._text_ended = False  # the first choice of a request for several ended (its loop is over)
        self.recurring = RecurringNgrams(n=self.PHRASE_WORDS, min_count=3)
        self._recurring_unspaced: RecurringNgrams | None = None
        """The phrases of ``PHRASE_CHARS`` characters of a script written without spaces (made at the stream's first
        such character): six of them are a few words, often a set ending (いたします。), not a phrase."""
        self._last_recurring: tuple[tuple[int, ...], int, bool] = ((), 0, False)
        """The positions of the last recurring phrase seen, its length, whether it was said (or the passage it goes
        on was)."""
        self.recent_text: deque[str] = deque(maxlen=256)  # the last deltas, for the compression ratio
        self.tail = ""
        self.chars = 0
        self._content_at = -1
        self._content_t = -math.inf
        self._itl_at = 0
        self._itl_t = -math.inf
        self._ended = False
        self._content: dict[str, float] = {}
        self._summaries: dict[int, tuple[int, Summary]] = {}

    # -- ingest

    def ingest(self, event: Event) -> Measured:
        if isinstance(event, TextDelta):
            return self._delta(event)
        if isinstance(event, OutputChunk):
            return self._chunk(event.t, event.tokens, output=event.part != "reasoning")
        if isinstance(event, ChoiceText):
            self._choice_text(event)
            return NOTHING
        if isinstance(event, RequestStarted):
            self._flush_words(event.t)
            self._words_begin(event.t)
            self._drop_choices(event.t)  # (a loop in a later choice of the last request is not this one's)
            self._choice_loop, self._text_ended = (0, 0), False
            if self.tail and not self.tail.endswith("\n"):  # one response per line in the text panel
                self.tail += "\n"
                self.chars += 1
            self.requests += 1
            self._req_start, self._req_first, self._req_last, self._req_tokens = event.t, math.nan, math.nan, 0
            self._req_output, self._req_usage = math.nan, 0
            self._req_started = True
        elif isinstance(event, RequestFinished):
            self._flush_words(event.t)
            if self._choices:  # their last words, read; then what they held goes (the stream may be kept long)
                for later in self._choices.values():
                    later.add("", end=True)
                self._detect_choice_loops()
                self._drop_choices(event.t)
            self._finish_request(event.t, event.streamed)
        elif isinstance(event, Usage):
            reported = max(0, int(event.completion_tokens))
            self._since_usage = 0
            if math.isnan(self._req_start) or not self._req_started:  # (answers without request marks: each its own)
                self.tokens_reported += reported
            else:  # a request's usage counts its output so far, and may come with every chunk (vLLM's continuous
                # usage stats, Anthropic's message_delta): the latest replaces the one before, it does not add to it
                self.tokens_reported += reported - self._req_usage
            if not math.isnan(self._req_start):
                self._req_usage = reported
        return NOTHING

    def _choice_text(self, ev: ChoiceText) -> None:
        index = ev.choice
        if index.__class__ is not int or not REASONING <= index < 1 << 31:  # (the library's events: any value)
            return
        if index == 0:  # (only its end: its text is the stream's)
            self._text_ended = self._text_ended or ev.ended
            return
        later = self._choices.get(index)
        if later is None:
            if ev.ended or len(self._choices) >= self.MAX_CHOICES:
                return
            later = self._choices[index] = _LaterChoice()
        later.add(ev.text, end=ev.ended)
        later.t = ev.t
        if ev.ended:  # a loop it ended in is said, and is over: no longer one to stop
            self._detect_choice_loops()
            del self._choices[index]
            if later.loop_words:  # (the reasoning gave way to the answer, or the choice finished, in its loop)
                self._loop_ended(ev.t, index, later, f", with its {_part(index)}")
            self._detect_choice_loops()

    def _loop_ended(self, t: float, index: int, later: _LaterChoice, how: str = "") -> None:
        self.hits.append(PatternHit(t, self.stream, "loop-end",
                                    f"loop {_in_choice(index)} ended after {later.loop_words} words{how}"))

    def _drop_choices(self, t: float) -> None:
        """The request's later choices and reasoning go with it: a loop one of them was in is over."""
        for index, later in self._choices.items():
            if later.loop_words:
                self._loop_ended(t, index, later, ", with its request")
        self._choices.clear()

    def _delta(self, ev: TextDelta) -> Measured:
        text = ev.text
        self._count_bytes(ev.t, len(text) if text.isascii() else len(text.encode("utf-8", "replace")))
        measured = self._chunk(ev.t, ev.tokens, output=True, timed=bool(text))
        if not text:
            return measured
        if REASONING in self._choices:  # the text begins: the reasoning is over (a loop it ended in, said, is too)
            self._choice_text(ChoiceText(ev.stream, ev.t, choice=REASONING, ended=True))
        self.recent_text.append(ev.text)
        self.tail += ev.text
        if len(self.tail) > 4 * self.TAIL_CHARS:
            self.tail = self.tail[-self.TAIL_CHARS:]
        self.chars += len(ev.text)
        self._carry += ev.text
        cut = _word_end(self._carry, ev.text)
        if cut > 0:
            self._add_words(self._carry[:cut], ev.t)
            self._carry = self._carry[cut:]
        return measured

    def _chunk(self, t: float, tokens: int, *, output: bool, timed: bool = True) -> Measured:
        """A chunk of a request's output (its text, its reasoning or a tool call's arguments): its tokens counted and,
        if it carries any (``timed``), its time: the request's first (TTFT; the first that is not reasoning, TTFO)
        or the gap since the one before, whatever each carried — as AIPerf, vLLM and OpenTelemetry time chunks."""
        tokens = max(0, int(tokens))
        self.tokens += tokens
        self._since_usage += tokens
        self._req_tokens += tokens
        self.delta_t.append(t)
        self.delta_tokens.append(tokens)
        if math.isnan(self._req_start):  # pushed without RequestStarted: a request begins here
            self.requests += 1
            self._words_begin(t)
            self._req_start = t
            self._req_started = False
            self._choice_loop, self._text_ended = (0, 0), False  # (the last request's choices are not its)
            # (after a RequestFinished, the pause before this chunk is not a gap inside a request)
            self._req_first, self._req_last, self._req_tokens = math.nan, math.nan, tokens
            self._req_output, self._req_usage = math.nan, 0
        if not timed:
            return NOTHING
        if output and math.isnan(self._req_output):
            self._req_output = t
            self.ttfo.append(t - self._req_start)
        if math.isnan(self._req_first):
            self._req_first = t
            ttft = t - self._req_start
            self.ttft.append(ttft)
            measured = Measured(ttft_s=ttft) if self._req_started else NOTHING
        else:
            gap = t - self._req_last
            measured = Measured(gap_s=gap)
            self.itl.append(gap)
            self.signal_changed = True
            if self._stall_flagged == self._req_last:
                # a rule flagged this pause while it went on (with its own limit): this is its end, not a new stall
                self.hits.append(PatternHit(t, self.stream, "stall-end",
                                            f"stall ended after {gap:.2f} s, at token {self.tokens}",
                                            start=self._req_last))
            elif gap > self._stall_threshold:
                self.hits.append(PatternHit(t, self.stream, "stall",
                                            f"stall of {gap:.2f} s before token {self.tokens}",
                                            start=self._req_last))
        self._req_last = t
        return measured

    def _words_begin(self, t: float) -> None:
        """A request begins: its words are searched for a loop apart from those before it, and a loop the last one
        ended in is over (its length stayed the stream's until the new request's first word, and a rule could cut
        the new one for it)."""
        self._req_word = self.word_ids.total
        if self._in_loop:
            self._in_loop = False
            self.hits.append(PatternHit(t, self.stream, "loop-end", f"loop ended after {self._loop_words} words"))
        self._loop_words = self._loop_period = 0

    def _flush_words(self, t: float) -> None:
        if self._carry.strip():
            self._add_words(self._carry, t)
        self._carry, self._blank = "", NO_BLANK
        if self._run:  # (the request's last run of characters of a script without spaces)
            self.word_len.append(self._run)
            self._run = 0

    def _add_words(self, text: str, t: float) -> None:
        lengths, self._run = _word_lengths(text, self._run)
        for length in lengths:
            self.word_len.append(length)
        words, self._blank = _words(text, self._blank)
        unspaced = self._recurring_unspaced
        if unspaced is None and not text.isascii() and _UNSPACED_CHAR.search(text):
            unspaced = self._recurring_unspaced = RecurringNgrams(n=PHRASE_CHARS, min_count=3)
            unspaced.position = self.word_ids.total  # (its positions are the stream's words')
        period, kept = self._loop_period, self.words
        for w in words:
            word_id = _word_id(w)
            self.word_ids.append(word_id)
            self.word_t.append(t)
            self.signal_changed = True
            kept.append(w)
            self._new_words = True
            # a word that goes on with the loop the text was in is not looked up (every phrase of a loop recurs, and
            # is said as the loop); the first that does not, and all after it, are
            look = not (period and len(kept) > period and kept[-1 - period] == w)
            period = period if not look else 0
            found = self.recurring.add(word_id, look)
            if found:
                self._recurring_hit(found, t, self.PHRASE_WORDS)
            if unspaced is not None:
                found = unspaced.add(word_id, look)
                if found:
                    self._recurring_hit(found, t, PHRASE_CHARS)

    def _recurring_hit(self, found, t: float, n: int) -> None:
        """A phrase of ``n`` words seen a third time: said, unless it is a loop, or the passage said one word before,
        or (see ``PHRASE_CHARS``) a phrase of the other length in a script written without spaces."""
        gaps = np.diff(found.positions)
        if gaps.size and np.all(gaps == gaps[0]) and gaps[0] <= STRUCTURE_GAP:
            return  # back-to-back with a fixed period: a loop, or lines of one shape (a table, code), not said (further
            # apart it is: three sections of one length that end alike, a passage said twice and begun again)
        first_kept = self.word_ids.total - len(self.words)
        start = found.positions[-1] - first_kept
        words = list(itertools.islice(self.words, start, start + n)) if start >= 0 else []
        last, m, said = self._last_recurring
        same = len(last) == len(found.positions) and all(q <= p + n and p <= q + m
                                                         for p, q in zip(found.positions, last))
        # (one passage, as its phrases of either length are seen in turn: said once, by the first that may say it)
        if same and said:
            self._last_recurring = (found.positions, n, True)
            return
        unspaced = sum(1 for w in words if len(w) == 1 and _UNSPACED_CHAR.match(w))
        if (n == PHRASE_CHARS) != (bool(words) and 2 * unspaced >= len(words)):
            self._last_recurring = (found.positions, n, False)
            return  # six words half of them characters of Chinese or Japanese (a few words: ``パッケージ:``,
            # ``いません。%``), or twelve that are mostly not such
        self._last_recurring = (found.positions, n, True)
        phrase = _joined(words) if words else "…"
        where = ", ".join(str(p) for p in found.positions)
        self.hits.append(PatternHit(t, self.stream, "recurring",
                                    f'recurring phrase "{phrase}" x{found.count} (at words {where})'))

    def _finish_request(self, t: float, streamed: bool = True) -> None:
        if math.isnan(self._req_start):
            return
        self.requests_done += 1
        if not math.isnan(self._req_first):
            e2e = self._req_last - self._req_start
            self.e2e.append(e2e)
            tokens = self._req_usage or self._req_tokens  # the server's count when it gave one (reasoning included)
            if tokens > 1 and streamed:  # (one chunk of several tokens: 0, as AIPerf and vLLM have it; an answer
                # that came whole has none)
                self.tpot.append((self._req_last - self._req_first) / (tokens - 1))
        self._req_start = math.nan

    # -- analysis

    def _detect_loop(self) -> None:
        if not self._new_words:
            return
        self._new_words = False
        ids = self.word_ids.values(min(LOOP_WINDOW, self.word_ids.total - self._req_word))
        loop, length = _loop_in(ids, self.words)
        if loop and not self._in_loop:
            self._in_loop = True
            unit = _shown_unit(loop, len(ids), self.words)
            first_word = self.word_ids.total - len(ids) + loop.start
            start_t = float(self.word_t.values(len(ids))[loop.start])
            self.hits.append(PatternHit(
                self.word_t.last(), self.stream, "loop",
                f'repetition loop "{unit}" x{loop.repeats:.0f} (period {loop.period} words, from word {first_word})',
                start=start_t))
        elif not loop and self._in_loop:
            self._in_loop = False
            self.hits.append(PatternHit(self.word_t.last(), self.stream, "loop-end",
                                        f"loop ended after {self._loop_words} words"))
        self._loop_words = length
        self._loop_period = loop.period if loop else 0

    def _detect_choice_loops(self) -> None:
        """A repetition loop in a later choice of the request: a hit that names the choice, and its length in
        ``loop_words`` when it is the longest (a loop rule judges the request by it: its cut ends every choice)."""
        longest = (0, 0)
        for index, later in self._choices.items():
            if later.new:
                later.new = False
                ids = later.ids.values(LOOP_WINDOW // 2)
                loop, length = _loop_in(ids, later.words, LOOP_UNIT_MAX // 2)
                if loop and not later.loop_words:
                    self.hits.append(PatternHit(
                        later.t, self.stream, "loop",
                        f'repetition loop "{_shown_unit(loop, len(ids), later.words)}" x{loop.repeats:.0f} '
                        f"{_in_choice(index)} (period {loop.period} words, from its word "
                        f"{later.ids.total - len(ids) + loop.start})"))
                elif not loop and later.loop_words:
                    self._loop_ended(later.t, index, later)
                later.loop_words = length
            longest = max(longest, (later.loop_words, -index))
        self._choice_loop = (longest[0], -longest[1])

    def flagged(self, condition: str, t: float, since: float) -> None:
        # only the pause still under way (if it ended before the flag came in, it was logged as it ended)
        if condition == "stall" and abs(since - self._req_last) < 1e-6:
            self._stall_flagged = self._req_last

    def close(self) -> None:
        self._ended = True
        super().close()

    def _due(self, at: int, total: int, t: float, now: float) -> bool:
        """Whether a window summary last taken at count ``at``, time ``t`` is to be taken again."""
        return at != total and (self._ended or now - t >= self.SUMMARY_INTERVAL or now < t)

    def update(self, now: float) -> None:
        self._detect_loop()
        if self._choices:
            self._detect_choice_loops()
        if not self._due(self._itl_at, self.itl.total, self._itl_t, now):
            return
        self._itl_at, self._itl_t = self.itl.total, now
        self._itl = itl = summarize(self.itl.values(1024))
        if itl.count >= 16:
            # A gap is a stall when it is far outside this stream's own pace.
            self._stall_threshold = stall_limit(itl.p50)  # the same definition the learner applies to a source

    def metrics(self, now: float, since: float) -> dict[str, Any]:
        itl = self._itl
        ttft = self._summary(self.ttft)
        # live, a token can postdate the tick's clock by a hair: a time since it is never negative
        since_last = max(0.0, now - self._req_last) if not math.isnan(self._req_last) else math.nan
        text_loop = 0 if self._text_ended else self._loop_words  # (a first choice that ended while others go on)
        return {
            "tokens_per_s": ring_rate(self.delta_t, self.delta_tokens, now, self.RATE_WINDOW, since),
            "ttft_ms": self.ttft.last() * 1e3,
            "ttft_p50_ms": ttft.p50 * 1e3,
            "ttfo_ms": self.ttfo.last() * 1e3,
            "itl_p50_ms": itl.p50 * 1e3,
            "itl_p90_ms": itl.p90 * 1e3,
            "itl_p99_ms": itl.p99 * 1e3,
            "tpot_ms": self._summary(self.tpot).p50 * 1e3,
            "e2e_p50_s": self._summary(self.e2e).p50,
            "requests": self.requests,
            "tokens": self.tokens,
            "tokens_reported": self.tokens_reported,
            "tokens_since_usage": self._since_usage,
            "bytes_per_s": self.bytes_per_s(now, self.RATE_WINDOW, since),
            **self._content_metrics(now),
            # the longest loop the request's output ends in: its text's, or a later choice's (``loop_choice``: its
            # index; 0: the stream's text)
            "loop_words": max(text_loop, self._choice_loop[0]),
            "loop_choice": self._choice_loop[1] if self._choice_loop[0] > text_loop else 0,
            "chars": self.chars,
            "since_token_s": since_last,
            # a request still waiting for its first token: how long so far (a stall rule judges it too)
            "waiting_first_s": (max(0.0, now - self._req_start) if not math.isnan(self._req_start)
                                and math.isnan(self._req_first) else math.nan),
            # 0 between requests, 1 waiting for a request's first token, 2 streaming it
            "request_phase": 0 if math.isnan(self._req_start) else (1 if math.isnan(self._req_first) else 2),
        }

    def _summary(self, ring: Ring) -> Summary:
        """``summarize`` of a ring of per-request figures, made again only when one was added."""
        kept = self._summaries.get(id(ring))
        if kept is None or kept[0] != ring.total:
            kept = self._summaries[id(ring)] = (ring.total, summarize(ring.values()))
        return kept[1]

    def _content_metrics(self, now: float) -> dict[str, float]:
        """Repetition measures: they change only with new words, so computed only then (and at most every
        ``SUMMARY_INTERVAL``)."""
        if self._due(self._content_at, self.word_ids.total, self._content_t, now):
            self._content_at, self._content_t = self.word_ids.total, now
            window = self.word_ids.values(200)
            self._content = {"rep4": seq_rep_n(window, 4), "novelty4": ngram_novelty(window, 4),
                             "compression": compression_ratio("".join(self.recent_text))}
        return self._content

    def signal(self) -> np.ndarray:
        return self.word_len.values(600)

    def signals(self) -> dict[str, np.ndarray]:
        return {self.signal_name: self.signal(), self.timing_signal_name: self.itl.values(600) * 1e3}

    def signal_points(self) -> dict[str, int]:
        return {self.signal_name: self.word_len.total, self.timing_signal_name: self.itl.total}

    def text_tail(self) -> str:
        return self.tail[-self.TAIL_CHARS:]
