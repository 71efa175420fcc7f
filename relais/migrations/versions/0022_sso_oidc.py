"""sso: the OpenID Connect provider's authorization codes, tokens and published signing keys

Codes and tokens are stored as SHA-256 digests only; `grant_id` ties the tokens
issued from one code together (a code or a rotated refresh token presented again
revokes them all). `sso_oidc_jwk` keeps each signing key's public half until the
last token it signed has expired.

Revision ID: 0022_sso_oidc
Revises: 0017_sso_session_usage
"""
import sqlalchemy as sa
from alembic import op

revision = "0022_sso_oidc"
down_revision = "0017_sso_session_usage"
branch_labels = None
depends_on = None

_HASH = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "sso_oidc_code",
        sa.Column("code_sha256", _HASH, primary_key=True),
        sa.Column("grant_id", sa.String(32), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("session_sha256", _HASH, nullable=False),
        sa.Column("session_ref", sa.String(32), nullable=False),
        sa.Column("person_jointure", sa.String(64), nullable=False),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("nonce", sa.Text),
        sa.Column("code_challenge", sa.String(128)),
        sa.Column("code_challenge_method", sa.String(8)),
        sa.Column("auth_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consumed_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_sso_oidc_code_expires_at", "sso_oidc_code", ["expires_at"])
    op.create_table(
        "sso_oidc_token",
        sa.Column("token_sha256", _HASH, primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("grant_id", sa.String(32), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("session_sha256", _HASH, nullable=False),
        sa.Column("session_ref", sa.String(32), nullable=False),
        sa.Column("person_jointure", sa.String(64), nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("auth_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replaced_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    for column in ("grant_id", "session_ref", "expires_at"):
        op.create_index(f"ix_sso_oidc_token_{column}", "sso_oidc_token", [column])
    op.create_table(
        "sso_oidc_jwk",
        sa.Column("kid", sa.String(128), primary_key=True),
        sa.Column("jwk", sa.Text, nullable=False),
        sa.Column("published_until", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sso_oidc_jwk")
    op.drop_table("sso_oidc_token")
    op.drop_table("sso_oidc_code")
