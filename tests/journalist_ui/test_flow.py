"""A responder's day through the journalist UI's test client: real gpg, real SQLite."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from flask.testing import FlaskClient
from sqlalchemy import select

from securedrop_wm import bundles
from securedrop_wm.drop import Drop
from securedrop_wm.workstation import stats
from securedrop_wm.workstation.models import Case
from tests.conftest import Responders, csrf_token
from tests.workstation.fixtures import Station, export, import_through_ui, login, source_reports


def test_pages_need_a_login(ws_client: FlaskClient) -> None:
    for path in ("/", "/cases/1", "/import", "/outbox", "/stats", "/audit", "/admin/accounts"):
        response = ws_client.get(path)
        assert response.status_code == 302 and response.location.endswith("/login"), path


def test_responder_imports_triages_notes_and_replies(
    ws_client: FlaskClient, station: Station, drop: Drop, tmp_path: Path, responders: Responders
) -> None:
    # Given a source who reported with a photo, exported by the server
    source_reports(
        drop,
        "<script>alert(1)</script> They threatened me on my talk page.",
        files=[(b"\x00binary", '..rapport "final".pdf')],
        urgency="danger",
        reply_language="fr",
    )
    bundle = export(drop, tmp_path)
    # When the responder logs in and imports it
    assert login(ws_client, station).status_code == 302
    page = import_through_ui(ws_client, bundle)
    assert "1 report(s), 1 file(s), 1 new case(s)" in page.text  # type: ignore[attr-defined]
    # Then the case is listed, unread and in danger
    listing = ws_client.get("/")
    case_url = re.search(r'href="(/cases/\d+)"', listing.text)
    assert case_url and "unread" in listing.text and "danger" in listing.text
    # and the message is plain text, never HTML
    case_page = ws_client.get(case_url.group(1))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in case_page.text
    assert "<script>" not in case_page.text
    # and the file downloads under a safe name, as an opaque attachment
    file_url = re.search(r'href="(/files/[0-9a-f-]+)"', case_page.text)
    assert file_url
    download = ws_client.get(file_url.group(1))
    assert download.get_data() == b"\x00binary"
    download.close()
    assert download.mimetype == "application/octet-stream"
    disposition = download.headers["Content-Disposition"]
    assert re.fullmatch(r"attachment; filename=attachment-[0-9a-f-]{36}\.bin", disposition)
    # When they triage, assign, label, note and reply
    token = csrf_token(case_page.text)
    url = case_url.group(1)
    for path, data in (
        ("/status", {"status": "triaged"}),
        ("/assign", {"assignee": "1"}),
        ("/label", {"label": "Wikidata"}),
        ("/note", {"text": "Called the local partner."}),
        ("/reply", {"text": "We read you. Stay safe: <b>do not</b> reply from work."}),
    ):
        response = ws_client.post(url + path, data={"csrf_token": token, **data})
        assert response.status_code == 302, path
    case_page = ws_client.get(url)
    assert "triaged" in case_page.text and "wikidata" in case_page.text
    assert "Called the local partner." in case_page.text
    assert "&lt;b&gt;do not&lt;/b&gt;" in case_page.text and "queued" in case_page.text
    assert "OVERDUE" not in case_page.text  # the clock started at the import, just now
    # and export the reply bundle
    outbox = ws_client.get("/outbox")
    assert "1 reply(ies), 2 acknowledgement(s)" in outbox.text
    done = ws_client.post(
        "/outbox", data={"csrf_token": csrf_token(outbox.text)}, follow_redirects=True
    )
    assert "Reply bundle 1 written" in done.text
    tar = ws_client.get("/outbox/1.tar")
    tar_bytes = tar.get_data()
    tar.close()
    assert tar.status_code == 200
    reply_bundle = tmp_path / "replies.tar"
    reply_bundle.write_bytes(tar_bytes)
    # Then the server accepts it: one reply stored, both submissions acknowledged
    result = bundles.import_reply_bundle(drop, reply_bundle)
    assert result.replies_stored == 1 and result.acknowledged == 2
    # and the audit log, readable by responders, has every step and verifies
    log = ws_client.get("/audit").text
    for action in ("login", "import", "case.read", "case.status", "case.assign", "case.note"):
        assert f"<td>{action}</td>" in log
    assert "Hash chain intact" in log


def test_statistics_page_charts_and_csv(
    ws_client: FlaskClient, station: Station, drop: Drop, tmp_path: Path
) -> None:
    source_reports(drop, "one", category="doxxing")
    source_reports(drop, "two", category="threats", urgency="urgent")
    login(ws_client, station)
    import_through_ui(ws_client, export(drop, tmp_path))
    page = ws_client.get("/stats")
    assert "2 case(s); 0 with a reply sent." in page.text
    svg = ws_client.get("/stats/category.svg")
    assert svg.mimetype == "image/svg+xml" and b"Doxxing" in svg.data and b"<script" not in svg.data
    rows = list(csv.reader(io.StringIO(ws_client.get("/stats.csv").text)))
    assert ["category", "doxxing", "1"] in rows and ["urgency", "urgent", "1"] in rows
    # aggregates only: no case's designation or source id in any statistics output
    with station.ws.sessions() as db:
        cases = db.execute(select(Case.designation, Case.source_uuid)).all()
    assert len(cases) == 2
    outputs = [
        page.text,
        ws_client.get("/stats.csv").text,
        *(
            ws_client.get(f"/stats/{chart}.svg").get_data(as_text=True)
            for chart in stats.DIMENSIONS
        ),
    ]
    for designation, source_uuid in cases:
        for output in outputs:
            assert designation not in output and source_uuid not in output
