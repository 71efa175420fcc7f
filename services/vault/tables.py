"""The vault's item index (migration 0007_vault). Content lives in the blob store, by sha256."""

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text

metadata = MetaData()

vault_item_version = Table(
    "vault_item_version", metadata,
    Column("tenant", String(63), primary_key=True),
    Column("person", String(64), primary_key=True),  # AAF jointure
    Column("vertical", String(32), primary_key=True),
    Column("item_id", String(512), primary_key=True),  # NFC path inside the vertical
    Column("version", Integer, primary_key=True),
    Column("content_sha256", String(64)),  # NULL for a tombstone
    Column("metadata", Text, nullable=False),  # JSON, vendor extensions kept verbatim
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("purge_after", DateTime(timezone=True)),  # tombstones only: retention end
)
