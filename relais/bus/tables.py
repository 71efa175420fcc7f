"""Tables the bus keeps in each service's database."""

from sqlalchemy import BigInteger, Column, DateTime, Integer, LargeBinary, MetaData, String, Table

metadata = MetaData()

# Events waiting to be relayed to RabbitMQ, written in the same transaction as
# the state they describe. Rows are deleted once the broker confirmed them.
outbox = Table(
    "relais_outbox",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("type", String(120), nullable=False),
    Column("body", LargeBinary, nullable=False),
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
