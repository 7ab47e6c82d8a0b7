"""custody and legal hold: hashes per item, the manifest of each bundle, a hold per case

Items imported before this version have no recorded hashes (they were never kept);
their custody shows as "not recorded". Metadata is now read on first view in the
sandbox: an empty ``metadata_json`` means "not read yet".

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 02:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("imported_bundles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("manifest_sha256", sa.String(length=64), nullable=True))
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ciphertext_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("plaintext_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("imported_bundle_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_submissions_imported_bundle_id_imported_bundles"),
            "imported_bundles",
            ["imported_bundle_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("legal_hold", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("hold_reason", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("held_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("held_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.alter_column("legal_hold", existing_type=sa.Boolean(), server_default=None)
        batch_op.alter_column("hold_reason", existing_type=sa.Text(), server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("held_at")
        batch_op.drop_column("held_by")
        batch_op.drop_column("hold_reason")
        batch_op.drop_column("legal_hold")
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_submissions_imported_bundle_id_imported_bundles"), type_="foreignkey"
        )
        batch_op.drop_column("imported_bundle_id")
        batch_op.drop_column("plaintext_sha256")
        batch_op.drop_column("ciphertext_sha256")
    with op.batch_alter_table("imported_bundles", schema=None) as batch_op:
        batch_op.drop_column("manifest_sha256")
