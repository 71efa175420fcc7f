"""`relais status`: the state of a running stack, read from the broker, the database and the services.

What it reads, and from where:

- queue depths: RabbitMQ's management API (`RELAIS_RABBITMQ_API`, default
  `http://guest:guest@127.0.0.1:15672`) for the vhost of `RELAIS_AMQP_URI`;
  when the API does not answer, passive queue declares over AMQP (same numbers,
  without unacknowledged counts), and the report says so;
- services up: the `/readyz` of each ops endpoint given (`--ops SERVICE=URL` or
  `RELAIS_OPS_ENDPOINTS`), else the consumers on the queue a service consumes
  (`rpc-directory`, `relais.q.provisioning`, `rpc-vault`);
- the database's schema (how many of this version's migrations it lacks), and once it is current the
  outbox backlog and the last directory import: the database of `RELAIS_DATABASE_URL`.

`gather` does the reading; `judge` (no I/O) says what is wrong. The stack is
unhealthy when a service given by its ops endpoint is down or not ready, when
messages were dead-lettered, when a consumer queue holds messages and nobody
consumes it, when the broker or the database cannot be reached, when the database is
not migrated or behind this version's migrations (`relais db upgrade`), or when the
last directory import failed.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import amqp
from sqlalchemy import Connection
from sqlalchemy.engine import make_url

from relais.bus.bounds import WARN_FILL, Bounds, BoundsError, InForce, configured, fill, in_force
from relais.bus.contracts import expected_consumers, planned_subscriptions
from relais.bus.outbox import pending_count
from relais.bus.topology import UNROUTED_QUEUE, consumer_queues
from relais.config import Settings, parse_amqp_uri, redact_url
from relais.db import make_engine, migration_state
from relais.ops.logs import describe_error

DEFAULT_RABBITMQ_API = "http://guest:guest@127.0.0.1:15672"
TIMEOUT = 3.0

# Per service, the queue whose consumers show it is running (None: an HTTP service, seen only by its ops
# port): `gather`'s `services`, which the composition root derives from what each service's process runs.
ServiceQueues = Mapping[str, "str | None"]


class StatusConfigError(ValueError):
    """An ops endpoint list we cannot read."""


def parse_endpoints(values: list[str] | tuple[str, ...], env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`SERVICE=URL` items (from `--ops`, else RELAIS_OPS_ENDPOINTS, comma-separated) as a dict."""
    env = os.environ if env is None else env
    items = list(values) or [v for v in (env.get("RELAIS_OPS_ENDPOINTS") or "").split(",") if v.strip()]
    out = {}
    for item in items:
        name, sep, url = item.strip().partition("=")
        if not sep or not name or not url.startswith(("http://", "https://")):
            raise StatusConfigError(f"ops endpoint {item!r}: expected SERVICE=http://host:port")
        out[name.strip()] = url.strip().rstrip("/")
    return out


@dataclass(frozen=True)
class Queue:
    name: str
    messages: int | None  # None: the queue does not exist
    consumers: int | None
    unacked: int | None = None  # the management API only
    message_bytes: int | None = None  # the management API only
    bound: InForce | None = None  # the bounds RabbitMQ applies to it: the management API only


# -- reading ---------------------------------------------------------------------------------


