"""The console's tables: the audit log of every action (migration 0020_console_audit), its open sessions (0023)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, MetaData, String, Table

metadata = MetaData()

audit = Table(
    "console_audit", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(128), nullable=False),  # the CAS user, or "-" before sign-in
    Column("action", String(64), nullable=False),  # sign-in, search, person, grant, revoke, health, audit...
    Column("target", String(255)),  # a person's jointure, a resource: never shown outside the audit page
    Column("uai", String(16)),
    Column("outcome", String(16), nullable=False),  # ok, refused (403), failed
    Column("address", String(64)),  # the client's address, as the console received it
    Column("detail", String(500)),
    Index("ix_console_audit_at", "at"),
    Index("ix_console_audit_actor", "actor", "at"),
)

session = Table(
    "console_session", metadata,
    Column("sid", String(64), primary_key=True),  # the random id the sealed cookie carries
    Column("actor", String(128), nullable=False),
    Column("ticket", String(255), nullable=False),  # the CAS ticket it was opened with: single logout names it
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Index("ix_console_session_ticket", "ticket"),
    Index("ix_console_session_opened", "opened_at"),
)
