"""The case database: migrations and models agree; the audit log is append-only."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner

from securedrop_wm.db import make_engine
from securedrop_wm.workstation import audit, search
from securedrop_wm.workstation.cli import workstation as ws_cli
from securedrop_wm.workstation.db import migrate
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