def queues_from_api(api_url: str, vhost: str, timeout: float = TIMEOUT) -> dict[str, Queue]:
    """Every queue of `vhost`, from the management API; raises OSError or ValueError when it does not answer."""
    parts = urllib.parse.urlsplit(api_url)
    base = f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}{parts.path.rstrip('/')}"
    columns = ("name,messages,consumers,messages_unacknowledged,message_bytes,policy,effective_policy_definition,"
               "arguments")
    url = f"{base}/api/queues/{urllib.parse.quote(vhost, safe='')}?columns={columns}"
    request = urllib.request.Request(url)
    if parts.username:
        token = base64.b64encode(f"{urllib.parse.unquote(parts.username)}:"
                                 f"{urllib.parse.unquote(parts.password or '')}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        rows = json.load(response)
    return {r["name"]: Queue(r["name"], r.get("messages", 0), r.get("consumers", 0), r.get("messages_unacknowledged"),
                             r.get("message_bytes"), in_force(r.get("policy"), r.get("effective_policy_definition"),
                                                              r.get("arguments")))
            for r in rows}


def queues_from_amqp(amqp_uri: str, names: list[str], timeout: float = TIMEOUT) -> dict[str, Queue]:
    """These queues, by passive declares (a missing queue comes back with `messages=None`)."""

    conn = amqp.Connection(**parse_amqp_uri(amqp_uri).connection_kwargs(), connect_timeout=timeout,
                           read_timeout=timeout, write_timeout=timeout, heartbeat=0)
    conn.connect()
    out = {}
    try:
        channel = conn.channel()
        for name in names:
            try:
                _name, messages, consumers = channel.queue_declare(name, passive=True)
                out[name] = Queue(name, messages, consumers)
            except amqp.exceptions.NotFound:
                out[name] = Queue(name, None, None)
                channel = conn.channel()  # RabbitMQ closed the channel
    finally:
        try:
            conn.close()
        except Exception:  # noqa: BLE001
            pass
    return out


def probe_ops(url: str, timeout: float = TIMEOUT) -> dict[str, Any]:
    """GET `url`/readyz: whether it answered, whether ready, and what it says is down."""
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=timeout) as response:
            body = json.load(response)
            return {"answered": True, "ready": True, "service": body.get("service"), "down": []}
    except urllib.error.HTTPError as exc:
        try:
            body = json.load(exc)
        except ValueError:
            body = {}
        return {"answered": True, "ready": False, "service": body.get("service"), "down": body.get("down", []),
                "detail": "; ".join(c.get("detail", "") for c in body.get("checks", {}).values() if not c.get("ok"))
                or f"HTTP {exc.code}"}
    except Exception as exc:  # noqa: BLE001
        return {"answered": False, "ready": False, "detail": describe_error(exc)}


LastImport = Callable[[Connection], "dict[str, Any] | None"]


def database_facts(settings: Settings, last_import: LastImport) -> dict[str, Any]:
    """Where the schema stands (`migration_state`); when it is current, the outbox backlog and the last
    directory import as `last_import` reads it. Read only: a SQLite file that is not there is not created."""
    url = make_url(settings.database_url)
    missing = (url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
               and not Path(str(url.database)).exists())
    engine = make_engine("sqlite://" if missing else settings.database_url)  # missing: an empty database's state
    try:
        with engine.connect() as conn:
            state = migration_state(conn)
            facts: dict[str, Any] = {"revisions": list(state.current), "migrations_pending": state.pending,
                                     "unknown_revisions": list(state.unknown)}
            if missing:
                facts["file_missing"] = True
            if state.current and not state.pending and not state.unknown:
                facts.update(outbox_backlog=pending_count(conn), last_import=last_import(conn))
            return facts
    finally:
        engine.dispose()


def gather(settings: Settings, *, rabbitmq_api: str, ops: Mapping[str, str], services: ServiceQueues,
           last_import: LastImport, timeout: float = TIMEOUT) -> dict[str, Any]:
    """Read the stack's state (see the module docstring). Never raises for an unreachable part: it is reported."""
    consumers = sorted(set(expected_consumers(settings)))
    wanted = [UNROUTED_QUEUE] + [q for q in services.values() if q]
    for name in consumers:
        q = consumer_queues(name)
        wanted += [q.main, q.dead_letter, *q.retries]
    broker, queues = _read_queues(settings.amqp_uri, rabbitmq_api, wanted, timeout)
    per_consumer = {}
    for name in consumers:
        q = consumer_queues(name)
        main, dead = queues.get(q.main), queues.get(q.dead_letter)
        per_consumer[name] = {
            "queue": q.main,
            "exists": bool(main and main.messages is not None),
            "messages": main.messages if main else None,
            "unacked": main.unacked if main else None,
            "consumers": main.consumers if main else None,
            "retrying": sum((queues[r].messages or 0) for r in q.retries if r in queues) if queues else None,
            "dead_lettered": dead.messages if dead else None,
        }
    seen: dict[str, Any] = {}
    for service in [*services, *(s for s in ops if s not in services)]:
        queue = queues.get(services.get(service) or "")
        if service in ops:
            seen[service] = _seen_by_ops(ops[service], timeout)
        elif queue is not None and queue.messages is not None:
            n = queue.consumers or 0
            seen[service] = {"up": n > 0, "ready": None, "seen_by": f"{n} consumer(s) on {queue.name}"}
        else:
            seen[service] = {"up": None, "ready": None, "seen_by": (
                f"queue {services[service]} not declared" if queue is not None else None)}
    unrouted = queues.get(UNROUTED_QUEUE)
    report: dict[str, Any] = {"broker": broker, "services": seen, "consumers": per_consumer,
                              "unrouted": unrouted.messages if unrouted else None,
                              "planned_consumers": sorted(planned_subscriptions())}
    bounded = [UNROUTED_QUEUE] + [q for name in consumers for q in (consumer_queues(name).main,
                                                                     consumer_queues(name).dead_letter)]
    try:
        report["bounds"] = queue_bounds(queues, bounded)
    except BoundsError as exc:
        report["bounds"], report["bounds_error"] = {}, str(exc)
    try:
        report["database"] = {"reachable": True, "url": redact_url(settings.database_url),
                              **database_facts(settings, last_import)}
    except Exception as exc:  # noqa: BLE001
        report["database"] = {"reachable": False, "url": redact_url(settings.database_url),
                              "error": describe_error(exc)}
    report["problems"], report["warnings"] = judge(report, expected=set(ops))
    report["healthy"] = not report["problems"]
    return report


