"""The ``midstream`` command.

    midstream                              dashboard on the built-in demo streams
    midstream run SOURCE... [--headless --duration S --json --virtual] [--refresh-ms N]
    midstream demo text|audio|video|all [same options as run]
    midstream serve [--host 127.0.0.1 --port 8000] [SOURCE...]
    midstream analyze FILE [--column C] [--dt X] [--json]
    midstream compare A B --algorithm dtw|lcs|edit|euclidean [--json]
    midstream demo openai                 concurrent chat streams from the local OpenAI emulator
    midstream emulate-openai [--host 127.0.0.1 --port 8001]
    midstream signaling [--host 127.0.0.1 --port 8765 --token T]   WebRTC rooms and the publisher page
    midstream publish SOURCE webrtc://HOST:PORT/ROOM               a file or sim: stream over WebRTC

Errors are one line on stderr with a non-zero exit code; nothing here prints a
traceback for bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import math
import shlex
import signal
import socket
import sys
from urllib.parse import urlsplit
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from ..analysis.validate import SeriesError
from ..clock import VirtualClock
from ..config import ConfigError, load_settings
from ..display import escaped
from ..jsonsafe import finite
from ..hub import Hub, HubError
from ..perception import Perception
from ..redact import redact, without_logins, without_rtmp_key
from ..rules import RuleError
from ..sources import SourceError, open_sources
from ..sources.base import ScheduledSource
from ..sessions import DamagedRead, StoreError

DEMOS: dict[str, list[str]] = {
    "text": [
        "sim:text?name=llm&seed=1",
        "sim:text?name=llm-loop&behavior=loop&seed=2",
        "sim:text?name=llm-drift&behavior=drift&seed=3",
    ],
    "audio": ["sim:audio?name=audio&seed=4"],
    "video": ["sim:video?name=video&seed=5&width=640&height=360"],
}
DEMOS["all"] = DEMOS["text"][:2] + DEMOS["audio"] + DEMOS["video"]
"""The simulated demo streams (deterministic: the snapshot tests and --virtual use them)."""
DEMOS["openai"] = []  # filled at run time: the emulator's port is only known once it listens
OPENAI_DEMO = [("chat", "chat-1", "emu-normal", "Tell me about harbours."),
               ("responses", "responses-1", "emu-normal", "How do tides work?"),
               ("chat", "chat-loop", "emu-loop", "Describe an orchard."),
               ("chat", "chat-stall", "emu-stall", "Explain thunderstorms.")]

MIN_REFRESH_MS, MAX_REFRESH_MS = 20, 5000
MOTIF_WINDOW = 20_000  # motif search is O(n^2): the newest points only
DYNAMICS_POINTS = 100_000
"""``analyze``'s default for how many of the newest values the exponents are estimated on: their neighbour searches
grow faster than the series (a random walk's 100,000 values take about 7 s here, 300,000 36 s, 2,000,000 more than
5 minutes, in compiled code that Ctrl-C cannot stop)."""


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
    p.add_argument("--duration", type=_number(0, above=True), metavar="S", help="stop after S seconds")
    p.add_argument("--virtual", action="store_true",
                   help="with --headless: virtual time, deterministic and as fast as the CPU allows")
    p.add_argument("--refresh-ms", type=int, metavar="N", default=argparse.SUPPRESS,  # keeps `midstream --refresh-ms N demo`
                   help=f"redraw (and headless output) interval in ms, {MIN_REFRESH_MS}-{MAX_REFRESH_MS} "
                        "(default 100, or MIDSTREAM_REFRESH_MS)")
    record = p.add_mutually_exclusive_group()
    record.add_argument("--record", nargs="?", const="", metavar="FILE",
                        help="record the session into FILE (default: on, into the data folder; see 'midstream sessions')")
    record.add_argument("--no-record", action="store_true", help="do not record this session")
    p.add_argument("--no-learn", action="store_true",
                   help="neither use nor update what was learned (meta-learning)")
    p.add_argument("--meta-auto", action="store_true",
                   help="apply rule-change proposals within their bounds without asking (default: offer them)")
    p.add_argument("--transcribe", choices=["off", "sphinx", "openai"], default="sphinx",
                   help="speech in audio streams: sphinx (offline, default), openai (the transcription API), off")
    p.add_argument("--transcribe-model", default="whisper-1", metavar="M", help="model for --transcribe openai")
    p.add_argument("--detect", choices=["off", "faces", "bodies", "all"], default="faces",
                   help="objects in video streams, OpenCV cascades (default faces)")
    rules = p.add_mutually_exclusive_group()
    rules.add_argument("--rules", metavar="FILE", help="mid-stream rules (TOML) instead of the built-in ones")
    rules.add_argument("--no-rules", action="store_true", help="no mid-stream rules at all")
    p.add_argument("--publish", metavar="nats://HOST:PORT",
                   help="also publish every stream to NATS for 'midstream watch' (login: in the URL or "
                        "MIDSTREAM_NATS_USER/_PASSWORD or _TOKEN)")
    p.add_argument("--name", metavar="NAME", help="this agent's name in the fleet (default: the host name)")
    _metrics_options(p)
    p.add_argument("--otlp", metavar="URL",
                   help="export OpenTelemetry GenAI metrics over OTLP/HTTP to URL (e.g. http://127.0.0.1:4318)")


def _metrics_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metrics-port", type=int, metavar="N",
                   help="serve Prometheus metrics on http://127.0.0.1:N/metrics")
    p.add_argument("--metrics-host", default="127.0.0.1", metavar="ADDR",
                   help="address of the metrics endpoint (default 127.0.0.1)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="midstream", description="Watch live AI streams while they stream.")
    parser.add_argument("--version", action="version", version=f"midstream {_version()}")
    parser.add_argument("--refresh-ms", type=int, metavar="N", help="redraw interval of the demo dashboard in ms")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    run = sub.add_parser("run", help="analyze the given sources (sim:text, sim:audio, sim:video, ...)")
    run.add_argument("sources", nargs="+", metavar="SOURCE")
    _run_options(run)

    proxy = sub.add_parser("proxy", help="a gateway for applications' LLM traffic: forwarded unchanged, "
                                         "analyzed live, looping streams cut")
    proxy.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need --token)")
    proxy.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    proxy.add_argument("--upstream", metavar="URL",
                       help="OpenAI-compatible base URL requests go to (default OPENAI_BASE_URL, else "
                            "https://api.openai.com/v1)")
    proxy.add_argument("--anthropic-upstream", metavar="URL", default="https://api.anthropic.com",
                       help="where Anthropic SDK requests go (default https://api.anthropic.com)")
    proxy.add_argument("--on-cut", choices=["stop", "error"], default="stop",
                       help="how a cut stream ends for its client: as a stopped stream (default) or an error")
    proxy.add_argument("--upstream-timeout", type=float, default=300.0, metavar="S",
                       help="seconds an upstream may stay silent before the request fails (default 300)")
    proxy.add_argument("--slo", metavar="LIST", default="",
                       help="service levels per request, e.g. ttft=500ms,tpot=50ms (ttft, ttfo, tpot, e2e): "
                            "goodput is the share of requests meeting all")
    proxy.add_argument("--prices", metavar="FILE",
                       help="JSON {model: US dollars per million output tokens}: what each cut saved, priced")
    proxy.add_argument("--keep-ended", type=int, default=500, metavar="N",
                       help="ended requests kept in view (default 500); older ones age out (they stay recorded)")
    proxy.add_argument("--token", help="required from clients in the x-midstream-token header "
                                       "(default MIDSTREAM_PROXY_TOKEN; needed beyond loopback)")
    proxy.add_argument("--cert", metavar="PEM", help="TLS certificate (with --key): serve https")
    proxy.add_argument("--key", metavar="PEM", help="TLS private key")
    proxy.add_argument("--idle-analysis", action="store_true",
                       help="(Linux) the analysis and the dashboard only get CPU nothing else wants (SCHED_IDLE): "
                            "the lowest delay per chunk, but on a busy machine they can stop entirely, and the run "
                            "with them (a --duration does not end): for a machine kept for the proxy")
    _run_options(proxy)

    demo = sub.add_parser("demo", help="run the built-in demo streams (offline, no key)")
    demo.add_argument("which", nargs="?", default="all", choices=sorted(DEMOS))
    _run_options(demo)

    analyze = sub.add_parser("analyze", help="dynamics of a numeric series (csv, npy, jsonl, txt) or a recorded session")
    analyze.add_argument("file", metavar="FILE|SESSION")
    analyze.add_argument("--column", metavar="C",
                         help="column to analyse: a name (csv header, jsonl key) or a number counted from 0 "
                              "(default: the only numeric column besides an index or time column)")
    analyze.add_argument("--dt", type=_number(0.0, above=True), default=1.0,
                         help="sampling interval > 0 (default 1): lambda per time unit")
    analyze.add_argument("--dim", type=_whole(1, MAX_DIM),
                         help=f"embedding dimension 1-{MAX_DIM} (default: false nearest neighbours)")
    analyze.add_argument("--lag", type=_whole(1), help="embedding lag >= 1 (default: average mutual information)")
    analyze.add_argument("--max-points", type=_whole(100), default=DYNAMICS_POINTS, metavar="N",
                         help=f"estimate the embedding and the exponents on the newest N values (default "
                              f"{DYNAMICS_POINTS:,}: seconds; the time grows faster than N)")
    analyze.add_argument("--motif-length", type=_whole(3), metavar="M",
                         help="length of recurring shapes to find, 3 to half the series (default: 8 lags)")
    analyze.add_argument("--json", action="store_true", help="one JSON object")

    compare = sub.add_parser("compare", help="compare two series (or token files) by DTW, LCS, edit or euclidean")
    compare.add_argument("a", metavar="A")
    compare.add_argument("b", metavar="B")
    compare.add_argument("--algorithm", default="dtw", choices=["dtw", "lcs", "edit", "euclidean"])
    compare.add_argument("--window", type=_whole(0), help="DTW Sakoe-Chiba half-width |i - j| <= W (W >= 0)")
    compare.add_argument("--eps", type=_number(0.0), default=0.0, help="LCS/edit: values within eps (>= 0) match")
    compare.add_argument("--max-cells", type=_number(0.0, above=True), default=1e10, metavar="N",
                         help="refuse a comparison that fills more than N cells of its table (n x m; DTW with "
                              "--window: n x (2W + 1 + |n - m|)) before it starts (default 1e10: seconds; it cannot be "
                              "interrupted)")
    compare.add_argument("--column", metavar="C",
                         help="column: a name (csv header, jsonl key) or a number counted from 0")
    compare.add_argument("--tokens", action="store_true",
                         help="read both files as text and compare words: a token matches only an identical one "
                              "(dtw counts unequal aligned pairs; euclidean does not apply)")
    compare.add_argument("--json", action="store_true", help="one JSON object")

    emu = sub.add_parser("emulate-openai", help="run the local OpenAI API emulator (not OpenAI; offline)")
    emu.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    emu.add_argument("--port", type=int, default=8001, help="port (default 8001)")
    emu.add_argument("--rate", type=float, default=50.0, help="tokens per second (default 50)")
    emu.add_argument("--ttft-ms", type=float, default=300.0, help="time to first token (default 300 ms)")

    sig = sub.add_parser("signaling", help="run the WebRTC signaling server (rooms, publisher page)")
    sig.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    sig.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    sig.add_argument("--token", help="required token (default: MIDSTREAM_SIGNALING_TOKEN; needed off loopback)")
    sig.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                     help="another browser origin allowed to connect (repeatable)")
    sig.add_argument("--cert", help="TLS certificate (PEM): serve https/wss")
    sig.add_argument("--key", help="TLS private key (PEM)")

    pub = sub.add_parser("publish", help="publish a file or simulated stream to a WebRTC room")
    pub.add_argument("source", metavar="SOURCE", help="media file, sim:video, sim:audio, ...")
    pub.add_argument("target", metavar="webrtc://HOST:PORT/ROOM", help="add ?ice=loopback on one machine")
    pub.add_argument("--duration", type=_number(0, above=True), metavar="S", help="stop after S seconds")

    audit = sub.add_parser("audit", help="security audit of a project (default: this folder); exit 1 on high findings")
    audit.add_argument("path", nargs="?", default=".", metavar="PATH")
    audit.add_argument("--json", action="store_true", help="one JSON object")
    audit.add_argument("--check", action="append", metavar="NAME", help="run only this check (repeatable)")

    meta = sub.add_parser("meta", help="what MidStream has learned about each source (show, export, reset)")
    meta.add_argument("action", choices=["show", "export", "reset"])

    sessions = sub.add_parser("sessions", help="list recorded sessions")
    sessions.add_argument("--json", action="store_true", help="one JSON object per session")

    replay = sub.add_parser("replay", help="play a recorded session back through the dashboard (or headless)")
    replay.add_argument("session", metavar="SESSION", help="a number from 'midstream sessions', 'last', or a path")
    replay.add_argument("--speed", type=_number(1e-3), default=1.0,
                        help="times real time (default 1; at least 0.001: 1e-300 waited for ever)")
    replay.add_argument("--headless", action="store_true", help="print instead of showing the dashboard")
    replay.add_argument("--json", action="store_true", help="with --headless: NDJSON, as a live run prints")
    replay.add_argument("--refresh-ms", type=int, metavar="N", default=argparse.SUPPRESS, help="redraw interval")

    export = sub.add_parser("export", help="write a recorded session as csv, jsonl or parquet files")
    export.add_argument("session", metavar="SESSION")
    export.add_argument("--format", choices=["csv", "jsonl", "parquet"], default="jsonl")
    export.add_argument("--out", metavar="DIR", help="folder to write into (default: ./<session name>)")
    export.add_argument("--force", action="store_true", help="overwrite files a previous export left in the folder")

    watch = sub.add_parser("watch", help="one dashboard over every agent publishing to NATS (--publish)")
    watch.add_argument("url", metavar="nats://HOST:PORT")
    watch.add_argument("--agent", default="*", metavar="PATTERN", help="only agents whose name matches (e.g. 'web-*')")
    watch.add_argument("--headless", action="store_true", help="no screen: print results to stdout")
    watch.add_argument("--json", action="store_true", help="with --headless: NDJSON, as a live run prints")
    watch.add_argument("--duration", type=_number(0, above=True), metavar="S", help="stop after S seconds")
    watch.add_argument("--stale", type=float, default=5.0, metavar="S",
                       help="an agent silent this long is marked stale (default 5)")
    watch.add_argument("--gone", type=float, default=60.0, metavar="S",
                       help="an agent silent this long is removed from view (default 60)")
    watch.add_argument("--refresh-ms", type=int, metavar="N", default=argparse.SUPPRESS, help="redraw interval")
    _metrics_options(watch)

    serve = sub.add_parser("serve", help="publish the dashboard to a web browser (textual-serve)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                       help="a web page (scheme://host:port) other than the server's own allowed to open the "
                            "dashboard (a reverse proxy's public address); repeatable")
    serve.add_argument("sources", nargs="*", metavar="SOURCE", help="sources to show (default: the demo)")
    return parser


def _refresh_ms(args: argparse.Namespace) -> int:
    value = args.refresh_ms if getattr(args, "refresh_ms", None) is not None else load_settings().refresh_ms
    if not MIN_REFRESH_MS <= value <= MAX_REFRESH_MS:
        raise CliError(f"--refresh-ms {value}: expected {MIN_REFRESH_MS} to {MAX_REFRESH_MS}")
    return value


def _run(uris: list[str], args: argparse.Namespace, title: str | None = None, service=None) -> int:
    """``service(hub, run)``: attaches something to the hub that adds streams of its own (the proxy)."""
    refresh_ms = _refresh_ms(args)
    if args.duration is not None and not args.duration > 0:
        raise CliError(f"--duration {args.duration}: expected seconds > 0")
    if args.json and not args.headless:
        raise CliError("--json needs --headless")
    if args.virtual and not args.headless:
        raise CliError("--virtual needs --headless")
    if "-" in uris and not args.headless:
        raise CliError("reading text from stdin ('-') needs --headless: the dashboard reads the keyboard there")
    if args.virtual and args.duration is None:
        raise CliError("--virtual needs --duration (simulated streams are endless)")
    interval = refresh_ms / 1000.0
    from ..rules import BUILTIN_RULES, load_rules
    from ..runtime import RunContext, RunError, RunOptions

    settings = load_settings()
    rules = () if getattr(args, "no_rules", False) else (
        tuple(load_rules(args.rules)) if getattr(args, "rules", None) else BUILTIN_RULES)
    perception = Perception(transcribe=getattr(args, "transcribe", "off"),
                            transcribe_model=getattr(args, "transcribe_model", "whisper-1"),
                            detect=getattr(args, "detect", "off"), settings=settings)
    record = None if getattr(args, "no_record", False) or not hasattr(args, "record") else (args.record or "")
    shown = [shlex.quote(without_logins(without_rtmp_key(a))) for a in sys.argv[1:]]
    command = "midstream " + " ".join(shown) if shown else "midstream"
    options = RunOptions(rules=rules, perception=perception, learn=not getattr(args, "no_learn", False),
                         meta_auto=getattr(args, "meta_auto", False), record=record, command=command,
                         keep_mb=settings.keep_mb, keep_days=settings.keep_days, data_dir=settings.data_dir)

    for flag, given in (("--metrics-port", getattr(args, "metrics_port", None) is not None),
                        ("--otlp", bool(getattr(args, "otlp", None)))):
        if given and args.virtual:
            raise CliError(f"{flag} does not apply to --virtual (virtual time is not the time a collector keeps)")
    _check_exports(args)  # before a session file is made: a typo leaves nothing behind
    publish = _publisher(args, settings)
    with RunContext(options) as run:
        def attached(hub: Hub) -> Hub:
            try:
                run.attach(hub)
            except RunError as exc:
                raise CliError(str(exc)) from None
            if publish is not None:
                publish(hub)
            exporter = _metrics(args, hub)
            if exporter is not None:
                hub.add_service(exporter)
            if getattr(args, "otlp", None):
                hub.add_service(_otlp(args, hub))
            return hub

        if args.headless:
            from ..headless import run_headless, run_headless_virtual

            if args.virtual:
                clock = VirtualClock()
                sources = open_sources(uris, clock, settings=settings)
                not_scheduled = [s.uri for s in sources if not isinstance(s, ScheduledSource)]
                if not_scheduled:
                    raise CliError(f"--virtual works only with simulated or recorded sources, not {not_scheduled[0]}")
                hub = attached(Hub(clock, analysis_interval=interval))
                return run_headless_virtual(hub, sources, args.duration, args.json)  # type: ignore[arg-type]
            sources = open_sources(uris, settings=settings)
            hub = attached(Hub(analysis_interval=interval))
            if service is not None:
                service(hub, run)
            for src in sources:
                src.clock = hub.clock
            return asyncio.run(run_headless(hub, sources, args.duration, args.json))

        from ..tui.app import MidStreamApp

        sources = open_sources(uris, settings=settings)
        hub = attached(Hub(analysis_interval=interval))
        if service is not None:
            service(hub, run)
        for src in sources:
            src.clock = hub.clock
        app = MidStreamApp(hub, sources, refresh_ms=refresh_ms, duration=args.duration, title=title,
                           on_hangup=run.close)
        app.run()
        from ..headless import failed_exit_code

        if hub.callback_error is not None:  # the run failed (and stopped, as headless): why, once the screen is gone
            from ..tui.app import failure_text

            print(_one_line(redact(f"midstream: error: {failure_text(hub.callback_error)}")), file=sys.stderr)
            return 1
        # as headless: every source failed is not a success (a gateway's requests are not the run's sources)
        return app.return_code or (failed_exit_code(hub) if sources else 0)


def _say_redacted(line: str) -> None:
    from ..runtime import _to_stderr

    _to_stderr(redact(line))


def _nats_target(url: str, settings):
    from ..fleet import FleetError, parse_target

    try:
        target = parse_target(url, user=settings.nats_user, password=settings.nats_password,
                              token_=settings.nats_token, ca_file=settings.nats_ca, nkey_file=settings.nats_nkey,
                              creds_file=settings.nats_creds)
        target.connect_options()  # a CA file that cannot be read: said now
        return target
    except FleetError as exc:
        raise CliError(str(exc)) from None


def _nats_preflight(target, name: str) -> str | None:
    """Reach NATS once before the run: wrong credentials are an error now (one line); a server that is not there
    is said (the run goes on and keeps trying). Returns what to say, if anything."""
    from ..fleet import FleetError
    from ..fleet.publish import connect

    async def once() -> None:
        nc = await connect(target, name, reconnect=False)
        await nc.close()

    try:
        asyncio.run(once())
    except FleetError as exc:
        if "refused the credentials" in str(exc):
            raise CliError(str(exc)) from None
        return str(exc)
    return None


def _check_exports(args: argparse.Namespace) -> None:
    """``--metrics-port`` and ``--otlp`` checked as far as can be without serving: the port's range and that it is
    free, the URL's form."""
    port = getattr(args, "metrics_port", None)
    if port is not None:
        if not 0 < port < 65536:
            raise CliError(f"--metrics-port {port}: expected 1 to 65535")
        try:
            with socket.create_server((args.metrics_host, port)):
                pass
        except OSError as exc:
            raise CliError(f"--metrics-port: cannot listen on {args.metrics_host}:{port}: {exc.strerror or exc}") \
                from None
    if getattr(args, "otlp", None):
        _otlp_url_checked(args.otlp)


