"""directory: structures, MEF, subjects, persons, memberships, imports

Revision ID: 0002_directory
Revises: 0001_bus
"""
import sqlalchemy as sa
from alembic import op

revision = "0002_directory"
down_revision = "0001_bus"
branch_labels = None
depends_on = None

ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "dir_structure",
        sa.Column("jointure", ID, primary_key=True),
        sa.Column("uai", sa.String(16), index=True),
        sa.Column("raw_hash", sa.String(32)),
        sa.Column("record_hash", sa.String(32), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    for name in ("dir_mef", "dir_subject"):
        op.create_table(
            name,
            sa.Column("code", ID, primary_key=True),
            sa.Column("raw_hash", sa.String(32)),
        sa.Column("record_hash", sa.String(32), nullable=False),
            sa.Column("data", sa.LargeBinary, nullable=False),
        )
    op.create_table(
        "dir_person",
        sa.Column("jointure", ID, primary_key=True),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("structure", ID, index=True),
        sa.Column("last_key", sa.String(200), nullable=False),
        sa.Column("first_key", sa.String(200), nullable=False),
        sa.Column("email_key", sa.String(254), index=True),
        sa.Column("ine", sa.String(16), index=True),
        sa.Column("struct_rattach_id", sa.String(32), index=True),
        sa.Column("raw_hash", sa.String(32)),
        sa.Column("record_hash", sa.String(32), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "dir_membership",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("person", ID, nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("structure", ID),
        sa.Column("code", sa.String(100)),
        sa.Column("subject", sa.String(32)),
        sa.Column("other", ID),
        sa.Column("legal_guardian", sa.Boolean),
    )
    op.create_index("ix_dir_membership_group", "dir_membership", ["structure", "kind", "code"])
    op.create_index("ix_dir_membership_other", "dir_membership", ["other"])
    op.create_table(
        "dir_import",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("report", sa.Text),
    )
    op.create_table(
        "dir_import_seen",
        sa.Column("import_id", sa.String(36), primary_key=True),
        sa.Column("family", sa.String(16), primary_key=True),
        sa.Column("key", ID, primary_key=True),
    )


def downgrade() -> None:
    for name in ("dir_import_seen", "dir_import", "dir_membership", "dir_person", "dir_subject", "dir_mef",
                 "dir_structure"):
        op.drop_table(name)