def queue_bounds(queues: Mapping[str, Queue], names: list[str]) -> dict[str, dict[str, Any]]:
    """Per queue of `names` that exists: its bounds in force and how full it is (`fill`, the larger of its
    length's and its size's fractions). The broker's own bounds when the management API was read, else
    those RELAIS_*_MAX_* configure (`relais queues bound`), which the broker may not apply."""
    configured_bounds: Bounds | None = None
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        q = queues.get(name)
        if q is None or q.messages is None:
            continue
        bound, source = q.bound, "broker"
        if bound is None:
            configured_bounds = configured_bounds or Bounds.from_env()
            bound, source = configured(name, configured_bounds), "configured"
        ratio = fill(q.messages, q.message_bytes, bound)
        out[name] = {"messages": q.messages, "bytes": q.message_bytes, "max_length": bound.max_length,
                     "max_bytes": bound.max_bytes, "overflow": bound.overflow, "policy": bound.policy,
                     "source": source, "fill": None if ratio is None else round(ratio, 4)}
    return out


def _read_queues(amqp_uri: str, rabbitmq_api: str, names: list[str],
                 timeout: float) -> tuple[dict[str, Any], dict[str, Queue]]:
    """(what the broker part of the report says, the queues by name): the management API, else AMQP."""

    broker: dict[str, Any] = {"vhost": parse_amqp_uri(amqp_uri).virtual_host}
    try:
        found = queues_from_api(rabbitmq_api, broker["vhost"], timeout)
        broker.update(reachable=True, source=f"management API at {redact_url(rabbitmq_api)}")
        return broker, {n: found.get(n, Queue(n, None, None)) for n in names}
    except Exception as exc:  # noqa: BLE001 - fall back on AMQP
        api_error = describe_error(exc)
    try:
        queues = queues_from_amqp(amqp_uri, names, timeout)
    except Exception as exc:  # noqa: BLE001
        broker.update(reachable=False, source=None,
                      error=f"RabbitMQ unreachable: management API at {redact_url(rabbitmq_api)}: {api_error}; "
                            f"AMQP at {redact_url(amqp_uri)}: {describe_error(exc)}")
        return broker, {}
    broker.update(reachable=True, source=f"AMQP passive declares at {redact_url(amqp_uri)} (management API at "
                  f"{redact_url(rabbitmq_api)} unreachable: {api_error}; no unacknowledged counts)")
    return broker, queues


def _seen_by_ops(url: str, timeout: float) -> dict[str, Any]:
    probe = probe_ops(url, timeout)
    return {"up": probe["answered"], "ready": probe["ready"], "seen_by": f"ops endpoint {url}",
            **{k: v for k, v in probe.items() if k in ("down", "detail", "service")}}


# -- judging (no I/O) ------------------------------------------------------------------------


