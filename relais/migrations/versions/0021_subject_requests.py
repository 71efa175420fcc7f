"""subject requests: the erasure audit trail, and the directory's marks of erased persons

`subject_request` and `subject_confirmation` record each erasure request and each service's
confirmation, naming the person by a keyed hash only (relais/subject/keys.py); `dir_erased` lets
the directory's next import say that a person erased on request came back with the AAF.

Revision ID: 0021_subject_requests
Revises: 0019_usage_without_rowid
"""
import sqlalchemy as sa
from alembic import op

revision = "0021_subject_requests"
down_revision = "0019_usage_without_rowid"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subject_request",
        sa.Column("request_id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("tenant", sa.String(63), nullable=False),
        sa.Column("subject_hash", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("services", sa.Text, nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_subject_request_subject_hash", "subject_request", ["subject_hash"])
    op.create_table(
        "subject_confirmation",
        sa.Column("request_id", sa.String(36), primary_key=True),
        sa.Column("service", sa.String(32), primary_key=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erased", sa.Text, nullable=False),
        sa.Column("notes", sa.Text, nullable=False),
    )
    op.create_table(
        "dir_erased",
        sa.Column("subject_hash", sa.String(64), primary_key=True),
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("returned_at", sa.DateTime(timezone=True)),
        sa.Column("returned_import", sa.String(36)),
    )


def downgrade() -> None:
    op.drop_table("dir_erased")
    op.drop_table("subject_confirmation")
    op.drop_index("ix_subject_request_subject_hash", "subject_request")
    op.drop_table("subject_request")