def _otlp_url_checked(url: str) -> None:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and parts.hostname and (parts.port or 1)
    except ValueError:
        ok = False
    if not ok:
        from ..fleet.wire import without_login

        raise CliError(f"--otlp {without_login(url)}: expected http(s)://HOST:PORT (an OTLP/HTTP receiver)")


def _metrics(args: argparse.Namespace, hub, agent: str | None = None):
    """``--metrics-port``: Prometheus metrics of ``hub``, served now (None without it)."""
    port = getattr(args, "metrics_port", None)
    if port is None:
        return None
    if not 0 < port < 65536:
        raise CliError(f"--metrics-port {port}: expected 1 to 65535")
    from ..fleet import default_agent_name
    from ..fleet.metrics import PrometheusMetrics

    exporter = PrometheusMetrics(hub, agent or getattr(args, "name", None) or default_agent_name())
    try:
        exporter.serve(port, args.metrics_host)
    except OSError as exc:
        raise CliError(f"--metrics-port: cannot listen on {args.metrics_host}:{port}: {exc.strerror or exc}") from None
    return exporter


def _otlp(args: argparse.Namespace, hub):
    """``--otlp URL``: OpenTelemetry metrics of ``hub`` over OTLP/HTTP."""
    from ..fleet import default_agent_name
    from ..fleet.otlp import OtlpMetrics

    _otlp_url_checked(args.otlp)
    return OtlpMetrics(hub, getattr(args, "name", None) or default_agent_name(), args.otlp, say=_say_redacted)


