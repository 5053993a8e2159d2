"""Shared fixtures: deterministic demo hubs, free ports, SVG snapshots in snapshots/."""

from __future__ import annotations

import socket
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


@pytest.fixture
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TopLevelSVG(SVGImageExtension):
    """Keep dashboard snapshots in the top-level snapshots/ folder (DESIGN.md layout)."""

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
