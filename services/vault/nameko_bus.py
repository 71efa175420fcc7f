"""A nameko entrypoint consuming a Relais bus queue, `relais.q.<consumer>`, with its retries and dead letters.

nameko's own `event_handler` binds to nameko's exchanges, not to the `relais.events` topology
(contracts/README.md), so this entrypoint declares that topology (`relais.bus.topology`) and
consumes the consumer's main queue through nameko's queue consumer. Each message goes, raw, to
the decorated method with the number of attempts so far; the method hands it to
`EventConsumer.handle` (idempotent on event id, the handler in the same transaction) and returns
its `Outcome`. The entrypoint then settles the message the way `EventConsumer.run` does:

- `handled` / `duplicate`: acknowledged;
- `retry`: a copy goes (with publisher confirm) to `relais.q.<consumer>.retry.<n>`, whose TTL
  sends it back to the main queue later, then the original is acknowledged;
- `dead`: a copy goes to `relais.q.<consumer>.dlq` with `x-relais-error`, then acknowledged.

A message is acknowledged only once its outcome is safe, so when the broker connection drops
(a broker restart), whatever was not acknowledged is delivered again and, if already handled,
recognised as a duplicate. Nothing here is specific to the vault; it lives beside the only
service that runs the bus under nameko.
"""
from __future__ import annotations

import logging
from functools import partial

import amqp
import eventlet
from kombu import Queue
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.exceptions import ContainerBeingKilled
from nameko.messaging import Consumer, QueueConsumer

from relais.bus.consumer import ATTEMPTS_HEADER, ERROR_HEADER, Outcome
from relais.bus.topology import DEFAULT_RETRY_DELAYS_MS, consumer_queues, declare_consumer, parse_amqp_uri
from relais.ops import metrics

log = logging.getLogger(__name__)


class RawQueueConsumer(QueueConsumer):
    """nameko's queue consumer, handing messages over undecoded: a body that is not JSON is for
    the bus consumer to dead-letter, not for kombu to fail on."""

    def get_consumers(self, consumer_cls, channel):
        for provider in self._providers:
            consumer = consumer_cls(queues=[provider.queue], on_message=partial(self.handle_message, provider, None))
            consumer.qos(prefetch_count=self.prefetch_count)
            self._consumers[provider] = consumer
        return self._consumers.values()


class BusConsumer(Consumer):
    """`@bus_consumer("vault", ["ent.item.changed", ...])` on a method `(self, body: bytes, attempts: int) -> Outcome`."""

    queue_consumer = RawQueueConsumer()

    def __init__(self, consumer: str, bindings: list[str] | tuple[str, ...],
                 retry_delays_ms: tuple[int, ...] = DEFAULT_RETRY_DELAYS_MS, **kwargs) -> None:
        self.consumer_name = consumer
        self.bindings = list(bindings)
        self.retry_delays_ms = retry_delays_ms
        self.queues = consumer_queues(consumer, retry_delays_ms)
        super().__init__(Queue(self.queues.main, no_declare=True), requeue_on_error=True, **kwargs)

    def setup(self) -> None:
        self.amqp_uri = self.container.config[AMQP_URI_CONFIG_KEY]
        self._declare_topology()
        super().setup()

    def _declare_topology(self) -> None:
        """Declare the exchange, the queues and their bindings; wait for the broker if it is not there yet."""
        params = parse_amqp_uri(self.amqp_uri)
        delay = 1.0
        while True:
            try:
                conn = amqp.Connection(**params.connection_kwargs(), connect_timeout=5)
                conn.connect()
                try:
                    declare_consumer(conn.channel(), self.consumer_name, self.bindings, self.retry_delays_ms)
                finally:
                    conn.close()
                return
            except (OSError, amqp.exceptions.AMQPError) as exc:
                log.warning("consumer %s: cannot declare its queues at %s (vhost %r): %s; retrying in %.0f s",
                            self.consumer_name, params.hostport, params.virtual_host, exc, delay)
                eventlet.sleep(delay)
                delay = min(delay * 2, 30.0)

    def handle_message(self, body, message) -> None:
        headers = message.headers or {}
        if message.delivery_info.get("redelivered"):
            metrics.REDELIVERED.labels(consumer=self.consumer_name).inc()
        args = (message.body, int(headers.get(ATTEMPTS_HEADER, 0)))
        try:
            self.container.spawn_worker(self, args, {}, context_data=self.unpack_message_headers(message),
                                        handle_result=partial(self.handle_result, message))
        except ContainerBeingKilled:
            self.queue_consumer.requeue_message(message)

    def handle_message_processed(self, message, result=None, exc_info=None) -> None:
        if exc_info is not None or not isinstance(result, Outcome):
            # Not an outcome of the bus rule (the worker itself failed): back to the queue, after a pause.
            log.error("consumer %s: worker failed without an outcome (%s); message requeued",
                      self.consumer_name, exc_info[1] if exc_info else type(result).__name__)
            eventlet.sleep(1)
            self.queue_consumer.requeue_message(message)
            return
        if result.status in ("retry", "dead"):
            try:
                self._republish(message, result)
            except (OSError, amqp.exceptions.AMQPError) as exc:
                log.warning("consumer %s: cannot move a message to its %s queue (%s); it stays in %s",
                            self.consumer_name, result.status, exc, self.queues.main)
                self.queue_consumer.requeue_message(message)
                return
        self.queue_consumer.ack_message(message)

    def _republish(self, message, outcome: Outcome) -> None:
        if outcome.status == "dead":
            target = self.queues.dead_letter
            log.error("consumer %s: dead-lettered a message: %s", self.consumer_name, outcome.reason)
        else:
            target = self.queues.retries[outcome.attempts - 1]
        props = message.properties
        copy = amqp.Message(
            message.body, content_type=message.content_type, delivery_mode=2,
            message_id=props.get("message_id"), type=props.get("type"),
            application_headers={**(message.headers or {}), ATTEMPTS_HEADER: outcome.attempts,
                                 ERROR_HEADER: (outcome.reason or "")[:500],
                                 "x-relais-routing-key": message.delivery_info.get("routing_key", "")})
        conn = amqp.Connection(**parse_amqp_uri(self.amqp_uri).connection_kwargs(), connect_timeout=5)
        conn.connect()
        try:
            channel = conn.channel()
            channel.confirm_select()
            channel.basic_publish_confirm(copy, exchange="", routing_key=target)
        finally:
            conn.close()


bus_consumer = BusConsumer.decorator