def _publisher(args: argparse.Namespace, settings):
    """``--publish``: what attaches a fleet publisher to the run's hub (None without it)."""
    url = getattr(args, "publish", None)
    if not url:
        if getattr(args, "name", None) and getattr(args, "metrics_port", None) is None and \
                not getattr(args, "otlp", None):
            raise CliError("--name needs --publish, --metrics-port or --otlp")
        return None
    if getattr(args, "virtual", False):
        raise CliError("--publish does not apply to --virtual (virtual time is not shared with watchers)")
    from ..fleet import FleetError, Publisher, default_agent_name
    from ..fleet.wire import token

    name = args.name or default_agent_name()
    if not name.strip() or len(name) > 100 or len(token(name)) > 200:
        raise CliError(f"--name {name!r}: expected 1 to 100 characters, at most 200 as a subject token (letters, "
                       "digits, - and _ take 1; any other character 3 a byte of its UTF-8)")
    target = _nats_target(url, settings)
    trouble = _nats_preflight(target, name)
    if trouble:
        _say_redacted(f"publishing: {trouble}; working locally and retrying")

    def attach(hub: Hub) -> None:
        try:
            hub.add_service(Publisher(hub, target, name, say=_say_redacted, unreachable=bool(trouble)))
        except FleetError as exc:
            raise CliError(str(exc)) from None
    return attach


