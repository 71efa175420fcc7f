"""vault: item versions and tombstones index

Revision ID: 0007_vault
Revises: 0004_prov_tokens
"""
import sqlalchemy as sa
from alembic import op

revision = "0007_vault"
down_revision = "0004_prov_tokens"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vault_item_version",
        sa.Column("tenant", sa.String(63), primary_key=True),
        sa.Column("person", sa.String(64), primary_key=True),
        sa.Column("vertical", sa.String(32), primary_key=True),
        sa.Column("item_id", sa.String(512), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("content_sha256", sa.String(64)),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("purge_after", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("vault_item_version")
