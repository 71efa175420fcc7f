"""Bounds on what RabbitMQ keeps for Relais, so the broker's memory and disk stay flat whatever runs.

Set as RabbitMQ policies on the vhost (`relais queues bound`, through the management API, or the
`rabbitmqctl set_policy` lines `relais queues bound --print` writes), not as queue arguments: a
policy applies at once to queues that exist already (a queue re-declared with other arguments
would be refused, PRECONDITION_FAILED), and a bound changed later applies without touching them.

- `relais-unrouted`, on `relais.unrouted`: at most `RELAIS_UNROUTED_MAX_LENGTH` messages
  (100000), `RELAIS_UNROUTED_MAX_BYTES` (64MiB), each for `RELAIS_UNROUTED_MAX_AGE` (7d); past a
  bound the oldest go (overflow `drop-head`): nobody reads this queue.
- `relais-consumers`, on `relais.q.<consumer>` and its `.dlq`: at most `RELAIS_QUEUE_MAX_LENGTH`
  (1000000) and `RELAIS_QUEUE_MAX_BYTES` (1GiB); when full RabbitMQ refuses (nacks) what comes
  (overflow `reject-publish`): the outbox keeps refused events and the relay tries again later.
- `relais-retries`, on `relais.q.<consumer>.retry.<n>`: no bound (a message waits there seconds);
  with quorum queues, a retry returning to a full queue waits there (at-least-once dead-lettering).

deploy/queues.md is the operator's side of it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relais.config import redact_url

from .topology import UNROUTED_QUEUE

PRIORITY = 10  # RabbitMQ applies one policy per queue, the matching one of highest priority
WARN_FILL = 0.8  # `relais status` warns from this fraction of a bound

_SIZE_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000 ** 2, "gb": 1000 ** 3,
               "kib": 1024, "mib": 1024 ** 2, "gib": 1024 ** 3}
_AGE_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class BoundsError(ValueError):
    """A bound we cannot read from the environment, or a management API that refuses them."""


@dataclass(frozen=True)
class Policy:
    name: str
    pattern: str
    definition: dict[str, Any]
    priority: int = PRIORITY

    def body(self) -> dict[str, Any]:
        """The management API's `PUT /api/policies/<vhost>/<name>` body."""
        return {"pattern": self.pattern, "definition": self.definition, "priority": self.priority,
                "apply-to": "queues"}

    def rabbitmqctl(self, vhost: str) -> str:
        """The same policy as a `rabbitmqctl set_policy` command line."""
        definition = json.dumps(self.definition, separators=(",", ":"))
        return (f"rabbitmqctl set_policy -p {_shell(vhost)} --priority {self.priority} --apply-to queues "
                f"{self.name} {_shell(self.pattern)} {_shell(definition)}")


@dataclass(frozen=True)
class Bounds:
    """The bounds in force, from the environment (`from_env`); defaults keep a broker's use flat."""

    unrouted_length: int = 100_000
    unrouted_bytes: int = 64 * 1024 ** 2
    unrouted_age_s: int = 7 * 86400
    queue_length: int = 1_000_000
    queue_bytes: int = 1024 ** 3

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Bounds:
        env = os.environ if env is None else env
        d = cls()
        return cls(
            unrouted_length=_count(env, "RELAIS_UNROUTED_MAX_LENGTH", d.unrouted_length),
            unrouted_bytes=_size(env, "RELAIS_UNROUTED_MAX_BYTES", d.unrouted_bytes),
            unrouted_age_s=_age(env, "RELAIS_UNROUTED_MAX_AGE", d.unrouted_age_s),
            queue_length=_count(env, "RELAIS_QUEUE_MAX_LENGTH", d.queue_length),
            queue_bytes=_size(env, "RELAIS_QUEUE_MAX_BYTES", d.queue_bytes),
        )

    def policies(self) -> list[Policy]:
        return [
            Policy("relais-unrouted", f"^{re.escape(UNROUTED_QUEUE)}$", {
                "max-length": self.unrouted_length, "max-length-bytes": self.unrouted_bytes,
                "message-ttl": self.unrouted_age_s * 1000, "overflow": "drop-head"}),
            Policy("relais-consumers", r"^relais\.q\.[^.]+(\.dlq)?$", {
                "max-length": self.queue_length, "max-length-bytes": self.queue_bytes,
                "overflow": "reject-publish"}),
            # No length bound here (nothing is refused); for quorum queues, a retry whose delay ends while
            # its consumer's queue is full stays until there is room (classic queues ignore the strategy).
            Policy("relais-retries", r"^relais\.q\.[^.]+\.retry\.[0-9]+$", {
                "overflow": "reject-publish", "dead-letter-strategy": "at-least-once"}),
        ]


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    value = (env.get(name) or "").strip().replace("_", "")
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise BoundsError(f"{name} must be a whole number of messages, at least 1 (e.g. 100000), not {value!r}")
    return int(value)


