"""provisioning: what the last GAR feed of each ENT id held (delta feeds)

Revision ID: 0008_gar_feed
Revises: 0004_prov_tokens
"""
import sqlalchemy as sa
from alembic import op

revision = "0008_gar_feed"
down_revision = "0004_prov_tokens"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prov_gar_feed",
        sa.Column("ent_id", sa.String(64), primary_key=True),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("state", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("prov_gar_feed")
