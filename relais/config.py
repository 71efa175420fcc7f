"""Configuration from environment variables, with working defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


@dataclass(frozen=True)
class Settings:
    """Where Relais keeps its state and how it reaches the broker.

    | variable | default |
    |---|---|
    | `RELAIS_DATA_DIR` | `./var` |
    | `RELAIS_DATABASE_URL` | `sqlite:///<data dir>/relais.db` |
    | `RELAIS_AMQP_URI` | `amqp://guest:guest@127.0.0.1:5672/` |
    | `RELAIS_TENANT` | `default` |
    | `RELAIS_CONSUMERS` | every consumer the contracts name (`none`: no queue declared by publishers) |

    (`RELAIS_QUEUE_TYPE`, classic or quorum, is read where queues are declared: `relais.bus.topology`.)
    """

    data_dir: Path
    database_url: str
    amqp_uri: str
    tenant: str
    consumers: tuple[str, ...] | None = None  # None: every consumer the contracts name

    def expected_consumers(self) -> tuple[str, ...]:
        """The consumers whose queues publishers declare, so no event waits in `relais.unrouted` for them."""
        if self.consumers is not None:
            return self.consumers
        from relais.bus.contracts import subscriptions

        return tuple(sorted(subscriptions()))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        data_dir = Path(env.get("RELAIS_DATA_DIR") or "./var").resolve()
        return cls(
            data_dir=data_dir,
            database_url=env.get("RELAIS_DATABASE_URL") or f"sqlite:///{data_dir / 'relais.db'}",
            amqp_uri=env.get("RELAIS_AMQP_URI") or "amqp://guest:guest@127.0.0.1:5672/",
            tenant=env.get("RELAIS_TENANT") or "default",
            consumers=_consumers(env.get("RELAIS_CONSUMERS")),
        )


def _consumers(value: str | None) -> tuple[str, ...] | None:
    if value is None or not value.strip():
        return None
    if value.strip().lower() == "none":
        return ()
    return tuple(v.strip() for v in value.split(",") if v.strip())


def redact_url(url: str) -> str:
    """The URL with its password replaced, safe to print or log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))
