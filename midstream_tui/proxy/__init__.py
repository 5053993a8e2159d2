"""The gateway (``midstream proxy``): applications' LLM traffic forwarded unchanged, analyzed as it streams,
cut mid-stream by rules. See ``gateway.py``; ``midstream
proxy`` runs it in a process of its own (``relay.py``)."""

from .gateway import ON_CUT, SLO_NAMES, TOKEN_HEADER, ProxiedStream, ProxyError, ProxyOptions, ProxyServer, parse_slo
from .protocols import APIS, Reader, cut_ending
from .relay import PROXY_DYNAMICS_PER_S, ProxyProcess, RelayError
from .sse import SSEParser, SSEvent

__all__ = ["APIS", "ON_CUT", "PROXY_DYNAMICS_PER_S", "SLO_NAMES", "TOKEN_HEADER", "parse_slo", "ProxiedStream", "ProxyError", "ProxyOptions", "ProxyProcess",
           "ProxyServer", "Reader", "RelayError",
           "SSEParser", "SSEvent", "cut_ending"]