def _watch(args: argparse.Namespace) -> int:
    from ..fleet import FleetError, RemoteHub, default_agent_name

    refresh_ms = _refresh_ms(args)
    if args.duration is not None and not args.duration > 0:
        raise CliError(f"--duration {args.duration}: expected seconds > 0")
    if args.json and not args.headless:
        raise CliError("--json needs --headless")
    if not args.stale >= 3 or not args.gone >= args.stale:
        raise CliError(f"--stale {args.stale} --gone {args.gone}: expected 3 <= stale <= gone (agents say hello "
                       "every second)")
    settings = load_settings()
    target = _nats_target(args.url, settings)
    name = f"watcher@{default_agent_name()}"

    def remote() -> RemoteHub:
        return RemoteHub(target, args.agent, analysis_interval=refresh_ms / 1000.0, stale_s=args.stale,
                         gone_s=args.gone, name=name, say=_say_redacted)

    if args.headless:
        from ..headless import run_headless

        hub = remote()
        exporter = _metrics(args, hub, agent=name)
        try:
            return asyncio.run(run_headless(hub, [], args.duration, args.json))
        except FleetError as exc:
            raise CliError(str(exc)) from None
        finally:
            if exporter is not None:
                asyncio.run(exporter.stop())
    trouble = _nats_preflight(target, name)
    if trouble:
        raise CliError(trouble)
    from ..tui.app import MidStreamApp

    hub = remote()
    exporter = _metrics(args, hub, agent=name)
    app = MidStreamApp(hub, [], refresh_ms=refresh_ms, duration=args.duration,
                       title=f"MidStream watch {target} (agents {args.agent})",
                       on_hangup=lambda: None)  # a watcher holds nothing to save (it hung for ever on a lost terminal)
    try:
        app.run()
    finally:
        if exporter is not None:
            asyncio.run(exporter.stop())
    return app.return_code or 0


def _this_machine(host: str, bound: str) -> bool:
    """``host`` reaches this machine: a loopback or unspecified address (connecting to 0.0.0.0 or :: reaches it),
    ``localhost`` or the address the proxy binds, also written the other ways a socket accepts (127.1,
    2130706433, ::ffff:127.0.0.1). Names are not looked up in DNS."""
    from ..servers.base import is_loopback

    host = host.strip("[]")
    if is_loopback(host) or host == bound.strip("[]"):
        return True
    try:
        found = socket.getaddrinfo(host, None, flags=socket.AI_NUMERICHOST)
    except (OSError, UnicodeError):
        return False
    for *_, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if address.is_loopback or address.is_unspecified or str(address) == bound.strip("[]"):
            return True
    return False


def _proxy(args: argparse.Namespace) -> int:
    from ..proxy import PROXY_DYNAMICS_PER_S, ProxyError, ProxyOptions, ProxyProcess, RelayError, parse_slo
    from ..servers.signaling import SignalingError, ssl_context_from

    if args.virtual:
        raise CliError("--virtual does not apply to the proxy: it serves real requests")
    if not 0 < args.port < 65536:
        raise CliError(f"--port {args.port}: expected 1 to 65535")
    if args.keep_ended < 0:
        raise CliError(f"--keep-ended {args.keep_ended}: expected 0 or more")
    settings = load_settings()
    upstream = args.upstream or settings.openai_base_url or "https://api.openai.com/v1"
    try:
        options = ProxyOptions(upstream=upstream, anthropic_upstream=args.anthropic_upstream, on_cut=args.on_cut,
                               upstream_timeout=args.upstream_timeout, token=args.token or settings.proxy_token,
                               slo=tuple(parse_slo(args.slo).items()), prices=_prices(args.prices))
        tls = ssl_context_from(args.cert, args.key)
    except (ProxyError, SignalingError) as exc:
        raise CliError(str(exc)) from None
    for url, flag, env in ((options.upstream, "--upstream", "OPENAI_BASE_URL"),
                           (options.anthropic_upstream, "--anthropic-upstream", "")):
        parts = urlsplit(url)  # (checked by ProxyOptions: a URL with a valid port)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if _this_machine(parts.hostname or "", args.host) and port == args.port:
            given = f" ({env} points here?)" if env and not args.upstream else ""
            raise CliError(f"the upstream {_no_userinfo(url)} is this proxy itself{given}: give the real one with "
                           f"{flag}")
    try:  # say a taken port in one line now, not from inside the dashboard
        with socket.create_server((args.host, args.port)):
            pass
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    scheme = "https" if tls else "http"
    shown = f"{scheme}://{'127.0.0.1' if args.host in ('127.0.0.1', '0.0.0.0') else args.host}:{args.port}"

    served: list[ProxyProcess] = []

    def attach(hub: Hub, run) -> None:
        try:  # the gateway in a process of its own: the analysis never holds a chunk back (see proxy/relay.py)
            proxy = ProxyProcess(hub, options, args.host, args.port, cert=args.cert, key=args.key, explain=run.why_cut,
                                 notice=(lambda line: print(f"midstream proxy: {line}", file=sys.stderr, flush=True))
                                 if args.headless else None, nice=10, idle=args.idle_analysis,
                                 ready=banner if args.headless else None)
        except ProxyError as exc:
            raise CliError(str(exc)) from None
        hub.add_service(proxy)
        hub.totals["proxy"] = proxy.summary
        hub.max_ended = args.keep_ended
        hub.dynamics_per_s = PROXY_DYNAMICS_PER_S  # (the clients' bytes first: see there)
        served.append(proxy)

    def banner() -> None:  # once it listens: a script that waits for this line may connect at once
        print(f"midstream proxy on {shown}: OPENAI_BASE_URL={shown}/v1 or ANTHROPIC_BASE_URL={shown} "
              f"(upstream {_no_userinfo(options.upstream)}, {_no_userinfo(options.anthropic_upstream)})",
              file=sys.stderr, flush=True)

    try:
        code = _run([], args, title=f"MidStream proxy · {shown}/v1 → {_no_userinfo(upstream)}", service=attach)
    except RelayError as exc:
        if not served or not served[0].ended:  # it never served: its process could not start or bind
            raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
        code = 1
    except OSError as exc:  # the port was taken between the check and the start
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    for proxy in served:
        line = (f"midstream proxy: {proxy.requests} requests, {proxy.cuts} cut, {proxy.client_left} left by "
                f"their client")
        if proxy.cuts_bounded:  # (only an answer with a limit has a known most it could still have cost)
            some = "" if proxy.cuts_bounded == proxy.cuts else f" {proxy.cuts_bounded} of the"
            line += f";{some} cuts kept at most {proxy.tokens_saved} output tokens from being generated"
            if options.prices:
                line += f" (${proxy.usd_saved:.4f} at the listed prices)"
        if proxy.cuts > proxy.cuts_bounded:
            line += (f"; what {'the' if not proxy.cuts_bounded else 'the other'} {proxy.cuts - proxy.cuts_bounded} "
                     "cut(s) saved is not counted (only a cut answer with a limit on its output tokens is: a "
                     "max_tokens, a Realtime max_output_tokens)")
        if options.slo:
            slo = ", ".join(f"{k} <= {v * 1e3:g} ms" for k, v in options.slo)
            line += (f"; goodput {proxy.goodput:.0%} of {proxy.judged} finished ({slo})" if proxy.judged
                     else f"; no finished request to judge against {slo}")
        print(line, file=sys.stderr)
    return code


def _no_userinfo(url: str) -> str:
    """A URL as it may be shown: without a user:password part, nor a secret in its query (``?key=``)."""
    parts = urlsplit(url)
    return redact(parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl())


def _prices(path: str | None) -> tuple[tuple[str, float], ...]:
    """``--prices FILE``: {model: US dollars per million output tokens}, checked, as (model, price) pairs."""
    if not path:
        return ()
    from ..jsonsafe import loads

    try:
        table = loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"--prices {path}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CliError(f"--prices {path}: not JSON ({exc})") from None
    if not isinstance(table, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
            for v in table.values()):
        raise CliError(f'--prices {path}: expected {{"model": dollars per million output tokens, ...}}, '
                       "numbers >= 0")
    return tuple((str(k), float(v)) for k, v in table.items())


def demo_uris(which: str) -> list[str]:
    """A live demo's sources: the simulated streams plus media encoded with real codecs (offline).

    audio adds a speech recording (decoded by PyAV, transcribed); video and all add a
    camera-like clip (H.264 + AAC, written once into the cache folder) with a face to detect
    and speech to transcribe, played in a loop.
    """
    from ..data.demo_media import demo_clip, speech_path

    uris = list(DEMOS[which])
    if which == "audio":
        uris.append(f"{speech_path()}?loop=1&name=speech")
    if which in ("video", "all"):
        try:
            uris.append(f"{demo_clip()}?loop=1&name=camera")
        except OSError as exc:  # a read-only home: the simulated streams still make a demo
            print(f"midstream: warning: demo clip not written ({exc.strerror or exc}); simulated streams only",
                  file=sys.stderr)
    return uris


