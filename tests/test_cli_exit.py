"""Exit codes and one-line errors of `midstream export` and headless runs (issue 11, item 6)."""

import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from midstream_tui import Hub, VirtualClock, open_sources, run_virtual
from midstream_tui.sessions import Recorder

CMD = [sys.executable, "-m", "midstream_tui"]


def midstream(*args, timeout=120):
    return subprocess.run([*CMD, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def one_line_error(proc, *words, code=2):
    assert proc.returncode == code, (proc.returncode, proc.stdout[-300:], proc.stderr[-300:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("midstream: error: "), proc.stderr[-800:]
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    path = tmp_path_factory.mktemp("rec") / "s.midstream.sqlite"
    clock = VirtualClock()
    hub = Hub(clock, analysis_interval=0.1)
    recorder = Recorder(path, command="test").attach(hub)
    run_virtual(hub, open_sources(["sim:text?seed=1"], clock), 3.0)
    recorder.close()
    return path


def test_export_does_not_overwrite_an_earlier_export_without_force(recorded, tmp_path):
    out = tmp_path / "out"
    assert midstream("export", recorded, "--out", out).returncode == 0
    before = (out / "events.jsonl").stat().st_mtime_ns
    one_line_error(midstream("export", recorded, "--out", out), "--force", "exists")
    assert (out / "events.jsonl").stat().st_mtime_ns == before  # nothing was touched
    again = midstream("export", recorded, "--out", out, "--force")
    assert again.returncode == 0 and "events.jsonl" in again.stdout
    assert midstream("export", recorded, "--out", out, "--format", "csv").returncode == 0  # other files: fine


def test_export_to_a_file_or_an_unwritable_place_is_one_line(recorded, tmp_path):
    existing = tmp_path / "report.txt"
    existing.write_text("keep me")
    one_line_error(midstream("export", recorded, "--out", existing), "not a folder")
    one_line_error(midstream("export", recorded, "--out", existing, "--force"), "not a folder")
    assert existing.read_text() == "keep me"
    one_line_error(midstream("export", recorded, "--out", existing / "sub"), "cannot create")
    blocked = tmp_path / "blocked"
    (blocked / "events.jsonl").mkdir(parents=True)  # a folder where a file must go
    one_line_error(midstream("export", recorded, "--out", blocked, "--force"), "events.jsonl")


def test_a_run_whose_only_source_failed_exits_non_zero(free_port):
    # nothing listens on free_port: the source fails, retries once, fails again
    uri = f"http://127.0.0.1:{free_port}/live.m3u8?reconnect=1"
    proc = midstream("run", uri, "--headless", "--json", "--duration", "60", "--no-record", "--no-learn",
                     "--transcribe", "off", "--detect", "off", timeout=180)
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-800:])
    errors = [line for line in proc.stderr.splitlines() if line.startswith("midstream: error:")]
    assert len(errors) == 1 and "failed" in errors[0]
    assert '"summary"' in proc.stdout  # the summary is still printed


def test_a_run_that_ends_before_its_only_source_was_ever_reached_exits_non_zero(free_port):
    """Still retrying when --duration ends (nothing listens), nothing ever delivered: that source failed."""
    proc = midstream("run", f"rtmp://127.0.0.1:{free_port}/live", "--headless", "--duration", "3", "--no-record",
                     "--no-learn", "--transcribe", "off", "--detect", "off", timeout=180)
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-800:])
    errors = [line for line in proc.stderr.splitlines() if line.startswith("midstream: error:")]
    assert len(errors) == 1 and "nothing delivered: ConnectionRefusedError" in errors[0], proc.stderr[-800:]
    assert "reconnecting in" not in errors[0]  # (it is not, any more)


def test_replaying_a_recorded_failed_request_is_not_a_failed_run(tmp_path):
    """The recording played as it should; the request in it failed, and its stream says so."""
    session = tmp_path / "failed.jsonl"
    session.write_text('{"t": 0.0, "stream": "llm", "type": "error", "message": "upstream answered 500"}\n'
                       '{"t": 0.1, "stream": "llm", "type": "close"}\n')
    proc = midstream("run", session, "--headless", "--json", "--no-record", "--no-learn")
    assert proc.returncode == 0, proc.stderr[-800:]
    assert json.loads(proc.stdout.splitlines()[-1])["summary"]["streams"]["llm"]["error"] == "upstream answered 500"


