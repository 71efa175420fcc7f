"""usage: periods and their pseudonym keys, pseudonymous activity, licences held, quotas, aggregates, releases

Revision ID: 0018_usage
Revises: 0015_outbox_packed
"""
import sqlalchemy as sa
from alembic import op

revision = "0018_usage"
down_revision = "0015_outbox_packed"
branch_labels = None
depends_on = None

PERIOD, KIND, NAME, RESOURCE = 7, 8, 64, 255


def upgrade() -> None:
    op.create_table(
        "usage_period",
        sa.Column("tenant", sa.String(63), primary_key=True),
        sa.Column("period", sa.String(PERIOD), primary_key=True),
        sa.Column("pseudonym_key", sa.LargeBinary(32)),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("late_events", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "usage_activity",
        sa.Column("tenant", sa.String(63), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("kind", sa.String(KIND), primary_key=True),
        sa.Column("pseudonym", sa.String(32), primary_key=True),
        sa.Column("structure", sa.String(NAME), primary_key=True),
        sa.Column("profile", sa.String(NAME), primary_key=True),
        sa.Column("level", sa.String(NAME), primary_key=True),
        sa.Column("resource", sa.String(RESOURCE), primary_key=True),
        sa.Column("period", sa.String(PERIOD), nullable=False),
        sa.Column("week", sa.Date, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_index("ix_usage_activity_period", "usage_activity", ["period"])
    op.create_table(
        "usage_licence",
        sa.Column("tenant", sa.String(63), primary_key=True),
        sa.Column("structure", sa.String(NAME), primary_key=True),
        sa.Column("resource", sa.String(RESOURCE), primary_key=True),
        sa.Column("held", sa.Integer, nullable=False),
    )
    op.create_table(
        "usage_quota",
        sa.Column("tenant", sa.String(63), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("structure", sa.String(NAME), primary_key=True),
        sa.Column("resource", sa.String(RESOURCE), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_table(
        "usage_aggregate",
        sa.Column("tenant", sa.String(63), primary_key=True),
        sa.Column("period", sa.String(PERIOD), primary_key=True),
        sa.Column("grain", sa.String(5), primary_key=True),
        sa.Column("start", sa.Date, primary_key=True),
        sa.Column("indicator", sa.String(24), primary_key=True),
        sa.Column("structure", sa.String(NAME), primary_key=True),
        sa.Column("profile", sa.String(NAME), primary_key=True),
        sa.Column("level", sa.String(NAME), primary_key=True),
        sa.Column("resource", sa.String(RESOURCE), primary_key=True),
        sa.Column("value", sa.Integer, nullable=False),
    )
    op.create_table(
        "usage_release",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(63), nullable=False),
        sa.Column("period", sa.String(PERIOD), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("epsilon", sa.Float, nullable=False),
        sa.Column("what", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("usage_release", "usage_aggregate", "usage_quota", "usage_licence", "usage_activity",
                  "usage_period"):
        op.drop_table(table)