def _demo_openai(args: argparse.Namespace) -> int:
    """The dashboard (or headless run) on concurrent chat streams from the local emulator."""
    from urllib.parse import quote

    from ..servers.emulator import EmulatorThread

    if args.virtual:
        raise CliError("--virtual does not apply to network sources")
    emulator = EmulatorThread()
    try:
        base = emulator.start()
    except OSError as exc:
        raise CliError(f"the OpenAI emulator could not start: {exc}") from None
    print(f"midstream: OpenAI API emulator (not OpenAI) at {base}", file=sys.stderr)
    uris = [f"openai:{api}?name={name}&model={model}&prompt={quote(prompt)}&base_url={base}&requests=0"
            for api, name, model, prompt in OPENAI_DEMO]
    try:
        return _run(uris, args, title="MidStream · OpenAI emulator (not OpenAI)")
    finally:
        emulator.stop()


def _emulate(args: argparse.Namespace) -> int:
    from ..servers.emulator import SCENARIOS, OpenAIEmulator

    if not 0 < args.port < 65536:
        raise CliError(f"--port {args.port}: expected 1 to 65535")

    emulator = OpenAIEmulator(args.host, args.port, rate=args.rate, ttft_ms=args.ttft_ms)
    _serve_until_signal(emulator, lambda: (
        f"OpenAI API emulator (not OpenAI) listening on {emulator.base_url}\n"
        f"  models: {', '.join('emu-' + s for s in SCENARIOS)}\n"
        f"  try: OPENAI_BASE_URL={emulator.base_url} midstream run 'openai:chat?model=emu-loop&prompt=hi'"))
    return 0


def _serve_until_signal(server, banner) -> None:
    """Bind a LocalServer, print its banner on stderr, serve until SIGINT/SIGTERM."""
    async def serve() -> None:
        try:
            await server.start()
        except OSError as exc:
            raise CliError(f"cannot listen on {server.host}:{server.port}: {exc.strerror or exc}") from None
        print(banner(), file=sys.stderr, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop()

    asyncio.run(serve())


def _signaling(args: argparse.Namespace) -> int:
    from ..servers.base import is_loopback
    from ..servers.signaling import SignalingError, SignalingServer, ssl_context_from

    if not 0 < args.port < 65536:
        raise CliError(f"--port {args.port}: expected 1 to 65535")
    try:
        token = args.token or load_settings().signaling_token
        server = SignalingServer(args.host, args.port, token=token, allow_origins=tuple(args.allow_origin),
                                 ssl_context=ssl_context_from(args.cert, args.key))
    except SignalingError as exc:
        raise CliError(str(exc)) from None
    if not is_loopback(args.host) and server.ssl_context is None:
        print(f"midstream: warning: signaling on {args.host} without TLS: the token crosses the network "
              "in clear; pass --cert and --key", file=sys.stderr)
    host = server.url.split("://", 1)[1]
    _serve_until_signal(server, lambda: (
        f"signaling server on {server.url} (token {'required' if server._token else 'not set: loopback only'})\n"
        f"  publish from a browser: {server.url}/\n"
        f"  receive:  midstream run webrtc://{host}/ROOM\n"
        f"  publish:  midstream publish clip.mp4 webrtc://{host}/ROOM"))
    return 0


def _meta(args: argparse.Namespace) -> int:
    import json

    from ..rules import MetaLearner, default_path
    from ..rules.learning import NewerStateError, StateError, parse_state, read_state

    path = default_path(load_settings().data_dir)
    if path.parent.exists() and not path.parent.is_dir() and args.action != "reset":
        raise CliError(f"{path.parent}: not a folder (where the learned state is kept: MIDSTREAM_DATA_DIR or "
                       "data_dir)")
    if args.action == "reset":
        existed = path.exists() or path.is_symlink()
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:  # a folder named meta.json, or a file where the data folder should be
            raise CliError(f"{path}: cannot forget it ({exc.strerror or exc})") from None
        print(f"{'forgot' if existed else 'nothing to forget in'} {escaped(path)}")
        return 0
    try:
        parse_state(read_state(path), path)  # what cannot be read is said, never shown as nothing learned
    except NewerStateError as exc:
        raise CliError(f"{exc}: shown by that MidStream (runs of this one leave it as it is)") from None
    except StateError as exc:
        aside = " (the next run keeps it aside and starts over; 'midstream meta reset' forgets it)"
        raise CliError(f"{exc}{aside if path.is_file() else ''}") from None
    learner = MetaLearner(path)
    if args.action == "export":
        print(json.dumps(learner.to_json()))
        return 0
    if not learner.baselines:
        print(f"nothing learned yet ({escaped(path)})")
        return 0
    print(f"{escaped(path)}: {learner.runs} run(s), {len(learner.baselines)} source(s)")
    for key, metrics in sorted(learner.baselines.items()):
        print(f"  {escaped(key)}")  # (a source's key holds what a proxy client sent as its model)
        for name, dist in sorted(metrics.items()):
            print(f"    {escaped(name):<22} n {dist.n:>8}  p50 {dist.quantile(0.5):10.4g}  "
                  f"p99 {dist.quantile(0.99):10.4g}  p99.9 {dist.quantile(0.999):10.4g}")
    return 0


def _audit(args: argparse.Namespace) -> int:
    from ..audit import CHECKS, audit, render, to_json

    root = Path(args.path).resolve()
    if not root.is_dir():
        raise CliError(f"{args.path}: not a folder")
    unknown = [c for c in args.check or [] if c not in CHECKS]
    if unknown:
        raise CliError(f"--check {unknown[0]}: expected one of {', '.join(CHECKS)}")
    findings, ignored = audit(root, args.check)
    print(to_json(findings, root, ignored, args.check) if args.json else render(findings, root, ignored, args.check),
          end="" if not args.json else "\n")
    return 1 if any(f.severity == "high" for f in findings) else 0


def _sessions(args: argparse.Namespace) -> int:
    import json
    import time

    from ..sessions import info, session_files

    folder = load_settings().data_dir
    if folder.exists() and not folder.is_dir():  # (never "no recorded sessions": they would be somewhere else)
        raise CliError(f"{folder}: not a folder (where sessions are kept: MIDSTREAM_DATA_DIR or data_dir)")
    files = session_files(folder)
    if not files and not args.json:
        print(f"no recorded sessions in {escaped(folder)}")
        return 0
    for k, path in enumerate(files, 1):
        try:
            s = info(path)
        except StoreError as exc:
            print(f"{k:>3}  {escaped(path.name)}: {escaped(exc)}", file=sys.stderr)
            continue
        if args.json:
            print(json.dumps(finite({"n": k, "path": str(path), "started": s.started, "ended": s.ended,
                                     "status": s.status, "streams": s.streams, "duration_s": round(s.duration, 3),
                                     "bytes": s.size, "command": s.command}), allow_nan=False))
        else:
            try:  # (a damaged start, NaN or 1e300, has no date: the others are still listed)
                started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.started))
            except (ValueError, OverflowError, OSError):
                started = f"{'start unknown':<19}"
            print(f"{k:>3}  {started}  {s.duration:8.1f} s  {s.streams:>2} streams  {s.size / 1e6:7.2f} MB  "
                  f"{s.status:<11}  {escaped(path.name)}")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from ..sessions import RecordedHub
    from ..sessions import Session, resolve

    if args.json and not args.headless:
        raise CliError("--json needs --headless")
    refresh_ms = _refresh_ms(args)
    session = Session(resolve(args.session, load_settings().data_dir))
    try:
        try:
            hub = RecordedHub(session, speed=args.speed, analysis_interval=refresh_ms / 1000)
        except StoreError:  # (damage inside the rows: every one is read here, before anything is shown)
            raise
        except ValueError as exc:  # (a recorded value of the wrong kind: "abc" as a time; said with the file)
            raise CliError(f"{session.path}: the session file is damaged ({exc})") from None
        if args.headless:
            from ..headless import run_headless

            return asyncio.run(run_headless(hub, [], None, args.json))
        from ..tui.app import MidStreamApp

        # (the speed is in the state beside the title: "replay x5")
        app = MidStreamApp(hub, [], refresh_ms=refresh_ms, title=f"MidStream — replay of {session.path.name}",
                           on_hangup=lambda: None)  # a replay holds nothing to save: it just ends
        app.run()
        return app.return_code or 0
    finally:
        session.close()


