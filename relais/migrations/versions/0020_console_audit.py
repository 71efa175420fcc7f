"""console: the audit log of the operator console (who, what, when, from where, how it ended)

Revision ID: 0020_console_audit
Revises: 0001_bus (a branch of its own: the console's table depends on no other service's)
"""
import sqlalchemy as sa
from alembic import op

revision = "0020_console_audit"
down_revision = "0001_bus"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_audit",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(255)),
        sa.Column("uai", sa.String(16)),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("address", sa.String(64)),
        sa.Column("detail", sa.String(500)),
    )
    op.create_index("ix_console_audit_at", "console_audit", ["at"])
    op.create_index("ix_console_audit_actor", "console_audit", ["actor", "at"])


def downgrade() -> None:
    op.drop_table("console_audit")
