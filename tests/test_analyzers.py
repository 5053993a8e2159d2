"""The analyzer contract: ``ingest`` per event, ``update(now)`` looks for patterns, ``metrics`` only reads."""

from midstream_tui import RequestStarted, TextDelta
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


def test_every_kind_has_an_analyzer():
    assert sorted(ANALYZERS) == ["audio", "text", "video"]