def judge(report: Mapping[str, Any], expected: AbstractSet[str] = frozenset()) -> tuple[list[str], list[str]]:
    """(problems, warnings) of a gathered report; any problem makes the stack unhealthy."""
    problems: list[str] = []
    warnings: list[str] = []
    broker = report["broker"]
    if not broker.get("reachable"):
        problems.append(broker.get("error") or "RabbitMQ unreachable")
    database = report.get("database", {})
    if not database.get("reachable", True):
        problems.append(f"database {database.get('url')} unreachable: {database.get('error')}")
    else:
        problems.extend(_schema_problems(database))
    for name, s in report["services"].items():
        if name in expected and not s["up"]:
            problems.append(f"{name}: its ops endpoint does not answer ({s.get('detail')})")
        elif name in expected and not s["ready"]:
            problems.append(f"{name}: not ready, {', '.join(s.get('down') or []) or 'see its /readyz'} down"
                            + (f" ({s['detail']})" if s.get("detail") else ""))
    for name, c in report["consumers"].items():
        if c["dead_lettered"]:
            problems.append(f"{c['dead_lettered']} message(s) dead-lettered in {c['queue']}.dlq: read their "
                            "x-relais-error header, fix the cause, then move them back to the queue or purge them")
        if c["messages"] and not c["consumers"]:
            problems.append(f"{c['messages']} message(s) wait in {c['queue']} and nobody consumes it: "
                            f"start `relais serve {name}`")
        if c["retrying"]:
            warnings.append(f"{c['retrying']} message(s) of {name} wait for a retry")
    if report.get("bounds_error"):
        problems.append(report["bounds_error"])
    bounds = report.get("bounds") or {}
    unbounded = [q for q, b in bounds.items() if b["max_length"] is None and b["max_bytes"] is None]
    if report.get("unrouted") and (UNROUTED_QUEUE in unbounded or UNROUTED_QUEUE not in bounds):
        warnings.append(f"{report['unrouted']} event(s) in relais.unrouted, which has no bound in force: it grows "
                        "as long as events come that no consumer's queue is bound for; run `relais queues bound` "
                        "(deploy/queues.md)")
    others = [q + (f" (it follows policy {bounds[q]['policy']!r})" if bounds[q].get("policy") else "")
              for q in unbounded if q != UNROUTED_QUEUE]
    if others:
        warnings.append(f"no bound in force on {', '.join(others)}: they grow as long as nobody takes from them; "
                        "run `relais queues bound` (deploy/queues.md)")
    owners = {c["queue"]: name for name, c in report["consumers"].items()}
    for queue, b in bounds.items():
        if queue in unbounded:
            continue
        found = _bound_finding(queue, b, owners, report.get("planned_consumers") or [])
        if found:
            (problems if found[0] else warnings).append(found[1])
    last = database.get("last_import")
    if last and last.get("status") not in ("completed", "running"):
        problems.append(f"the last directory import ({last['import_id']}) {last['status']}: "
                        "`relais directory status --json` and its report say why")
    return problems, warnings


def _bound_finding(queue: str, b: Mapping[str, Any], owners: Mapping[str, str],
                   planned: list[str]) -> tuple[bool, str] | None:
    """(whether a problem, what to say) of a bounded queue's fill against its bounds (`queue_bounds`), or None."""
    ratio = b["fill"] or 0.0
    if ratio < WARN_FILL:
        return None
    how = _how_full(b)
    if queue == UNROUTED_QUEUE:
        who = f"the events of consumers not built yet ({', '.join(planned)})" if planned else "events"
        return False, (f"relais.unrouted is {ratio:.0%} of its bound ({how}): past it its oldest events are "
                       f"dropped. It holds {who} and those of any consumer left out of RELAIS_CONSUMERS: if a "
                       "running consumer should have had them, name it there; else nothing is lost that anyone "
                       "reads (deploy/queues.md)")
    if queue.endswith(".dlq"):
        owner = owners.get(queue[:-4], queue)
        return ratio >= 1, (f"{queue} is {ratio:.0%} of its bound ({how}): at it, {owner} stops at its next dead "
                            "letter. Read their x-relais-error header, fix the cause, then move them back to "
                            "the queue or purge them (deploy/queues.md)")
    owner = owners.get(queue, queue)
    if ratio >= 1:
        return True, (f"{queue} is full ({how}): RabbitMQ refuses new events for it, which wait in the outbox "
                      f"with every event behind them; start or scale `relais serve {owner}`, or raise "
                      "RELAIS_QUEUE_MAX_LENGTH/RELAIS_QUEUE_MAX_BYTES and run `relais queues bound` (deploy/queues.md)")
    return False, (f"{queue} is {ratio:.0%} of its bound ({how}): at it RabbitMQ refuses new events for it and "
                   f"they wait in the outbox; is `relais serve {owner}` running and keeping up? (deploy/queues.md)")


