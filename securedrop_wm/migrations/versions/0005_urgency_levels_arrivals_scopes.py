"""urgency levels, arrival counts, status-only tokens, reply ids received

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 23:40:00.000000

``reports.urgent`` (a flag that counted "urgent" and "in danger" together) becomes
``reports.urgency``, the level kept only while the report is pending. The old data
cannot tell danger apart from urgent: a pending urgent report becomes "urgent", a
pending other one "routine", and an acknowledged one keeps no level. The arrival counts
start from the report rows still there (so they undercount what was purged or removed
before), with no "danger" among them. Tokens made before are full tokens; reply bundles
imported before have no reply ids kept.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("urgency", sa.String(length=16), nullable=True))
    op.execute(
        "UPDATE reports SET urgency = CASE WHEN acknowledged THEN NULL "
        "WHEN urgent THEN 'urgent' ELSE 'routine' END"
    )
    op.create_table(
        "arrival_counts",
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("level", name=op.f("pk_arrival_counts")),
    )
    op.execute(
        "INSERT INTO arrival_counts (level, count) "
        "SELECT 'routine', COUNT(*) FROM reports WHERE NOT urgent UNION ALL "
        "SELECT 'urgent', COUNT(*) FROM reports WHERE urgent UNION ALL "
        "SELECT 'danger', 0"
    )
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_column("urgent")
        batch_op.create_index(batch_op.f("ix_reports_urgency"), ["urgency"], unique=False)
    with op.batch_alter_table("transfer_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("scope", sa.String(length=16), nullable=False, server_default="full")
        )
    with op.batch_alter_table("transfer_tokens", schema=None) as batch_op:
        batch_op.alter_column("scope", server_default=None)
    with op.batch_alter_table("bundle_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reply_ids", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bundle_log", schema=None) as batch_op:
        batch_op.drop_column("reply_ids")
    with op.batch_alter_table("transfer_tokens", schema=None) as batch_op:
        batch_op.drop_column("scope")
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reports_urgency"))
        batch_op.add_column(
            sa.Column("urgent", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    # An acknowledged report has no level left: it goes back as not urgent.
    op.execute(
        "UPDATE reports SET urgent = CASE WHEN urgency IN ('urgent', 'danger') THEN 1 ELSE 0 END"
    )
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.alter_column("urgent", server_default=None)
        batch_op.drop_column("urgency")
    op.drop_table("arrival_counts")
