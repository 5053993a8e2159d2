"""Shared fixtures: deterministic demo hubs, free ports, SVG snapshots in snapshots/."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from pytest_textual_snapshot import SVGImageExtension

from midstream_tui import Hub, VirtualClock, open_sources, run_virtual
from midstream_tui.cli import DEMOS

ROOT = Path(__file__).resolve().parent.parent


def demo_hub(duration: float = 8.0, uris: list[str] | None = None, interval: float = 0.1) -> Hub:
    """A hub fed the demo streams for ``duration`` seconds of virtual time (deterministic)."""
    clock = VirtualClock()
    hub = Hub(clock, analysis_interval=interval)
    run_virtual(hub, open_sources(uris or DEMOS["all"], clock), duration)
    return hub


@pytest.fixture(autouse=True)
def session_folder(tmp_path_factory, monkeypatch):
    """Recorded sessions (on by default) go to a temporary folder, never the user's."""
    folder = tmp_path_factory.mktemp("sessions")
    monkeypatch.setenv("MIDSTREAM_DATA_DIR", str(folder))
    return folder


@pytest.fixture
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_folder(root, port: int) -> subprocess.Popen:
    """``python -m http.server`` over ``root`` on 127.0.0.1:``port``, returned once it answers."""
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                             "--directory", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60  # liveness only: a busy machine starts Python slowly
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).close()
            return proc
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.1)


@pytest.fixture
def http_server(tmp_path, free_port):
    """A folder served by ``python -m http.server`` on 127.0.0.1 (started and stopped here)."""
    root = tmp_path / "www"
    root.mkdir()
    proc = serve_folder(root, free_port)
    yield root, f"http://127.0.0.1:{free_port}"
    proc.terminate()
    proc.wait(10)


class TopLevelSVG(SVGImageExtension):
    """Keep dashboard snapshots in the top-level snapshots/ folder (the layout the README describes)."""

    @classmethod
    def dirname(cls, *, test_location) -> str:  # noqa: ARG003 - one folder for all
        return str(ROOT / "snapshots")


@pytest.fixture
def dashboard_snapshot(snapshot):
    from textual._doc import take_svg_screenshot

    svg_snapshot = snapshot.use_extension(TopLevelSVG)

    def compare(app, terminal_size: tuple[int, int], press=(), run_before=None) -> bool:
        svg = take_svg_screenshot(app=app, press=press, terminal_size=terminal_size, run_before=run_before)
        return svg_snapshot == svg

    return compare


async def until(pilot, condition, timeout: float = 60.0, step: float = 0.1) -> bool:
    """Let the app run until ``condition()`` holds (liveness only: a busy machine just takes longer)."""
    waited = 0.0
    while not condition():
        if waited >= timeout:
            return False
        await pilot.pause(step)
        waited += step
    return True


def committed_t(path):
    """The latest event time committed to a session being recorded (None before there is one)."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute("SELECT max(t) FROM event").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:  # not created yet, or its schema not yet written
        return None
