"""Sessions: recorded to SQLite, surviving kill -9, listed, replayed, exported, with no secret written."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from conftest import committed_t, until

from midstream_tui import Hub, VirtualClock, open_sources, run_virtual
from midstream_tui.cli import DEMOS
from midstream_tui.sessions import RecordedHub
from midstream_tui.sessions import Recorder, Session, StoreError, info, prune, resolve, session_files


def midstream(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "midstream_tui", *args], capture_output=True, text=True,
                          timeout=kwargs.pop("timeout", 600), **kwargs)  # liveness only: a busy machine is slow


def record_demo(path, seconds=10.0, uris=None):
    clock = VirtualClock()
    hub = Hub(clock, analysis_interval=0.1)
    recorder = Recorder(path, command="test").attach(hub)
    run_virtual(hub, open_sources(uris or DEMOS["all"], clock), seconds)
    recorder.close()
    return hub, recorder


def test_a_recorded_demo_holds_every_table(tmp_path):
    path = tmp_path / "demo.midstream.sqlite"
    hub, recorder = record_demo(path)
    assert recorder.error is None
    with Session(path) as s:
        streams = {r["name"]: r for r in s.streams()}
        assert set(streams) == set(hub.streams) and streams["video"]["kind"] == "video"
        snaps = list(s.rows("snapshot"))
        per_stream = {name: sum(r["stream"] == name for r in snaps) for name in streams}
        assert all(9 <= n <= 12 for n in per_stream.values()), per_stream  # one a second for 10 s
        last = {r["stream"]: json.loads(r["metrics"]) for r in snaps}
        assert last["llm"]["tokens"] == hub.snapshot("llm").metrics["tokens"]  # the final state is kept
        text = "".join(json.loads(r["data"])["text"] for r in s.conn.execute(
            "SELECT data FROM event WHERE stream = 'llm' AND type = 'text' ORDER BY t, id"))
        assert text.endswith(hub.snapshot("llm").text_tail[-200:])  # every delta, in order
        t, level = s.series("audio", "level_dbfs")
        assert 495 <= len(t) <= 500 and (t[1:] >= t[:-1]).all()  # 50 chunks a second, in order
        assert 295 <= len(s.series("video", "motion")[0]) <= 300
        patterns = [r["kind"] for r in s.rows("pattern")]
        assert "loop" in patterns and "silence" in patterns
        assert list(s.rows("preview"))  # the video's frame every 5 s
    meta = info(path)
    assert meta.status == "complete" and meta.streams == 4 and 9.5 < meta.duration <= 10.0


def test_kill_9_mid_run_loses_only_the_last_commit_and_the_file_stays_whole(tmp_path):
    path = tmp_path / "killed.midstream.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "midstream_tui", "run", "sim:text?rate=50", "sim:audio",
                             "--headless", "--record", str(path), "--no-rules"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Watch the commits as a reader would: the writer commits every half second while the run goes
    # on, not only at the end. Speed-independent: the steps are in the stream's own time.
    seen: list[float] = []
    deadline = time.monotonic() + 120
    while (len(seen) < 4 or seen[-1] < 4.0) and time.monotonic() < deadline and proc.poll() is None:
        t = committed_t(path)
        if t is not None and (not seen or t > seen[-1]):
            seen.append(t)
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(60)
    assert len(seen) >= 4 and seen[-1] >= 4.0, f"the recording never reached 4 s: {seen}"
    assert min(b - a for a, b in zip(seen, seen[1:])) < 1.0, seen  # commits a fraction of a second apart
    conn = sqlite3.connect(str(path))
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    last_t = conn.execute("SELECT max(t) FROM event").fetchone()[0]
    conn.close()
    assert last_t >= seen[-1]  # nothing committed is lost to kill -9
    meta = info(path)
    assert meta.status == "interrupted" and meta.streams == 2
    out = midstream("replay", str(path), "--headless", "--json", "--speed", "20")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert {line["stream"] for line in lines[:-1]} == {"text", "audio"}
    assert lines[-1]["summary"]["streams"]["text"]["metrics"]["tokens"] > 100


def test_a_killed_recording_copied_to_read_only_media_reads_whole(tmp_path):
    """A session whose rows are still in its journal (its run was killed: the -wal holds them) copied without its
    -shm to read-only media (a mounted card, a read-only share). SQLite reads a journal only where it can make a
    -shm beside it, and opened as immutable it read as "not a MidStream session" (everything was in the journal):
    it is now read from a private copy, which goes when it is closed."""
    import shutil

    path = tmp_path / "killed.midstream.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "midstream_tui", "run", "sim:text?rate=50&name=text",
                             "--headless", "--record", str(path), "--no-rules", "--no-learn"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120  # liveness only
    while ((committed_t(path) or 0.0) < 3.0 and time.monotonic() < deadline and proc.poll() is None):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(60)
    shelf, media, scratch = tmp_path / "shelf", tmp_path / "media", tmp_path / "tmp"
    for folder in (shelf, media, scratch):
        folder.mkdir()
    for suffix in ("", "-wal"):  # (not the -shm)
        shutil.copyfile(f"{path}{suffix}", f"{shelf / path.name}{suffix}")
    assert (shelf / f"{path.name}-wal").stat().st_size > 4096  # the rows are in the journal
    mounted = subprocess.run(["mount", "--bind", str(shelf), str(media)], capture_output=True).returncode == 0
    try:
        if mounted:
            mounted = subprocess.run(["mount", "-o", "remount,bind,ro", str(media)], capture_output=True)
        if not mounted or mounted.returncode != 0:
            pytest.skip("needs a read-only bind mount (root with CAP_SYS_ADMIN)")
        env = dict(os.environ, TMPDIR=str(scratch))
        out = midstream("replay", str(media / path.name), "--headless", "--json", "--speed", "20", env=env)
        assert out.returncode == 0, out.stderr
        summary = json.loads(out.stdout.splitlines()[-1])["summary"]["streams"]
        assert summary["text"]["metrics"]["tokens"] > 50, summary
        out = midstream("analyze", str(media / path.name), env=env)
        assert out.returncode == 0 and "text" in out.stdout, out.stderr
        assert list(scratch.iterdir()) == []  # the private copies are gone
        assert sorted(p.name for p in media.iterdir()) == [path.name, f"{path.name}-wal"]  # nothing written there
    finally:
        if mounted:
            subprocess.run(["umount", str(media)], capture_output=True)

def test_sessions_lists_and_resolves_and_replay_shows_what_was_seen(tmp_path, session_folder):
    out = midstream("run", "sim:text?seed=3", "--headless", "--virtual", "--duration", "6")
    assert out.returncode == 0 and "session recorded in" in out.stderr
    out = midstream("run", "sim:text?seed=4&behavior=loop", "--headless", "--virtual", "--duration", "8")
    listing = midstream("sessions")
    assert listing.returncode == 0 and len(listing.stdout.splitlines()) == 2 and "complete" in listing.stdout
    rows = [json.loads(line) for line in midstream("sessions", "--json").stdout.splitlines()]
    assert [r["n"] for r in rows] == [1, 2] and rows[1]["streams"] == 1
    assert resolve("last") == session_files()[-1] == resolve("2")
    with pytest.raises(StoreError, match="no session"):
        resolve("99")
    replay = midstream("replay", "last", "--headless", "--json", "--speed", "8")
    lines = [json.loads(line) for line in replay.stdout.splitlines()]
    recorded = Session(resolve("last"))
    final = json.loads(list(recorded.rows("snapshot"))[-1]["metrics"])
    recorded.close()
    assert lines[-1]["summary"]["streams"]["text"]["metrics"]["tokens"] == final["tokens"]
    assert any(p["kind"] == "loop" for line in lines[:-1] for p in line.get("patterns", []))
    assert midstream("replay", "nope").returncode == 2
    assert midstream("run", "sim:text", "--headless", "--duration", "1", "--record", str(session_files()[0])
                     ).returncode == 2  # never overwrites a session


async def test_the_dashboard_replays_a_session(tmp_path):
    from midstream_tui.tui.app import MidStreamApp
    from midstream_tui.tui.widgets.metrics import MetricsPanel
    from midstream_tui.tui.widgets.pattern_log import PatternLog

    path = tmp_path / "r.midstream.sqlite"
    record_demo(path, seconds=6.0)
    session = Session(path)
    hub = RecordedHub(session, speed=20.0)
    app = MidStreamApp(hub, [], refresh_ms=100)
    async with app.run_test(size=(120, 40)) as pilot:
        assert await until(pilot, hub.sources_done)  # the 6 s session at 20x: all of it
        assert set(hub.streams) == {"llm", "llm-loop", "audio", "video"}
        assert await until(pilot, lambda: "tok/s" in str(app.query_one(MetricsPanel).render()))
        assert await until(pilot, lambda: len(app.query_one(PatternLog).feed.entries) > 0)
        await pilot.press("c", "j", "j", "j")  # cancel does nothing to a record; selection moves
        assert await until(pilot, lambda: app.selected == "video" and app.frame_preview.display)
    session.close()


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_export_round_trips(tmp_path, fmt):
    path = tmp_path / "e.midstream.sqlite"
    hub, _ = record_demo(path, seconds=6.0)
    out = midstream("export", str(path), "--format", fmt, "--out", str(tmp_path / "out"))
    assert out.returncode == 0, out.stderr
    files = {p.name: p for p in (tmp_path / "out").iterdir()}
    with Session(path) as s:
        counts = {t: s.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608
                  for t in ("snapshot", "pattern", "transcript", "detection", "stream")}
        samples = sum(len(s.series(st, name)[0]) for st, name in s.series_names())
    if fmt == "parquet":
        import pyarrow.parquet as pq

        read = {name: pq.read_table(p).to_pylist() for name, p in files.items()}
    elif fmt == "csv":
        import csv

        read = {name: list(csv.DictReader(open(p, encoding="utf-8"))) for name, p in files.items()}
    else:
        read = {name: [json.loads(line) for line in open(p, encoding="utf-8")] for name, p in files.items()}
    assert len(read[f"snapshots.{fmt}"]) == counts["snapshot"]
    assert len(read[f"patterns.{fmt}"]) == counts["pattern"] and len(read[f"streams.{fmt}"]) == 4
    assert len(read[f"series.{fmt}"]) == samples
    if fmt == "jsonl":  # the text events are a session `midstream run` replays, to the same text
        replay = midstream("run", str(files["events.jsonl"]), "--headless", "--json", "--virtual",
                           "--duration", "10", "--no-rules")
        summary = json.loads(replay.stdout.splitlines()[-1])["summary"]["streams"]
        assert summary["llm"]["metrics"]["tokens"] == hub.snapshot("llm").metrics["tokens"]


def test_an_exported_session_run_again_keeps_its_errors_and_its_identity(tmp_path):
    # An independent review: an exported stream run again learned as "replay:text" (the open event kept no
    # identity). Its error is said, and (a second review) the replay is no failed run for it
    session = tmp_path / "s.jsonl"
    session.write_text("\n".join(json.dumps(e) for e in [
        {"t": 0.0, "stream": "svc", "type": "open", "source": "openai:chat?model=gpt-x"},
        *({"t": 0.1 + i / 20, "stream": "svc", "type": "text", "text": f" w{i}"} for i in range(20)),
        {"t": 1.5, "stream": "svc", "type": "error", "message": "upstream dropped the stream", "fatal": True},
        {"t": 1.6, "stream": "svc", "type": "close", "reason": "error"}]) + "\n")
    rec = tmp_path / "s.midstream.sqlite"
    first = midstream("run", str(session), "--headless", "--json", "--virtual", "--duration", "5", "--no-rules",
                      "--record", str(rec))
    assert json.loads(first.stdout.splitlines()[-1])["summary"]["streams"]["svc"]["status"] == "error"
    assert midstream("export", str(rec), "--format", "jsonl", "--out", str(tmp_path / "x")).returncode == 0
    events = [json.loads(line) for line in (tmp_path / "x" / "events.jsonl").read_text().splitlines()]
    opened, = (e for e in events if e["type"] == "open")
    assert opened["identity"] == "openai:chat/gpt-x@api.openai.com" and "source" not in opened
    data = tmp_path / "data"
    again = midstream("run", str(tmp_path / "x" / "events.jsonl"), "--headless", "--json", "--virtual",
                      "--duration", "5", "--no-rules", "--no-record",
                      env=dict(os.environ, MIDSTREAM_DATA_DIR=str(data)))
    assert again.returncode == 0, again.stderr  # (a replayed failure is the recording's, not the run's)
    svc = json.loads(again.stdout.splitlines()[-1])["summary"]["streams"]["svc"]
    assert svc["error"] == "upstream dropped the stream" and svc["status"] == "error"  # (it came back "closed")
    learned = json.loads((data / "meta.json").read_text())
    assert any(key.startswith("openai:chat/gpt-x") for key in learned["baselines"]), learned.get("baselines")
    # a damaged file whose stream row is gone (or of no kind the recorder writes): its events exported all the same
    for damage in ("DELETE FROM stream", "UPDATE stream SET kind = 'x'"):
        with sqlite3.connect(rec) as db:
            db.execute(damage)
        out = tmp_path / damage.split()[0]
        assert midstream("export", str(rec), "--format", "jsonl", "--out", str(out)).returncode == 0
        assert len((out / "events.jsonl").read_text().splitlines()) == len(events), damage


def test_no_secret_reaches_a_recording_an_export_or_the_terminal(tmp_path, monkeypatch):
    key = "sk-test-" + "Zq9" * 12
    token = "signal-" + "Tk7" * 8
    session = tmp_path / "leaky.jsonl"
    session.write_text("\n".join(json.dumps(e) for e in [
        {"t": 0.0, "stream": "llm", "type": "open"},
        {"t": 0.1, "stream": "llm", "type": "text", "text": f"my key is {key} and "},
        {"t": 0.2, "stream": "llm", "type": "text", "text": "Authorization: Bearer abcdefgh12345678 "},
        {"t": 0.3, "stream": "llm", "type": "error", "message": f"upstream said token={token}"},
        {"t": 0.4, "stream": "llm", "type": "close"},
    ]) + "\n")
    env = dict(os.environ, OPENAI_API_KEY=key, MIDSTREAM_SIGNALING_TOKEN=token)
    rec = tmp_path / "s.midstream.sqlite"
    run = midstream("run", str(session), "--headless", "--json", "--record", str(rec), env=env)
    export = midstream("export", str(rec), "--format", "csv", "--out", str(tmp_path / "x"), env=env)
    assert run.returncode == 0 and export.returncode == 0
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p != session)
    everything = written + (run.stdout + run.stderr + export.stdout + export.stderr).encode()
    assert key.encode() not in everything and token.encode() not in everything
    assert b"abcdefgh12345678" not in written
    assert b"[REDACTED]" in written  # replaced, not dropped: the rest of the text is kept


def test_streams_whose_names_differ_only_in_a_secret_or_a_lone_surrogate_stay_apart(tmp_path):
    # An independent review: both names were cleaned to one ("a\ufffd", "...token=[REDACTED]"), and the two
    # streams' events and snapshots interleaved in one row of the file; replay showed one stream of two
    names = ["a\ud800", "a\ud801", "https://a.example/x?token=one1one1one1", "https://a.example/x?token=two2two2two2",
             "plain"]
    events = [{"t": 0.0, "stream": n, "type": "open"} for n in names]
    events += [{"t": 0.1 * (i + 1), "stream": n, "type": "text", "text": f" w{j}x{i}"}
               for i in range(10) for j, n in enumerate(names)]
    events += [{"t": 2.0, "stream": n, "type": "close"} for n in names]
    lines = tmp_path / "names.jsonl"
    lines.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    rec = tmp_path / "names.midstream.sqlite"
    run = midstream("run", str(lines), "--headless", "--virtual", "--no-rules", "--duration", "5", "--record", str(rec))
    assert run.returncode == 0, run.stderr
    with Session(rec) as s:
        stored = [r["name"] for r in s.streams()]
        assert len(stored) == 5 and len(set(stored)) == 5, stored
        assert not any("one1" in n or "two2" in n for n in stored)
        texts: dict[str, str] = {}
        for stream, data in s.conn.execute("SELECT stream, data FROM event WHERE type = 'text' ORDER BY rowid"):
            texts[stream] = texts.get(stream, "") + json.loads(data)["text"]
    # each stored stream holds one live stream's words, all ten
    assert sorted(texts.values()) == sorted("".join(f" w{j}x{i}" for i in range(10)) for j in range(5)), texts


def test_a_recording_keeps_the_times_the_run_showed(tmp_path):
    # An independent review: the recorder took the hub's t0 when attached, and the hub's start set it again: every
    # recorded time ran late by the hub's start-up (30 ms headless, 60 under the dashboard), replay's patterns too
    rec = tmp_path / "t.midstream.sqlite"
    run = midstream("run", "sim:text?seed=3&rate=100", "--headless", "--json", "--duration", "3", "--record", str(rec))
    assert run.returncode == 0, run.stderr
    shown = {(line["stream"], line["seq"]): line["t"] for line in map(json.loads, run.stdout.splitlines())
             if "seq" in line}
    with Session(rec) as s:
        recorded = {(stream, seq): t for stream, seq, t in s.conn.execute("SELECT stream, seq, t FROM snapshot")}
    common = shown.keys() & recorded.keys()
    assert len(common) >= 3  # (the recorder keeps one a second)
    assert all(abs(shown[k] - recorded[k]) <= 0.0006 for k in common), [(shown[k], recorded[k]) for k in common]


def test_names_from_streams_and_files_never_act_on_the_terminal(tmp_path):
    # An independent review: a proxy client's model name (a stream's name, a learned source's key) or a session
    # file's name with ESC ] 0 ; ... BEL (retitles the window), ESC ] 52 (writes the clipboard) or a newline
    # (forges a line) was printed raw by `analyze`, `meta show` and `sessions`.
    hostile = "\x1b]0;PWNED\x07evil\nforged\u202e"
    session = tmp_path / "hostile.jsonl"
    session.write_text("\n".join(json.dumps(e) for e in [
        {"t": 0.0, "stream": hostile, "type": "open"},
        *({"t": 0.1 + i / 10, "stream": hostile, "type": "text", "text": f"word{i % 7} "} for i in range(150)),
        {"t": 20.0, "stream": hostile, "type": "close"}]) + "\n")
    data = tmp_path / "data"
    env = dict(os.environ, MIDSTREAM_DATA_DIR=str(data))
    assert midstream("run", str(session), "--headless", "--virtual", "--duration", "30", env=env).returncode == 0
    recorded, = data.glob("*.midstream.sqlite")
    renamed = recorded.with_name("a\x1b]0;T\x07\n" + recorded.name)
    recorded.rename(renamed)
    state = json.loads((data / "meta.json").read_text())
    state["baselines"] = {f"proxy:openai/{hostile}@127.0.0.1": next(iter(state["baselines"].values()))}
    (data / "meta.json").write_text(json.dumps(state))
    shown = [midstream(*args, env=env) for args in (("analyze", "last"), ("meta", "show"), ("sessions",))]
    for proc in shown:
        assert proc.returncode == 0, proc.stderr
        assert "\x1b" not in proc.stdout + proc.stderr and "\x07" not in proc.stdout and "\u202e" not in proc.stdout
        assert not any(line.startswith("forged") for line in proc.stdout.splitlines())
    assert "\\x1b]0;PWNED\\x07evil\\x0aforged\\u202e" in shown[0].stdout + shown[1].stdout
    with sqlite3.connect(renamed) as db:  # (a damaged end time: `sessions --json` wrote Infinity, not JSON)
        db.execute("UPDATE meta SET value = '1e999' WHERE key = 'ended'")
    listed = midstream("sessions", "--json", env=env)
    assert json.loads(listed.stdout.splitlines()[0])["ended"] is None, listed.stdout
    for started in ("nan", "1e300", "-1e300"):  # (a damaged start: `sessions` ended in a traceback)
        with sqlite3.connect(renamed) as db:
            db.execute("UPDATE meta SET value = ? WHERE key = 'started'", (started,))
        listed = midstream("sessions", env=env)
        assert listed.returncode == 0 and "start unknown" in listed.stdout and listed.stderr == "", listed.stderr


def test_a_stream_that_ends_before_the_run_is_recorded_as_the_run_last_showed_it(tmp_path):
    # An independent review: only the first snapshot after a stream's end was recorded; what the analysis said of
    # it afterwards ("settled into a cycle", its last figures, a late note) was not, and replay, export and the
    # summary showed less than the run had.
    from midstream_tui.events import Flag, StreamClosed

    hub = Hub(VirtualClock(), analysis_interval=0.1)
    recorder = Recorder(tmp_path / "s.midstream.sqlite", command="test").attach(hub)
    for i in range(100):
        hub.push_text("one", f"w{i % 5} ", tokens=1, t=i / 50)
    hub.push(StreamClosed("one", 2.1, reason="finished"))
    hub.analyze(now=2.2)
    recorder.tick(2.2)
    hub.push(Flag("one", 2.3, "a note after its end", kind="rule"))
    hub.analyze(now=2.4)
    recorder.tick(2.4)
    last = hub.snapshot("one")
    recorder.close()
    with sqlite3.connect(tmp_path / "s.midstream.sqlite") as db:
        seqs = [row[0] for row in db.execute("SELECT seq FROM snapshot WHERE stream = 'one' ORDER BY seq")]
    assert seqs[-1] == last.seq and len(seqs) == 2, seqs


def test_prune_keeps_the_newest_within_size_and_age(tmp_path):
    for k in range(4):
        record_demo(tmp_path / f"2026010{k}-000000.midstream.sqlite", seconds=2.0, uris=["sim:text"])
    files = session_files(tmp_path)
    old = files[0]
    os.utime(old, (time.time() - 40 * 86400, time.time() - 40 * 86400))
    assert prune(tmp_path, keep_mb=1000, keep_days=30) == [old]
    size = sum(p.stat().st_size for p in session_files(tmp_path))
    removed = prune(tmp_path, keep_mb=size / 1e6 * 0.5, keep_days=30, protect=session_files(tmp_path)[0])
    assert session_files(tmp_path)[0] not in removed and len(session_files(tmp_path)) < 3


def test_analyze_a_session_with_the_analysis_core(tmp_path):
    path = tmp_path / "a.midstream.sqlite"
    record_demo(path, seconds=20.0)
    out = midstream("analyze", str(path), "--json")
    assert out.returncode == 0, out.stderr
    report = {s["stream"]: s for s in json.loads(out.stdout)["streams"]}
    assert set(report) == {"llm", "llm-loop", "audio", "video"}
    llm = report["llm"]["signals"]["word length (chars)"]
    assert llm["points"] > 500 and llm["attractor"]["type"] == "noise"  # prose
    assert report["audio"]["signals"]["level_dbfs"]["points"] >= 995
    assert report["llm-loop"]["patterns"].get("loop", 0) >= 1
    text = midstream("analyze", str(path))
    assert text.returncode == 0 and "llm-loop (text" in text.stdout and "attractor" in text.stdout


@pytest.mark.parametrize("how", ["headless", "dashboard"])
def test_sigterm_flushes_and_completes_the_session(tmp_path, how):
    import pty

    path = tmp_path / f"{how}.midstream.sqlite"
    args = [sys.executable, "-m", "midstream_tui", "run", "sim:text", "--record", str(path), "--no-rules"]
    if how == "headless":
        proc = subprocess.Popen([*args, "--headless"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    else:  # the dashboard needs a terminal: give it a pseudo-terminal, as SSH would
        leader, follower = pty.openpty()
        proc = subprocess.Popen(args, stdin=follower, stdout=follower, stderr=follower,
                                env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"})
        os.close(follower)

        def drain():  # a terminal reads what the app draws; an unread pty would block it
            try:
                while os.read(leader, 65536):
                    pass
            except OSError:
                pass

        import threading

        threading.Thread(target=drain, daemon=True).start()
    # until more than 2 s of the stream are recorded (however long starting takes), then SIGTERM
    deadline = time.monotonic() + 120
    while (committed_t(path) or 0.0) < 3.0 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(120) == 0
    meta = info(path)
    assert meta.status == "complete" and meta.duration > 2.0
    with Session(path) as s:
        assert [r["status"] for r in s.streams()] in (["closed"], ["cancelled"])  # its end is recorded


def test_sessions_begun_in_the_same_second_are_listed_in_the_order_they_began(tmp_path):
    # new_session_path names a second session of the same second "<stamp>-2": by name it sorted first
    names = ["20261202-115959", "20261202-120000", "20261202-120000-2", "20261202-120000-10"]
    for name in reversed(names):
        (tmp_path / f"{name}.midstream.sqlite").write_bytes(b"")
    assert [p.name.split(".")[0] for p in session_files(tmp_path)] == names
    assert resolve("last", tmp_path).name.startswith("20261202-120000-10.")
    assert resolve("3", tmp_path).name.startswith("20261202-120000-2.")


def test_runs_started_at_once_each_get_their_own_session_file(tmp_path):
    # a fleet's agents started together: each claims its file (they once shared one: "database is locked")
    import threading

    from midstream_tui.sessions import Recorder, new_session_path

    paths, barrier = [], threading.Barrier(8)

    def claim() -> None:
        barrier.wait()
        paths.append(new_session_path(tmp_path))
    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(paths)) == 8 and all(p.is_file() for p in paths)
    Recorder(paths[0]).close()  # a claimed (empty) file is recorded into
    with pytest.raises(StoreError, match="never overwritten"):
        Recorder(paths[0])  # a session that has content is not


def test_a_run_context_attaches_what_a_run_asks_for_and_closes_it_in_order(tmp_path, session_folder):
    from midstream_tui.runtime import RunContext, RunError, RunOptions

    said = []
    path = tmp_path / "r.midstream.sqlite"
    with RunContext(RunOptions(record=str(path)), say=said.append) as run:
        clock = VirtualClock()
        hub = run.attach(Hub(clock, analysis_interval=0.1))
        assert hub.meta is run.learner and run.engine is not None and run.recording == path
        run_virtual(hub, open_sources(["sim:text?requests=1&max_tokens=5"], clock), 3)
    assert said == [f"session recorded in {path}"]  # flushed and said once, on the way out
    assert (session_folder / "meta.json").is_file()  # what was learned is kept for the next run
    with Session(path) as s:
        assert [st["name"] for st in s.streams()] == ["text"]
    (tmp_path / "a-file").write_text("")
    with pytest.raises(RunError):  # a recording asked for and impossible: the run does not start
        RunContext(RunOptions(record=str(tmp_path / "a-file" / "x.midstream.sqlite"), learn=False)).attach(Hub())


def test_a_session_being_recorded_is_never_pruned_nor_shared(tmp_path):
    live = tmp_path / "20260101-000000.midstream.sqlite"  # the oldest by name: the first prune would take
    recorder = Recorder(live)
    try:
        record_demo(tmp_path / "20260102-000000.midstream.sqlite", seconds=2.0, uris=["sim:text"])
        assert info(live).status == "recording"  # (not "interrupted": its run is still at it)
        assert live not in prune(tmp_path, keep_mb=0, keep_days=30) and live.exists()
        with pytest.raises(StoreError, match="another run is recording into it"):
            Recorder(live)  # a second run given the same file is told, not mixed into it
    finally:
        recorder.close()
    assert info(live).status == "complete" and prune(tmp_path, keep_mb=0, keep_days=30) == [live]


def test_what_cannot_be_written_is_cleaned_or_marks_the_session_incomplete(tmp_path):
    import resource

    # half an emoji in a stream's name and in its text: recorded (as U+FFFD in the name), exported, summarised
    lines = tmp_path / "halves.jsonl"
    lines.write_text('{"t":0,"stream":"ok","type":"open"}\n{"t":0.1,"stream":"ok","text":"\\ud83d"}\n'
                     '{"t":0.2,"stream":"ok","text":"\\ude00 done"}\n{"t":0.3,"stream":"bad\\ud800","text":"x"}\n'
                     '{"t":0.4,"stream":"ok","text":"x","tokens":1e300}\n')
    rec = tmp_path / "halves.midstream.sqlite"
    run = midstream("run", str(lines), "--headless", "--record", str(rec))
    assert run.returncode == 0 and "Traceback" not in run.stderr and "recording failed" not in run.stderr
    assert "'tokens' must be a whole number" in run.stdout + run.stderr  # (a 300-digit count, said per line)
    assert info(rec).status == "complete" and info(rec).streams == 2
    for fmt in ("jsonl", "csv"):
        out = midstream("export", str(rec), "--format", fmt, "--out", str(tmp_path / fmt))
        assert out.returncode == 0, out.stderr
        # said where a format cannot hold them (it was silent)
        assert ("U+FFFD in its place" in out.stderr) == (fmt == "csv"), out.stderr
    events = [json.loads(line) for line in (tmp_path / "jsonl" / "events.jsonl").read_text("utf-8").splitlines()]
    assert "".join(e.get("text", "") for e in events).startswith("\ud83d\ude00 done")  # both halves, kept
    assert "\ufffd" in (tmp_path / "csv" / "streams.csv").read_text("utf-8")  # the bad name, as U+FFFD

    def full_disk():  # a file-size limit: writes past it fail as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (250_000, 250_000))
    full = tmp_path / "full.midstream.sqlite"
    proc = subprocess.run([sys.executable, "-m", "midstream_tui", "demo", "--headless", "--virtual", "--duration",
                           "20", "--no-learn", "--record", str(full)], capture_output=True, text=True,
                          preexec_fn=full_disk, timeout=600)
    assert proc.returncode == 0 and "incomplete:" in proc.stderr
    # never "complete" with rows missing ("interrupted" when the disk had no room left for the last word either)
    assert info(full).status in ("incomplete", "interrupted")


def test_a_damaged_session_is_one_line_and_the_others_still_list(tmp_path, session_folder):
    record_demo(session_folder / "20260101-000000.midstream.sqlite", seconds=3.0)
    good = session_folder / "20260101-000000.midstream.sqlite"
    bad = session_folder / "20260102-000000.midstream.sqlite"
    data = bytearray(good.read_bytes())
    data[30000:50000] = os.urandom(20000)
    bad.write_bytes(bytes(data))
    listed = midstream("sessions")
    assert listed.returncode == 0 and "20260101-000000" in listed.stdout and "damaged" in listed.stderr
    for args in (("replay", str(bad), "--headless"), ("export", str(bad), "--out", str(tmp_path / "x")),
                 ("analyze", str(bad))):
        proc = midstream(*args)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, (args, proc.stderr[-300:])
        assert proc.stderr.startswith(f"midstream: error: {bad}: the session file is damaged")
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())  # no half-written export


def test_a_secret_streamed_in_pieces_is_not_recorded(tmp_path):
    key = "sk-test-" + "Pq4" * 12  # audit: ignore (test value)
    # a secret's prefix may end a piece: "Bearer" then the token (the token alone is no secret's shape)
    pieces = ["the key is ", key[:7], key[7:20], key[20:], " and nothing else; curl -H 'Bearer",
              " abcdefghijklmnop1234", "' x"]
    lines = tmp_path / "echo.jsonl"
    lines.write_text("".join(json.dumps({"t": 0.1 * k, "stream": "llm", "text": p}) + "\n"
                             for k, p in enumerate(pieces)))
    rec = tmp_path / "echo.midstream.sqlite"
    run = midstream("run", str(lines), "--headless", "--record", str(rec), env=dict(os.environ, OPENAI_API_KEY=key))
    assert run.returncode == 0, run.stderr
    with Session(rec) as session:
        text = "".join(e.get("text", "") for e in session.text_events())
    assert key not in text and key[7:20] not in text and "abcdefghijklmnop" not in text
    assert text.startswith("the key is [REDACTED] and nothing else") and text.endswith("Bearer [REDACTED]' x")
    # a server that sends its usage with every chunk (vLLM's continuous usage): each usage wrote the text held so far,
    # a key in pieces with it; and a key begun in the reasoning and ended in the text (held apart, each half alone
    # was no secret's shape): both were written (a review)
    lines.write_text("".join(json.dumps(line) + "\n" for k, p in enumerate(pieces[:5]) for line in (
        {"t": 0.1 * k, "stream": "llm", "text": p}, {"t": 0.1 * k, "stream": "llm", "type": "usage",
                                                      "completion_tokens": k + 1})) + "".join(
        json.dumps({"t": 1.0 + 0.1 * k, "stream": "llm", **part}) + "\n" for k, part in enumerate((
            {"type": "reasoning", "text": "my key: " + key[:15]}, {"text": key[15:] + " done."}))))
    rec = tmp_path / "usage.midstream.sqlite"
    run = midstream("run", str(lines), "--headless", "--record", str(rec))
    assert run.returncode == 0, run.stderr
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("usage.midstream.sqlite*"))
    assert key[7:20].encode() not in raw and key[:15].encode() not in raw and key[15:].encode() not in raw
    with Session(rec) as session:
        events = list(session.text_events())
    assert "".join(e.get("text", "") for e in events).startswith("the key is [REDACTED] and nothing else")
    assert [e["completion_tokens"] for e in events if e["type"] == "usage"] == [1, 2, 3, 4, 5]


def test_a_later_choices_content_is_recorded_redacted_and_replays_its_loop(tmp_path):
    """A request for three answers: only the first was recorded, so a session (and its export) lost the others,
    and a loop in one of them was not there to see again. Each later choice's content (and the answer's reasoning)
    is recorded apart from the text, a secret streamed in pieces within it redacted, and the exported session
    replays the loop as the run saw it."""
    key = "sk-test-" + "Pq4" * 12  # audit: ignore (test value)
    pieces = ["the key is ", key[:7], key[7:20], key[20:], " and that is all."]
    chunks = [{"choices": [{"index": 0, "delta": {"reasoning_content": f" Think {k}."}}]} for k in range(3)]
    chunks += [{"choices": [{"index": 0, "delta": {"content": "Fine"}}]}]
    for i in range(30):
        chunks += [{"choices": [{"index": 1, "delta": {"content": pieces[i] if i < len(pieces) else f" step {i}"}}]},
                   {"choices": [{"index": 2, "delta": {"content": " round and"}}]}]
    chunks += [{"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
               {"choices": [{"index": 1, "delta": {}, "finish_reason": "stop"}]}]
    capture = tmp_path / "three.sse"
    capture.write_text("".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n")
    rec = tmp_path / "three.midstream.sqlite"
    run = midstream("run", str(capture), "--headless", "--json", "--no-rules", "--record", str(rec))
    assert run.returncode == 0, run.stderr
    live = json.loads(run.stdout.splitlines()[-1])["summary"]["streams"]["three"]
    with Session(rec) as session:
        choices = [e for e in session.text_events() if e["type"] == "choice"]
        reasoning = "".join(e["text"] for e in session.text_events() if e["type"] == "reasoning")
    assert reasoning == " Think 0. Think 1. Think 2."  # (the answer's thinking, recorded too)
    first = "".join(e["text"] for e in choices if e["choice"] == 1)
    assert first.startswith("the key is [REDACTED] and that is all. step 5 step 6") and first.endswith(" step 29")
    assert "".join(e["text"] for e in choices if e["choice"] == 2) == " round and" * 30
    assert [(e["choice"], e["text"]) for e in choices if e.get("ended")] == [(0, ""), (1, "")]  # (the first's end too:
    # without it, a replay read a loop the first answer ended in as still going on, a review found)
    raw = rec.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("three.midstream.sqlite*"))
    assert key.encode() not in raw and key[7:20].encode() not in raw
    out = midstream("export", str(rec), "--format", "jsonl", "--out", str(tmp_path / "out"))
    assert out.returncode == 0, out.stderr
    again = midstream("run", str(tmp_path / "out" / "events.jsonl"), "--headless", "--json", "--virtual",
                      "--duration", "10", "--no-rules", "--no-record")
    assert again.returncode == 0, again.stderr
    replayed = json.loads(again.stdout.splitlines()[-1])["summary"]["streams"]["three"]
    assert live["metrics"]["loop_choice"] == replayed["metrics"]["loop_choice"] == 2, (live, replayed)
    assert live["metrics"]["loop_words"] == replayed["metrics"]["loop_words"] >= 40
    assert replayed["patterns"] == live["patterns"] >= 1 and replayed["metrics"]["tokens"] == live["metrics"]["tokens"]


def test_export_force_replaces_a_link_and_plain_session_paths_work(tmp_path):
    rec = tmp_path / "plain.sqlite"  # a session renamed: analyze and export take it too
    record_demo(rec, seconds=2.0, uris=["sim:text"])
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    out = tmp_path / "out"
    out.mkdir()
    (out / "streams.jsonl").symlink_to(precious)
    assert midstream("export", str(rec), "--out", str(out), "--force").returncode == 0
    assert precious.read_text() == "keep me" and not (out / "streams.jsonl").is_symlink()
    assert midstream("analyze", str(rec)).returncode == 0
    default = midstream("export", str(rec), cwd=tmp_path)
    assert default.returncode == 0 and (tmp_path / "plain" / "streams.jsonl").is_file()


def test_remembered_credentials_are_redacted_in_any_shape_and_kept_bounded():
    from multidict import CIMultiDict

    from midstream_tui import redact as r
    headers = CIMultiDict([("Authorization", "Bearer gsk_odd-shape-0123456789"), ("x-api-key", "0123abcdef0123abcdef"),
                           ("Sec-WebSocket-Protocol", "realtime, openai-insecure-api-key.rtk_browser_key_42")])
    found = r.credentials(headers)
    assert {"gsk_odd-shape-0123456789", "0123abcdef0123abcdef", "rtk_browser_key_42"} <= set(found)
    for value in found:
        r.remember(value)
    assert r.redact("provided: gsk_odd-shape-0123456789, 0123abcdef0123abcdef") == "provided: [REDACTED], [REDACTED]"
    assert r.redact("proto rtk_browser_key_42") == "proto [REDACTED]"
    assert not r.remember("abc")  # too short to replace wherever it appears
    try:
        for i in range(r.REMEMBERED_MAX + 10):  # a client sending a new key each time: the oldest go
            r.remember(f"flood-key-{i:06d}")
        assert len(r._longest_first) == r.REMEMBERED_MAX
        assert r.redact("flood-key-000000") == "flood-key-000000"
        assert r.redact(f"flood-key-{r.REMEMBERED_MAX + 9:06d}") == "[REDACTED]"
    finally:  # (the rest of the run's tests do not search for these)
        with r._lock:
            r._remembered.clear()
            r._longest_first = ()

