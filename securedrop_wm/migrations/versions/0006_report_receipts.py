"""report receipts encrypted to the source

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 02:30:00.000000

``reports.receipt``: what the source sent (category, file names and sizes, the day),
encrypted to the source's own key, so that a returning source can see it while logged
in. Reports filed before have none: the source UI shows them by their day only.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("receipt", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_column("receipt")
