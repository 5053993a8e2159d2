"""Waiting on a live `midstream` run for a condition instead of for a fixed time.

A busy 2-core machine runs everything slower: a test waits (generously) until what it
asserts has happened, then stops the run, so the assertion never depends on speed.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

LIVENESS_S = 120.0
"""How long a test waits for something that takes a second on an idle machine."""


def wait_until(condition: Callable[[], bool], timeout: float = LIVENESS_S, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


class LiveRun:
    """``python -m midstream_tui ARGS`` (a headless --json run, say) whose stdout lines are read as
    they arrive: ``latest[stream]`` is each stream's newest NDJSON line."""

    def __init__(self, *args: str, env: dict | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "midstream_tui", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[str] = []
        self.latest: dict[str, dict] = {}
        self.err: list[str] = []
        self._readers = [threading.Thread(target=self._read_out, daemon=True),
                         threading.Thread(target=self._read_err, daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read_out(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and "stream" in obj:
                self.latest[obj["stream"]] = obj

    def _read_err(self) -> None:
        for line in self.proc.stderr:
            self.err.append(line)

    def metric(self, stream: str, name: str, default=0):
        return self.latest.get(stream, {}).get("metrics", {}).get(name, default)

    def wait_for(self, condition: Callable[[], bool], timeout: float = LIVENESS_S) -> bool:
        """Until ``condition()`` holds; False if the run ended or the time ran out first."""
        return wait_until(lambda: condition() or self.proc.poll() is not None, timeout) and condition()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = LIVENESS_S) -> int:
        """Send ``sig`` (if still running), wait for the exit and for every line."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
        for reader in self._readers:
            reader.join(30)
        return code

    @property
    def stdout(self) -> str:
        return "".join(self.lines)

    @property
    def stderr(self) -> str:
        return "".join(self.err)

    def summary(self) -> dict:
        return json.loads(self.lines[-1])["summary"]
