"""Settings from the environment and an optional ``.env`` file (python-dotenv).

Values already in the environment win over ``.env``. Secrets read here (API
keys, later) are never printed, logged or recorded: ``Settings.__repr__``
leaves them out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from dotenv import load_dotenv

DEFAULT_REFRESH_MS = 100


@dataclass(frozen=True)
class Settings:
    refresh_ms: int = DEFAULT_REFRESH_MS
    openai_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str | None = None
    signaling_token: str | None = field(default=None, repr=False)
    """MIDSTREAM_SIGNALING_TOKEN: the bearer token WebRTC peers show the signaling server."""


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
        openai_api_key=os.environ.get("OPENAI_API_KEY") or None,
        openai_base_url=os.environ.get("OPENAI_BASE_URL") or None,
        signaling_token=os.environ.get("MIDSTREAM_SIGNALING_TOKEN") or None,
    )