def _export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..sessions import export_session
    from ..sessions import SUFFIX, resolve
    from ..sessions.store import being_recorded

    path = resolve(args.session, load_settings().data_dir)
    if being_recorded(path):
        print(f"midstream: warning: {escaped(path.name)} is still being recorded: the export holds what was written "
              "so far",
              file=sys.stderr, flush=True)
    name = path.name.removesuffix(SUFFIX)
    name = name.removesuffix(".sqlite") if name == path.name else name  # (a session renamed x.sqlite)
    out = Path(args.out) if args.out else Path.cwd() / name
    if not args.out and out.resolve() == path.resolve():
        out = out.with_name(name + "-export")
    notes: list[str] = []
    written = export_session(path, out, args.format, force=args.force, notes=notes)
    for file, rows in written:
        print(f"{escaped(file)}  {rows} rows")
    for note in notes:
        print(f"midstream: warning: {note}", file=sys.stderr)
    return 0


def _publish(args: argparse.Namespace) -> int:
    from ..sources import open_source
    from ..sources.webrtc import SignalingRefused, publish

    if args.duration is not None and not args.duration > 0:
        raise CliError(f"--duration {args.duration}: expected seconds > 0")
    settings = load_settings()
    source = open_source(args.source, settings=settings)
    if source.kind not in ("audio", "video"):
        raise CliError(f"{args.source}: only audio and video can be published over WebRTC")

    def status(line: str) -> None:
        print(f"midstream publish: {line}", file=sys.stderr, flush=True)

    try:
        counts = asyncio.run(publish(source, args.target, status=status, duration=args.duration,
                                     token=settings.signaling_token))
    except SignalingRefused as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot reach the signaling server: {exc.strerror or exc}") from None
    status(f"done: {counts['video_frames']} video frames, {counts['audio_chunks']} audio chunks, "
           f"{counts['answers']} receiver(s)")
    return 0


def _serve(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise CliError(f"--port {args.port}: expected 1 to 65535")
    uris = args.sources or demo_uris("all")
    open_sources(uris, settings=load_settings())  # fail here, in the terminal, rather than in the browser
    command = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "midstream_tui", "run", *uris])
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"midstream: warning: serving on {args.host} without TLS or authentication; "
              "anyone who can reach it can watch the dashboard", file=sys.stderr)
    served = _served(command, args.host, args.port, tuple(o.rstrip("/").lower() for o in args.allow_origin))
    served.initialize_logging()
    from ..servers.base import LocalServer

    class Hosted(LocalServer):  # (its connection guard: half-open connections closed after 10 s; textual-serve's
        # own run_app kept them for ever, and a thousand of them ended the server: out of file descriptors)
        _app = None

        def app(self):
            return self._app

        async def start(self) -> str:
            self._app = await served._make_app()
            return await super().start()

    _serve_until_signal(Hosted(args.host, args.port),
                        lambda: f"midstream serve: the dashboard on {served.public_url} (Ctrl+C to stop)")
    return 0


def _served(command: str, host: str, port: int, allow_origins: tuple[str, ...]):
    """textual-serve's server, answering only its own page: a browser's request that comes from another page
    (its ``Origin``; on a loopback address, also one whose name only resolves there: DNS rebinding) is refused.
    Without this, any web site open in the user's browser could read the dashboard and type into it."""
    import logging

    import aiohttp
    from aiohttp import web
    from textual_serve.server import Server

    from .. import jsonsafe
    from ..servers.base import same_origin

    @web.middleware
    async def own_page_only(request: web.Request, handler):
        if not same_origin(request, allow_origins):
            raise web.HTTPForbidden(text="this dashboard answers its own page only (see midstream serve "
                                         "--allow-origin)")
        return await handler(request)

    class Served(Server):
        sessions = 0

        async def _make_app(self) -> web.Application:
            app = await super()._make_app()
            app.middlewares.append(own_page_only)
            return app

        def initialize_logging(self) -> None:  # (plain lines: textual-serve's showed a client's message among the
            logging.basicConfig(level=logging.WARNING, format="midstream serve: %(message)s")  # locals of a traceback)

        async def on_startup(self, app: web.Application) -> None:
            pass  # (said in one line once it listens: its banner came before "cannot listen")

        async def handle_index(self, request: web.Request):
            # the page points the browser at the address it used (bound to 0.0.0.0, or behind a proxy, it pointed
            # at http://0.0.0.0:PORT: the browser's own machine)
            self.public_url = f"{request.scheme}://{request.host}"
            return await super().handle_index(request)

        async def handle_websocket(self, request: web.Request) -> web.StreamResponse:
            if self.sessions >= MAX_DASHBOARDS:  # (each is a process of ~300 MB: five took 1.5 GB, with no cap)
                raise web.HTTPServiceUnavailable(text=f"{MAX_DASHBOARDS} dashboards are open already: close one")
            size = {"width": _size(request.query.get("width"), 80, MAX_COLUMNS),
                    "height": _size(request.query.get("height"), 24, MAX_ROWS)}
            request = request.clone(rel_url=request.rel_url.update_query(size))
            self.sessions += 1
            try:
                return await super().handle_websocket(request)
            finally:
                self.sessions -= 1

        async def _process_messages(self, websocket: web.WebSocketResponse, app_service) -> None:
            """The browser's messages, checked: one that is not the page's (not JSON, a size that is not one)
            closes the connection with a word (it printed a traceback, or ended the dashboard's process)."""
            async for message in websocket:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    envelope = jsonsafe.loads(message.data)
                    if not isinstance(envelope, list) or not envelope:  # (an object of two keys: a KeyError)
                        raise ValueError("not a list")
                    kind, data = envelope[0], envelope[1] if len(envelope) > 1 else None
                    if kind == "stdin" and isinstance(data, str):
                        await app_service.send_bytes(data.encode("utf-8", "replace"))
                    elif kind == "resize" and isinstance(data, dict):
                        await app_service.set_terminal_size(_size(data.get("width"), None, MAX_COLUMNS),
                                                            _size(data.get("height"), None, MAX_ROWS))
                    elif kind == "ping":
                        await websocket.send_json(["pong", data])
                    elif kind == "blur":
                        await app_service.blur()
                    elif kind == "focus":
                        await app_service.focus()
                    else:
                        raise ValueError(f"unknown message {str(kind)[:40]!r}")
                except (ValueError, TypeError, IndexError, KeyError, OverflowError) as exc:  # (1e400: inf, no int)
                    await websocket.close(code=aiohttp.WSCloseCode.UNSUPPORTED_DATA,
                                          message=f"not a dashboard message ({type(exc).__name__})".encode())
                    return

    return Served(command, host=host, port=port, title="MidStream")


MAX_DASHBOARDS = 4
"""Dashboards `midstream serve` runs at once: each browser tab is a process of its own (about 300 MB)."""
MAX_COLUMNS, MAX_ROWS = 500, 200
"""The largest terminal a browser may ask of a served dashboard (2000 x 1000 kept a core busy redrawing)."""


def _size(value, default: int | None, most: int) -> int:
    """A terminal's width or height from a browser: a whole number from 10 (columns; 5 rows) to ``most``;
    ``default`` when it says none (``ValueError`` when there is no default)."""
    try:
        n = int(value)
    except (TypeError, ValueError, OverflowError):
        if default is None:
            raise ValueError(f"not a size: {str(value)[:20]!r}") from None
        n = default
    return max(5 if most == MAX_ROWS else 10, min(most, n))


MAX_DIM = 100
"""The largest embedding dimension `analyze --dim` takes (false nearest neighbours stop at 10)."""


