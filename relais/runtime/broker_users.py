"""Each service's RabbitMQ user, with the narrowest permissions its process works with, and the operator's.

A user is `<prefix><role>` (`relais-directory`, ..., `relais-operator`): the RPC servers tell callers
apart by it (`relais.runtime.callers`). Its permissions on the vhost are regular expressions over
the names of what it declares (configure), publishes to or binds (write) and consumes or binds
from (read), derived from what the service's process declares and the contracts:

| the role... | configure | write | read |
|---|---|---|---|
| publishes events (its relay) | | `relais.events` (on it: the types `Process.sends` names, else any) | |
| runs consumer C | C's queues (1) | C's queues, `amq.default` (2) | C's queues, `relais.events` (3) |
| answers RPC (service S) | `nameko-rpc`, `rpc-S` | `rpc-S`, `nameko-rpc` (replies) | `nameko-rpc`, `rpc-S` |
| calls RPC (user U) | `nameko-rpc`, U's reply queues (4) | U's reply queues, `nameko-rpc` | the same |

(1) `relais.q.C`, its retry and dead-letter queues; (2) retries and dead letters go through the
default exchange; (3) to bind `relais.q.C`; (4) `rpc.reply-U-<uuid>`, nameko's reply queues.

Besides, topic permissions on the two topic exchanges, which RabbitMQ checks on every publish (write)
and binding (read) by routing key: on `nameko-rpc`, a caller may publish only `S.method` for the
methods the services let it call, and bind its reply queue only to a reply key (a uuid); a server
may bind only `S.*` and publish only replies; on `relais.events`, a consumer may bind only the event
types the contracts give it. So no user may bind a queue it reads to `#` to copy what others get.

What every service shares (`relais.events`, its alternate exchange and `relais.unrouted`, and each
consumer's queues, so events wait for a consumer that has not started yet) is declared once by the
deployment (`declare_shared`, as the broker's administrator), never by a service: declaring `relais.events`
would take reading `relais.unrouted` (RabbitMQ's rule for an alternate exchange), and declaring
another service's queue reading it (its dead-letter exchange).

The operator (`relais rpc`, `relais status`) may call every method a service lets the operator call,
and has the `monitoring` tag (the management API's queue figures); no service has a tag.

deploy/broker-users.md is the operator's side of it: the users, rotation, compose, chart, systemd.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import amqp

from relais.bus.topology import EVENTS_EXCHANGE, consumer_queues, declare_consumer, declare_events_exchange
from relais.config import parse_amqp_uri, redact_url
from relais.subject.audit import CONSUMER as SUBJECT_CONSUMER
from relais.subject.events import REQUESTED

from .process import OPERATOR, Process

DEFAULT_PREFIX = "relais-"
RPC_EXCHANGE = "nameko-rpc"  # nameko's (its default AMQP exchange for RPC)
DEFAULT_EXCHANGE = "amq.default"  # the name permissions give the default exchange ""
UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"  # nameko's reply routing keys
NOTHING = "^$"  # a permission matching no name
PASSWORD_VARIABLE = "RELAIS_BROKER_PASSWORD_{}"  # per role, upper case, _ for -: RELAIS_BROKER_PASSWORD_DIRECTORY


class BrokerUsersError(ValueError):
    """Users we cannot make as asked: the message says what and where."""


class BrokerUnreachable(BrokerUsersError):
    """The management API does not answer (yet: a broker starting opens it after its AMQP port)."""


@dataclass(frozen=True)
class Role:
    """What one broker user does on the bus."""

    name: str
    publishes: bool = False
    sends: tuple[str, ...] = ()  # the event types it may publish, when fewer than any (`Process.sends`)
    consumers: tuple[str, ...] = ()  # consumer names whose queues it reads (`relais.q.<name>`)
    answers: bool = False  # answers RPC as the service `name` (`rpc-<name>`)
    calls: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # service -> methods it may call
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Permissions:
    configure: str
    write: str
    read: str
    topics: Mapping[str, tuple[str, str]]  # topic exchange -> (write, read) routing-key patterns


def roles(processes: Mapping[str, Process[Any]], subscriptions: Mapping[str, Iterable[str]]) -> list[Role]:
    """Every service's role, from its process declaration and the consumers the contracts name, and the operator's.

    A process that neither publishes, consumes, answers nor calls RPC (the provisioning API) gets none.

    A consumer belongs to the service of its name, or of the name before its first `.` or `-`
    (`vault`, `provisioning.full`); one that belongs to no service is read by no service user. The operator
    (`relais subject erase`) publishes erasure requests only, and reads their confirmations (`relais.q.subject`).
    """
    calls: dict[str, dict[str, list[str]]] = {}
    for service, process in processes.items():
        for method, declared in process.rpc.items():
            for caller in declared.callers:
                calls.setdefault(caller, {}).setdefault(service, []).append(method)

    def owner(consumer: str) -> str | None:
        head = re.split(r"[.-]", consumer, maxsplit=1)[0]
        return consumer if consumer in processes else head if head in processes else None

    out = [Role(name=service, publishes=process.relay, sends=process.sends or (),
                consumers=tuple(sorted(c for c in subscriptions if owner(c) == service)),
                answers=bool(process.rpc),
                calls={s: tuple(sorted(m)) for s, m in sorted(calls.get(service, {}).items())})
           for service, process in sorted(processes.items())]
    out = [r for r in out if r.publishes or r.consumers or r.answers or r.calls]  # the others: no broker
    # `relais subject erase` runs as the operator: it publishes the erasure request and reads the confirmations.
    subject = SUBJECT_CONSUMER in subscriptions
    out.append(Role(name=OPERATOR, calls={s: tuple(sorted(m)) for s, m in sorted(calls.get(OPERATOR, {}).items())},
                    publishes=subject, sends=(REQUESTED,) if subject else (),
                    consumers=(SUBJECT_CONSUMER,) if subject else (), tags=("monitoring",)))
    return out


def _name(name: str) -> str:
    """`name` as a regular expression matching it alone (`-` left as it is, for legibility)."""
    return re.escape(name).replace("\\-", "-")


def _any_of(patterns: Iterable[str]) -> str:
    unique = sorted(set(patterns))
    return f"^({'|'.join(unique)})$" if unique else NOTHING


def permissions(role: Role, user: str, subscriptions: Mapping[str, Iterable[str]]) -> Permissions:
    """`role`'s permissions on the vhost, as user `user` (its reply queues are named after it)."""
    configure: list[str] = []
    write: list[str] = []
    read: list[str] = []
    topics: dict[str, tuple[list[str], list[str]]] = {EVENTS_EXCHANGE: ([], []), RPC_EXCHANGE: ([], [])}
    if role.publishes:
        write.append(_name(EVENTS_EXCHANGE))
        topics[EVENTS_EXCHANGE][0].extend([_name(t) for t in role.sends] or [".*"])
    for consumer in role.consumers:
        queues = consumer_queues(consumer)
        own = f"{_name(queues.main)}(\\.retry\\.[0-9]+|\\.dlq)?"
        configure.append(own)
        write += [own, _name(DEFAULT_EXCHANGE)]
        read += [own, _name(EVENTS_EXCHANGE)]
        topics[EVENTS_EXCHANGE][1].extend(_name(t) for t in subscriptions.get(consumer, ()))
    rpc = _name(RPC_EXCHANGE)
    if role.answers:
        queue = _name(f"rpc-{role.name}")
        configure += [rpc, queue]
        write += [rpc, queue]
        read += [rpc, queue]
        topics[RPC_EXCHANGE][0].append(UUID)
        topics[RPC_EXCHANGE][1].append(_name(f"{role.name}.*"))
    if role.calls:
        replies = f"{_name(f'rpc.reply-{user}-')}{UUID}"
        configure += [rpc, replies]
        write += [rpc, replies]
        read += [rpc, replies]
        topics[RPC_EXCHANGE][0].extend(_name(f"{service}.{method}")
                                       for service, methods in role.calls.items() for method in methods)
        topics[RPC_EXCHANGE][1].append(UUID)
    return Permissions(_any_of(configure), _any_of(write), _any_of(read),
                       {exchange: (_any_of(w), _any_of(r)) for exchange, (w, r) in topics.items()})


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's `rabbit_password_hashing_sha256`: base64(salt + sha256(salt + password)), a 4-byte salt."""
    salt = secrets.token_bytes(4) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode("utf-8")).digest()).decode("ascii")


