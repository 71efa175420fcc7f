"""Confirmed, pipelined publishing to RabbitMQ.

Waiting for each publisher confirm in turn costs about 8x (measured on the
benchmark machine: ~1,900 messages/s one confirm at a time, ~15,900 with up to
1,000 in flight, the same as without confirms), so this keeps up to `window` messages in flight on pika's
asynchronous connection and counts the broker's (possibly multiple) acks.
RabbitMQ, not this client, is the limit (it spends several times our CPU per
message); a window of 5000 lets it batch its disk writes and confirms. pika
opens the connection and the channel and reads the confirms; the messages'
frames are encoded by `frames.PublishFrames` and written a chunk of many
messages at a time, a quarter of the CPU of pika's `basic_publish`. A
message counts as delivered only once the broker confirmed it; a nack, a lost
connection or a timeout raises `PublishError`, which says how many of the
batch's first messages were confirmed before (`confirmed`): the caller keeps the
rest and publishes them again (consumers are idempotent on message id). A nack
(`refused`) is RabbitMQ refusing a message, as a full queue with overflow
`reject-publish` does (`relais.bus.bounds`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

import amqp
import pika
import pika.exceptions
import pika.spec

from relais.config import Settings

from . import nodes
from .contracts import expected_consumers
from .frames import PublishFrames
from .topology import EVENTS_EXCHANGE, declare_subscribers, events_exchange_ready


class PublishError(RuntimeError):
    """Publishing failed; the messages of the batch past the first `confirmed` may or may not have arrived.

    `refused`: RabbitMQ refused (nacked) one of them, e.g. a full queue with overflow reject-publish.
    """

    def __init__(self, message: str, *, confirmed: int = 0, refused: bool = False) -> None:
        super().__init__(message)
        self.confirmed = confirmed
        self.refused = refused


class OutgoingMessage(NamedTuple):
    """One message: published persistent, as JSON, with `message_id` and `type` as AMQP properties.

    A tuple rather than a dataclass: the relay makes one per event, and a
    tuple costs a fraction to build.
    """

    routing_key: str
    body: bytes
    message_id: str
    type: str
    headers: Mapping[str, Any] | None = None


class ConfirmedPublisher:
    """Publishes persistent messages and returns once the broker confirmed them all."""

    DEFAULT_WINDOW = 5000

    def __init__(
        self,
        amqp_uri: str,
        *,
        exchange: str = EVENTS_EXCHANGE,
        window: int = DEFAULT_WINDOW,
        confirm_timeout: float = 30.0,
        connect_timeout: float = 5.0,
        subscribers: tuple[str, ...] | None = None,
    ):
        """`subscribers`: consumers whose queues to declare before publishing (default: RELAIS_CONSUMERS,
        else every consumer the contracts name), so their events wait for them."""
        self._uri = amqp_uri
        self._params = nodes.in_turn(amqp_uri)[0]  # the node connected to, or to try first
        self.exchange = exchange
        self.window = window
        self.confirm_timeout = confirm_timeout
        self.connect_timeout = connect_timeout
        if subscribers is None:
            subscribers = expected_consumers(Settings.from_env())
        self.subscribers = subscribers
        self._conn: pika.SelectConnection | None = None
        self._channel = None
        self._error: str | None = None
        self._reset_batch(iter(()))

    @property
    def _connection(self) -> pika.SelectConnection:
        """The open connection (the event loop's callbacks run only while there is one)."""
        if self._conn is None:
            raise PublishError(f"not connected to {self._where()}")
        return self._conn

    def _where(self) -> str:
        return f"RabbitMQ at {self._params.hostport} (vhost {self._params.virtual_host!r})"

    # -- connection -------------------------------------------------------
    def connect(self) -> None:
        """Connect to the first node of the URI that answers (a cluster's nodes: `nodes.in_turn`)."""
        if self._channel is not None and self._channel.is_open:
            return
        self.close()
        failures: list[str] = []
        for node in nodes.in_turn(self._uri):
            self._params = node
            try:
                self._connect_node()
            except PublishError as exc:
                nodes.lost(self._uri, node)
                failures.append(str(exc))
                continue
            nodes.reached(self._uri, node)
            return
        if len(failures) == 1:
            raise PublishError(failures[0])
        raise PublishError(f"no node of the RabbitMQ cluster answers: {'; '.join(failures)}")

    def _connect_node(self) -> None:
        if self.exchange == EVENTS_EXCHANGE:
            self._declare_topology()
        params = pika.ConnectionParameters(
            host=self._params.host,
            port=self._params.port,
            virtual_host=self._params.virtual_host,
            credentials=pika.PlainCredentials(self._params.userid, self._params.password),
            socket_timeout=self.connect_timeout,
            blocked_connection_timeout=self.confirm_timeout,
            heartbeat=0,
        )
        self._error = None
        self._conn = pika.SelectConnection(
            params,
            on_open_callback=lambda c: c.channel(on_open_callback=self._on_channel_open),
            on_open_error_callback=lambda _c, exc: self._fail(f"cannot reach {self._where()}: {exc!r}"),
            on_close_callback=self._on_connection_closed,
        )
        self._run_loop(self.connect_timeout, "connecting")
        if self._error or self._channel is None:
            error = self._error or f"cannot reach {self._where()}"
            self.close()
            raise PublishError(error)

    def _declare_topology(self) -> None:
        try:
            conn = amqp.Connection(**self._params.connection_kwargs(), connect_timeout=self.connect_timeout)
            conn.connect()
            try:
                declare_subscribers(events_exchange_ready(conn.channel()), self.subscribers)
            finally:
                conn.close()
        except (OSError, amqp.exceptions.AMQPError) as exc:
            raise PublishError(f"cannot reach {self._where()}: {exc}") from exc

    def _on_connection_closed(self, connection, reason) -> None:
        if connection is self._conn:
            self._fail(f"connection to {self._where()} closed: {reason!r}")
        connection.ioloop.stop()  # also ends the wait in close()

    def _on_channel_open(self, channel) -> None:
        channel.add_on_close_callback(lambda _ch, reason: self._fail(f"channel on {self._where()} closed: {reason!r}"))
        channel.confirm_delivery(self._on_confirm, callback=lambda _frame: self._ready(channel))

    def _ready(self, channel) -> None:
        self._channel = channel
        # Delivery tags count from 1 on each channel put in confirm mode.
        self._next_tag, self._confirmed_through = 1, 0
        self._frames = PublishFrames(channel.channel_number, self.exchange, self._connection.params.frame_max)
        self._connection.ioloop.stop()

    def close(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None and conn.is_open:
            try:
                conn.close()
                conn.ioloop.start()  # let the close handshake finish; on_close stops the loop
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass

    def __enter__(self) -> ConfirmedPublisher:
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the event loop ---------------------------------------------------
    def _fail(self, message: str) -> None:
        if self._error is None:
            self._error = message
        if self._conn is not None:
            self._conn.ioloop.stop()

    def _run_loop(self, timeout: float, doing: str) -> None:
        loop = self._connection.ioloop
        timer = loop.call_later(timeout, lambda: self._fail(f"timed out after {timeout:.0f}s {doing}"))
        loop.start()
        loop.remove_timeout(timer)

    # -- publishing -------------------------------------------------------
    CHUNK_BYTES = 256 * 1024  # frames handed to the socket in one write

    def _reset_batch(self, messages: Iterator[OutgoingMessage]) -> None:
        self._messages = messages
        self._exhausted = False
        # Tags are consecutive: every tag up to `_confirmed_through` is confirmed, and
        # `_confirmed_early` holds single acks past it (RabbitMQ may ack out of order).
        self._next_tag = getattr(self, "_next_tag", 1)
        self._confirmed_through = getattr(self, "_confirmed_through", 0)
        self._confirmed_early: set[int] = set()
        self._first_tag = self._next_tag  # the batch's first message
        self._first_nack: int | None = None  # the lowest delivery tag RabbitMQ refused
        self._sent = 0
        self._invalid: ValueError | None = None  # a message that cannot be encoded
        self._last_progress = time.monotonic()
        self._watchdog = None

    def _outstanding(self) -> int:
        return self._next_tag - 1 - self._confirmed_through - len(self._confirmed_early)

    def _pump(self) -> None:
        """Write messages until `window` are unconfirmed; stop the loop once all are confirmed."""
        if self._invalid is not None or self._channel is None or not self._channel.is_open:
            return  # publish() raises the invalid message; the close callback reports a closed channel
        room = self.window - self._outstanding()
        if not self._exhausted and room > 0:
            # pika's hook from its protocol layer to the socket: the frames go out as they are.
            encode, emit, limit = self._frames.encode, self._conn._adapter_emit_data, self.CHUNK_BYTES
            chunk: list[bytes] = []
            size = sent = 0
            for m in self._messages:
                try:
                    frames = encode(m[0], m[1], m[2], m[3], m[4])
                except ValueError as exc:  # publish() raises it (pika would report a lost connection)
                    self._invalid = exc
                    break
                chunk.append(frames)
                size += len(frames)
                sent += 1
                if size >= limit:
                    emit(b"".join(chunk))
                    chunk, size = [], 0
                if sent == room:
                    break
            else:
                self._exhausted = True
            if chunk:
                emit(b"".join(chunk))
            self._next_tag += sent
            self._sent += sent
        if self._invalid is not None or (self._exhausted and not self._outstanding()):
            self._conn.ioloop.stop()

    def _on_confirm(self, frame) -> None:
        method = frame.method
        tag = method.delivery_tag
        early = self._confirmed_early
        if isinstance(method, pika.spec.Basic.Nack) and self._first_nack is None:
            # A multiple nack refuses every tag not yet confirmed up to `tag`: the lowest is the next in order.
            self._first_nack = self._confirmed_through + 1 if method.multiple else tag
        if method.multiple:
            if tag > self._confirmed_through:
                self._confirmed_through = tag
                if early:
                    early.difference_update([t for t in early if t <= tag])
        elif tag == self._confirmed_through + 1:
            self._confirmed_through = tag
        elif tag > self._confirmed_through:
            early.add(tag)
        while early and self._confirmed_through + 1 in early:
            self._confirmed_through += 1
            early.remove(self._confirmed_through)
        self._last_progress = time.monotonic()
        if self._first_nack is not None:
            # Refused: send no more, but wait for the confirms of what is in flight (RabbitMQ may ack
            # earlier messages after refusing later ones) to know how many, from the first, it took.
            if not self._outstanding():
                self._fail(f"RabbitMQ refused (nack) message {self._first_nack - self._first_tag + 1:d} of the "
                           "batch: a queue it is routed to is full (overflow reject-publish; `relais status` "
                           "names it)")
            return
        self._pump()

    def _check_progress(self) -> None:
        if time.monotonic() - self._last_progress > self.confirm_timeout:
            self._fail(f"RabbitMQ did not confirm {self._outstanding()} message(s) "
                       f"within {self.confirm_timeout:.0f}s")
            return
        self._watchdog = self._connection.ioloop.call_later(1.0, self._check_progress)

    def publish(self, messages: Iterable[OutgoingMessage]) -> int:
        """Publish every message and wait for all confirms; returns how many.

        A message that cannot be encoded (a field past AMQP's 255 bytes) raises
        ValueError naming it; the connection is closed then, since part of the
        batch may have gone.
        """
        self.connect()
        self._reset_batch(iter(messages))
        loop = self._connection.ioloop
        self._watchdog = loop.call_later(1.0, self._check_progress)
        loop.add_callback_threadsafe(self._pump)
        try:
            loop.start()
        except BaseException:
            self.close()
            raise
        if self._watchdog is not None:
            loop.remove_timeout(self._watchdog)
        if self._invalid is not None:
            self.close()
            raise self._invalid
        if self._error is not None:
            error, confirmed = self._error, self._confirmed_in_order()
            if self._first_nack is None:  # the connection or channel lost: the next connect starts elsewhere
                nodes.lost(self._uri, self._params)
            self.close()
            raise PublishError(error, confirmed=confirmed, refused=self._first_nack is not None)
        return self._sent

    def _confirmed_in_order(self) -> int:
        """How many of the batch's messages, from its first, the broker confirmed (acked, not refused)."""
        last = self._confirmed_through if self._first_nack is None else min(self._confirmed_through,
                                                                              self._first_nack - 1)
        return max(0, last - self._first_tag + 1)
