"""vault: the state of each connector's incremental sync, per person and vertical

`relais vault sync` (and the vault service's scheduled sync) asks a connector what changed since
the last sync: the state it gave back then (sync tokens, each item's ETag) is kept here, as JSON.

Revision ID: 0024_vault_sync
Revises: 0016_vault_item_id_1024
"""
import sqlalchemy as sa
from alembic import op

revision = "0024_vault_sync"
down_revision = "0016_vault_item_id_1024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vault_sync_state",
        sa.Column("tenant", sa.String(63), primary_key=True),
        sa.Column("connector", sa.String(64), primary_key=True),
        sa.Column("vertical", sa.String(32), primary_key=True),
        sa.Column("person", sa.String(64), primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("vault_sync_state")
