"""The audit page says when the log is no longer protected against edits."""

from __future__ import annotations

import sqlite3

from flask.testing import FlaskClient

from tests.workstation.fixtures import Desk, login


def test_the_audit_page_says_when_a_trigger_was_dropped(ws_client: FlaskClient, desk: Desk) -> None:
    login(ws_client, desk)
    assert "Hash chain intact" in ws_client.get("/audit").text
    # Someone with the database file drops the trigger that refuses edits.
    path = desk.ws.settings.database_url.removeprefix("sqlite:///")
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER audit_events_no_update")
    conn.commit()
    conn.close()
    page = ws_client.get("/audit").text
    assert "Hash chain intact" not in page
    assert "no longer refuses edits of the audit log" in page
