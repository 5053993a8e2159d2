"""OpenTelemetry export (``--otlp URL``): the hub's LLM requests as OTel metrics over OTLP/HTTP, named, measured
and attributed as the GenAI semantic conventions say (opentelemetry-sdk; names and units from
``opentelemetry-semantic-conventions``):

    gen_ai.client.operation.duration              s        request start to its last chunk
    gen_ai.client.operation.time_to_first_chunk   s        request start to its first chunk
    gen_ai.client.operation.time_per_output_chunk s        each gap between chunks after the first
    gen_ai.client.token.usage                     {token}  per request, gen_ai.token.type input / output

with ``gen_ai.operation.name``, ``gen_ai.provider.name``, ``gen_ai.request.model`` and ``server.address`` read
from what the stream comes from, and ``error.type`` on requests that ended in an error or were cut. The
resource says ``service.name`` midstream and ``service.instance.id`` the agent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from .metrics import CHUNK_BUCKETS, DURATION_BUCKETS, RequestTap
from .wire import without_login

TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
"""The conventions' advisory boundaries for gen_ai.client.token.usage."""
EXPORT_MS = 5000
OPERATIONS = {"chat": "chat", "responses": "chat", "completions": "text_completion", "messages": "chat",
              "realtime": "chat", "text": "chat"}
ERRORS = {"error": "error", "cut": "cancelled", "cancelled": "cancelled", "client left": "client_left"}
FINISHED = frozenset({"stop", "length", "tool_calls", "function_call", "content_filter", "end_turn", "max_tokens",
                      "stop_sequence", "tool_use", "pause_turn", "refusal", "finished", "completed", "incomplete"})
"""How a request that is no error ends (OpenAI's finish reasons, Anthropic's stop reasons, a stream's end): one
that ended so before any chunk (an empty answer) carries no ``error.type``."""


def genai_attributes(source: str) -> dict[str, str]:
    """``openai:chat/gpt-4o@api.openai.com``, ``proxy:anthropic/claude-x@api.anthropic.com``,
    ``sim:text/loop`` (a stream's identity) -> the conventions' request attributes."""
    scheme, _, rest = source.partition(":")
    what, _, host = rest.partition("@")
    api, _, model = what.partition("/")
    if scheme == "openai":
        out = {"gen_ai.provider.name": "openai", "gen_ai.operation.name": OPERATIONS.get(api, "chat"),
               "gen_ai.request.model": model or "unknown"}
    elif scheme == "proxy":  # proxy:PROVIDER/MODEL@UPSTREAM
        out = {"gen_ai.provider.name": api or "unknown", "gen_ai.operation.name": "chat",
               "gen_ai.request.model": model or "unknown"}
    else:  # a simulator, a replay, a library stream: not a provider the conventions name
        out = {"gen_ai.provider.name": f"midstream.{scheme or 'library'}", "gen_ai.operation.name": "chat",
               "gen_ai.request.model": what or "unknown"}
    if host:
        out["server.address"] = host
    return out


class OtlpMetrics(RequestTap):
    """Feeds OTel instruments from a live hub's events; exported every ``interval_ms`` and once more at the end."""

    adds_sources = False

    def __init__(self, hub, agent: str, endpoint: str, *, interval_ms: int = EXPORT_MS,
                 say: Callable[[str], None] | None = None) -> None:
        super().__init__(agent)
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import MetricExportResult
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.semconv._incubating.metrics import gen_ai_metrics as m

        parts = urlsplit(endpoint)
        if not parts.path.rstrip("/").endswith("/v1/metrics"):  # (the path, before a query: not after it)
            parts = parts._replace(path=parts.path.rstrip("/") + "/v1/metrics")
        url = urlunsplit(parts._replace(path=parts.path.rstrip("/")))
        self.endpoint = url
        self.hub = hub
        self.exports = self.failures = 0
        said = say or (lambda line: None)
        owner = self
        shown = without_login(url)
        # the exporter's own complaints go to Python logging (they would land on the dashboard): one line of ours
        logging.getLogger("opentelemetry.exporter.otlp.proto.http").setLevel(logging.CRITICAL)
        logging.getLogger("opentelemetry.sdk.metrics").setLevel(logging.CRITICAL)

        class Exporter(OTLPMetricExporter):
            def export(self, metrics_data, timeout_millis: float = 10_000, **kwargs):
                result = super().export(metrics_data, timeout_millis=timeout_millis, **kwargs)
                if result == MetricExportResult.SUCCESS:
                    if owner.failures and owner.exports == 0:
                        said(f"otlp: exporting to {shown} now works")
                    owner.exports += 1
                else:
                    owner.failures += 1
                    if owner.failures == 1 or owner.failures % 60 == 0:
                        said(f"otlp: export to {shown} failed ({owner.failures} so far); retrying each interval")
                return result

        reader = PeriodicExportingMetricReader(Exporter(endpoint=url, timeout=5), export_interval_millis=interval_ms)
        self.provider = MeterProvider(metric_readers=[reader], resource=Resource.create(
            {"service.name": "midstream", "service.instance.id": self.agent}))
        meter = self.provider.get_meter("midstream_tui")

        def histogram(name: str, unit: str, description: str, buckets) -> object:
            return meter.create_histogram(name, unit=unit, description=description,
                                          explicit_bucket_boundaries_advisory=list(buckets))

        self.duration = histogram(m.GEN_AI_CLIENT_OPERATION_DURATION, "s", "GenAI operation duration",
                                  DURATION_BUCKETS)
        self.first_chunk = histogram(m.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK, "s",
                                     "Time to receive the first chunk of a streamed response", DURATION_BUCKETS)
        self.per_chunk = histogram(m.GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK, "s",
                                   "Time per output chunk after the first", CHUNK_BUCKETS)
        self.usage = histogram(m.GEN_AI_CLIENT_TOKEN_USAGE, "{token}", "Number of input and output tokens used",
                               TOKEN_BUCKETS)
        self._attrs: dict[tuple, dict[str, str]] = {}
        hub.add_tap(self)

    def _attributes(self, labels) -> dict[str, str]:
        attrs = self._attrs.get(labels)
        if attrs is None:
            attrs = self._attrs[labels] = genai_attributes(labels[2])
        return attrs

    def on_first_chunk(self, labels, seconds: float) -> None:
        self.first_chunk.record(seconds, self._attributes(labels))

    def on_gap(self, labels, seconds: float) -> None:
        self.per_chunk.record(seconds, self._attributes(labels))

    def on_failed(self, labels, seconds: float, reason: str) -> None:
        """A request that ended before any chunk: its duration, with the error's type (none for an empty answer
        that ended as answers do: it was an error, "_OTHER", until 2026-12-08)."""
        # a reason the table does not know is "_OTHER" (OTel's fallback): never free text, which may quote anything
        attrs = self._attributes(labels)
        error = ERRORS.get(reason) or (None if reason in FINISHED else "_OTHER")
        self.duration.record(seconds, attrs | {"error.type": error} if error else attrs)

    def on_finished(self, labels, e2e, tpot, output_tokens, input_tokens, reason) -> None:
        attrs = self._attributes(labels)
        error = ERRORS.get(reason)
        self.duration.record(e2e, attrs | {"error.type": error} if error else attrs)
        if output_tokens:
            self.usage.record(output_tokens, attrs | {"gen_ai.token.type": "output"})
        if input_tokens:
            self.usage.record(input_tokens, attrs | {"gen_ai.token.type": "input"})

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        """A last export (what the final analysis step saw), then the exporter closes."""
        import asyncio

        await asyncio.to_thread(self.provider.shutdown, 10_000)