def _how_full(b: Mapping[str, Any]) -> str:
    parts = []
    if b["max_length"]:
        parts.append(f"{b['messages']:,} of {b['max_length']:,} messages")
    if b["max_bytes"] and b.get("bytes") is not None:
        parts.append(f"{_size(b['bytes'])} of {_size(b['max_bytes'])}")
    return ", ".join(parts)


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1024 ** 3), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n} B"


def _schema_problems(database: Mapping[str, Any]) -> list[str]:
    """What the database's migration state (`database_facts`) asks of the operator."""
    url, pending = database.get("url"), database.get("migrations_pending")
    if database.get("unknown_revisions"):
        return [f"database {url} was migrated by a newer version of Relais (revision(s) "
                f"{', '.join(database['unknown_revisions'])} unknown here): run the version the services run"]
    if pending is None:
        return []  # a report without the migration state
    if not database.get("revisions"):
        where = " (no database file yet)" if database.get("file_missing") else ""
        return [f"database {url} is not migrated{where}: run `relais db upgrade` "
                "(a service also migrates it when it starts)"]
    if pending:
        return [f"database {url} is {pending} migration(s) behind this version of Relais: run `relais db upgrade` "
                "(a service also migrates it when it starts)"]
    return []


def _fill_cell(report: Mapping[str, Any], queue: str) -> str:
    """How full `queue` is against its bound, for the table: `12%`, `unbounded`, or nothing when unknown."""
    b = (report.get("bounds") or {}).get(queue)
    if b is None:
        return ""
    if b["max_length"] is None and b["max_bytes"] is None:
        return f"{'unbounded':>10}"
    return f"{b['fill'] or 0:>10.0%}"


def render_text(report: Mapping[str, Any]) -> str:
    """The report for a terminal: one line per service and consumer queue, then the problems."""
    lines = [f"broker: {report['broker'].get('source') or report['broker'].get('error')}"]
    lines.append("services:")
    for name, s in report["services"].items():
        state = {True: "up", False: "DOWN", None: "unknown"}[s["up"]]
        if s["up"] and s.get("ready") is False:
            state = "up, NOT READY (" + ", ".join(s.get("down") or []) + ")"
        lines.append(f"  {name:<13} {state:<10} {s.get('seen_by') or 'give its ops endpoint (--ops) to check it'}")
    lines.append(f"  {'queue':<28}{'messages':>9}{'unacked':>9}{'consumers':>10}{'retrying':>9}{'dead':>6}"
                 f"{'of bound':>10}")
    for c in report["consumers"].values():
        if not c["exists"]:
            lines.append(f"  {c['queue']:<28}{'(not declared)':>9}")
            continue
        cells = [c["messages"], c["unacked"], c["consumers"], c["retrying"], c["dead_lettered"]]
        widths = (9, 9, 10, 9, 6)
        row = "".join(f"{'-' if v is None else v:>{w}}" for v, w in zip(cells, widths, strict=True))
        lines.append(f"  {c['queue']:<28}{row}{_fill_cell(report, c['queue'])}")
    if report.get("unrouted") is not None:
        lines.append(f"  {'relais.unrouted':<28}{report['unrouted']:>9}{'':>34}{_fill_cell(report, UNROUTED_QUEUE)}")
    database = report.get("database", {})
    if database.get("reachable") and "outbox_backlog" in database:
        lines.append(f"outbox backlog: {database['outbox_backlog']} event(s)")
        last = database.get("last_import")
        lines.append("last directory import: " + (
            f"{last['import_id']} {last['status']} at {last['finished_at'] or last['started_at']}" if last else "none"))
    for w in report["warnings"]:
        lines.append(f"warning: {w}")
    for p in report["problems"]:
        lines.append(f"PROBLEM: {p}")
    lines.append("healthy" if report["healthy"] else f"UNHEALTHY: {len(report['problems'])} problem(s)")
    return "\n".join(lines)
