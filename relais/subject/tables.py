"""The audit trail of data-subject requests (migration 0020_subject_requests).

It names the person by the keyed hash (`keys.subject_hash`) only: after an erasure it proves that
the request was made, when, by whom and which services confirmed what, and holds nothing erased.
"""
from sqlalchemy import Column, DateTime, MetaData, String, Table, Text

metadata = MetaData()

subject_request = Table(
    "subject_request", metadata,
    Column("request_id", String(36), primary_key=True),
    Column("kind", String(8), nullable=False),  # erase
    Column("tenant", String(63), nullable=False),
    Column("subject_hash", String(64), nullable=False, index=True),
    Column("actor", String(128), nullable=False),  # who ordered it (an operator or DPO reference)
    Column("services", Text, nullable=False),  # JSON list: the services expected to confirm
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("completed_at", DateTime(timezone=True)),  # when the last expected service confirmed
)

subject_confirmation = Table(
    "subject_confirmation", metadata,
    Column("request_id", String(36), primary_key=True),
    Column("service", String(32), primary_key=True),
    Column("confirmed_at", DateTime(timezone=True), nullable=False),
    Column("erased", Text, nullable=False),  # JSON: counts by kind of record
    Column("notes", Text, nullable=False),  # JSON list of strings
)
