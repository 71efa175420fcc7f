"""provisioning: on SQLite, grants kept in their primary key's own b-tree (WITHOUT ROWID)

A rowid table stores each grant twice (the row, then the primary key index);
a full evaluation writes a million and a half of them in one transaction.
PostgreSQL is unchanged.

Revision ID: 0013_grant_without_rowid
Revises: 0012_outbox_event_id
"""
from alembic import op

revision = "0013_grant_without_rowid"
down_revision = "0012_outbox_event_id"
branch_labels = None
depends_on = None

_COLUMNS = "person, resource, structure, cause, granted_at, revoke_after"


def _rebuild(suffix: str) -> None:
    op.execute("DROP INDEX IF EXISTS ix_prov_grant_pool")
    op.execute("CREATE TABLE prov_grant_new (person VARCHAR(64) NOT NULL, resource VARCHAR(255) NOT NULL, "
               "structure VARCHAR(16) NOT NULL, cause VARCHAR(160) NOT NULL, granted_at DATETIME NOT NULL, "
               f"revoke_after DATETIME, PRIMARY KEY (person, resource, structure)){suffix}")
    op.execute(f"INSERT INTO prov_grant_new ({_COLUMNS}) SELECT {_COLUMNS} FROM prov_grant")
    op.execute("DROP TABLE prov_grant")
    op.execute("ALTER TABLE prov_grant_new RENAME TO prov_grant")
    op.execute("CREATE INDEX ix_prov_grant_pool ON prov_grant (resource, structure)")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(" WITHOUT ROWID")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild("")
