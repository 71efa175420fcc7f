"""Exchange and queue names, and their declaration on a channel.

One durable topic exchange carries every event, routed by event type. An
alternate exchange keeps events nobody is bound to (a consumer the contracts
plan but which is not built, one left out of RELAIS_CONSUMERS), in a queue
bounded by length, size and age: nobody reads it (`bounds`). Each consumer owns
a main queue, one delay queue per retry and a dead-letter queue, bounded too;
see contracts/README.md and deploy/queues.md.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import amqp

from .contracts import planned_subscriptions, subscriptions

log = logging.getLogger(__name__)

EVENTS_EXCHANGE = "relais.events"
UNROUTED_EXCHANGE = "relais.unrouted"
UNROUTED_QUEUE = "relais.unrouted"
DEFAULT_RETRY_DELAYS_MS: tuple[int, ...] = (1_000, 5_000, 30_000)

QUEUE_TYPES: dict[str, dict] = {
    # Classic queues version 2 (RabbitMQ >= 3.10) store persistent messages at a
    # fraction of version 1's cost: the default, for one broker.
    "classic": {"x-queue-version": 2},
    # Quorum queues are replicated over the nodes of a RabbitMQ cluster (Raft)
    # and keep TTLs and dead-lettering, which the retry queues need (>= 3.10).
    "quorum": {"x-queue-type": "quorum"},
}


def queue_arguments() -> dict:
    """The arguments every Relais queue is declared with, by `RELAIS_QUEUE_TYPE` (classic or quorum).

    A queue already declared with another type is kept as it is (`declare_queue`
    says so in the log): moving a deployment to quorum queues means draining
    and deleting the classic ones first (deploy/queues.md).
    """
    value = (os.environ.get("RELAIS_QUEUE_TYPE") or "classic").strip().lower()
    if value not in QUEUE_TYPES:
        raise ValueError(f"RELAIS_QUEUE_TYPE must be one of {', '.join(QUEUE_TYPES)}, not {value!r}")
    return dict(QUEUE_TYPES[value])


@dataclass(frozen=True)
class ConsumerQueues:
    name: str
    main: str
    retries: tuple[str, ...]
    dead_letter: str


def consumer_queues(name: str, retry_delays_ms: tuple[int, ...] = DEFAULT_RETRY_DELAYS_MS) -> ConsumerQueues:
    main = f"relais.q.{name}"
    return ConsumerQueues(
        name=name,
        main=main,
        retries=tuple(f"{main}.retry.{i + 1}" for i in range(len(retry_delays_ms))),
        dead_letter=f"{main}.dlq",
    )


def declare_queue(channel: amqp.Channel, name: str, arguments: dict | None = None) -> amqp.Channel:
    """Declare a durable queue; one that exists with other arguments is kept as it is.

    Returns the channel to go on with: RabbitMQ closes a channel on an
    argument mismatch, so a fresh one replaces it then.
    """
    try:
        channel.queue_declare(name, durable=True, auto_delete=False, arguments=arguments or {})
        return channel
    except amqp.exceptions.PreconditionFailed as exc:
        log.warning(
            "queue %s exists with other arguments than %s (%s); keeping it. To change it, "
            "drain and delete it, or set the arguments with a RabbitMQ policy.", name, arguments, exc.reply_text)
        fresh = channel.connection.channel()
        fresh.queue_declare(name, passive=True)
        return fresh


def declare_events_exchange(channel: amqp.Channel) -> amqp.Channel:
    """Declare `relais.events` and its alternate exchange (idempotent); returns the channel to use."""
    channel.exchange_declare(UNROUTED_EXCHANGE, "fanout", durable=True, auto_delete=False)
    channel = declare_queue(channel, UNROUTED_QUEUE, queue_arguments())
    channel.queue_bind(UNROUTED_QUEUE, UNROUTED_EXCHANGE, "")
    channel.exchange_declare(
        EVENTS_EXCHANGE,
        "topic",
        durable=True,
        auto_delete=False,
        arguments={"alternate-exchange": UNROUTED_EXCHANGE},
    )
    return channel


def _exists(channel: amqp.Channel, name: str, *, exchange: bool) -> tuple[bool, amqp.Channel]:
    """Whether exchange or queue `name` exists (a passive declare: no permission needed), and the channel
    to go on with (RabbitMQ closes it on NOT_FOUND)."""
    try:
        if exchange:
            channel.exchange_declare(name, "topic", passive=True)
        else:
            channel.queue_declare(name, passive=True)
        return True, channel
    except amqp.exceptions.NotFound:
        return False, channel.connection.channel()


def events_exchange_ready(channel: amqp.Channel) -> amqp.Channel:
    """`declare_events_exchange`, unless `relais.events` exists already; returns the channel to use.

    With a broker user per service, none may declare what they all share (declaring `relais.events`
    takes reading `relais.unrouted`): the deployment declares it (`relais deploy broker-users --apply`),
    and a service's user only publishes to it or binds its own queues (`relais.runtime.broker_users`).
    """
    exists, channel = _exists(channel, EVENTS_EXCHANGE, exchange=True)
    return channel if exists else declare_events_exchange(channel)


def declare_consumer(
    channel: amqp.Channel,
    name: str,
    bindings: list[str],
    retry_delays_ms: tuple[int, ...] = DEFAULT_RETRY_DELAYS_MS,
) -> tuple[ConsumerQueues, amqp.Channel]:
    """Declare a consumer's queues, bind its main queue to `bindings` (topic patterns).

    Returns the queue names and the channel to go on with (see `declare_queue`).
    """
    queues = consumer_queues(name, retry_delays_ms)
    kind = queue_arguments()
    channel = events_exchange_ready(channel)
    channel = declare_queue(channel, queues.dead_letter, kind)
    channel = declare_queue(channel, queues.main, {
        **kind, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": queues.dead_letter})
    for retry_queue, delay in zip(queues.retries, retry_delays_ms, strict=True):
        channel = declare_queue(channel, retry_queue, {
            **kind,
            "x-message-ttl": int(delay),
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": queues.main,
        })
    for pattern in bindings:
        channel.queue_bind(queues.main, EVENTS_EXCHANGE, pattern)
    return queues, channel


def declare_subscribers(channel: amqp.Channel, consumers: list[str] | tuple[str, ...]) -> amqp.Channel:
    """Declare the queues of these consumers, bound as the contracts say (`contracts.subscriptions`).

    Publishers call this, so an event published before its consumer first
    started waits in that consumer's queue instead of `relais.unrouted`.
    A queue that exists is left as it is (its consumer binds it as the contracts
    say when it starts); one this broker user may not declare (another service's,
    with a user per service: the deployment declares them) is said and skipped.
    Returns the channel to go on with.
    """
    known = subscriptions()
    for name in consumers:
        if name not in known:
            planned = name in planned_subscriptions()
            log.warning("RELAIS_CONSUMERS names %r, %s; ignored", name,
                        "a consumer the contracts plan but which is not built yet (its events go to relais.unrouted)"
                        if planned else "which no contract receive operation names")
            continue
        exists, channel = _exists(channel, consumer_queues(name).main, exchange=False)
        if exists:
            continue
        try:
            _queues, channel = declare_consumer(channel, name, list(known[name]))
        except amqp.exceptions.AccessRefused as exc:
            log.warning("cannot declare the queues of consumer %s (%s): its events go to relais.unrouted until it "
                        "starts; `relais deploy broker-users --apply` declares them (deploy/broker-users.md)",
                        name, exc.reply_text)
            channel = channel.connection.channel()
    return channel
