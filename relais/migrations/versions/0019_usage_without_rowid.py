"""usage: on SQLite, activity and aggregates kept in their primary key's own b-tree (WITHOUT ROWID);
the aggregates' key led by grain, profile, level and resource

A rowid table stores each row twice (the row, then its primary key index, here most of the row):
ingestion adds or updates a row of activity per event, and closing a month writes its millions of
aggregates, which reports read back by that key. A report reads one grain, most often over every
profile and level: with them next in the key, it seeks its cells instead of scanning the grain's
(on PostgreSQL too, where the key is otherwise unchanged).

Revision ID: 0019_usage_without_rowid
Revises: 0018_usage
"""
from alembic import op

revision = "0019_usage_without_rowid"
down_revision = "0018_usage"
branch_labels = None
depends_on = None

PERIOD, KIND, NAME, RESOURCE = 7, 8, 64, 255

_TABLES = {
    "usage_activity": (
        f"tenant VARCHAR(63) NOT NULL, day DATE NOT NULL, kind VARCHAR({KIND}) NOT NULL, "
        f"pseudonym VARCHAR(32) NOT NULL, structure VARCHAR({NAME}) NOT NULL, profile VARCHAR({NAME}) NOT NULL, "
        f"level VARCHAR({NAME}) NOT NULL, resource VARCHAR({RESOURCE}) NOT NULL, period VARCHAR({PERIOD}) NOT NULL, "
        "week DATE NOT NULL, count INTEGER NOT NULL, "
        "PRIMARY KEY (tenant, day, kind, pseudonym, structure, profile, level, resource)",
        "tenant, day, kind, pseudonym, structure, profile, level, resource, period, week, count",
    ),
    "usage_aggregate": (
        f"tenant VARCHAR(63) NOT NULL, period VARCHAR({PERIOD}) NOT NULL, grain VARCHAR(5) NOT NULL, "
        f"start DATE NOT NULL, indicator VARCHAR(24) NOT NULL, structure VARCHAR({NAME}) NOT NULL, "
        f"profile VARCHAR({NAME}) NOT NULL, level VARCHAR({NAME}) NOT NULL, resource VARCHAR({RESOURCE}) NOT NULL, "
        "value INTEGER NOT NULL, "
        "CONSTRAINT usage_aggregate_pkey PRIMARY KEY ({key})",
        "tenant, period, grain, start, indicator, structure, profile, level, resource, value",
    ),
}


NEW_KEY = "tenant, period, grain, profile, level, resource, structure, start, indicator"
OLD_KEY = "tenant, period, grain, start, indicator, structure, profile, level, resource"


def _rebuild(suffix: str, key: str) -> None:
    op.execute("DROP INDEX IF EXISTS ix_usage_activity_period")
    for table, (columns, names) in _TABLES.items():
        op.execute(f"CREATE TABLE {table}_new ({columns.format(key=key)}){suffix}")
        op.execute(f"INSERT INTO {table}_new ({names}) SELECT {names} FROM {table}")
        op.execute(f"DROP TABLE {table}")
        op.execute(f"ALTER TABLE {table}_new RENAME TO {table}")
    op.execute("CREATE INDEX ix_usage_activity_period ON usage_activity (period)")


def _rekey(key: str) -> None:
    op.execute("ALTER TABLE usage_aggregate DROP CONSTRAINT usage_aggregate_pkey")
    op.execute(f"ALTER TABLE usage_aggregate ADD CONSTRAINT usage_aggregate_pkey PRIMARY KEY ({key})")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(" WITHOUT ROWID", NEW_KEY)
    else:
        _rekey(NEW_KEY)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild("", OLD_KEY)
    else:
        _rekey(OLD_KEY)
