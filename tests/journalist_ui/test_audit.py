"""The audit page says when the log is no longer protected against edits, or lacks a head
of it the drop server holds."""

from __future__ import annotations

import datetime as dt
import sqlite3

from flask.testing import FlaskClient

from securedrop_wm.bundles import AuditHead
from securedrop_wm.workstation import audit
from tests.workstation.fixtures import Station, login


def test_the_audit_page_says_when_a_trigger_was_dropped(
    ws_client: FlaskClient, station: Station
) -> None:
    login(ws_client, station)
    assert "Hash chain intact" in ws_client.get("/audit").text
    # Someone with the database file drops the trigger that refuses edits.
    path = station.ws.settings.database_url.removeprefix("sqlite:///")
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER audit_events_no_update")
    conn.commit()
    conn.close()
    page = ws_client.get("/audit").text
    assert "Hash chain intact" not in page
    assert "no longer refuses edits of the audit log" in page


def test_the_audit_page_says_when_the_log_lacks_a_head_the_server_holds(
    ws_client: FlaskClient, station: Station
) -> None:
    login(ws_client, station)
    # An export bundle showed back a head this log does not contain (it was cut off);
    # the full round trip: tests/workstation/test_audit_anchor.py.
    head = "ab" * 32
    with station.ws.write() as db:
        audit.record_server_heads(
            db, "CD" * 20, 2, [AuditHead(sequence=1, day=dt.date(2026, 11, 22), head=head)]
        )
    page = ws_client.get("/audit").text
    assert "Hash chain intact" not in page
    assert "The hash chain does not verify" in page
    assert f"not intact: the drop server holds head {head} (reply bundle 1, 2026-11-22)" in page
