"""vault: checkpoints of contract-end transfers (export, import)

`vault_transfer_job` is one export or import of a tenant through one connector;
`vault_transfer_owner` records each person and vertical a job finished (or could not list, with the
reason); `vault_transfer_item` each item it finished (done or failed, with the reason). A job killed
mid-way resumes from them.

Revision ID: 0014_vault_transfer
Revises: 0008_gar_feed
"""
import sqlalchemy as sa
from alembic import op

revision = "0014_vault_transfer"
down_revision = "0008_gar_feed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vault_transfer_job",
        sa.Column("job_id", sa.String(32), primary_key=True),
        sa.Column("tenant", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("connector", sa.String(64), nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("runner", sa.String(160)),
        sa.Column("runs", sa.Integer, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_vault_transfer_job_open", "vault_transfer_job", ["tenant", "kind", "connector", "state"])
    op.create_table(
        "vault_transfer_owner",
        sa.Column("job_id", sa.String(32), primary_key=True),
        sa.Column("person", sa.String(64), primary_key=True),
        sa.Column("vertical", sa.String(32), primary_key=True),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("items", sa.Integer, nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_table(
        "vault_transfer_item",
        sa.Column("job_id", sa.String(32), primary_key=True),
        sa.Column("person", sa.String(64), primary_key=True),
        sa.Column("vertical", sa.String(32), primary_key=True),
        sa.Column("item_id", sa.String(512), primary_key=True),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("outcome", sa.String(12)),
        sa.Column("sha256", sa.String(64)),
        sa.Column("size", sa.BigInteger),
        sa.Column("path", sa.String(1024)),
        sa.Column("error", sa.Text),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("vault_transfer_item")
    op.drop_table("vault_transfer_owner")
    op.drop_index("ix_vault_transfer_job_open", "vault_transfer_job")
    op.drop_table("vault_transfer_job")
