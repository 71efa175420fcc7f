"""Configuration from environment variables, with working defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit


@dataclass(frozen=True)
class Settings:
    """Where Relais keeps its state and how it reaches the broker.

    | variable | default |
    |---|---|
    | `RELAIS_DATA_DIR` | `./var` |
    | `RELAIS_DATABASE_URL` | `sqlite:///<data dir>/relais.db` |
    | `RELAIS_AMQP_URI` | `amqp://guest:guest@127.0.0.1:5672/`; a cluster's nodes separated by commas (`amqp_nodes`) |
    | `RELAIS_TENANT` | `default` |
    | `RELAIS_CONSUMERS` | every consumer the contracts name (`none`: no queue declared by publishers) |
    | `RELAIS_SQLITE_BUSY_TIMEOUT` | 60: seconds a SQLite writer waits for another's lock (`relais.db`) |

    (`RELAIS_QUEUE_TYPE`, classic or quorum, is read where queues are declared: `relais.bus.topology`;
    the queues' bounds, `RELAIS_QUEUE_MAX_*` and `RELAIS_UNROUTED_MAX_*`, by `relais.bus.bounds`.)
    """

    data_dir: Path
    database_url: str
    amqp_uri: str
    tenant: str
    consumers: tuple[str, ...] | None = None  # None: every consumer the contracts name

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
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
    """The URL with its password replaced, safe to print or log; each of a list separated by commas
    (a RabbitMQ cluster's nodes, `amqp_nodes`)."""
    if "," in url:
        return ",".join(redact_url(part) for part in url.split(","))
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


@dataclass(frozen=True)
class AmqpParams:
    host: str
    port: int
    userid: str
    password: str
    virtual_host: str

    @property
    def hostport(self) -> str:
        return f"{self.host}:{self.port}"

    def connection_kwargs(self) -> dict:
        return {
            "host": self.hostport,
            "userid": self.userid,
            "password": self.password,
            "virtual_host": self.virtual_host,
        }


def parse_amqp_uri(uri: str) -> AmqpParams:
    """Split `amqp://user:pass@host:port/vhost` (vhost `/` when the path is empty or `/`).

    Of a list of nodes (`amqp_nodes`), the first: what the user and the vhost are, which every node shares.
    """
    return amqp_nodes(uri)[0]


def amqp_nodes(uri: str) -> tuple[AmqpParams, ...]:
    """The nodes of `RELAIS_AMQP_URI`: one URI, or those of a RabbitMQ cluster's nodes separated by commas.

    A client connects to the first that answers and, when it loses its connection (a node stopped
    or lost), to the next that answers (deploy/rabbitmq-cluster.md): the publisher, the consumers,
    the readiness check. The nodes must share the user and the vhost, being one broker.
    """
    nodes = tuple(_parse_one(part.strip()) for part in uri.split(",") if part.strip())
    if not nodes:
        raise ValueError("RELAIS_AMQP_URI is empty: give amqp://user:password@host:port/vhost, or several "
                         "separated by commas for a cluster's nodes")
    first = nodes[0]
    for node in nodes[1:]:
        if (node.userid, node.password, node.virtual_host) != (first.userid, first.password, first.virtual_host):
            raise ValueError(f"RELAIS_AMQP_URI lists nodes of one cluster with different users, passwords or vhosts "
                             f"({first.hostport} and {node.hostport}): give each node the same user and vhost")
    return nodes


def kombu_amqp_uri(uri: str) -> str:
    """`RELAIS_AMQP_URI` as kombu (nameko's RPC) takes a cluster's nodes: separated by `;`, tried in turn."""
    return ";".join(part.strip() for part in uri.split(",") if part.strip())


def _parse_one(uri: str) -> AmqpParams:
    parts = urlsplit(uri)
    if parts.scheme not in ("amqp", "pyamqp"):
        raise ValueError(f"RELAIS_AMQP_URI must start with amqp://, got scheme {parts.scheme!r}")
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    return AmqpParams(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5672,
        userid=unquote(parts.username or "guest"),
        password=unquote(parts.password or "guest"),
        virtual_host=unquote(path) if path else "/",
    )
