"""response desks: pending routing, per-desk arrivals, tokens and bundle sequences

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 05:30:00.000000

``submission_desks``: which desk each pending ciphertext is for, a row deleted as that
desk's workstation acknowledges it (nothing says it once the item is acknowledged).
``arrival_counts``, ``transfer_tokens`` and ``bundle_log`` gain a desk. Everything that
exists is the built-in desk's, ``"default"``, which the code reads as the first
configured desk when no desk has that id (desks.stored_ids): an existing drop needs no
action. Pending submissions get a row for it; acknowledged ones none.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "submission_desks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("desk", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_submission_desks_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submission_desks")),
        sa.UniqueConstraint(
            "submission_id", "desk", name=op.f("uq_submission_desks_submission_id")
        ),
    )
    with op.batch_alter_table("submission_desks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_submission_desks_desk"), ["desk"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_submission_desks_submission_id"), ["submission_id"], unique=False
        )
    op.execute(
        "INSERT INTO submission_desks (submission_id, desk) "
        "SELECT id, 'default' FROM submissions WHERE acknowledged_day IS NULL"
    )
    with op.batch_alter_table("arrival_counts", schema=None, recreate="always") as batch_op:
        batch_op.add_column(
            sa.Column("desk", sa.String(length=32), nullable=False, server_default="default")
        )
        batch_op.drop_constraint("pk_arrival_counts", type_="primary")
        batch_op.create_primary_key("pk_arrival_counts", ["desk", "level"])
    with op.batch_alter_table("arrival_counts", schema=None) as batch_op:
        batch_op.alter_column("desk", server_default=None)
    for table in ("transfer_tokens", "bundle_log"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("desk", sa.String(length=32), nullable=False, server_default="default")
            )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("desk", server_default=None)
    with op.batch_alter_table("bundle_log", schema=None) as batch_op:
        batch_op.drop_constraint("uq_bundle_log_direction", type_="unique")
        batch_op.create_unique_constraint(
            "uq_bundle_log_direction", ["direction", "peer", "desk", "sequence"]
        )


def downgrade() -> None:
    # Going back to one team: every desk's rows become the one drop's. Sequences of
    # several desks may collide, so only the first desk's ("default") bundle log is kept.
    op.execute("DELETE FROM bundle_log WHERE desk != 'default'")
    with op.batch_alter_table("bundle_log", schema=None) as batch_op:
        batch_op.drop_constraint("uq_bundle_log_direction", type_="unique")
        batch_op.create_unique_constraint(
            "uq_bundle_log_direction", ["direction", "peer", "sequence"]
        )
    with op.batch_alter_table("bundle_log", schema=None) as batch_op:
        batch_op.drop_column("desk")
    op.execute("DELETE FROM transfer_tokens WHERE desk != 'default'")
    with op.batch_alter_table("transfer_tokens", schema=None) as batch_op:
        batch_op.drop_column("desk")
    op.execute(
        "UPDATE arrival_counts SET count = (SELECT SUM(a.count) FROM arrival_counts a "
        "WHERE a.level = arrival_counts.level) WHERE desk = 'default'"
    )
    op.execute(
        "INSERT INTO arrival_counts (desk, level, count) SELECT 'default', level, SUM(count) "
        "FROM arrival_counts GROUP BY level HAVING SUM(desk = 'default') = 0"
    )
    op.execute("DELETE FROM arrival_counts WHERE desk != 'default'")
    with op.batch_alter_table("arrival_counts", schema=None, recreate="always") as batch_op:
        batch_op.drop_constraint("pk_arrival_counts", type_="primary")
        batch_op.create_primary_key("pk_arrival_counts", ["level"])
        batch_op.drop_column("desk")
    with op.batch_alter_table("submission_desks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_submission_desks_submission_id"))
        batch_op.drop_index(batch_op.f("ix_submission_desks_desk"))
    op.drop_table("submission_desks")
