"""per-responder read state, handover notes, full-text search

Each account has its own read state per case (``case_reads``): how far it has read (the
newest report it has seen). A case that was read under the single ``cases.unread`` flag
is read for every account that existed; an unread one stays unread for all.

A handover note is an internal note written on reassignment (``handover_notes`` says
which note and to whom).

``search_index`` is an FTS5 table over report text, wiki, links, file names, notes,
labels and replies, kept current by triggers on those tables (see
securedrop_wm/workstation/search.py: a row's rowid is its source row's id * 8 + a code
per kind). A later batch migration that recreates one of these tables drops its
triggers: tests/workstation/test_search.py checks they are all there at head.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 02:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Frozen copies of what search.py builds (a migration never imports the app's code).
TRIGGERS = {
    "search_reports_ai": (
        "AFTER INSERT ON reports BEGIN INSERT INTO search_index(rowid, body, case_id, "
        "kind) SELECT new.id * 8 + 1, new.text, new.case_id, 'text' WHERE new.text != '' "
        "UNION ALL SELECT new.id * 8 + 2, new.wiki, new.case_id, 'wiki' WHERE new.wiki != "
        "'' UNION ALL SELECT new.id * 8 + 3, new.links, new.case_id, 'links' WHERE "
        "new.links != ''; END"
    ),
    "search_reports_au": (
        "AFTER UPDATE OF text, wiki, links, case_id ON reports BEGIN DELETE FROM "
        "search_index WHERE rowid IN (old.id * 8 + 1, old.id * 8 + 2, old.id * 8 + 3); "
        "INSERT INTO search_index(rowid, body, case_id, kind) SELECT new.id * 8 + 1, "
        "new.text, new.case_id, 'text' WHERE new.text != '' UNION ALL SELECT new.id * 8 + "
        "2, new.wiki, new.case_id, 'wiki' WHERE new.wiki != '' UNION ALL SELECT new.id * "
        "8 + 3, new.links, new.case_id, 'links' WHERE new.links != ''; END"
    ),
    "search_reports_ad": (
        "AFTER DELETE ON reports BEGIN DELETE FROM search_index WHERE rowid IN (old.id * "
        "8 + 1, old.id * 8 + 2, old.id * 8 + 3); END"
    ),
    "search_files_ai": (
        "AFTER INSERT ON submissions WHEN new.kind = 'file' AND new.filename != '' BEGIN "
        "INSERT INTO search_index(rowid, body, case_id, kind) SELECT new.id * 8 + 4, "
        "new.filename, (SELECT case_id FROM reports WHERE reports.id = new.report_id), "
        "'file'; END"
    ),
    "search_files_au": (
        "AFTER UPDATE OF filename, kind, report_id ON submissions BEGIN DELETE FROM "
        "search_index WHERE rowid = old.id * 8 + 4; INSERT INTO search_index(rowid, body, "
        "case_id, kind) SELECT new.id * 8 + 4, new.filename, (SELECT case_id FROM reports "
        "WHERE reports.id = new.report_id), 'file' WHERE new.kind = 'file' AND "
        "new.filename != ''; END"
    ),
    "search_files_ad": (
        "AFTER DELETE ON submissions BEGIN DELETE FROM search_index WHERE rowid = old.id "
        "* 8 + 4; END"
    ),
    "search_notes_ai": (
        "AFTER INSERT ON notes BEGIN INSERT INTO search_index(rowid, body, case_id, kind) "
        "SELECT new.id * 8 + 5, new.text, new.case_id, 'note'; END"
    ),
    "search_notes_au": (
        "AFTER UPDATE OF text, case_id ON notes BEGIN DELETE FROM search_index WHERE "
        "rowid = old.id * 8 + 5; INSERT INTO search_index(rowid, body, case_id, kind) "
        "SELECT new.id * 8 + 5, new.text, new.case_id, 'note'; END"
    ),
    "search_notes_ad": (
        "AFTER DELETE ON notes BEGIN DELETE FROM search_index WHERE rowid = old.id * 8 + 5; END"
    ),
    "search_replies_ai": (
        "AFTER INSERT ON outgoing_replies BEGIN INSERT INTO search_index(rowid, body, "
        "case_id, kind) SELECT new.id * 8 + 6, new.text, new.case_id, 'reply'; END"
    ),
    "search_replies_au": (
        "AFTER UPDATE OF text, case_id ON outgoing_replies BEGIN DELETE FROM search_index "
        "WHERE rowid = old.id * 8 + 6; INSERT INTO search_index(rowid, body, case_id, "
        "kind) SELECT new.id * 8 + 6, new.text, new.case_id, 'reply'; END"
    ),
    "search_replies_ad": (
        "AFTER DELETE ON outgoing_replies BEGIN DELETE FROM search_index WHERE rowid = "
        "old.id * 8 + 6; END"
    ),
    "search_labels_ai": (
        "AFTER INSERT ON case_labels BEGIN DELETE FROM search_index WHERE rowid = "
        "new.case_id * 8 + 7; INSERT INTO search_index(rowid, body, case_id, kind) SELECT "
        "new.case_id * 8 + 7, group_concat(l.name, ' '), new.case_id, 'labels' FROM "
        "case_labels cl JOIN labels l ON l.id = cl.label_id WHERE cl.case_id = "
        "new.case_id AND EXISTS (SELECT 1 FROM cases WHERE cases.id = new.case_id) GROUP "
        "BY cl.case_id; END"
    ),
    "search_labels_ad": (
        "AFTER DELETE ON case_labels BEGIN DELETE FROM search_index WHERE rowid = "
        "old.case_id * 8 + 7; INSERT INTO search_index(rowid, body, case_id, kind) SELECT "
        "old.case_id * 8 + 7, group_concat(l.name, ' '), old.case_id, 'labels' FROM "
        "case_labels cl JOIN labels l ON l.id = cl.label_id WHERE cl.case_id = "
        "old.case_id AND EXISTS (SELECT 1 FROM cases WHERE cases.id = old.case_id) GROUP "
        "BY cl.case_id; END"
    ),
}
_POPULATE = [
    (
        "INSERT INTO search_index(rowid, body, case_id, kind) SELECT id * 8 + 1, text, "
        "case_id, 'text' FROM reports WHERE text != ''"
    ),
    (
        "INSERT INTO search_index(rowid, body, case_id, kind) SELECT id * 8 + 2, wiki, "
        "case_id, 'wiki' FROM reports WHERE wiki != ''"
    ),
    (
        "INSERT INTO search_index(rowid, body, case_id, kind) SELECT id * 8 + 3, links, "
        "case_id, 'links' FROM reports WHERE links != ''"
    ),
    (
        "INSERT INTO search_index(rowid, body, case_id, kind) SELECT s.id * 8 + 4, "
        "s.filename, r.case_id, 'file' FROM submissions s JOIN reports r ON r.id = "
        "s.report_id WHERE s.kind = 'file' AND s.filename != ''"
    ),
    (
        "INSERT INTO search_index(rowid, body, case_id, kind) SELECT id * 8 + 5, text, "
        "case_id, 'note' FROM notes"
    ),
    (
        "INSERT INTO search_index(rowid, body, case_id, kind) SELECT id * 8 + 6, text, "
        "case_id, 'reply' FROM outgoing_replies"
    ),
    (
        "INSERT INTO search_index(rowid, body, case_id, kind) SELECT cl.case_id * 8 + 7, "
        "group_concat(l.name, ' '), cl.case_id, 'labels' FROM case_labels cl JOIN labels "
        "l ON l.id = cl.label_id GROUP BY cl.case_id"
    ),
]


def upgrade() -> None:
    op.create_table(
        "case_reads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("last_report_id", sa.Integer(), nullable=False),
        sa.Column("read_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_case_reads_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_reads_case_id_cases"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_reads")),
        sa.UniqueConstraint("account_id", "case_id", name=op.f("uq_case_reads_account_id")),
    )
    op.create_table(
        "handover_notes",
        sa.Column("note_id", sa.Integer(), nullable=False),
        sa.Column("assignee", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["note_id"],
            ["notes.id"],
            name=op.f("fk_handover_notes_note_id_notes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("note_id", name=op.f("pk_handover_notes")),
    )
    # What the single flag said, for every account: read, up to the newest report.
    op.execute(
        "INSERT INTO case_reads (account_id, case_id, last_report_id, read_at) "
        "SELECT a.id, c.id, (SELECT coalesce(max(r.id), 0) FROM reports r "
        "WHERE r.case_id = c.id), c.updated_at FROM cases c, accounts a WHERE c.unread = 0"
    )
    op.execute(
        "CREATE VIRTUAL TABLE search_index USING fts5(body, case_id UNINDEXED, "
        "kind UNINDEXED, tokenize = 'unicode61 remove_diacritics 2')"
    )
    for name, body in TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {body}")
    for statement in _POPULATE:
        op.execute(statement)


def downgrade() -> None:
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute("DROP TABLE IF EXISTS search_index")
    op.drop_table("handover_notes")
    op.drop_table("case_reads")
