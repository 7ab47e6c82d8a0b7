"""source retention: last report day, tombstones of removed sources

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 23:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_report_day", sa.Date(), nullable=True))
    # Sources that reported before this: the day of their latest report.
    op.execute(
        "UPDATE sources SET last_report_day = "
        "(SELECT MAX(reports.created_day) FROM reports WHERE reports.source_id = sources.id)"
    )
    op.create_table(
        "source_tombstones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lookup_id", sa.String(length=64), nullable=False),
        sa.Column("removed_day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_source_tombstones")),
        sa.UniqueConstraint("lookup_id", name=op.f("uq_source_tombstones_lookup_id")),
    )
    # Finding sources with nothing left, and deleting rows (SQLite checks every foreign
    # key that points at a deleted row), must not scan these tables once per source.
    op.create_index(op.f("ix_reports_source_id"), "reports", ["source_id"])
    op.create_index(op.f("ix_replies_source_id"), "replies", ["source_id"])
    op.create_index(op.f("ix_submissions_report_id"), "submissions", ["report_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_submissions_report_id"), table_name="submissions")
    op.drop_index(op.f("ix_replies_source_id"), table_name="replies")
    op.drop_index(op.f("ix_reports_source_id"), table_name="reports")
    op.drop_table("source_tombstones")
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.drop_column("last_report_day")
