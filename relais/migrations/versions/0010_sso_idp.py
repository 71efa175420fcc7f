"""sso: the SAML IdP's record of the secret its pseudonymous NameIDs derive from

Revision ID: 0010_sso_idp
Revises: 0008_gar_feed
"""
import sqlalchemy as sa
from alembic import op

revision = "0010_sso_idp"
down_revision = "0008_gar_feed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sso_idp_secret",
        sa.Column("purpose", sa.String(32), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("previous_fingerprint", sa.String(64)),
    )


def downgrade() -> None:
    op.drop_table("sso_idp_secret")