def test_a_proxy_whose_every_request_failed_upstream_still_exits_zero(free_port):
    """The requests are the clients', not the run's sources: an unreachable upstream is the answers' error."""
    import time
    import urllib.error
    import urllib.request

    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        dead = spare.getsockname()[1]  # nothing listens here once closed
    proc = subprocess.Popen([*CMD, "proxy", "--port", str(free_port), "--upstream", f"http://127.0.0.1:{dead}/v1",
                             "--headless", "--duration", "8", "--no-record", "--no-learn"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(urllib.request.Request(
                    f"http://127.0.0.1:{free_port}/v1/chat/completions", data=b'{"model": "m", "stream": true}',
                    headers={"Content-Type": "application/json"}), timeout=30)
            except urllib.error.HTTPError as exc:
                assert exc.code == 502
                break
            except OSError:  # not listening yet
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-800:]
    assert "1 requests" in err and "every source failed" not in err


def test_a_run_where_one_source_succeeded_exits_zero(free_port, tmp_path):
    session = tmp_path / "ok.jsonl"
    session.write_text('{"t": 0.0, "stream": "ok", "text": "hello"}\n{"t": 0.1, "stream": "ok", "type": "close"}\n')
    uri = f"http://127.0.0.1:{free_port}/live.m3u8?reconnect=0"
    proc = midstream("run", uri, session, "--headless", "--duration", "60", "--no-record", "--no-learn",
                     "--transcribe", "off", "--detect", "off", timeout=180)
    assert proc.returncode == 0, proc.stderr[-800:]
    assert "midstream: error:" not in proc.stderr


def test_the_dashboard_too_exits_non_zero_when_every_source_failed(free_port):
    import os
    import pty
    import select
    import time

    uri = f"http://127.0.0.1:{free_port}/live.m3u8?reconnect=0"
    pid, fd = pty.fork()
    if pid == 0:  # the dashboard in a terminal, as a user runs it; it quits by itself after --duration
        os.execvp(sys.executable, [*CMD, "run", uri, "--duration", "4", "--no-record", "--no-learn",
                                   "--transcribe", "off", "--detect", "off"])
    seen, deadline, done, status = b"", time.monotonic() + 180, 0, 0
    while not done and time.monotonic() < deadline:  # drain the terminal as a terminal would
        if select.select([fd], [], [], 0.2)[0]:
            try:
                seen = (seen + os.read(fd, 65536))[-20000:]
            except OSError:  # the terminal closed: the dashboard is leaving
                done, status = os.waitpid(pid, 0)
                break
        done, status = os.waitpid(pid, os.WNOHANG)
    if not done:
        os.kill(pid, 9)
        raise AssertionError("the dashboard did not quit")
    assert os.waitstatus_to_exitcode(status) == 1
    assert b"every source failed" in seen


def test_a_dashboard_whose_terminal_went_away_saves_its_recording_and_exits(tmp_path):
    """An SSH connection dropped: the terminal closes under the dashboard (SIGHUP). Textual's own shutdown
    writes to that terminal and could block for ever; the recording must be complete and the process gone."""
    import os
    import pty
    import select
    import time

    from midstream_tui.sessions import Session, session_files

    env = dict(os.environ, MIDSTREAM_DATA_DIR=str(tmp_path))
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe(sys.executable, [*CMD, "run", "sim:text?name=a", "sim:audio?name=b", "--no-learn"], env)
    seen, deadline = b"", time.monotonic() + 120  # liveness only
    while b"Patterns" not in seen and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            seen = (seen + os.read(fd, 65536))[-20000:]
    assert b"Patterns" in seen, "the dashboard never drew"
    os.close(fd)  # the terminal goes away
    deadline, done, status = time.monotonic() + 60, 0, 0
    while not done and time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    if not done:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    files = session_files(tmp_path)
    with Session(files[-1]) as s:
        status_recorded = dict(s.conn.execute("SELECT key, value FROM meta"))["status"]
    assert done, "the dashboard was still running a minute after its terminal went away"
    assert status_recorded == "complete"


# -- found by a fresh-eyes review (issue 11: bad input gets one line, never a traceback or a hang) ----------


def test_a_rules_file_that_is_not_utf8_is_one_line(tmp_path):
    bad = tmp_path / "rules.toml"
    bad.write_bytes(bytes(range(128, 256)) * 20)
    one_line_error(midstream("run", "--headless", "--no-record", "--duration", "1", "--rules", bad, "sim:text"),
                   "not valid TOML", "UTF-8")


@pytest.mark.parametrize("state", ['[]', 'null', '{"version": 1, "runs": "x"}', '{"version": 1, "baselines": {"a": 5}}',
                                   '{"version": 1, "level1": [1]}', '{"version": 1, "runs": 1e400}',
                                   '{"version": 1, "loop_episodes": [[1]]}'])
def test_learned_state_of_the_wrong_shape_is_started_over(state, tmp_path):
    # valid JSON that is not what MidStream saves: a damaged file, said, kept aside, and started over from
    # (it had been shown as nothing learned and replaced unseen by the next save)
    env = {**os.environ, "MIDSTREAM_DATA_DIR": str(tmp_path / "data")}
    meta = tmp_path / "data" / "meta.json"
    meta.parent.mkdir(parents=True)
    meta.write_text(state)
    show = subprocess.run([*CMD, "meta", "show"], capture_output=True, text=True, timeout=120, env=env)
    if state == "null":  # (nothing in it: as no file)
        assert show.returncode == 0 and "nothing learned yet" in show.stdout and not show.stderr
    else:
        one_line_error(show, "the learned state is damaged")
    run = subprocess.run([*CMD, "run", "--headless", "--no-record", "--duration", "1", "sim:text"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0 and "Traceback" not in run.stderr
    assert json.loads(meta.read_text())["runs"] == 1  # saved anew
    if state != "null":
        assert (tmp_path / "data" / "meta.json.bad").read_text() == state and "kept as meta.json.bad" in run.stderr


def test_a_distance_beyond_the_float_range_is_one_line_not_infinity(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("1.7e308\n" * 50)
    b.write_text("-1.7e308\n" * 50)
    for algorithm in ("euclidean", "dtw"):
        one_line_error(midstream("compare", a, b, "--algorithm", algorithm, "--json"), "beyond the range of a float")


def test_analyze_says_nothing_of_numpy_on_huge_values(tmp_path):
    x = [0.3]
    for _ in range(2999):
        x.append(4 * x[-1] * (1 - x[-1]))
    series = tmp_path / "big.txt"
    series.write_text("\n".join(repr(v * 1.7e308) for v in x))
    proc = midstream("analyze", series)
    assert proc.returncode == 0 and proc.stderr == "" and "strange" in proc.stdout


def test_a_session_time_from_1970_is_a_recorded_error_not_a_wait(tmp_path):
    session = tmp_path / "far.jsonl"
    session.write_text('{"t": 0, "stream": "llm", "type": "open"}\n{"t": 0.4, "stream": "llm", "text": "Hello"}\n'
                       '{"t": 1.7e9, "stream": "llm", "text": "far"}\n{"t": 1.0, "stream": "llm", "type": "close"}\n')
    proc = midstream("run", "--headless", "--no-record", session, timeout=60)
    assert proc.returncode == 0 and "line 3: time 1.7e9" in proc.stdout.replace("1700000000.0", "1.7e9")


def test_audit_does_not_call_checks_it_did_not_run_passed(tmp_path):
    (tmp_path / "app.py").write_text("def f(x):\n    eval(x)\n")
    text = midstream("audit", tmp_path, "--check", "secrets")
    assert "pass  secrets" in text.stdout and "risky-code      not run" in text.stdout
    assert "pass  risky-code" not in text.stdout
    assert json.loads(midstream("audit", tmp_path, "--check", "secrets", "--json").stdout)["checks"] == ["secrets"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_virtual_run_ends_cleanly_on_a_signal(sig):
    proc = subprocess.Popen([*CMD, "run", "--headless", "--json", "--no-record", "--virtual", "--duration", "1e6",
                             "sim:text"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()  # running (past the warm-up) once a line is out
        assert json.loads(first)["stream"] == "text"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-500:]
    summary = json.loads(out.strip().splitlines()[-1])["summary"]
    assert 0 < summary["duration_s"] < 1e6 and summary["streams"]["text"]["kind"] == "text"
    assert summary["streams"]["text"]["status"] == "closed"  # stopped, as a live run's streams are


def test_compare_and_record_errors_name_what_the_user_named(tmp_path):
    good, bad = tmp_path / "good.txt", tmp_path / "bad.txt"
    good.write_text("1\n2\n3\n4\n")
    bad.write_text("1\n2\nnan\n4\n")
    one_line_error(midstream("compare", good, bad), f"{bad}: 1 NaN/inf value(s)")
    one_line_error(midstream("run", "--headless", "--duration", "1", "--record", good / "x.sqlite", "sim:text"),
                   f"--record {good / 'x.sqlite'}: cannot write there")


def test_escape_codes_in_names_never_reach_the_terminal_and_export_typos_leave_no_session(tmp_path, session_folder):
    lines = tmp_path / "names.jsonl"
    lines.write_text('{"t": 0, "stream": "\\u001b[2Jclear", "text": "hello"}\n')
    text = midstream("run", lines, "--headless", "--no-record").stdout
    assert "\x1b" not in text and "\\x1b[2Jclear" in text
    one_line_error(midstream("demo", "--headless", "--duration", "2", "--metrics-port", "0"), "--metrics-port 0")
    one_line_error(midstream("demo", "--headless", "--duration", "2", "--otlp", "ftp://x:1"), "--otlp")
    assert list(session_folder.glob("*.midstream.sqlite")) == []  # checked before a session file was made


def test_a_login_in_any_url_is_kept_out_of_the_recorded_command(tmp_path):
    rec = tmp_path / "s.midstream.sqlite"
    proc = midstream("run", "--headless", "--duration", "1", "--record", rec, "sim:text",
                     "--otlp", "http://alice:my secret'pw@127.0.0.1:1/v1/metrics")
    assert proc.returncode == 0, proc.stderr
    from midstream_tui.sessions import info
    command = info(rec).command
    assert "secret" not in command and "[REDACTED]@127.0.0.1:1" in command and "secret" not in proc.stderr


@pytest.mark.parametrize("uri", ["udp://bob:hunter2@127.0.0.1:9", "srt://bob:hunter2@127.0.0.1:9",
                                 "http://bob:hunt@er2@127.0.0.1:9/x.m3u8", "ftp://bob:hunter2@127.0.0.1:9/x.mp4"])
def test_a_password_in_any_source_url_is_never_shown(uri):
    proc = midstream("run", "--headless", "--json", "--no-record", "--duration", "2", uri)
    assert "hunter2" not in proc.stdout + proc.stderr and "er2@" not in proc.stdout + proc.stderr
    assert "[REDACTED]@127.0.0.1:9" in proc.stdout + proc.stderr  # (said, with the login taken out)


@pytest.mark.parametrize("name", ["junk.sse", "junk.jsonl"])
def test_a_file_with_nothing_to_replay_is_a_failed_source_not_an_empty_stream(tmp_path, name):
    # (random bytes as .sse read as a stream that ended normally with nothing in it; as .jsonl, every line an
    # error and still "closed", exit 0)
    junk = tmp_path / name
    junk.write_bytes(bytes(range(256)) * 40 + os.urandom(4000))
    proc = midstream("run", str(junk), "--headless", "--json", "--no-record", "--virtual", "--duration", "3")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "every source failed" in proc.stderr and ("no SSE event" in proc.stderr or "no line of" in proc.stderr)
    summary = json.loads(proc.stdout.splitlines()[-1])["summary"]
    assert summary["streams"]["junk"]["status"] == "error" and summary["errors"] == 1
    good = tmp_path / "mixed.jsonl"  # a session with a bad line among good ones replays, the bad line recorded
    good.write_text('{"t": 0, "type": "text", "text": "hello"}\n{not json\n{"t": 0.5, "type": "text", "text": "x"}\n')
    proc = midstream("run", str(good), "--headless", "--json", "--no-record", "--virtual", "--duration", "3")
    assert proc.returncode == 0 and json.loads(proc.stdout.splitlines()[-1])["summary"]["errors"] == 0


def test_a_name_cannot_forge_lines_of_the_text_summary(tmp_path):
    # a stream named with a newline printed a second, made-up summary line; a right-to-left override reordered one
    session = tmp_path / "s.jsonl"
    name = "a\nFAKE (text, closed) sim:text\u202eevil"
    session.write_text(json.dumps({"t": 0, "stream": name, "type": "text", "text": "hi"}) + "\n")
    proc = midstream("run", str(session), "--headless", "--no-record", "--virtual", "--duration", "2")
    assert proc.returncode == 0, proc.stderr
    assert "\nFAKE" not in proc.stdout and "\u202e" not in proc.stdout
    assert "a\\x0aFAKE (text, closed) sim:text\\u202eevil (text, closed)" in proc.stdout


def test_a_replayed_stream_that_ended_in_a_recorded_error_is_shown_so_and_is_no_failed_run(tmp_path):
    # A review of a fix: read as fatal (as recorded, so that it ends "error" again), the replayed error made the run
    # "every source failed" (exit 1); only a file in which nothing could be read is a failed source
    session = tmp_path / "f.jsonl"
    session.write_text('{"t": 0.0, "stream": "llm", "type": "open"}\n{"t": 0.1, "stream": "llm", "text": "hi"}\n'
                       '{"t": 0.2, "stream": "llm", "type": "error", "message": "boom", "fatal": true}\n'
                       '{"t": 0.3, "stream": "llm", "type": "close", "reason": "error"}\n')
    proc = midstream("run", session, "--headless", "--json", "--no-record", "--no-learn", "--virtual", "--duration",
                     "3")
    assert proc.returncode == 0 and "every source failed" not in proc.stderr, proc.stderr[-800:]
    assert json.loads(proc.stdout.splitlines()[-1])["summary"]["streams"]["llm"]["status"] == "error"