def definitions(users: Mapping[str, tuple[Role, str]], vhost: str,
                subscriptions: Mapping[str, Iterable[str]]) -> dict[str, Any]:
    """A RabbitMQ definitions document (`rabbitmqctl import_definitions`, `load_definitions`, the
    management API) with these users (user name -> its role and password, stored hashed), the vhost
    and their permissions. It holds no queue: `declare_shared` declares them."""
    out: dict[str, Any] = {"vhosts": [{"name": vhost}], "users": [], "permissions": [], "topic_permissions": []}
    for user, (role, password) in sorted(users.items()):
        granted = permissions(role, user, subscriptions)
        out["users"].append({"name": user, "password_hash": password_hash(password),
                             "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ",".join(role.tags)})
        out["permissions"].append({"user": user, "vhost": vhost, "configure": granted.configure,
                                   "write": granted.write, "read": granted.read})
        out["topic_permissions"] += [{"user": user, "vhost": vhost, "exchange": exchange, "write": w, "read": r}
                                     for exchange, (w, r) in sorted(granted.topics.items())]
    return out


# -- passwords ----------------------------------------------------------------------------------------

def password_variable(role: str) -> str:
    return PASSWORD_VARIABLE.format(role.upper().replace("-", "_"))


def read_passwords(path: Path) -> dict[str, str]:
    """`NAME=value` lines of a passwords file (comments and blank lines skipped)."""
    out: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise BrokerUsersError(f"{path}, line {number}: expected NAME=password")
        out[name.strip()] = value.strip()
    return out


def passwords(role_names: Iterable[str], path: Path | None, env: Mapping[str, str] | None = None,
              rotate: Iterable[str] = ()) -> dict[str, str]:
    """Each role's password: its `RELAIS_BROKER_PASSWORD_<ROLE>` variable, else the passwords file's line,
    else a new one (192 random bits), written to the file (mode 0600) with the lines it had; `rotate`
    names roles given a new one in the file."""
    env = os.environ if env is None else env
    names = list(role_names)
    unknown = sorted(set(rotate) - set(names))
    if unknown:
        raise BrokerUsersError(f"--rotate {', '.join(unknown)}: no such role (roles: {', '.join(names)})")
    stored = read_passwords(path) if path is not None and path.exists() else {}
    out: dict[str, str] = {}
    changed = False
    for role in names:
        variable = password_variable(role)
        if role not in rotate and env.get(variable):
            out[role] = env[variable]
        elif role not in rotate and stored.get(variable):
            out[role] = stored[variable]
        elif path is None:
            raise BrokerUsersError(f"no password for the broker user of {role}: set {variable}, or name a "
                                   "passwords file (--passwords FILE) to keep new ones in")
        else:
            out[role] = stored[variable] = secrets.token_hex(24)
            changed = True
    if changed and path is not None:
        _write_secret(path, "".join(f"{name}={value}\n" for name, value in stored.items()))
    return out


def _write_secret(path: Path, text: str) -> None:
    """Write `text` to `path`, readable by its owner only, replacing it at once (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def amqp_uri(base: str, user: str, password: str) -> str:
    """`base` (amqp://host:port/vhost, or the management API's URL; any user in it dropped) as `user` with
    `password`."""
    parts = urllib.parse.urlsplit(base)
    host = parts.netloc.rsplit("@", 1)[-1]
    netloc = f"{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(password, safe='')}@{host}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def write_env_files(folder: Path, users: Mapping[str, tuple[Role, str]], base_uri: str,
                    management_url: str) -> list[Path]:
    """`<role>.env` per role in `folder` (mode 0600), for a unit's EnvironmentFile=: its RELAIS_AMQP_URI, and
    for the operator (the monitoring tag) RELAIS_RABBITMQ_API, `management_url` as that user."""
    written = []
    for user, (role, password) in sorted(users.items()):
        path = folder / f"{role.name}.env"
        text = (f"# {role.name}'s broker user (relais deploy broker-users)\n"
                f"RELAIS_AMQP_URI={amqp_uri(base_uri, user, password)}\n")
        if "monitoring" in role.tags:
            text += f"RELAIS_RABBITMQ_API={amqp_uri(management_url, user, password)}\n"
        _write_secret(path, text)
        written.append(path)
    return written


# -- applying them --------------------------------------------------------------------------------------

def import_definitions(api_url: str, document: Mapping[str, Any], timeout: float = 30.0) -> None:
    """Load `document` through the management API at `api_url` (an administrator's credentials in it):
    users and permissions are created or updated, nothing else is removed."""
    parts = urllib.parse.urlsplit(api_url)
    base = f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}{parts.path.rstrip('/')}"
    request = urllib.request.Request(f"{base}/api/definitions", data=json.dumps(document).encode(), method="POST",
                                     headers={"content-type": "application/json"})
    if parts.username:
        token = base64.b64encode(f"{urllib.parse.unquote(parts.username)}:"
                                 f"{urllib.parse.unquote(parts.password or '')}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:300]
        raise BrokerUsersError(f"RabbitMQ's management API at {redact_url(api_url)} refused the users "
                               f"(HTTP {exc.code}: {detail}); it needs an administrator's credentials") from None
    except (OSError, ValueError) as exc:
        raise BrokerUnreachable(f"RabbitMQ's management API at {redact_url(api_url)} does not answer: {exc}") from None


def declare_shared(admin_amqp_uri: str, subscriptions: Mapping[str, Iterable[str]], timeout: float = 10.0) -> None:
    """Declare what the services share, as the administrator: `relais.events` with its alternate exchange
    and `relais.unrouted`, nameko's `nameko-rpc`, and each consumer's queues, bound to the event types it
    receives (`subscriptions`)."""
    params = parse_amqp_uri(admin_amqp_uri)
    conn = amqp.Connection(**params.connection_kwargs(), connect_timeout=timeout)
    try:
        conn.connect()
        channel = declare_events_exchange(conn.channel())
        channel.exchange_declare(RPC_EXCHANGE, "topic", durable=True, auto_delete=False)  # as nameko declares it
        for consumer, types in sorted(subscriptions.items()):
            _queues, channel = declare_consumer(channel, consumer, list(types))
    except (OSError, amqp.exceptions.AMQPError) as exc:
        raise BrokerUsersError(f"cannot declare the shared exchanges and queues on RabbitMQ at {params.hostport} "
                               f"(vhost {params.virtual_host!r}) as {params.userid!r}: {exc}") from None
    finally:
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - closing what may already be broken
            pass
