"""vault: continuous mode and rights (item path, size and change time; tenant retention; access log)

`vault_item_version` gains `path`, `size` and `changed_at` (continuous mode) and indexes to find
who references a blob and which tombstones expired; `vault_tenant` keeps each tenant's retention
policy and a counter of blob deletions; `vault_access_log` records who read what.

Revision ID: 0011_vault_rights
Revises: 0008_gar_feed
Depends on: 0007_vault (the table it extends; another branch of the history)
"""
import sqlalchemy as sa
from alembic import op

revision = "0011_vault_rights"
down_revision = "0008_gar_feed"
branch_labels = None
depends_on = "0007_vault"


def upgrade() -> None:
    op.add_column("vault_item_version", sa.Column("path", sa.String(1024)))
    op.add_column("vault_item_version", sa.Column("size", sa.BigInteger))
    op.add_column("vault_item_version", sa.Column("changed_at", sa.DateTime(timezone=True)))
    op.create_index("ix_vault_item_version_digest", "vault_item_version", ["tenant", "content_sha256"])
    op.create_index("ix_vault_item_version_purge", "vault_item_version", ["tenant", "purge_after"])
    op.create_table(
        "vault_tenant",
        sa.Column("tenant", sa.String(63), primary_key=True),
        sa.Column("retention_days", sa.Integer),
        sa.Column("blob_epoch", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
        sa.Column("updated_by", sa.String(128)),
    )
    op.create_table(
        "vault_access_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(63), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("person", sa.String(64), nullable=False),
        sa.Column("vertical", sa.String(32)),
        sa.Column("item_id", sa.String(512)),
        sa.Column("version", sa.Integer),
    )
    op.create_index("ix_vault_access_log_person", "vault_access_log", ["tenant", "person", "at"])


def downgrade() -> None:
    op.drop_index("ix_vault_access_log_person", "vault_access_log")
    op.drop_table("vault_access_log")
    op.drop_table("vault_tenant")
    op.drop_index("ix_vault_item_version_purge", "vault_item_version")
    op.drop_index("ix_vault_item_version_digest", "vault_item_version")
    with op.batch_alter_table("vault_item_version") as batch:
        batch.drop_column("changed_at")
        batch.drop_column("size")
        batch.drop_column("path")
