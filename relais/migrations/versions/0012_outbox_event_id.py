"""bus: the outbox's event ids no longer indexed

Nothing looks an outbox row up by event id (the relay reads by `seq`), and
the unique index on it was a third of what writing an event cost. Event ids
are UUIDv7 made by `new_event_id`; consumers stay idempotent on them.

Revision ID: 0012_outbox_event_id
Revises: 0008_gar_feed
"""
import sqlalchemy as sa
from alembic import op

revision = "0012_outbox_event_id"
down_revision = "0008_gar_feed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # An inline UNIQUE cannot be dropped in SQLite: rebuild the table, keeping `seq`.
        op.execute("CREATE TABLE relais_outbox_new (seq INTEGER NOT NULL PRIMARY KEY, "
                   "event_id VARCHAR(36) NOT NULL, type VARCHAR(120) NOT NULL, body BLOB NOT NULL)")
        op.execute("INSERT INTO relais_outbox_new (seq, event_id, type, body) "
                   "SELECT seq, event_id, type, body FROM relais_outbox")
        op.execute("DROP TABLE relais_outbox")
        op.execute("ALTER TABLE relais_outbox_new RENAME TO relais_outbox")
        return
    for unique in sa.inspect(bind).get_unique_constraints("relais_outbox"):
        if unique["column_names"] == ["event_id"] and unique["name"]:
            op.drop_constraint(unique["name"], "relais_outbox", type_="unique")


def downgrade() -> None:
    with op.batch_alter_table("relais_outbox", recreate="always") as batch:
        batch.create_unique_constraint("uq_relais_outbox_event_id", ["event_id"])
