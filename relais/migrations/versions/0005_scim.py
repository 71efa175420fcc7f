"""provisioning: SCIM resources created by apps (per app)

Revision ID: 0005_scim
Revises: 0004_prov_tokens
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_scim"
down_revision = "0004_prov_tokens"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prov_scim_resource",
        sa.Column("app", sa.String(128), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("modified", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("prov_scim_resource")
