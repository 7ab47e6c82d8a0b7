"""where it happened, which project, which country or region; searched

A report says where it happened (a ``vocabulary.Place`` value, or "" when not said),
which Wikimedia project (free text, such as "fa.wikipedia") and which country or region
(free text; "" when the source prefers not to say). Reports imported before have none
("" each: the page shows them as not said).

The project and the region are searched: ``search_index`` gets a row per report with
either (rowid: the report's id * 8 + 0, kind ``details``; see
securedrop_wm/workstation/search.py), kept by three more triggers. The columns are added
in place (``ALTER TABLE ... ADD COLUMN``), not by a batch migration, which would
recreate the table and drop migration 0008's triggers on it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 05:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Frozen copies of what search.py builds (a migration never imports the app's code).
TRIGGERS = {
    "search_details_ai": (
        "AFTER INSERT ON reports BEGIN INSERT INTO search_index(rowid, body, case_id, "
        "kind) SELECT new.id * 8, trim(new.project || ' ' || new.region), new.case_id, "
        "'details' WHERE new.project != '' OR new.region != ''; END"
    ),
    "search_details_au": (
        "AFTER UPDATE OF project, region, case_id ON reports BEGIN DELETE FROM "
        "search_index WHERE rowid = old.id * 8; INSERT INTO search_index(rowid, body, "
        "case_id, kind) SELECT new.id * 8, trim(new.project || ' ' || new.region), "
        "new.case_id, 'details' WHERE new.project != '' OR new.region != ''; END"
    ),
    "search_details_ad": (
        "AFTER DELETE ON reports BEGIN DELETE FROM search_index WHERE rowid = old.id * 8; END"
    ),
}
COLUMNS = ("place", "project", "region")


def upgrade() -> None:
    op.add_column(
        "reports", sa.Column("place", sa.String(length=16), nullable=False, server_default="")
    )
    op.add_column("reports", sa.Column("project", sa.Text(), nullable=False, server_default=""))
    op.add_column("reports", sa.Column("region", sa.Text(), nullable=False, server_default=""))
    for name, body in TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute("DELETE FROM search_index WHERE kind = 'details'")
    for column in reversed(COLUMNS):
        op.drop_column("reports", column)
