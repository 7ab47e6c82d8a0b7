"""server audit heads

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 21:45:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "server_audit_heads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("server_id", sa.String(length=40), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("head", sa.String(length=64), nullable=False),
        sa.Column("found", sa.Boolean(), nullable=False),
        sa.Column("export_sequence", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_server_audit_heads")),
    )


def downgrade() -> None:
    op.drop_table("server_audit_heads")
