"""vault: item ids up to 1024 characters, as the archive format's schemas allow

An item id is an NFC relative path (contracts/vault/schemas/common.json `relpath`, at most 1024
characters); the index kept 512, so an export refused an item of a deep folder tree that a connector
had listed. `vault_item_version`, `vault_access_log` and `vault_transfer_item` now take 1024. On
PostgreSQL a varchar widening rewrites nothing; on SQLite the tables are rebuilt with their rows.

Revision ID: 0016_vault_item_id_1024
Revises: 0014_vault_transfer (and needs 0011_vault_rights, which made vault_access_log)
"""
import sqlalchemy as sa
from alembic import op

revision = "0016_vault_item_id_1024"
down_revision = "0014_vault_transfer"
branch_labels = None
depends_on = "0011_vault_rights"

TABLES = ("vault_item_version", "vault_access_log", "vault_transfer_item")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column("item_id", type_=sa.String(1024), existing_type=sa.String(512))


def downgrade() -> None:
    """Fails, saying which value is too long, when the vault holds an id longer than 512 (PostgreSQL)."""
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column("item_id", type_=sa.String(512), existing_type=sa.String(1024))
