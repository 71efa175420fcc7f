"""The checkpoints of contract-end transfers (migration 0014_vault_transfer).

A *job* is one export (source connector -> vault) or import (vault -> target connector) of a
tenant. It records every person and vertical it finished, and every item it finished (done, or
failed with the reason), in the same transactions as the vault's index rows, so a job killed at
any point resumes without doing again what is recorded and without losing what is not.
"""
from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

vault_transfer_job = Table(
    "vault_transfer_job", metadata,
    Column("job_id", String(32), primary_key=True),
    Column("tenant", String(63), nullable=False),
    Column("kind", String(8), nullable=False),  # export | import
    Column("connector", String(64), nullable=False),
    Column("scope", Text, nullable=False),  # JSON: {"persons": [...] or null, "verticals": [...]}
    Column("state", String(12), nullable=False),  # running | stopped | incomplete | completed | abandoned
    Column("runner", String(160)),  # host:pid of the process that ran it last
    Column("runs", Integer, nullable=False),  # 1 + how many times it was resumed
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),  # the last checkpoint written
    Column("finished_at", DateTime(timezone=True)),
    Column("error", Text),  # why it stopped
    Index("ix_vault_transfer_job_open", "tenant", "kind", "connector", "state"),
)

# A person's vertical the job went through: listed to the end with every item done (`done`), or
# not listable (`failed`, with the reason; listed again on resume).
vault_transfer_owner = Table(
    "vault_transfer_owner", metadata,
    Column("job_id", String(32), primary_key=True),
    Column("person", String(64), primary_key=True),
    Column("vertical", String(32), primary_key=True),
    Column("state", String(8), nullable=False),
    Column("items", Integer, nullable=False),
    Column("error", Text),
)

# An item the job finished: `done` (outcome new / unchanged for an export, created / updated /
# unchanged for an import) or `failed` with the reason (tried again on resume).
vault_transfer_item = Table(
    "vault_transfer_item", metadata,
    Column("job_id", String(32), primary_key=True),
    Column("person", String(64), primary_key=True),
    Column("vertical", String(32), primary_key=True),
    Column("item_id", String(1024), primary_key=True),  # 0016_vault_item_id_1024
    Column("state", String(8), nullable=False),
    Column("outcome", String(12)),
    Column("sha256", String(64)),
    Column("size", BigInteger),
    Column("path", String(1024)),
    Column("error", Text),
    Column("at", DateTime(timezone=True), nullable=False),
)
