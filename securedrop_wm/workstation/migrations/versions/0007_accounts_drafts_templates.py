"""accounts people can use, reply drafts and reply templates

An account's password an admin made must be changed at the next login; a new TOTP
secret waits for a code from it before it replaces the old one. A reply typed into an
expired session, or withdrawn from the queue, is kept as its author's draft on the case.
Reply templates per language, kept by admins.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 02:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
        batch_op.add_column(
            sa.Column("totp_pending", sa.String(length=64), nullable=False, server_default="")
        )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.alter_column(
            "must_change_password", existing_type=sa.Boolean(), server_default=None
        )
        batch_op.alter_column(
            "totp_pending", existing_type=sa.String(length=64), server_default=None
        )
    op.create_table(
        "reply_drafts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("saved_at", sa.DateTime(), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_reply_drafts_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_reply_drafts_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reply_drafts")),
        sa.UniqueConstraint("account_id", "case_id", name=op.f("uq_reply_drafts_account_id")),
    )
    op.create_table(
        "reply_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("language", sa.String(length=35), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reply_templates")),
        sa.UniqueConstraint("name", "language", name=op.f("uq_reply_templates_name")),
    )


def downgrade() -> None:
    op.drop_table("reply_templates")
    op.drop_table("reply_drafts")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("totp_pending")
        batch_op.drop_column("must_change_password")
