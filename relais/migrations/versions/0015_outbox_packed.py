"""bus: an outbox row may hold many events (`events`), for the writers of millions

A full evaluation writes one event per grant, 1.7 million for an academy;
rows of up to a thousand events (ids, types and bodies one per line) cost a
fraction of one row each. The relay publishes them one message per event.

Revision ID: 0015_outbox_packed
Revises: 0013_grant_without_rowid
"""
import sqlalchemy as sa
from alembic import op

revision = "0015_outbox_packed"
down_revision = "0013_grant_without_rowid"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("relais_outbox") as batch:
        batch.alter_column("event_id", type_=sa.Text(), existing_nullable=False)
        batch.alter_column("type", type_=sa.Text(), existing_nullable=False)
        batch.add_column(sa.Column("events", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("relais_outbox") as batch:
        batch.drop_column("events")
        batch.alter_column("type", type_=sa.String(120), existing_nullable=False)
        batch.alter_column("event_id", type_=sa.String(36), existing_nullable=False)
