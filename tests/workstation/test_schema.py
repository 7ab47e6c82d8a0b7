"""The case database: migrations and models agree; the audit log is append-only."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from securedrop_wm.db import make_engine
from securedrop_wm.workstation import audit
from securedrop_wm.workstation.db import migrate
from securedrop_wm.workstation.errors import AuditChainError
from securedrop_wm.workstation.models import Base
from securedrop_wm.workstation.services import Workstation


def test_migrations_and_models_agree(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cases.sqlite'}"
    migrate(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
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
