"""An audit log people can read: filters by who, what, case and day, pages that keep the
filter, and case readings recorded once per responder, case and day; the chain still
verifies (``verify-audit``)."""

from __future__ import annotations

import html
import re
from pathlib import Path

from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import func, select

from securedrop_wm.drop import Drop
from securedrop_wm.workstation import cases, importing
from securedrop_wm.workstation.cli import workstation as ws_cli
from securedrop_wm.workstation.models import AuditEvent
from tests.workstation.fixtures import ADMIN, Station, export, login, source_reports


def _rows(page: str) -> list[list[str]]:
    body = re.search(r'<table id="events">.*?</table>', page, re.DOTALL)
    assert body
    return [
        [html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        for row in re.findall(r"<tr><td>.*?</tr>", body.group(0), re.DOTALL)
    ]


def _reads(station: Station) -> int:
    with station.ws.sessions() as db:
        query = select(func.count(AuditEvent.id)).where(AuditEvent.action == "case.read")
        return int(db.scalar(query) or 0)


def test_case_readings_are_recorded_once_a_day_and_filters_find_events(
    ws_client: FlaskClient, station: Station, drop: Drop, tmp_path: Path
) -> None:
    source_reports(drop, "first")
    source_reports(drop, "second")
    importing.import_bundle(station.ws, ADMIN, export(drop, tmp_path))
    first, second = sorted(r.case.id for r in cases.list_cases(station.ws, cases.CaseFilter()))
    login(ws_client, station)
    # A responder opens a case page five times, the other once: two readings recorded
    for _ in range(5):
        assert ws_client.get(f"/cases/{first}").status_code == 200
    ws_client.get(f"/cases/{second}")
    assert _reads(station) == 2
    # The next day, reading it again is recorded again
    station.clock.advance(days=1)
    login(ws_client, station)
    ws_client.get(f"/cases/{first}")
    ws_client.get(f"/cases/{first}")
    assert _reads(station) == 3
    today = station.clock().date().isoformat()
    # Filters: what, case, who, and days
    rows = _rows(ws_client.get(f"/audit?what=case.read&case={first}").text)
    assert [r[3] for r in rows] == ["case.read", "case.read"] and {r[4] for r in rows} == {
        str(first)
    }
    assert _rows(ws_client.get("/audit?who=nobody").text) == []
    rows = _rows(ws_client.get(f"/audit?what=case.read&since={today}&until={today}").text)
    assert len(rows) == 1 and rows[0][1].startswith(today)
    page = ws_client.get(f"/audit?what=login&since={today}").text
    assert all(r[3] == "login" for r in _rows(page)) and "1 event(s) match" in page
    # a malformed day or case is ignored, not an error
    assert ws_client.get("/audit?since=tomorrow&case=abc").status_code == 200


def test_pages_keep_the_filter_and_the_chain_verifies(
    ws_client: FlaskClient, station: Station, drop: Drop, tmp_path: Path
) -> None:
    source_reports(drop, "notes")
    importing.import_bundle(station.ws, ADMIN, export(drop, tmp_path))
    case_id = cases.list_cases(station.ws, cases.CaseFilter())[0].case.id
    for i in range(105):
        cases.add_note(station.ws, ADMIN, case_id, f"note {i}")
    login(ws_client, station)
    page = ws_client.get("/audit?what=case.note").text
    assert len(_rows(page)) == 100 and "105 event(s) match; page 1 of 2" in page
    older = re.search(r'href="([^"]+)" rel="next"', page)
    assert older
    link = html.unescape(older.group(1))
    assert "what=case.note" in link and "page=1" in link
    rows = _rows(ws_client.get(link).text)
    assert len(rows) == 5 and {r[3] for r in rows} == {"case.note"}
    assert "Hash chain intact" in page
    verified = CliRunner().invoke(
        ws_cli, ["verify-audit", "--config", str(station.ws.settings.config_path)]
    )
    assert verified.exit_code == 0 and "audit log intact" in verified.output
