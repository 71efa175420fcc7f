"""provisioning: bearer tokens issued to apps (OAuth 2.0 client credentials)

Revision ID: 0004_prov_tokens
Revises: 0003_provisioning
"""
import sqlalchemy as sa
from alembic import op

revision = "0004_prov_tokens"
down_revision = "0003_provisioning"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prov_token",
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column("app", sa.String(128), nullable=False),
        sa.Column("scopes", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("prov_token")
