"""The midstream command as a user runs it: subprocesses, real clock, real output."""

import json
import subprocess
import sys

import pytest

CMD = [sys.executable, "-m", "midstream_tui"]


def run(*args, timeout=60):
    return subprocess.run([*CMD, *args], capture_output=True, text=True, timeout=timeout)


def test_headless_json_five_seconds_of_three_streams():
    proc = run("run", "sim:text", "sim:audio", "sim:video", "--headless", "--json", "--duration", "5")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    summary = lines[-1]["summary"]
    ticks = lines[:-1]
    assert {line["stream"] for line in ticks} == {"text", "audio", "video"}
    for line in ticks:
        assert {"t", "stream", "kind", "metrics", "attractor", "patterns"} <= set(line)
        assert line["attractor"]["type"] in ("point", "limit cycle", "strange", "noise", "unknown")
    # about 10 lines per second per stream; a busy machine may skip ticks, so only a lower bound of liveness
    per_stream = sum(1 for line in ticks if line["stream"] == "video")
    assert 1 <= per_stream <= 60
    assert 5.0 <= summary["duration_s"] < 60  # never short; how long stopping takes is the machine's business
    # No rates: a busy machine delivers fewer frames in 5 s (the sources fall behind their schedule). A live
    # queue may drop when the machine cannot keep up for half a second (counted: that is what `drops` is for);
    # at start-up nothing is dropped (test_a_first_run_compiles_while_streams_are_taken_in).
    video = summary["streams"]["video"]["metrics"]
    audio = summary["streams"]["audio"]["metrics"]
    assert video["frames"] > 0 and audio["audio_s"] > 0
    assert video["drops"] <= 0.1 * video["frames"] and audio["drops"] <= 0.1 * audio["events"]
    assert summary["streams"]["text"]["metrics"]["tokens"] > 100


def test_a_first_run_compiles_while_streams_are_taken_in(tmp_path):
    # An empty numba cache is what a fresh `pip install` (without `make`) starts with: the kernels
    # compile for many seconds. Frames and audio delivered meanwhile are queued, not dropped,
    # and the user is told why nothing shows yet.
    import os

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    proc = subprocess.run([*CMD, "run", "sim:video", "sim:audio", "--headless", "--json", "--duration", "4"],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "the analysis kernels are still loading (compiled on a first run" in proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    video = lines[-1]["summary"]["streams"]["video"]["metrics"]
    audio = lines[-1]["summary"]["streams"]["audio"]["metrics"]
    assert video["drops"] == 0 and audio["drops"] == 0
    assert video["frames"] > 0 and audio["events"] > 0  # how many a busy machine delivers in 4 s varies


def test_virtual_runs_are_identical_and_fast():
    args = ("demo", "all", "--headless", "--json", "--virtual", "--duration", "10", "--refresh-ms", "500")
    a, b = run(*args), run(*args)
    assert a.returncode == 0 and a.stdout == b.stdout
    lines = [json.loads(line) for line in a.stdout.splitlines()]
    assert lines[-1]["summary"]["duration_s"] == 10.0
    # the time is up: no stream is left "open" (a live run stops its sources, and says "closed", too)
    assert "open" not in {s["status"] for s in lines[-1]["summary"]["streams"].values()}
    patterns = [p for line in lines[:-1] for p in line["patterns"]]
    assert any(p["kind"] == "loop" and p["stream"] == "llm-loop" for p in patterns)


def test_a_virtual_run_closes_its_streams_after_their_last_events(tmp_path):
    # 10.9 s is no whole number of analysis steps: the streams were closed at the last step, before text of 10.87 s
    rec = tmp_path / "v.midstream.sqlite"
    assert run("run", "sim:text?rate=80", "--headless", "--virtual", "--duration", "10.9", "--refresh-ms", "1000",
               "--record", str(rec)).returncode == 0
    from midstream_tui.sessions import Session
    with Session(rec) as session:
        events = [(e["t"], e["type"]) for e in session.text_events()]
    assert events[-1][1] == "close" and events[-1][0] == pytest.approx(10.9, abs=1e-6)
    assert max(t for t, kind in events if kind == "text") <= events[-1][0]


def test_refresh_before_the_subcommand_is_not_lost():
    # `midstream --refresh-ms N demo` was overridden by the subcommand's own (unset) option
    before = run("--refresh-ms", "1000", "demo", "text", "--headless", "--json", "--virtual", "--duration", "4")
    after = run("demo", "text", "--headless", "--json", "--virtual", "--duration", "4", "--refresh-ms", "1000")
    default = run("demo", "text", "--headless", "--json", "--virtual", "--duration", "4")
    assert before.returncode == after.returncode == default.returncode == 0
    assert before.stdout == after.stdout
    assert len(before.stdout.splitlines()) < len(default.stdout.splitlines())


def test_text_summary_without_json():
    proc = run("demo", "text", "--headless", "--virtual", "--duration", "6")
    assert proc.returncode == 0
    assert "llm-loop (text" in proc.stdout and "TTFT last/p50" in proc.stdout
    assert "repetition loop" in proc.stdout


@pytest.mark.parametrize("args, message", [
    (("run", "sim:bogus", "--headless"), "unknown simulated stream"),
    (("run", "nonsense", "--headless"), "unknown source"),
    (("run", "sim:text", "--frobnicate"), "unrecognized arguments"),
    (("run", "sim:text", "--json"), "--json needs --headless"),
    (("run", "sim:text", "--headless", "--duration", "-1"), "--duration"),
    (("run", "sim:text", "--headless", "--virtual", "--duration", "inf"), "--duration"),  # (it simulated for ever)
    (("run", "sim:text", "--headless", "--refresh-ms", "1"), "--refresh-ms 1"),
    (("demo", "sideways"), "invalid choice"),
    (("run",), "the following arguments are required"),
])
def test_bad_input_is_one_line_and_nonzero(args, message):
    proc = run(*args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_sigterm_ends_an_endless_headless_run_with_a_summary():
    proc = subprocess.Popen([*CMD, "run", "sim:text", "--headless", "--json"], stdout=subprocess.PIPE, text=True)
    first = proc.stdout.readline()  # running and printing
    assert json.loads(first)["stream"] == "text"
    proc.terminate()
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "summary" in json.loads(out.splitlines()[-1])


def test_version():
    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("midstream ")


@pytest.mark.parametrize("extra", [(), ("--virtual", "--duration", "60")], ids=["live", "virtual"])
def test_reader_closing_the_pipe_ends_the_run_quietly(extra):
    proc = subprocess.Popen([*CMD, "run", "sim:text", "sim:audio", "--headless", "--json", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert json.loads(proc.stdout.readline())["stream"] in ("text", "audio")
    proc.stdout.close()  # like `| head -1`
    _, err = proc.communicate(timeout=30)  # no hang
    assert proc.returncode == 0 and "Traceback" not in err
