"""honest clocks: a report's clock start and follow-up flag, a reply's delivery

Existing reports: their clock starts at their import time (always recorded since 0001;
the start of the report's day only if it were missing). Existing cases: opened at the
earliest clock start of their reports, first response when their first reply left in a
reply bundle (none while every reply is only queued). Replies sent before this version
are not known to be delivered until an export says so.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 23:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("clock_start", sa.DateTime(), nullable=True))
        batch_op.add_column(
            sa.Column("follow_up", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.execute(
        "UPDATE reports SET clock_start = COALESCE(imported_at, received_day || ' 00:00:00.000000')"
    )
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.alter_column("clock_start", existing_type=sa.DateTime(), nullable=False)
        batch_op.alter_column("follow_up", existing_type=sa.Boolean(), server_default=None)
    with op.batch_alter_table("outgoing_replies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delivered_at", sa.DateTime(), nullable=True))
    op.execute(
        "UPDATE cases SET opened_at = "
        "(SELECT MIN(r.clock_start) FROM reports r WHERE r.case_id = cases.id) "
        "WHERE EXISTS (SELECT 1 FROM reports r WHERE r.case_id = cases.id)"
    )
    op.execute(
        "UPDATE cases SET first_response_at = "
        "(SELECT MIN(b.created_at) FROM outgoing_replies o "
        "JOIN reply_bundles b ON o.bundle_id = b.id WHERE o.case_id = cases.id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("outgoing_replies", schema=None) as batch_op:
        batch_op.drop_column("delivered_at")
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_column("follow_up")
        batch_op.drop_column("clock_start")
