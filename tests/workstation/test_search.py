"""Full-text search: a repeat harasser across cases, an index kept current by the
database's triggers, queries that cannot break out of their quotes, and a purge that
leaves none of a case's words in the database files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from securedrop_wm.drop import Drop
from securedrop_wm.workstation import cases, importing, replies, retention, search
from securedrop_wm.workstation.db import alembic_config, migrate
from securedrop_wm.workstation.services import Workstation
from tests.workstation.fixtures import ADMIN, Station, export, source_reports

HARASSER = "User:Harasser_77"
DIFF = "https://en.wikipedia.org/w/index.php?diff=1234567&oldid=7654321"


def _case_ids(ws: Workstation) -> list[int]:
    return sorted(r.case.id for r in cases.list_cases(ws, cases.CaseFilter(include_closed=True)))


def _repeat_harasser(station: Station, drop: Drop, tmp_path: Path) -> tuple[int, int, int]:
    """Two sources name the same account and diff; a third case does not; a responder
    notes the username on the third. Returns the three case ids."""
    source_reports(drop, f"{HARASSER} keeps reverting me and posted my address.")
    source_reports(drop, "Threats on my talk page.", links=f"{DIFF}\nsee also {HARASSER}")
    source_reports(drop, "Someone else entirely.", category="legal")
    importing.import_bundle(station.ws, ADMIN, export(drop, tmp_path))
    first, second, third = _case_ids(station.ws)
    cases.add_note(station.ws, ADMIN, third, f"Same pattern as {HARASSER}? Check.")
    cases.add_note(station.ws, ADMIN, first, f"Diff: {DIFF}")
    return first, second, third


def test_a_repeat_harasser_is_found_across_cases(
    station: Station, drop: Drop, tmp_path: Path
) -> None:
    first, second, third = _repeat_harasser(station, drop, tmp_path)
    found = search.search(station.ws, HARASSER)
    assert {c for c, _ in found.cases} == {first, second, third}
    kinds = {(h.case_id, h.kind) for h in found.hits}
    assert kinds == {(first, "text"), (second, "links"), (third, "note")}
    hit = next(h for h in found.hits if h.kind == "text")
    assert hit.parts[0] == ("User:Harasser_77", True)
    # The diff URL: in one case's links and the other's note, not in the third case.
    by_diff = search.search(station.ws, DIFF)
    assert {(h.case_id, h.kind) for h in by_diff.hits} == {(second, "links"), (first, "note")}
    # Every word must occur: the username and a word only the first case has.
    assert {c for c, _ in search.search(station.ws, "harasser_77 address").cases} == {first}
    assert search.search(station.ws, "nowhere-to-be-found").hits == []


def test_the_index_follows_labels_notes_replies_and_files(
    station: Station, drop: Drop, tmp_path: Path
) -> None:
    ws = station.ws
    with ws.sessions() as db:
        assert search.missing_triggers(db) == []
    source_reports(drop, "Nothing special.", files=[(b"%PDF-1.4", "ransom-letter.pdf")])
    importing.import_bundle(ws, ADMIN, export(drop, tmp_path))
    (case_id,) = _case_ids(ws)
    assert [h.kind for h in search.search(ws, "ransom letter").hits] == ["file"]
    cases.add_label(ws, ADMIN, case_id, "sockpuppets")
    assert [h.kind for h in search.search(ws, "sockpuppets").hits] == ["labels"]
    cases.remove_label(ws, ADMIN, case_id, "sockpuppets")
    assert search.search(ws, "sockpuppets").hits == []
    replies.queue_reply(ws, ADMIN, case_id, "Please send the zanzibar screenshots.")
    assert [h.kind for h in search.search(ws, "Zanzibar").hits] == ["reply"]
    # Accents and case do not matter.
    cases.add_note(ws, ADMIN, case_id, "Contacted the Fundación's lawyer.")
    assert [h.kind for h in search.search(ws, "fundacion").hits] == ["note"]
    # A rebuild (the repair for an index that lost its triggers) finds the same.
    with ws.write() as db:
        assert search.rebuild(db) == 4  # report text, file name, reply, note
    assert [h.kind for h in search.search(ws, "ransom letter").hits] == ["file"]


def test_query_syntax_is_never_an_operator(station: Station, drop: Drop, tmp_path: Path) -> None:
    source_reports(drop, "foo bar x")
    importing.import_bundle(station.ws, ADMIN, export(drop, tmp_path))
    # Each term is a plain string to find, never an operator: as FTS5 syntax these would
    # be errors ('NEAR(" OR', "foo AND"), a column filter finding "foo" ("body:foo"), or
    # a prefix query; as strings, none of them is in the report.
    for typed in ('NEAR(" OR', "foo AND", "body:foo", '"unbalanced', "a OR b NOT c", "fo*"):
        assert search.search(station.ws, typed).hits == [], typed
    assert len(search.search(station.ws, 'foo "bar x"').hits) == 1
    for nothing in ("*", '""', "- ^"):
        with pytest.raises(search.SearchError, match=search.EMPTY_QUERY):
            search.search(station.ws, nothing)


def test_the_query_quotes_every_term() -> None:
    assert search.fts_query('say "hello world" x"y') == '"say" "hello world" "x""y"'
    assert search.fts_query("NEAR(a b) OR c") == '"NEAR(a" "b)" "OR" "c"'
    for nothing in ("", "   ", '"', "- * ^"):
        with pytest.raises(search.SearchError, match="type a word"):
            search.fts_query(nothing)
    with pytest.raises(search.SearchError, match="at most"):
        search.fts_query("x" * (search.MAX_QUERY_CHARS + 1))


def _database_files(ws: Workstation) -> list[Path]:
    db = Path(ws.settings.database_url.removeprefix("sqlite:///"))
    return [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-journal")) if p.exists()]


def _files_contain(ws: Workstation, word: str) -> list[str]:
    """The database files holding ``word`` as typed, or as the index keeps it: folded to
    lower case, and maybe prefix-compressed (its tail after the first four letters)."""
    needles = {word, word.lower(), word.lower()[4:]}
    return [
        p.name
        for p in _database_files(ws)
        if any(n.encode("utf-8") in p.read_bytes() for n in needles)
    ]


def test_a_purged_case_leaves_no_word_in_the_database_files(
    station: Station, drop: Drop, tmp_path: Path
) -> None:
    ws = station.ws
    word, kept = "Quixotryllium", "Keepwordium"
    source_reports(drop, f"The {word} account doxxed me.", links=f"https://x.org/{word}")
    source_reports(drop, f"A case that stays: {kept}.")
    importing.import_bundle(ws, ADMIN, export(drop, tmp_path))
    purged_id, kept_id = _case_ids(ws)
    cases.add_note(ws, ADMIN, purged_id, f"Note on {word}.")
    replies.queue_reply(ws, ADMIN, purged_id, f"About {word}: we are on it.")
    cases.set_status(ws, ADMIN, purged_id, "closed")
    replies.export_reply_bundle(ws, ADMIN)
    # The index as a long-used one is: its words in one large merged segment, which a
    # later delete only marks (an FTS5 delete adds a tombstone, it does not rewrite).
    with ws.write() as db:
        search.rebuild(db)
        in_index = db.execute(text("SELECT block FROM search_index_data")).scalars().all()
    assert any(word.lower()[4:].encode() in block for block in in_index)
    assert _files_contain(ws, word)  # the grep finds what is there
    station.clock.advance(days=ws.settings.retention_days + 1)
    assert len(retention.purge_due(ws, ADMIN)) == 1
    assert _case_ids(ws) == [kept_id]
    assert _files_contain(ws, word) == []
    assert search.search(ws, word).hits == []
    # What was not purged is still found, and the index still follows changes.
    assert [c for c, _ in search.search(ws, kept).cases] == [kept_id]
    cases.add_note(ws, ADMIN, kept_id, "Fresh note after the purge: zyzzogeton.")
    assert [h.kind for h in search.search(ws, "zyzzogeton").hits] == ["note"]


def test_the_migration_indexes_existing_cases_and_keeps_their_read_state(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'cases.sqlite'}"
    command.upgrade(alembic_config(url), "0007")
    conn = sqlite3.connect(tmp_path / "cases.sqlite")
    now = "2026-12-01 10:00:00"
    script = f"""
        INSERT INTO accounts (id, username, password_hash, totp_secret, is_admin, created_at,
          failed_logins, must_change_password, totp_pending)
          VALUES (1, 'ana', 'x', 'x', 1, '{now}', 0, 0, ''),
                 (2, 'bo', 'x', 'x', 0, '{now}', 0, 0, '');
        INSERT INTO cases (id, source_uuid, designation, source_fingerprint, status, category,
          urgency, reply_language, opened_at, updated_at, unread, legal_hold, hold_reason)
          VALUES (1, 'u1', 'read case', 'f', 'new', 'other', 'routine', 'en', '{now}', '{now}',
                  0, 0, ''),
                 (2, 'u2', 'unread case', 'f', 'new', 'other', 'routine', 'en', '{now}',
                  '{now}', 1, 0, '');
        INSERT INTO reports (id, uuid, case_id, received_day, imported_at, clock_start,
          follow_up, category, urgency, reply_language, wiki, links, text)
          VALUES (7, 'r1', 1, '2026-12-01', '{now}', '{now}', 0, 'other', 'routine', 'en',
                  'fr.wikipedia.org', '', 'an old marmalade report'),
                 (8, 'r2', 2, '2026-12-01', '{now}', '{now}', 0, 'other', 'routine', 'en',
                  '', '', 'another');
        INSERT INTO notes (case_id, author, created_at, text) VALUES (2, 'ana', '{now}',
          'old marmalade note');
        """  # noqa: S608 (fixed test data)
    conn.executescript(script)
    conn.commit()
    conn.close()
    migrate(url)
    conn = sqlite3.connect(tmp_path / "cases.sqlite")
    reads = conn.execute("SELECT account_id, case_id, last_report_id FROM case_reads").fetchall()
    assert sorted(reads) == [(1, 1, 7), (2, 1, 7)]  # read by everyone; unread by all
    found = conn.execute(
        "SELECT case_id, kind FROM search_index WHERE search_index MATCH '\"marmalade\"'"
    ).fetchall()
    assert sorted(found) == [(1, "text"), (2, "note")]
    conn.close()
