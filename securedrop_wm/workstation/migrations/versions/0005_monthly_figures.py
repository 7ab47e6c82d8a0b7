"""monthly figures: what purged cases leave behind for the transparency report

A count per month opened, dimension (category, urgency, status, first response
minutes) and value; never a case. Cases purged before this version are not counted.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 03:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monthly_figures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("dimension", sa.String(length=24), nullable=False),
        sa.Column("value", sa.String(length=40), nullable=False),
        sa.Column("cases", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monthly_figures")),
        sa.UniqueConstraint("month", "dimension", "value", name=op.f("uq_monthly_figures_month")),
    )


def downgrade() -> None:
    op.drop_table("monthly_figures")