def _whole(lo: int, hi: int | None = None):
    """An argparse type: a whole number in [lo, hi] (a one-line error otherwise)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"expected {f'>= {lo}' if hi is None else f'{lo} to {hi}'}, "
                                             f"got {value}")
        return value
    return parse


def _one_line(text: str) -> str:
    """An error for the user on one line: what a library's message spread over several (SQLite's integrity
    check: "*** in database main ***" then one line per fault) joined by "; "."""
    return "; ".join(part.strip() for part in text.splitlines() if part.strip()) or text


def _number(lo: float, *, above: bool = False):
    """An argparse type: a finite number >= lo (> lo when ``above``)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value < lo or (above and value == lo):
            raise argparse.ArgumentTypeError(f"expected a number {'>' if above else '>='} {lo:g}, got {text}")
        return value
    return parse


def _analyze(args: argparse.Namespace) -> int:
    import json

    from .series import read_series
    from ..sessions import SUFFIX, session_files

    from ..analysis.dynamics import MIN_DT

    if not (math.isfinite(args.dt) and args.dt >= MIN_DT):
        raise CliError(f"--dt {args.dt}: expected a number >= {MIN_DT:g} (smaller, a rate per time unit "
                       "overflows)")
    named = not Path(args.file).exists() and (args.file.isdigit() or any(
        p.name in (args.file, args.file + SUFFIX) for p in session_files(load_settings().data_dir)))
    sqlite = False  # a regular file that begins as every SQLite database does is a session, whatever its name
    if Path(args.file).is_file():  # (never a pipe: what was read of it would be lost to read_series)
        try:
            with open(args.file, "rb") as f:
                sqlite = f.read(16) == b"SQLite format 3\0"
        except OSError:  # (unreadable: read_series says so)
            sqlite = False
    if args.file.endswith(".sqlite") or args.file == "last" or named or sqlite:  # a session: path, number, name
        if args.column is not None:
            raise CliError("--column applies to series files; a recorded session is analysed signal by signal")
        return _analyze_session(args)
    x, column = read_series(args.file, args.column)
    span = ((args.dim or 1) - 1) * (args.lag or 1) + (args.lag or 0)
    if (args.lag is not None or args.dim is not None) and span >= x.size:
        given = " ".join(f"--{k} {v}" for k, v in (("dim", args.dim), ("lag", args.lag)) if v is not None)
        raise CliError(f"{given}: needs more than {span} points, {args.file} has {x.size}")
    out = ({"file": args.file, "column": column}
           | _series_dynamics(x, args.dt, args.dim, args.lag, args.motif_length, args.file, args.max_points))
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"{escaped(args.file)}{'' if column is None else f', column {escaped(column)}'}: {x.size} points, "
          f"dt {args.dt:g}")
    _print_dynamics(out)
    return 0


