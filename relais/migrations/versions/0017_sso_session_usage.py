"""sso: the usage facts of a session (profile, structure UAI, level), for the usage statistics' events

Read from the directory record at login and copied into the session's events
(`sso.login.succeeded`, `sso.cas.ticket.validated`, `sso.saml.response.sent`), so a CAS
validation or a SAML response does not ask the directory again. Nullable: sessions opened
before this migration, or persons the directory says nothing of, have none.

Revision ID: 0017_sso_session_usage
Revises: 0009_sso_saml (which needs 0006_sso, which made sso_session)
"""
import sqlalchemy as sa
from alembic import op

revision = "0017_sso_session_usage"
down_revision = "0009_sso_saml"
branch_labels = None
depends_on = None

COLUMNS = ("profile", "structure", "level")


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column("sso_session", sa.Column(name, sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("sso_session") as batch:
        for name in COLUMNS:
            batch.drop_column(name)
