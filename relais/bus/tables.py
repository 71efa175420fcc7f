"""Tables the bus keeps in each service's database."""

from sqlalchemy import BigInteger, Column, DateTime, Integer, LargeBinary, MetaData, String, Table, Text

metadata = MetaData()

# Events waiting to be relayed to RabbitMQ, written in the same transaction as
# the state they describe. Rows are deleted once the broker confirmed them.
outbox = Table(
    "relais_outbox",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    # One event, or up to a thousand written together (`events`; migration 0015): their ids, types
    # and JSON bodies one per line (one type for all when they share it). Not indexed: read by seq.
    Column("event_id", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("events", Integer, nullable=False, server_default="1"),
)

# Event ids a consumer has handled, written in the same transaction as the
# handler's effects: a redelivered event is recognised and skipped.
processed_events = Table(
    "relais_processed_event",
    metadata,
    Column("consumer", String(120), primary_key=True),
    Column("event_id", String(36), primary_key=True),
    Column("processed_at", DateTime(timezone=True), nullable=False),
)
