"""Confirmed, pipelined publishing to RabbitMQ.

Waiting for each publisher confirm in turn costs about 8x (shared/STACK_NOTES.md
item 5), so this keeps up to `window` messages in flight and counts the
broker's (possibly multiple) acks. A message counts as delivered only once the
broker has confirmed it; a nack, a lost connection or a timeout raises
`PublishError` and says how many were confirmed before.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

import amqp

from .topology import EVENTS_EXCHANGE, declare_events_exchange, parse_amqp_uri


class PublishError(RuntimeError):
    """Publishing failed; `confirmed` messages of the batch were confirmed first."""

    def __init__(self, message: str, confirmed: int = 0):
        super().__init__(message)
        self.confirmed = confirmed


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    routing_key: str
    body: bytes
    message_id: str
    type: str
    headers: dict = field(default_factory=dict)


class ConfirmedPublisher:
    """Publishes persistent messages and returns once the broker confirmed them all."""

    def __init__(
        self,
        amqp_uri: str,
        *,
        exchange: str = EVENTS_EXCHANGE,
        window: int = 1000,
        confirm_timeout: float = 30.0,
        connect_timeout: float = 5.0,
    ):
        self._params = parse_amqp_uri(amqp_uri)
        self.exchange = exchange
        self.window = window
        self.confirm_timeout = confirm_timeout
        self.connect_timeout = connect_timeout
        self._conn: amqp.Connection | None = None
        self._channel = None
        self._next_tag = 1
        self._outstanding: set[int] = set()
        self._nacked: list[int] = []

    # -- connection -------------------------------------------------------
    def connect(self) -> None:
        if self._conn is not None:
            return
        try:
            conn = amqp.Connection(
                **self._params.connection_kwargs(),
                connect_timeout=self.connect_timeout,
                heartbeat=0,
            )
            conn.connect()
            channel = conn.channel()
            channel.confirm_select()
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
            if self.exchange == EVENTS_EXCHANGE:
                declare_events_exchange(channel)
        except (OSError, amqp.exceptions.AMQPError) as exc:
            raise PublishError(
                f"cannot reach RabbitMQ at {self._params.hostport} "
                f"(vhost {self._params.virtual_host!r}): {exc}"
            ) from exc
        self._conn, self._channel = conn, channel
        self._next_tag = 1
        self._outstanding.clear()
        self._nacked.clear()

    def close(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass

    def __enter__(self) -> "ConfirmedPublisher":
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- confirms ---------------------------------------------------------
    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        if multiple:
            self._outstanding = {t for t in self._outstanding if t > delivery_tag}
        else:
            self._outstanding.discard(delivery_tag)

    def _on_nack(self, delivery_tag: int, multiple: bool, *_args) -> None:
        if multiple:
            nacked = [t for t in self._outstanding if t <= delivery_tag]
        else:
            nacked = [delivery_tag]
        self._nacked.extend(nacked)
        self._outstanding.difference_update(nacked)

    def _wait(self, until_outstanding: int, sent: int) -> None:
        while len(self._outstanding) > until_outstanding:
            try:
                self._conn.drain_events(timeout=self.confirm_timeout)
            except socket.timeout as exc:
                raise PublishError(
                    f"RabbitMQ did not confirm {len(self._outstanding)} message(s) within "
                    f"{self.confirm_timeout:.0f}s",
                    confirmed=sent - len(self._outstanding),
                ) from exc
            if self._nacked:
                raise PublishError(
                    f"RabbitMQ refused (nack) {len(self._nacked)} message(s)",
                    confirmed=0,
                )

    # -- publishing -------------------------------------------------------
    def publish(self, messages: Iterable[OutgoingMessage]) -> int:
        """Publish every message and wait for all confirms; returns how many."""
        self.connect()
        sent = 0
        channel = self._channel
        try:
            for m in messages:
                if len(self._outstanding) >= self.window:
                    self._wait(self.window // 2, sent)
                msg = amqp.Message(
                    m.body,
                    content_type="application/json",
                    content_encoding="utf-8",
                    delivery_mode=2,
                    message_id=m.message_id,
                    type=m.type,
                    application_headers=m.headers or None,
                )
                channel.basic_publish(msg, exchange=self.exchange, routing_key=m.routing_key)
                self._outstanding.add(self._next_tag)
                self._next_tag += 1
                sent += 1
            self._wait(0, sent)
        except PublishError:
            self.close()
            raise
        except (OSError, amqp.exceptions.AMQPError) as exc:
            confirmed = sent - len(self._outstanding)
            self.close()
            raise PublishError(f"connection to RabbitMQ lost while publishing: {exc}", confirmed) from exc
        return sent
