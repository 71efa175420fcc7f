"""Idempotent event consumption with bounded retries and dead-lettering.

`EventConsumer.handle` is the runtime-free rule: decode, check the event
against its contract, skip an event id already handled, else run the handler
and record the id in the same database transaction. An event that breaks its
contract is dead-lettered at once, with the field and the rule it breaks (never
the value), and nothing of it is applied; so is an event of a type the consumer
does not receive (no binding of its queue, from the contracts, matches it).
`EventConsumer.run` is one way to drive it from RabbitMQ (py-amqp, manual
acks). A message is acknowledged only after its outcome is safe: handled and
committed, or re-published (with confirm) to a retry or dead-letter queue.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import amqp
from sqlalchemy import Connection, Engine, insert, select

from relais.db import writer
from relais.ops import metrics
from relais.ops.logs import batch_context, describe_error, event_context

from . import contracts, nodes
from .envelope import loads
from .tables import processed_events
from .topology import DEFAULT_RETRY_DELAYS_MS, declare_consumer

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Connection], None]
BatchHandler = Callable[[list[dict[str, Any]], Connection], None]

ATTEMPTS_HEADER = "x-relais-attempts"
CONNECT_TIMEOUT_S = 10.0  # a node cut off answers nothing: give up on it, and try the next
ERROR_HEADER = "x-relais-error"


class QueueFull(OSError):
    """RabbitMQ refused a retry or a dead letter: that queue is full (overflow reject-publish, deploy/queues.md).

    Nothing of the batch was acknowledged: its deliveries go back to the consumer's queue when the
    connection closes, and are handled again (idempotently) once there is room.
    """

    def __init__(self, target: str, main: str) -> None:
        super().__init__(f"RabbitMQ refused a message for {target}, which is full (overflow reject-publish): "
                         f"this batch goes back to {main}; empty {target} (`relais status` says how)")


OUTCOMES = ("handled", "duplicate", "retry", "dead")  # what becomes of a delivery: relais_messages_total's outcome


@dataclass(frozen=True)
class Outcome:
    """What became of one delivery: `handled`, `duplicate`, `retry` or `dead`."""

    status: str
    reason: str | None = None
    attempts: int = 0


class EventConsumer:
    def __init__(
        self,
        name: str,
        bindings: list[str],
        handler: Handler,
        engine: Engine,
        *,
        retry_delays_ms: tuple[int, ...] = DEFAULT_RETRY_DELAYS_MS,
        batch_handler: BatchHandler | None = None,
    ):
        """`batch_handler`, if given, handles several events in one transaction (the fast path);
        `handler` handles one, and is what a failed batch falls back to, event by event."""
        self.name = name
        self.bindings = bindings
        self.handler = handler
        self.batch_handler = batch_handler
        self.engine = engine
        self.retry_delays_ms = retry_delays_ms
        self.receives = contracts.types_bound(bindings)  # the types its queue's bindings match
        self._event_seconds = metrics.HANDLER_SECONDS.labels(consumer=name, kind="event")
        self._batch_seconds = metrics.HANDLER_SECONDS.labels(consumer=name, kind="batch")
        # Every outcome's series exists from the start, at 0: Prometheus sees no increase in a series that
        # appears at 1, so an alert on the first dead letter needs it there before (deploy/monitoring.md).
        for outcome in OUTCOMES:
            metrics.MESSAGES.labels(consumer=name, outcome=outcome)
        metrics.REDELIVERED.labels(consumer=name)

    # -- the rule -----------------------------------------------------------
    def handle(self, body: bytes, attempts_so_far: int = 0) -> Outcome:
        outcome = self._handle(body, attempts_so_far)
        self._count([outcome])
        return outcome

    def _count(self, outcomes: list[Outcome]) -> None:
        for status, n in Counter(o.status for o in outcomes).items():
            metrics.MESSAGES.labels(consumer=self.name, outcome=status).inc(n)

    def _handle(self, body: bytes, attempts_so_far: int) -> Outcome:
        event = self._decode(body, attempts_so_far)
        if isinstance(event, Outcome):
            return event
        with event_context(event):
            return self._handle_event(event, attempts_so_far)

    def _decode(self, body: bytes, attempts: int) -> dict[str, Any] | Outcome:
        """The event, if it keeps the contract of a type this consumer receives; else its dead letter."""
        try:
            event = loads(body)
        except Exception as exc:  # noqa: BLE001 - any decoding failure is poison
            return Outcome("dead", f"not a valid event envelope: {_short(exc)}", attempts)
        type_ = event.get("type") if isinstance(event, dict) else None
        if not isinstance(type_, str) or type_ not in self.receives:
            try:
                contracts.validate_envelope(event)
            except contracts.ContractError as exc:
                return Outcome("dead", f"not a valid event {_short(exc)}", attempts)
            return Outcome("dead", f"event type {type_} is not one consumer {self.name} receives "
                                   "(contracts/asyncapi.yaml)", attempts)
        reason = contracts.refusal(event)
        if reason is not None:  # the field and the rule, never the value: it is logged and kept in the DLQ
            return Outcome("dead", f"breaks the contract of {type_}: {reason}", attempts)
        return event

    def _handle_event(self, event: dict[str, Any], attempts_so_far: int) -> Outcome:
        started = time.perf_counter()
        try:
            with writer(self.engine).begin() as conn:
                seen = conn.execute(
                    select(processed_events.c.event_id).where(
                        processed_events.c.consumer == self.name,
                        processed_events.c.event_id == event["id"],
                    )
                ).first()
                if seen is not None:
                    return Outcome("duplicate", attempts=attempts_so_far)
                conn.execute(
                    insert(processed_events).values(
                        consumer=self.name, event_id=event["id"], processed_at=datetime.now(UTC)
                    )
                )
                self.handler(event, conn)
        except Exception as exc:  # noqa: BLE001 - the handler's failure decides a retry
            self._event_seconds.observe(time.perf_counter() - started)
            metrics.HANDLER_FAILURES.labels(consumer=self.name, error=type(exc).__name__).inc()
            attempts = attempts_so_far + 1
            reason = describe_error(exc)  # no SQL parameters nor row contents: it is logged and sent to the DLQ
            log.warning(
                "consumer %s: event %s (%s) failed, attempt %d: %s",
                self.name, event.get("id"), event.get("type"), attempts, reason,
            )
            if attempts > len(self.retry_delays_ms):
                return Outcome("dead", f"gave up after {attempts} attempts: {reason}", attempts)
            return Outcome("retry", reason, attempts)
        self._event_seconds.observe(time.perf_counter() - started)
        return Outcome("handled", attempts=attempts_so_far)

    def handle_many(self, deliveries: list[tuple[bytes, int]]) -> list[Outcome]:
        """Settle several deliveries ((body, attempts so far) each), in one transaction if all goes well.

        If anything in the batch fails, nothing of it is kept and each event is
        handled on its own, so only the failing one is retried or dead-lettered.
        """
        outcomes: list[Outcome | None] = [None] * len(deliveries)
        events: dict[int, dict[str, Any]] = {}
        for i, (body, attempts) in enumerate(deliveries):  # each checked alone: a bad one leaves the rest
            decoded = self._decode(body, attempts)
            if isinstance(decoded, Outcome):
                outcomes[i] = decoded
            else:
                events[i] = decoded
        if events and self.batch_handler is not None and len(events) > 1:
            fresh: list[int] = []
            started = time.perf_counter()
            try:
                with batch_context(list(events.values())), writer(self.engine).begin() as conn:
                    ids = list({e["id"] for e in events.values()})
                    seen = _processed(conn, self.name, ids)
                    for i, event in events.items():
                        if event["id"] in seen:
                            outcomes[i] = Outcome("duplicate", attempts=deliveries[i][1])
                        else:
                            seen.add(event["id"])
                            fresh.append(i)
                    if fresh:
                        now = datetime.now(UTC)
                        conn.execute(insert(processed_events), [
                            {"consumer": self.name, "event_id": events[i]["id"], "processed_at": now} for i in fresh])
                        self.batch_handler([events[i] for i in fresh], conn)
                self._batch_seconds.observe(time.perf_counter() - started)
                for i in fresh:
                    outcomes[i] = Outcome("handled", attempts=deliveries[i][1])
                events = {}
            except Exception as exc:  # noqa: BLE001 - find the culprit one by one
                metrics.HANDLER_FAILURES.labels(consumer=self.name, error=type(exc).__name__).inc()
                log.info("consumer %s: a batch of %d failed (%s); handling its events one by one",
                         self.name, len(events), describe_error(exc))
        for i, event in events.items():
            with event_context(event):
                outcomes[i] = self._handle_event(event, deliveries[i][1])
        self._count(outcomes)  # type: ignore[arg-type]
        return outcomes  # type: ignore[return-value]

    # -- one runtime: py-amqp ------------------------------------------------
    def run(
        self,
        amqp_uri: str,
        *,
        stop: threading.Event | None = None,
        max_messages: int | None = None,
        idle_timeout: float | None = None,
        prefetch: int = 400,
        batch_size: int = 200,
    ) -> int:
        """Consume until `stop` is set, `max_messages` were settled, or nothing came for `idle_timeout` s.

        `amqp_uri` may list a cluster's nodes: it connects to the first that answers (`nodes`); when that
        node is lost, this raises, and the next call (the runner's reconnection) starts with the next node.
        """
        conn, node = nodes.connect(amqp_uri, heartbeat=0, connect_timeout=CONNECT_TIMEOUT_S)
        settled = 0
        try:
            channel = conn.channel()
            queues, channel = declare_consumer(channel, self.name, self.bindings, self.retry_delays_ms)
            side = conn.channel()  # publishes retries and dead letters, with confirms
            side.confirm_select()
            if max_messages:
                prefetch, batch_size = min(prefetch, max_messages), min(batch_size, max_messages)
            channel.basic_qos(0, prefetch, False)

            pending: list[amqp.Message] = []

            def settle() -> None:
                nonlocal settled
                # Deliveries may arrive while this one waits for a confirm: they stay for the next batch.
                batch = pending[:]
                del pending[:len(batch)]
                headers = [m.properties.get("application_headers") or {} for m in batch]
                redelivered = sum(1 for m in batch if m.delivery_info.get("redelivered"))
                if redelivered:
                    metrics.REDELIVERED.labels(consumer=self.name).inc(redelivered)
                outcomes = self.handle_many([(m.body, int(h.get(ATTEMPTS_HEADER, 0)))
                                        for m, h in zip(batch, headers, strict=True)])
                for message, hdrs, outcome in zip(batch, headers, outcomes, strict=True):
                    if outcome.status in ("retry", "dead"):
                        target = (
                            queues.retries[outcome.attempts - 1] if outcome.status == "retry" else queues.dead_letter
                        )
                        if outcome.status == "dead":
                            log.error("consumer %s: dead-lettered a message: %s", self.name, outcome.reason)
                        copy = amqp.Message(
                            message.body,
                            content_type=message.properties.get("content_type"),
                            delivery_mode=2,
                            message_id=message.properties.get("message_id"),
                            type=message.properties.get("type"),
                            application_headers={
                                **hdrs,
                                ATTEMPTS_HEADER: outcome.attempts,
                                ERROR_HEADER: (outcome.reason or "")[:500],
                                "x-relais-routing-key": message.delivery_info.get("routing_key", ""),
                            },
                        )
                        try:
                            side.basic_publish_confirm(copy, exchange="", routing_key=target)
                        except amqp.exceptions.MessageNacked:
                            raise QueueFull(target, queues.main) from None
                # Every delivery up to the batch's last is settled: one ack covers them all.
                channel.basic_ack(batch[-1].delivery_tag, multiple=True)
                settled += len(batch)

            channel.basic_consume(queues.main, callback=pending.append)
            last = time.monotonic()
            while not (stop and stop.is_set()) and not (max_messages and settled >= max_messages):
                try:
                    # Block only when nothing waits to be settled; else take what is already here.
                    conn.drain_events(timeout=0 if pending else 0.2)
                    last = time.monotonic()
                    if len(pending) < batch_size and not (max_messages and settled + len(pending) >= max_messages):
                        continue
                except TimeoutError:
                    if not pending:
                        if idle_timeout is not None and time.monotonic() - last > idle_timeout:
                            break
                        continue
                settle()
        except (OSError, amqp.exceptions.AMQPError) as exc:
            if not isinstance(exc, QueueFull):  # the node is fine; the queue is full
                nodes.lost(amqp_uri, node)
            raise
        finally:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass
        return settled


def _processed(conn: Connection, consumer: str, ids: list[str]) -> set[str]:
    """The ids among `ids` that `consumer` has processed already.

    PostgreSQL: one probe of the primary key per id (LIMIT 1 keeps each probe apart). An IN-list
    is planned from the table's statistics: analyzed while empty (a new database, autovacuum off
    or not there yet), they make PostgreSQL read every id of the consumer for each batch.
    """
    if conn.dialect.name == "postgresql":
        return {r for (r,) in conn.exec_driver_sql(
            f"SELECT p.event_id FROM unnest(%s::text[]) AS i(id) CROSS JOIN LATERAL (SELECT event_id FROM "
            f"{processed_events.name} WHERE consumer = %s AND event_id = i.id LIMIT 1) AS p", (ids, consumer))}
    return {r for (r,) in conn.execute(select(processed_events.c.event_id).where(
        processed_events.c.consumer == consumer, processed_events.c.event_id.in_(ids)))}


def _short(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "…"
