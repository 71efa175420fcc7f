"""provisioning: directory projection, catalogue and rules, grants, history, refusals

Revision ID: 0003_provisioning
Revises: 0002_directory
"""
import sqlalchemy as sa
from alembic import op

revision = "0003_provisioning"
down_revision = "0002_directory"
branch_labels = None
depends_on = None

ID = sa.String(64)
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "prov_structure",
        sa.Column("jointure", ID, primary_key=True),
        sa.Column("uai", sa.String(16), index=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "prov_reference",
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("code", ID, primary_key=True),
        sa.Column("label", sa.Text),
    )
    op.create_table(
        "prov_person",
        sa.Column("jointure", ID, primary_key=True),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "prov_config",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "prov_grant",
        sa.Column("person", ID, primary_key=True),
        sa.Column("resource", sa.String(255), primary_key=True),
        sa.Column("structure", sa.String(16), primary_key=True),
        sa.Column("cause", sa.String(160), nullable=False),
        sa.Column("granted_at", TS, nullable=False),
        sa.Column("revoke_after", TS),
    )
    op.create_index("ix_prov_grant_pool", "prov_grant", ["resource", "structure"])
    op.create_table(
        "prov_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("person", ID, nullable=False, index=True),
        sa.Column("resource", sa.String(255), nullable=False),
        sa.Column("structure", sa.String(16), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("cause", sa.String(300), nullable=False),
    )
    op.create_table(
        "prov_refusal",
        sa.Column("person", ID, primary_key=True),
        sa.Column("resource", sa.String(255), primary_key=True),
        sa.Column("structure", sa.String(16), primary_key=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("reason", sa.String(300), nullable=False),
    )


def downgrade() -> None:
    for name in ("prov_refusal", "prov_history", "prov_grant", "prov_config", "prov_person", "prov_reference",
                 "prov_structure"):
        op.drop_table(name)
