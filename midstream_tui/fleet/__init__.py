"""Many hosts, one view: agents publish what their hub sees over NATS (``Publisher``), a watcher shows every
agent's streams behind the hub's read surface (``RemoteHub``). The subjects and encoding are in ``wire``."""

from .publish import Publisher
from .watch import RemoteHub
from .wire import FleetError, NatsTarget, default_agent_name, parse_target

__all__ = ["FleetError", "NatsTarget", "Publisher", "RemoteHub", "default_agent_name", "parse_target"]
