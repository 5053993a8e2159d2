"""Settings from the environment and an optional ``.env`` file (python-dotenv).

Values already in the environment win over ``.env``. Secrets read here (API
keys, later) are never printed, logged or recorded: ``Settings.__repr__``
leaves them out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import load_dotenv

DEFAULT_REFRESH_MS = 100


def default_data_dir() -> Path:
    """Where sessions (and what was learned) are kept: MIDSTREAM_DATA_DIR, else the XDG data folder."""
    explicit = os.environ.get("MIDSTREAM_DATA_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "midstream" / "sessions"


@dataclass(frozen=True)
class Settings:
    refresh_ms: int = DEFAULT_REFRESH_MS
    openai_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str | None = None
    signaling_token: str | None = field(default=None, repr=False)
    """MIDSTREAM_SIGNALING_TOKEN: the bearer token WebRTC peers show the signaling server."""
    keep_mb: float = 1000.0
    """MIDSTREAM_KEEP_MB: recorded sessions in the data folder beyond this size are pruned, oldest first."""
    keep_days: float = 30.0
    """MIDSTREAM_KEEP_DAYS: recorded sessions older than this are pruned."""
    proxy_token: str | None = field(default=None, repr=False)
    """MIDSTREAM_PROXY_TOKEN: what clients show ``midstream proxy`` (header x-midstream-token) when it binds
    beyond loopback."""
    nats_user: str | None = None
    """MIDSTREAM_NATS_USER (with MIDSTREAM_NATS_PASSWORD): the NATS login of ``--publish`` and ``watch``."""
    nats_password: str | None = field(default=None, repr=False)
    nats_token: str | None = field(default=None, repr=False)
    """MIDSTREAM_NATS_TOKEN: a NATS token instead of a user and password."""
    nats_ca: str | None = None
    """MIDSTREAM_NATS_CA: a CA bundle to trust for TLS to NATS (implies TLS)."""
    nats_nkey: str | None = None
    """MIDSTREAM_NATS_NKEY: a file holding the NKey seed to log in to NATS with."""
    nats_creds: str | None = None
    """MIDSTREAM_NATS_CREDS: a NATS ``.creds`` file (user JWT and seed)."""
    data_dir: Path = field(default_factory=default_data_dir)
    """MIDSTREAM_DATA_DIR (else the XDG data folder): recorded sessions, and what was learned (meta.json)."""


class ConfigError(ValueError):
    pass


def load_settings(env_file: str | None = None) -> Settings:
    load_dotenv(env_file or os.path.join(os.getcwd(), ".env"), override=False)
    raw = os.environ.get("MIDSTREAM_REFRESH_MS", str(DEFAULT_REFRESH_MS))
    try:
        refresh = int(raw)
    except ValueError:
        raise ConfigError(f"MIDSTREAM_REFRESH_MS={raw!r}: expected milliseconds as an integer") from None
    return Settings(
        refresh_ms=refresh,
        keep_mb=_positive("MIDSTREAM_KEEP_MB", 1000.0),
        keep_days=_positive("MIDSTREAM_KEEP_DAYS", 30.0),
        openai_api_key=os.environ.get("OPENAI_API_KEY") or None,
        openai_base_url=os.environ.get("OPENAI_BASE_URL") or None,
        signaling_token=os.environ.get("MIDSTREAM_SIGNALING_TOKEN") or None,
        proxy_token=os.environ.get("MIDSTREAM_PROXY_TOKEN") or None,
        nats_user=os.environ.get("MIDSTREAM_NATS_USER") or None,
        nats_password=os.environ.get("MIDSTREAM_NATS_PASSWORD") or None,
        nats_token=os.environ.get("MIDSTREAM_NATS_TOKEN") or None,
        nats_ca=os.environ.get("MIDSTREAM_NATS_CA") or None,
        nats_nkey=os.environ.get("MIDSTREAM_NATS_NKEY") or None,
        nats_creds=os.environ.get("MIDSTREAM_NATS_CREDS") or None,
        data_dir=default_data_dir(),
    )


def _positive(name: str, default: float) -> float:
    raw = os.environ.get(name)
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a number") from None
    if not value > 0:
        raise ConfigError(f"{name}={raw!r}: expected a number > 0")
    return value
