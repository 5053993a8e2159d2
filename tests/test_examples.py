"""The examples in examples/ run as a user runs them, and say what the README promises."""

import json
import subprocess
import sys
import time

from conftest import ROOT

RUNS: dict[str, float] = {}
"""Each example's wall-clock time, an upper bound for any time it measures."""


def run_example(name: str) -> str:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / name)], capture_output=True,
                          text=True, timeout=600, cwd=ROOT)  # liveness only: a busy machine is slow
    RUNS[name] = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_library_stream_stops_the_loop_mid_stream():
    out = run_example("library_stream.py").splitlines()
    assert out[0].startswith("stopping mid-stream after") and "repetition loop" in out[0]
    metrics = json.loads(out[1])
    assert metrics["tokens"] < 100  # stopped long before the 425 chunks the stream would send
    # its stand-in model waits 250 ms for the first token; a busy machine only adds to that
    assert 200 < metrics["ttft_ms"] < 1000 * RUNS["library_stream.py"] and metrics["loop_words"] > 0


def test_media_push_measures_pushed_audio_and_video():
    out = run_example("media_push.py")
    assert "microphone: level" in out and "silence 40 %" in out
    assert "camera: 30" in out and "320x180" in out
    assert out.count("silence of 1.00 s") == 2
