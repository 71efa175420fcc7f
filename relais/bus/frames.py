"""The AMQP 0-9-1 frames of one published message, as bytes ready for the socket.

pika encodes a publish through its generic property and frame classes and
gives the socket one write per frame, three a message: at 10,000 messages a
second that was most of the relay's CPU. Every message the bus publishes has
the same shape (persistent JSON, with a message id, a type and rarely
headers), so its frames are constant pieces around the routing key, the id,
the type and the body; the publisher joins a window's worth and writes them
at once. The bytes are exactly those pika would send (tests/kernel/test_bus.py
compares them).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from pika import data, spec

FRAME_END = bytes((spec.FRAME_END,))
_FRAME = struct.Struct(">BHI")  # type, channel, payload size
_CONTENT_HEADER = struct.Struct(">BHIHHQH")  # frame head, then class, weight, body size, property flags
_FLAGS = (spec.BasicProperties.FLAG_CONTENT_TYPE | spec.BasicProperties.FLAG_CONTENT_ENCODING
          | spec.BasicProperties.FLAG_DELIVERY_MODE | spec.BasicProperties.FLAG_MESSAGE_ID
          | spec.BasicProperties.FLAG_TYPE)
# content_type, content_encoding, then (headers,) delivery_mode 2: persistent.
_FIXED_PROPERTIES = b"\x10application/json\x05utf-8"
_PERSISTENT = b"\x02"


def short_string(value: str, what: str) -> bytes:
    """An AMQP short string (length byte, UTF-8); ValueError naming `what` past 255 bytes."""
    raw = value.encode()
    if len(raw) > 255:
        raise ValueError(f"its {what} is {len(raw)} bytes long, AMQP allows 255")
    return bytes((len(raw),)) + raw


class PublishFrames:
    """Encodes Basic.Publish, content header and body frames for one channel and exchange."""

    def __init__(self, channel_number: int, exchange: str, frame_max: int):
        self.channel_number = channel_number
        try:
            self.exchange = short_string(exchange, "name")
        except ValueError as exc:
            raise ValueError(f"exchange {exchange[:80]!r}: {exc}") from None
        self.body_max = frame_max - spec.FRAME_HEADER_SIZE - spec.FRAME_END_SIZE
        self._methods: dict[str, bytes] = {}  # routing key -> its method frame
        self._types: dict[str, bytes] = {}  # type -> its short string

    def _method(self, routing_key: str) -> bytes:
        # Basic.Publish: ticket 0, exchange, routing key, neither mandatory nor immediate.
        payload = (struct.pack(">IH", spec.Basic.Publish.INDEX, 0) + self.exchange
                   + short_string(routing_key, "routing key") + b"\x00")
        frame = _FRAME.pack(spec.FRAME_METHOD, self.channel_number, len(payload)) + payload + FRAME_END
        if len(self._methods) < 4096:  # routing keys are event types: few
            self._methods[routing_key] = frame
        return frame

    def _type(self, type_: str) -> bytes:
        encoded = short_string(type_, "type")
        if len(self._types) < 4096:
            self._types[type_] = encoded
        return encoded

    def encode(self, routing_key: str, body: bytes, message_id: str, type_: str,
               headers: Mapping | None = None) -> bytes:
        """The frames of one persistent JSON message, as pika's basic_publish would write them."""
        try:
            method = self._methods.get(routing_key) or self._method(routing_key)
            type_part = self._types.get(type_) or self._type(type_)
            mid = short_string(message_id, "message id")
        except ValueError as exc:
            raise ValueError(f"message {message_id[:80]!r}: {exc}") from None
        flags, props = _FLAGS, _FIXED_PROPERTIES
        if headers:
            table: list[bytes] = []
            data.encode_table(table, dict(headers))
            flags |= spec.BasicProperties.FLAG_HEADERS
            props += b"".join(table)
        size = len(body)
        header = _CONTENT_HEADER.pack(spec.FRAME_HEADER, self.channel_number,
                                      14 + len(props) + 1 + len(mid) + len(type_part),
                                      spec.Basic.INDEX, 0, size, flags)
        pieces = [method, header, props, _PERSISTENT, mid, type_part, FRAME_END]
        if size <= self.body_max:
            if size:
                pieces += (_FRAME.pack(spec.FRAME_BODY, self.channel_number, size), body, FRAME_END)
        else:
            for start in range(0, size, self.body_max):
                part = body[start:start + self.body_max]
                pieces += (_FRAME.pack(spec.FRAME_BODY, self.channel_number, len(part)), part, FRAME_END)
        return b"".join(pieces)