def _series_dynamics(x: np.ndarray, dt: float, dim: int | None, lag: int | None, motif_length: int | None,
                     what: str, max_points: int = DYNAMICS_POINTS) -> dict:
    """Embedding, Lyapunov exponent, attractor class and recurring shapes of one series (the embedding and the
    exponents of its newest ``max_points`` values)."""
    from ..analysis.dynamics import classify_attractor, largest_lyapunov, lyapunov_spectrum, select_lag
    from ..analysis.temporal import find_motifs

    bad = ~np.isfinite(x)
    if bad.any():
        raise SeriesError(f"{what}: {int(bad.sum())} NaN/inf value(s), first at index "
                          f"{int(np.flatnonzero(bad)[0])}: clean or drop them first")
    out: dict = {"points": int(x.size), "dt": dt}
    whole = x
    if x.size > max_points:  # (said: "of the last N values")
        x = x[-max_points:]
        out["lyapunov_points"] = int(x.size)
    try:
        res = largest_lyapunov(x, dt, dim=dim, lag=lag)
        out |= {"lag": res.lag, "dim": res.dim}
        if dim is None:
            out["fnn"] = [round(f, 4) for f in res.fnn]  # (the shares that chose the dimension)
        out["lyapunov"] = res.to_json()
    except SeriesError as exc:  # too short or constant: a defined "insufficient" result
        chosen = lag if lag is not None else select_lag(x) if x.size >= 16 and x.max() > x.min() else None
        out |= {"lag": chosen, "dim": dim, "lyapunov": None, "reason": str(exc)}
    if out["lyapunov"] is not None:
        try:
            out["spectrum"] = lyapunov_spectrum(x, dt, dim=dim, lag=lag).to_json()
        except SeriesError as exc:
            out |= {"spectrum": None, "spectrum_reason": str(exc)}
    x = whole
    out["attractor"] = att = classify_attractor(x).to_json()
    used = att.get("evidence", {}).get("points")
    lyap = out["lyapunov"]
    if lyap and lyap.get("reliable") and att["type"] in ("point", "limit cycle"):
        spread = (lyap.get("local_maps") or {}).get("stderr") or 0.0
        if lyap["lyapunov"] - 2 * spread > 0:  # the exponent says chaos, the class (of the newest values) does not
            att["conflict"] = (f"the exponent of {'the last' if 'lyapunov_points' in out else 'all'} "
                               f"{out.get('lyapunov_points', x.size)} values, {lyap['lyapunov']:+.4g} per time unit "
                               f"(reliable), says chaos; this class is of the last {used or x.size} values alone")
    window = x[-MOTIF_WINDOW:]
    length = motif_length or int(min(max(8, 8 * (out["lag"] or 1)), window.size // 4))
    if 3 <= length <= window.size // 2 and window.max() > window.min():
        motifs = find_motifs(window, length, k=3)
        offset = x.size - window.size
        out["motifs"] = [{"positions": [p + offset for p in m.positions], "distance": round(m.distance, 4),
                          "length": m.length} for m in motifs]
    elif motif_length:
        raise CliError(f"--motif-length {motif_length}: expected 3 to {window.size // 2}")
    return out


def _rate(v) -> str:
    """An exponent per unit of time for a line of ``analyze``: 4 decimals, or powers of ten where those would say
    nothing or too much (``--dt 1e-300`` makes 6.9e+299, 300 digits as a decimal; ``--dt 1e300`` 6.9e-301, 0)."""
    if v is None:
        return "n/a"
    return f"{v:+.4f}" if v == 0 or 1e-3 <= abs(v) < 1e9 else f"{v:+.4e}"


def _print_dynamics(out: dict, indent: str = "  ") -> None:
    lag = "not chosen" if out["lag"] is None else out["lag"]
    dim = "not chosen" if out["dim"] is None else out["dim"]  # (too short for the lag given: below, why)
    print(f"{indent}embedding     lag {lag}, dimension {dim}"
          + (f" (false neighbours {out['fnn']})" if out.get("fnn") else "")
          + (f"; it and the exponents of the last {out['lyapunov_points']:,} values (--max-points)"
             if "lyapunov_points" in out else ""))
    ly = out["lyapunov"]
    if ly:
        value = "n/a" if ly["lyapunov"] is None else _rate(ly['lyapunov'])
        if ly.get("unreliable"):
            print(f"{indent}lyapunov      unreliable: {ly['unreliable']} (the {ly.get('method', 'estimate')} gave "
                  f"{value} per time unit)")
        else:
            maps = ly.get("local_maps") or {}
            spread = (f" +- {2 * maps['stderr']:.2g}" if ly.get("method") == "local maps" and maps.get("stderr")
                      is not None else "")
            print(f"{indent}lyapunov      {value}{spread} per time unit ({ly['per_sample']:+.5f} per sample), "
                  f"from {ly.get('method', 'the divergence curve')}" + (" (+- two standard errors)" if spread else ""))
        maps = ly.get("local_maps")
        if maps and all(v is None for v in maps["by_dim"].values()):  # none fitted (a dimension they cannot
            # take, too few neighbours)
            print(f"{indent}local maps    not measured: {maps['unreliable'] or 'nothing could be fitted'}")
        elif maps:
            tried = ", ".join(f"{d}: {'n/a' if v is None else f'{v:+.4g}'}" for d, v in maps["by_dim"].items())
            print(f"{indent}local maps    {'n/a' if maps['lyapunov'] is None else _rate(maps['lyapunov'])}, "
                  f"lag {maps['lag']}, dimension {maps['dim'] or 'not settled'} (by dimension {tried})"
                  + (f"; misfit {maps['misfit']:.3f} vs {maps['surrogate_misfit']:.3f} on a phase-randomised "
                     "surrogate" if maps["misfit"] is not None and maps["surrogate_misfit"] is not None else ""))
        ro = ly.get("rosenstein") or {}
        fit = ly["fit"]
        ro_value = "n/a" if ro.get("lyapunov") is None else _rate(ro['lyapunov'])
        print(f"{indent}divergence    {ro_value} (Rosenstein): fit steps {fit['start']}-{fit['stop']} of "
              f"{ly['horizon']}, r^2 {fit['r2']}, Theiler window {ly['theiler']}"
              + (f"; {ro['unreliable']}" if ro.get("unreliable") else ""))
    else:
        print(f"{indent}lyapunov      not measurable: {out['reason']}")
    spec = out.get("spectrum")
    if spec:
        values = ", ".join(_rate(v) for v in spec["exponents"])
        ky = "n/a" if spec["kaplan_yorke"] is None else f"{spec['kaplan_yorke']:.3f}"
        print(f"{indent}spectrum      {values} per time unit (local maps, dimension {spec['dim']}, lag {spec['lag']}); "
              f"Kaplan-Yorke dimension {ky}" + (f"; unreliable: {spec['unreliable']}" if spec["unreliable"] else ""))
    elif "spectrum_reason" in out:
        print(f"{indent}spectrum      not measurable: {out['spectrum_reason']}")
    att = out["attractor"]
    print(f"{indent}attractor     {att['type']} (confidence {att['confidence']}), {att['reason']}")
    if att.get("conflict"):
        print(f"{indent}              but {att['conflict']}")
    for m in out.get("motifs", []):
        print(f"{indent}motif         {m['length']} samples at {m['positions'][0]} and {m['positions'][1]} "
              f"(z-normalized distance {m['distance']})")


def _longest_finite(x: np.ndarray) -> tuple[np.ndarray, int]:
    """The longest stretch of ``x`` without NaN or inf (the last of equals), and how many values are not finite."""
    bad = np.flatnonzero(~np.isfinite(x))
    if not bad.size:
        return x, 0
    edges = np.concatenate(([-1], bad, [x.size]))
    lengths = np.diff(edges) - 1
    best = int(len(lengths) - 1 - np.argmax(lengths[::-1]))
    return x[edges[best] + 1:edges[best + 1]], int(bad.size)


def _analyze_session(args: argparse.Namespace) -> int:
    """Every recorded signal of a session through the same analysis core as a series file."""
    import json

    from ..sessions import Session, recorded_signals, resolve

    path = resolve(args.file, load_settings().data_dir)
    results = []
    with Session(path) as session:
        for entry in recorded_signals(session):
            signals = entry.pop("signals")
            entry["signals"] = {}
            for label, x in signals.items():
                recorded, x, bad = x.size, *_longest_finite(x)
                try:
                    entry["signals"][label] = _series_dynamics(x, args.dt, args.dim, args.lag, args.motif_length,
                                                               label, args.max_points)
                except (SeriesError, CliError) as exc:  # (a --motif-length too long for this signal: said here)
                    entry["signals"][label] = {"points": int(x.size), "reason": str(exc)}
                if bad:  # (values a damaged file holds: never joined across, never left unsaid)
                    entry["signals"][label]["recorded"] = int(recorded)
                    entry["signals"][label]["non_finite"] = int(bad)
            results.append(entry)
    if args.json:
        print(json.dumps({"session": str(path), "streams": results}))
        return 0
    print(f"{escaped(path.name)}: {len(results)} streams")
    for entry in results:
        counted = ", ".join(f"{n} {k}" for k, n in sorted(entry["patterns"].items())) or "no patterns"
        print(f"{escaped(entry['stream'])} ({entry['kind']}, {entry['status']}): {escaped(counted)}")
        for label, out in entry["signals"].items():
            print(f"  {label}: {out['points']} points" + (
                f" (the longest unbroken stretch of {out['recorded']} recorded: {out['non_finite']} are NaN or inf)"
                if out.get("non_finite") else ""))
            if "attractor" in out:
                _print_dynamics(out, indent="    ")
            else:
                print(f"    {escaped(out['reason'])}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    import json

    from ..analysis.temporal import compare
    from .series import read_series

    if args.tokens and args.column is not None:
        raise CliError("--column does not apply with --tokens (the whole text of each file is compared)")
    if args.window is not None and args.algorithm != "dtw":  # (it was ignored without a word)
        raise CliError(f"--window applies to dtw, not to {args.algorithm} (lcs and edit match values within --eps)")
    if args.eps and args.algorithm not in ("lcs", "edit"):
        raise CliError(f"--eps applies to lcs and edit, not to {args.algorithm}")
    a, column_a = read_series(args.a, args.column, args.tokens)
    b, column_b = read_series(args.b, args.column, args.tokens)
    try:
        result = compare(a, b, args.algorithm, window=args.window, eps=args.eps, tokens=args.tokens,
                         max_cells=args.max_cells)
    except SeriesError as exc:  # it names its inputs A and B: the user named files
        message = str(exc)
        for slot, path in (("A: ", args.a), ("B: ", args.b)):
            if message.startswith(slot):
                message = f"{path}: {message[len(slot):]}"
        raise CliError(message) from None
    if not math.isfinite(result["value"]):  # (JSON has no infinity; a number printed as inf says nothing)
        raise CliError(f"the {args.algorithm} distance of {args.a} and {args.b} is beyond the range of a float "
                       "(values near 1e308): scale the series down")
    if column_a is not None or column_b is not None:
        result |= {"column_a": column_a, "column_b": column_b}
    if args.json:
        print(json.dumps(result))
    else:
        extra = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                          for k, v in result.items() if k not in ("algorithm", "value") and v is not None)
        print(f"{args.algorithm}: {result['value']:.6g} ({extra})")
    return 0


COMMANDS = {"emulate-openai": _emulate, "serve": _serve, "signaling": _signaling, "sessions": _sessions,
            "audit": _audit, "meta": _meta, "replay": _replay, "export": _export, "publish": _publish,
            "analyze": _analyze, "compare": _compare, "watch": _watch}
"""The subcommands that take their parsed arguments as they are (run and demo choose sources first)."""


READS_SESSIONS = ("replay", "export", "analyze")
"""Commands that read a recorded session, which may be damaged past what opening it checks."""


def _reading_a_session(handler, args: argparse.Namespace) -> int:
    """``handler(args)``, a file damaged past what opening it checks said in one line: a page SQLite finds
    malformed half-way through (a flipped byte ``quick_check`` does not see), a value of another type than the
    recorder writes (a hand-edited row). They ended replay, export and analyze with a traceback."""
    try:
        return handler(args)
    except DamagedRead as exc:
        raise CliError(f"{getattr(args, 'session', None) or getattr(args, 'file', '')}: the session file is damaged "
                       f"({exc})") from None
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
        if isinstance(exc, (SeriesError, StoreError, CliError)):  # (its own words: ValueErrors of ours)
            raise
        where = getattr(args, "session", None) or getattr(args, "file", "")
        raise CliError(f"{where}: a record of a shape the recorder does not write ({type(exc).__name__}: "
                       f"{str(exc)[:120]})") from None


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a character the terminal's encoding lacks (LANG=C, a file name in
        # another script) is written escaped: `audit` ended in a UnicodeEncodeError on an ASCII stdout
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            args.headless = args.json = args.virtual = False
            args.duration = None
            args.transcribe, args.transcribe_model, args.detect = "sphinx", "whisper-1", "faces"
            args.record, args.no_record = None, False
            return _run(demo_uris("all"), args)
        if args.command == "run":
            return _run(args.sources, args)
        if args.command == "proxy":
            return _proxy(args)
        if args.command == "demo" and args.which == "openai":
            return _demo_openai(args)
        if args.command == "demo":
            if args.virtual:  # virtual time: the simulated streams only (media plays in real time)
                return _run(DEMOS[args.which], args)
            return _run(demo_uris(args.which), args)
        handler = COMMANDS.get(args.command)
        if handler is not None and args.command in READS_SESSIONS:
            return _reading_a_session(handler, args)
        if handler is not None:
            return handler(args)
        raise CliError(f"unknown command {args.command!r}")
    except (CliError, SourceError, HubError, ConfigError, SeriesError, RuleError, StoreError) as exc:
        print(f"midstream: error: {_one_line(redact(str(exc)))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `midstream ... | head`: the reader has what it wanted
        from ..headless import _reader_gone

        _reader_gone(sys.stdout)
        return 0
