"""The case database: migrations and models agree; the audit log is append-only."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner

from securedrop_wm.db import make_engine
from securedrop_wm.workstation import audit, search
from securedrop_wm.workstation.cli import workstation as ws_cli
from securedrop_wm.workstation.db import alembic_config, migrate
from securedrop_wm.workstation.errors import AuditChainError
from securedrop_wm.workstation.models import Base
from securedrop_wm.workstation.services import Workstation
from tests.workstation.fixtures import Station


def test_migrations_and_models_agree(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cases.sqlite'}"
    migrate(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        opts = {"compare_type": True, "include_name": search.outside_index}
        context = MigrationContext.configure(conn, opts=opts)
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def _db_path(ws: Workstation) -> str:
    return ws.settings.database_url.removeprefix("sqlite:///")


def test_the_database_refuses_to_edit_or_delete_audit_events(ws: Workstation) -> None:
    with sqlite3.connect(_db_path(ws)) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE audit_events SET actor = 'nobody'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM audit_events")


def test_an_edit_behind_the_triggers_back_is_detected(ws: Workstation) -> None:
    with ws.sessions() as db:
        assert audit.verify_chain(db) >= 2  # account created, setup
    # Someone with the file drops the trigger and rewrites history.
    conn = sqlite3.connect(_db_path(ws))
    conn.execute("DROP TRIGGER audit_events_no_update")
    conn.execute("UPDATE audit_events SET actor = 'someone-else' WHERE id = 1")
    conn.commit()
    conn.close()
    with ws.sessions() as db, pytest.raises(AuditChainError, match="event 1"):
        audit.verify_chain(db)


def test_a_dropped_or_disarmed_trigger_makes_the_log_not_intact(station: Station) -> None:
    ws = station.ws
    verify = ["verify-audit", "--config", str(ws.settings.config_path)]
    intact = CliRunner().invoke(ws_cli, verify)
    assert intact.exit_code == 0 and "audit log intact" in intact.output
    # Someone with the file drops the DELETE trigger, leaving every event as it was,
    # so that a later deletion is not refused; then disarms the other one.
    conn = sqlite3.connect(_db_path(ws))
    conn.execute("DROP TRIGGER audit_events_no_delete")
    conn.commit()
    with ws.sessions() as db:
        audit.verify_chain(db)  # the chain alone still verifies
        with pytest.raises(AuditChainError, match="audit_events_no_delete"):
            audit.verify_log(db)
    assert not audit.read_log(ws).intact
    refused = CliRunner().invoke(ws_cli, verify)
    assert refused.exit_code != 0 and "audit_events_no_delete" in refused.output
    conn.execute(
        "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
        "WHEN 0 BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
    )
    conn.commit()
    conn.close()
    with ws.sessions() as db, pytest.raises(AuditChainError, match="dropped or changed"):
        audit.verify_log(db)


def _search(conn: sqlite3.Connection, word: str) -> list[tuple[int, str]]:
    query = "SELECT case_id, kind FROM search_index WHERE search_index MATCH ?"
    return sorted(conn.execute(query, (f'"{word}"',)).fetchall())


def test_0009_gives_older_reports_empty_details_that_are_searched_once_set(
    tmp_path: Path,
) -> None:
    # Given a case database at 0008 with a report imported then
    url = f"sqlite:///{tmp_path / 'cases.sqlite'}"
    command.upgrade(alembic_config(url), "0008")
    conn = sqlite3.connect(tmp_path / "cases.sqlite")
    now = "2026-12-01 10:00:00"
    conn.executescript(
        f"""
        INSERT INTO cases (id, source_uuid, designation, source_fingerprint, status, category,
          urgency, reply_language, opened_at, updated_at, unread, legal_hold, hold_reason)
          VALUES (1, 'u1', 'old case', 'f', 'new', 'harassment', 'routine', 'en', '{now}',
                  '{now}', 1, 0, '');
        INSERT INTO reports (id, uuid, case_id, received_day, imported_at, clock_start,
          follow_up, category, urgency, reply_language, wiki, links, text)
          VALUES (7, 'r1', 1, '2026-12-01', '{now}', '{now}', 0, 'harassment', 'routine',
                  'en', '', '', 'an old quince report');
        """  # noqa: S608 (fixed test data)
    )
    conn.commit()
    conn.close()
    # When the database is upgraded
    migrate(url)
    conn = sqlite3.connect(tmp_path / "cases.sqlite")
    # Then the report says nothing of where, which project or region, and is still found
    row = conn.execute("SELECT place, project, region FROM reports WHERE id = 7").fetchone()
    assert row == ("", "", "")
    assert _search(conn, "quince") == [(1, "text")]
    # and the search triggers of 0008 and 0009 are all there, working on old rows too
    names = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
    assert set(search.TRIGGERS) <= names
    conn.execute("UPDATE reports SET project = 'fa.wikipedia', region = 'Kurdistan'")
    conn.commit()
    assert _search(conn, "Kurdistan") == [(1, "details")]
    conn.execute("DELETE FROM reports")
    conn.commit()
    assert _search(conn, "Kurdistan") == []
    conn.close()
    # and the downgrade takes the columns and the triggers away again
    command.downgrade(alembic_config(url), "0008")
    conn = sqlite3.connect(tmp_path / "cases.sqlite")
    columns = {r[1] for r in conn.execute("PRAGMA table_info(reports)")}
    assert not {"place", "project", "region"} & columns
    names = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
    assert not {n for n in names if n.startswith("search_details_")}
    conn.close()
