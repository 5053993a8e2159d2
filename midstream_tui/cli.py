"""The ``midstream`` command.

    midstream                              dashboard on the built-in demo streams
    midstream run SOURCE... [--headless --duration S --json --virtual] [--refresh-ms N]
    midstream demo text|audio|video|all [same options as run]
    midstream serve [--host 127.0.0.1 --port 8000] [SOURCE...]

Errors are one line on stderr with a non-zero exit code; nothing here prints a
traceback for bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
from importlib.metadata import PackageNotFoundError, version

from .clock import VirtualClock
from .config import ConfigError, load_settings
from .hub import Hub, HubError
from .sources import SourceError, open_sources
from .sources.base import ScheduledSource

DEMOS: dict[str, list[str]] = {
    "text": [
        "sim:text?name=llm&seed=1",
        "sim:text?name=llm-loop&behavior=loop&seed=2",
        "sim:text?name=llm-drift&behavior=drift&seed=3",
    ],
    "audio": ["sim:audio?name=audio&seed=4"],
    "video": ["sim:video?name=video&seed=5"],
}
DEMOS["all"] = DEMOS["text"][:2] + DEMOS["audio"] + DEMOS["video"]

MIN_REFRESH_MS, MAX_REFRESH_MS = 20, 5000


class CliError(Exception):
    """A usage error; printed as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + message
        raise CliError(f"{message} (see 'midstream --help')")


def _version() -> str:
    try:
        return version("midstream-tui")
    except PackageNotFoundError:
        return "unknown"


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--headless", action="store_true", help="no screen: print results to stdout")
    p.add_argument("--json", action="store_true", help="with --headless: NDJSON, one line per stream and tick")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--virtual", action="store_true",
                   help="with --headless: virtual time, deterministic and as fast as the CPU allows")
    p.add_argument("--refresh-ms", type=int, metavar="N",
                   help=f"redraw (and headless output) interval in ms, {MIN_REFRESH_MS}-{MAX_REFRESH_MS} "
                        "(default 100, or MIDSTREAM_REFRESH_MS)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="midstream", description="Watch live AI streams while they stream.")
    parser.add_argument("--version", action="version", version=f"midstream {_version()}")
    parser.add_argument("--refresh-ms", type=int, metavar="N", help="redraw interval of the demo dashboard in ms")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    run = sub.add_parser("run", help="analyze the given sources (sim:text, sim:audio, sim:video, ...)")
    run.add_argument("sources", nargs="+", metavar="SOURCE")
    _run_options(run)

    demo = sub.add_parser("demo", help="run the built-in demo streams (offline, no key)")
    demo.add_argument("which", nargs="?", default="all", choices=sorted(DEMOS))
    _run_options(demo)

    serve = sub.add_parser("serve", help="publish the dashboard to a web browser (textual-serve)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("sources", nargs="*", metavar="SOURCE", help="sources to show (default: the demo)")
    return parser


def _refresh_ms(args: argparse.Namespace) -> int:
    value = args.refresh_ms if getattr(args, "refresh_ms", None) is not None else load_settings().refresh_ms
    if not MIN_REFRESH_MS <= value <= MAX_REFRESH_MS:
        raise CliError(f"--refresh-ms {value}: expected {MIN_REFRESH_MS} to {MAX_REFRESH_MS}")
    return value


def _run(uris: list[str], args: argparse.Namespace) -> int:
    refresh_ms = _refresh_ms(args)
    if args.duration is not None and not args.duration > 0:
        raise CliError(f"--duration {args.duration}: expected seconds > 0")
    if args.json and not args.headless:
        raise CliError("--json needs --headless")
    if args.virtual and not args.headless:
        raise CliError("--virtual needs --headless")
    if args.virtual and args.duration is None:
        raise CliError("--virtual needs --duration (simulated streams are endless)")
    interval = refresh_ms / 1000.0
    if args.headless:
        from .headless import run_headless, run_headless_virtual

        if args.virtual:
            clock = VirtualClock()
            sources = open_sources(uris, clock)
            not_scheduled = [s.uri for s in sources if not isinstance(s, ScheduledSource)]
            if not_scheduled:
                raise CliError(f"--virtual works only with simulated or recorded sources, not {not_scheduled[0]}")
            hub = Hub(clock, analysis_interval=interval)
            return run_headless_virtual(hub, sources, args.duration, args.json)  # type: ignore[arg-type]
        hub = Hub(analysis_interval=interval)
        sources = open_sources(uris, hub.clock)
        return asyncio.run(run_headless(hub, sources, args.duration, args.json))

    from .tui.app import MidStreamApp

    hub = Hub(analysis_interval=interval)
    sources = open_sources(uris, hub.clock)
    app = MidStreamApp(hub, sources, refresh_ms=refresh_ms, duration=args.duration)
    app.run()
    return app.return_code or 0


def _serve(args: argparse.Namespace) -> int:
    from textual_serve.server import Server

    if not 0 < args.port < 65536:
        raise CliError(f"--port {args.port}: expected 1 to 65535")
    uris = args.sources or DEMOS["all"]
    open_sources(uris)  # fail here, in the terminal, rather than in the browser
    command = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "midstream_tui", "run", *uris])
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"midstream: warning: serving on {args.host} without TLS or authentication; "
              "anyone who can reach it can watch the dashboard", file=sys.stderr)
    Server(command, host=args.host, port=args.port, title="MidStream").serve()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            args.headless = args.json = args.virtual = False
            args.duration = None
            return _run(DEMOS["all"], args)
        if args.command == "run":
            return _run(args.sources, args)
        if args.command == "demo":
            return _run(DEMOS[args.which], args)
        if args.command == "serve":
            return _serve(args)
        raise CliError(f"unknown command {args.command!r}")
    except (CliError, SourceError, HubError, ConfigError) as exc:
        print(f"midstream: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
