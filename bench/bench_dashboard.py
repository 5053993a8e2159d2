"""The real dashboard in a pseudo-terminal: first frame, CPU, redraw bandwidth, memory.

Runs `python -m midstream_tui run ...` exactly as a user would, in a pty of the
given size with TERM=xterm-256color and no COLORTERM (as over SSH), reads and
counts everything it draws, and reads its CPU time and RSS from /proc.

Scenarios:
  first-frame  seconds from spawn to the first frame with every panel drawn
               (warm numba cache: run once before measuring)
  idle         streams finished, dashboard at 10 Hz: CPU % of one core
  demo         the default demo live (`midstream`): CPU % in the camera clip's first pass
               and in the later ones, output bytes/s
  soak         the demo for --soak seconds, RSS sampled every 10 s

  baseline     with --baseline DIR (another checkout, e.g. `git worktree add /tmp/base HEAD~3`): the
               demo's later passes in that checkout and in this one (with the first stream selected, then
               with the camera's frame preview shown), alternating, --rounds times each —
               the machine's speed drifts by several points over minutes, so only a ratio measured in
               one run compares two versions

    python bench/bench_dashboard.py [--seconds 20] [--soak 600] [--size 120x40] [--baseline DIR [--rounds 3]]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import select
import struct
import sys
import termios
import time

from midstream_tui.data.demo_media import SECONDS as CLIP_S  # the demo's camera clip plays in a loop of this length

IDLE = ["sim:text?requests=1&max_tokens=20&ttft=10", "sim:audio?duration=1", "sim:video?duration=1"]
DEMO: list[str] = []  # empty: `midstream run` is replaced by the demo command below

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


class Dashboard:
    def __init__(self, args: list[str], size: tuple[int, int], tree: str | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if k != "COLORTERM"}
        env["TERM"] = "xterm-256color"
        if tree is not None:  # another checkout's package (a baseline), run with this interpreter
            env["PYTHONPATH"] = tree
        self.t_spawn = time.perf_counter()
        pid, fd = pty.fork()
        if pid == 0:  # child
            if tree is not None:  # `python -m` puts the working folder first on the path: it must be the tree
                os.chdir(tree)
            os.execvpe(sys.executable, [sys.executable, "-m", "midstream_tui", *args], env)
        self.pid, self.fd = pid, fd
        cols, rows = size
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.bytes = 0
        self.seen = b""

    def pump(self, seconds: float) -> None:
        end = time.perf_counter() + seconds
        while (left := end - time.perf_counter()) > 0:
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.1))
            if ready:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:
                    return
                self.bytes += len(data)
                self.seen = (self.seen + data)[-200_000:]

    def wait_for(self, *needles: bytes, timeout: float = 60) -> float:
        end = time.perf_counter() + timeout
        while time.perf_counter() < end:
            self.pump(0.02)
            if all(n in self.seen for n in needles):
                return time.perf_counter() - self.t_spawn
        raise TimeoutError(f"never saw {needles}")

    def cpu_seconds(self) -> float:
        """CPU time of the dashboard and every process under it (the speech recognizer runs in a child)."""
        stats = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                # ppid; utime + stime of all threads; children already waited for (cutime + cstime)
                stats[int(entry)] = (int(fields[1]), sum(int(v) for v in fields[11:15]))
        total, todo = 0, [self.pid]
        while todo:
            pid = todo.pop()
            total += stats.get(pid, (0, 0))[1]
            todo += [child for child, (ppid, _) in stats.items() if ppid == pid]
        return total / TICKS

    def rss_mb(self) -> float:
        with open(f"/proc/{self.pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE / 1e6

    def measure(self, seconds: float) -> tuple[float, float]:
        cpu0, bytes0, t0 = self.cpu_seconds(), self.bytes, time.perf_counter()
        self.pump(seconds)
        dt = time.perf_counter() - t0
        return (self.cpu_seconds() - cpu0) / dt * 100, (self.bytes - bytes0) / dt

    def quit(self) -> int:
        os.write(self.fd, b"q")
        end = time.perf_counter() + 15
        while time.perf_counter() < end:
            self.pump(0.1)
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
        os.kill(self.pid, 9)
        return -9


def later_passes(size: tuple[int, int], seconds: float, tree: str | None, camera: bool = False) -> float:
    """CPU % of the default demo once the camera clip played once (what it yields is reused); ``camera``: with
    the camera stream selected (its frame preview drawn), not the first text stream."""
    d = Dashboard(["demo", "all", "--no-record"], size, tree)
    d.wait_for(b"Patterns")
    d.pump(1.0 + CLIP_S)
    if camera:  # down the list until the camera's frame is shown
        for _ in range(8):
            d.seen = b""
            os.write(d.fd, b"j")
            d.pump(0.5)
            if "Frame · camera".encode() in d.seen:
                break
        else:
            raise RuntimeError("the camera stream was never selected")
    cpu, _ = d.measure(seconds)
    d.quit()
    return cpu


def compare(baseline: str, size: tuple[int, int], seconds: float, rounds: int) -> None:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    later_passes(size, 3.0, baseline)  # the baseline's numba cache (keyed by its files' paths)
    for camera in (False, True):
        runs: dict[str, list[float]] = {"baseline": [], "this tree": []}
        for _ in range(rounds):
            runs["baseline"].append(later_passes(size, seconds, baseline, camera))
            runs["this tree"].append(later_passes(size, seconds, here, camera))
        means = {k: sum(v) / len(v) for k, v in runs.items()}
        view = "the camera selected" if camera else "the first stream selected"
        for name, values in runs.items():
            print(f"default demo, later passes, {view}, {name}: mean {means[name]:.1f} % of one core "
                  f"({', '.join(f'{v:.1f}' for v in values)})")
        print(f"  this tree / baseline: {means['this tree'] / means['baseline']:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--soak", type=float, default=0.0, help="also run the demo this long, sampling RSS")
    ap.add_argument("--size", default="120x40")
    ap.add_argument("--baseline", help="another checkout to compare the demo's CPU with, in the same run")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    if args.baseline:
        compare(args.baseline, size, args.seconds, args.rounds)
        return

    # Warm the numba cache once so first-frame figures are the warm-cache case.
    warm = Dashboard(["run", *IDLE], size)
    warm.wait_for(b"Patterns")
    warm.quit()

    firsts = []
    for _ in range(3):
        d = Dashboard(["demo", "all"], size)
        firsts.append(d.wait_for(b"Streams", b"Metrics", b"Attractor", b"Patterns", b"tok/s"))
        d.quit()
    print(f"first frame (all panels, numbers shown): best {min(firsts):.2f} s, worst {max(firsts):.2f} s")

    d = Dashboard(["run", *IDLE], size)
    d.wait_for(b"Patterns")
    d.pump(3.0)  # let the streams finish
    cpu, bps = d.measure(args.seconds)
    print(f"idle dashboard at 10 Hz ({args.size}): CPU {cpu:.1f} % of one core, output {bps / 1000:.1f} kB/s")
    rc = d.quit()
    print(f"  quit with q: exit code {rc}")

    d = Dashboard(["demo", "all"], size)
    d.wait_for(b"Patterns")
    d.pump(1.0)
    cpu, bps = d.measure(CLIP_S)
    print(f"default demo (6 live streams: 2 text, audio, 360p video, the camera clip decoded, transcribed and "
          f"watched for faces) at 10 Hz ({args.size}), CPU % of one core, children included:")
    print(f"  first pass of the camera clip (its speech recognized, its frames searched): {cpu:.1f} %, "
          f"output {bps / 1000:.1f} kB/s")
    cpu, bps = d.measure(args.seconds)
    print(f"  later passes (what the clip yields is reused), {args.seconds:.0f} s: {cpu:.1f} %, "
          f"output {bps / 1000:.1f} kB/s")
    if args.soak > 0:
        samples = []
        end = time.perf_counter() + args.soak
        while time.perf_counter() < end:
            samples.append(d.rss_mb())
            d.pump(min(10.0, max(0.0, end - time.perf_counter())))
        samples.append(d.rss_mb())
        first_min = samples[: max(1, len(samples) // 10)]
        last = samples[-max(1, len(samples) // 10):]
        print(f"soak {args.soak:.0f} s: RSS start {samples[0]:.0f} MB, after 10% {max(first_min):.0f} MB, "
              f"end {samples[-1]:.0f} MB, max {max(samples):.0f} MB, last-10% mean {sum(last) / len(last):.0f} MB")
        print("  samples (MB): " + " ".join(f"{s:.0f}" for s in samples))
    rc = d.quit()
    print(f"  quit with q: exit code {rc}")


if __name__ == "__main__":
    main()
