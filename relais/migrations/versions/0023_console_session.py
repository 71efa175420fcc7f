"""console: its sessions, so that signing out, or the SSO's single logout, ends them at once

The session cookie stays sealed (who, roles, expiry); this table says which sessions are still open, by
the random id the cookie carries, with the CAS ticket they were opened with (the SSO's back-channel
logout names it).

Revision ID: 0023_console_session
Revises: 0020_console_audit
"""
import sqlalchemy as sa
from alembic import op

revision = "0023_console_session"
down_revision = "0020_console_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_session",
        sa.Column("sid", sa.String(64), primary_key=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("ticket", sa.String(255), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_console_session_ticket", "console_session", ["ticket"])
    op.create_index("ix_console_session_opened", "console_session", ["opened_at"])


def downgrade() -> None:
    op.drop_table("console_session")
