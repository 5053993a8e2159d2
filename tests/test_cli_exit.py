"""Exit codes and one-line errors of `midstream export` and headless runs (issue 11, item 6)."""

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
