"""sso: the SAML SP's pending requests, account choices, IdP session links and metadata copies

Revision ID: 0009_sso_saml
Revises: 0008_gar_feed
"""
import sqlalchemy as sa
from alembic import op

revision = "0009_sso_saml"
down_revision = "0008_gar_feed"
branch_labels = None
depends_on = ("0006_sso",)


def upgrade() -> None:
    op.create_table(
        "sso_saml_request",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("idp", sa.String(64), nullable=False),
        sa.Column("browser_sha256", sa.String(64)),
        sa.Column("next", sa.Text),
        sa.Column("force_authn", sa.Boolean, nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("answered_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "sso_saml_choice",
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column("browser_sha256", sa.String(64), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    op.create_table(
        "sso_saml_session",
        sa.Column("session_sha256", sa.String(64), primary_key=True),
        sa.Column("idp", sa.String(64), nullable=False),
        sa.Column("name_id", sa.String(512), nullable=False),
        sa.Column("name_id_format", sa.String(255)),
        sa.Column("name_qualifier", sa.String(255)),
        sa.Column("sp_name_qualifier", sa.String(255)),
        sa.Column("session_index", sa.String(255)),
        sa.Column("return_url", sa.Text),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    op.create_index("ix_sso_saml_session_idp_name_id", "sso_saml_session", ["idp", "name_id"])
    op.create_table(
        "sso_saml_metadata",
        sa.Column("idp", sa.String(64), primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_index("ix_sso_saml_session_idp_name_id", table_name="sso_saml_session")
    for name in ("sso_saml_metadata", "sso_saml_session", "sso_saml_choice", "sso_saml_request"):
        op.drop_table(name)
