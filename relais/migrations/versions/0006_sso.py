"""sso: sessions, CAS tickets, services per session (single logout), SAML replay cache

Revision ID: 0006_sso
Revises: 0004_prov_tokens
"""
import sqlalchemy as sa
from alembic import op

revision = "0006_sso"
down_revision = "0004_prov_tokens"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sso_session",
        sa.Column("sid_sha256", sa.String(64), primary_key=True),
        sa.Column("ref", sa.String(32), nullable=False, unique=True),
        sa.Column("person_jointure", sa.String(64), nullable=False, index=True),
        sa.Column("auth_source", sa.String(64), nullable=False),
        sa.Column("national_id", sa.String(255)),
        sa.Column("attributes", sa.Text, nullable=False),
        sa.Column("csrf_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    op.create_table(
        "sso_ticket",
        sa.Column("ticket_sha256", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(4), nullable=False),
        sa.Column("service", sa.Text, nullable=False),
        sa.Column("session_sha256", sa.String(64), nullable=False, index=True),
        sa.Column("person_jointure", sa.String(64), nullable=False),
        sa.Column("renewed", sa.Boolean, nullable=False),
        sa.Column("proxies", sa.Text, nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("consumed_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "sso_session_service",
        sa.Column("session_sha256", sa.String(64), primary_key=True),
        sa.Column("ticket", sa.String(128), primary_key=True),
        sa.Column("service", sa.Text, nullable=False),
        sa.Column("logged_in_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "sso_replay",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )


def downgrade() -> None:
    for name in ("sso_replay", "sso_session_service", "sso_ticket", "sso_session"):
        op.drop_table(name)
