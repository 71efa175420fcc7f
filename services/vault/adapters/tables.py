"""The vault's tables: the item index (migration 0007_vault, extended by 0011_vault_rights), each
tenant's retention policy, and the access log. Content lives in the blob store, by sha256."""

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

vault_item_version = Table(
    "vault_item_version", metadata,
    Column("tenant", String(63), primary_key=True),
    Column("person", String(64), primary_key=True),  # AAF jointure
    Column("vertical", String(32), primary_key=True),
    Column("item_id", String(1024), primary_key=True),  # the ENT's stable id of the item (NFC, safe path)
    Column("version", Integer, primary_key=True),
    Column("content_sha256", String(64)),  # NULL for a tombstone
    Column("metadata", Text, nullable=False),  # JSON, vendor extensions kept verbatim
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("purge_after", DateTime(timezone=True)),  # tombstones only: retention end
    # 0011_vault_rights:
    Column("path", String(1024)),  # where the ENT shows the item (documents: folder tree), if it says
    Column("size", BigInteger),  # content bytes; NULL for tombstones and rows written before 0011
    Column("changed_at", DateTime(timezone=True)),  # when the ENT says the change happened
    Index("ix_vault_item_version_digest", "tenant", "content_sha256"),  # who else references a blob
    Index("ix_vault_item_version_purge", "tenant", "purge_after"),  # expired tombstones
)

# One row per tenant that has a policy or has had blobs deleted (migration 0011_vault_rights).
vault_tenant = Table(
    "vault_tenant", metadata,
    Column("tenant", String(63), primary_key=True),
    Column("retention_days", Integer),  # NULL: RELAIS_VAULT_RETENTION_DAYS
    # Incremented by every transaction that deletes blobs (erasure, purge), so a writer that
    # stored a blob before such a transaction knows to check it is still there (see index.py).
    Column("blob_epoch", BigInteger, nullable=False, default=0),
    Column("updated_at", DateTime(timezone=True)),
    Column("updated_by", String(128)),
)

# Who read what (migration 0011_vault_rights). Reads through the Vault API add a row before
# the content is returned. After an erasure the person's rows keep actor, time and vertical,
# and lose the item id (an item id can be a file name, and so personal).
vault_access_log = Table(
    "vault_access_log", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("tenant", String(63), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(16), nullable=False),  # read | versions | restore
    Column("person", String(64), nullable=False),
    Column("vertical", String(32)),
    Column("item_id", String(1024)),  # 0016_vault_item_id_1024
    Column("version", Integer),
    Index("ix_vault_access_log_person", "tenant", "person", "at"),
)