def _size(env: Mapping[str, str], name: str, default: int) -> int:
    value = (env.get(name) or "").strip()
    if not value:
        return default
    m = re.fullmatch(r"(\d+)\s*([a-zA-Z]*)", value.replace("_", ""))
    if not m or m.group(2).lower() not in _SIZE_UNITS or int(m.group(1)) < 1:
        raise BoundsError(f"{name} must be a size in bytes, at least 1, with an optional unit (kB, MB, GB, "
                          f"KiB, MiB, GiB; e.g. 64MiB), not {value!r}")
    return int(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]


def _age(env: Mapping[str, str], name: str, default: int) -> int:
    value = (env.get(name) or "").strip()
    if not value:
        return default
    m = re.fullmatch(r"(\d+)\s*([a-zA-Z]?)", value)
    if not m or m.group(2).lower() not in _AGE_UNITS or int(m.group(1)) < 1:
        raise BoundsError(f"{name} must be a duration, at least 1 s, in seconds or with a unit (s, m, h, d; "
                          f"e.g. 7d), not {value!r}")
    return int(m.group(1)) * _AGE_UNITS[m.group(2).lower()]


def _shell(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


# -- the management API ----------------------------------------------------------------------


def management_request(api_url: str, method: str, path: str, body: Any = None, timeout: float = 5.0) -> Any:
    """One call to RabbitMQ's management API at `api_url` (`http://user:password@host:15672`): its JSON answer.

    Raises OSError when it does not answer, `urllib.error.HTTPError` for an error status.
    """
    parts = urllib.parse.urlsplit(api_url)
    base = f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}{parts.path.rstrip('/')}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}{path}", data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if parts.username:
        token = base64.b64encode(f"{urllib.parse.unquote(parts.username)}:"
                                 f"{urllib.parse.unquote(parts.password or '')}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def apply(api_url: str, vhost: str, bounds: Bounds, timeout: float = 5.0) -> list[Policy]:
    """Set every policy of `bounds` on `vhost` (idempotent); returns them.

    Raises BoundsError naming what to do when the API refuses (a user without the
    `policymaker` tag) or does not answer.
    """
    where = f"RabbitMQ's management API at {redact_url(api_url)}"
    policies = bounds.policies()
    for policy in policies:
        path = f"/api/policies/{urllib.parse.quote(vhost, safe='')}/{policy.name}"
        try:
            management_request(api_url, "PUT", path, policy.body(), timeout)
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                raise BoundsError(f"{where} refused to set policy {policy.name} on vhost {vhost!r} (HTTP {exc.code}): "
                                  "its user needs the policymaker (or administrator) tag and configure permission "
                                  "on the vhost; or have the broker's administrator run the lines of "
                                  "`relais queues bound --print`") from None
            raise BoundsError(f"{where} refused policy {policy.name} on vhost {vhost!r}: HTTP {exc.code} "
                              f"{_reason(exc)}") from None
        except OSError as exc:
            raise BoundsError(f"{where} does not answer ({exc}): set RELAIS_RABBITMQ_API, or run the lines of "
                              "`relais queues bound --print` on the broker") from None
    return policies


def _reason(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.load(exc).get("reason", ""))[:300]
    except ValueError:
        return ""


# -- reading the bounds in force -------------------------------------------------------------


@dataclass(frozen=True)
class InForce:
    """The bounds RabbitMQ applies to one queue: the lower of its policy's and its arguments'."""

    max_length: int | None
    max_bytes: int | None
    overflow: str | None
    policy: str | None

    @property
    def bounded(self) -> bool:
        return self.max_length is not None or self.max_bytes is not None


def in_force(policy: str | None, effective: Mapping[str, Any] | None, arguments: Mapping[str, Any] | None) -> InForce:
    """From a management API queue row's `policy`, `effective_policy_definition` and `arguments`."""
    effective, arguments = effective or {}, arguments or {}

    def lower(key: str) -> int | None:
        values = [v for v in (effective.get(key), arguments.get(f"x-{key}")) if isinstance(v, int)]
        return min(values) if values else None

    overflow = arguments.get("x-overflow") or effective.get("overflow")
    return InForce(lower("max-length"), lower("max-length-bytes"), overflow, policy or None)


def configured(queue: str, bounds: Bounds) -> InForce:
    """What `bounds` set on `queue` (when the broker's own view cannot be read)."""
    for policy in bounds.policies():
        if re.search(policy.pattern, queue):
            d = policy.definition
            return InForce(d.get("max-length"), d.get("max-length-bytes"), d.get("overflow"), policy.name)
    return InForce(None, None, None, None)


def fill(messages: int | None, message_bytes: int | None, bound: InForce) -> float | None:
    """How full a queue is, as the larger of its two fractions (None: no bound or nothing known)."""
    fractions = []
    if messages is not None and bound.max_length:
        fractions.append(messages / bound.max_length)
    if message_bytes is not None and bound.max_bytes:
        fractions.append(message_bytes / bound.max_bytes)
    return max(fractions) if fractions else None
