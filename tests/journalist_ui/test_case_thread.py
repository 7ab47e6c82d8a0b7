"""The case page as one thread, the search page, and each responder's own view (unread
marks, "My cases", handover notes), through the journalist UI."""

from __future__ import annotations

import html
import re
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from securedrop_wm.drop import Drop
from securedrop_wm.workstation import accounts, cases, replies
from tests.conftest import csrf_token
from tests.workstation.fixtures import (
    ADMIN,
    Station,
    export,
    import_through_ui,
    login,
    source_reports,
)

ARABIC = "نشر عنواني على صفحة النقاش"
HARASSER = "User:Harasser_77"
DIFF = "https://en.wikipedia.org/w/index.php?diff=1234567&oldid=7654321"


def _rosa(station: Station, ws_app: Flask) -> tuple[int, FlaskClient]:
    with station.ws.write() as db:
        made = accounts.create_account(
            station.ws, db, ADMIN, "rosa", "rosa's own password", admin=False
        )
    client = ws_app.test_client()
    login(client, station, "rosa", password="rosa's own password", secret=made.totp_secret)
    return made.id, client


def _post(client: FlaskClient, url: str, page: str, **data: str) -> str:
    response = client.post(
        url, data={"csrf_token": csrf_token(page), **data}, follow_redirects=True
    )
    assert response.status_code == 200, response.text
    return response.text


def _case_ids(station: Station) -> list[int]:
    return sorted(r.case.id for r in cases.list_cases(station.ws, cases.CaseFilter()))


def _text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def test_the_case_page_is_one_thread(
    ws_app: Flask, ws_client: FlaskClient, station: Station, drop: Drop, tmp_path: Path
) -> None:
    rosa, _rosa_client = _rosa(station, ws_app)
    source = source_reports(drop, ARABIC, urgency="danger", reply_language="ar")
    login(ws_client, station)
    import_through_ui(ws_client, export(drop, tmp_path, "one.tar"))
    (case_id,) = _case_ids(station)
    url = f"/cases/{case_id}"
    page = ws_client.get(url).text
    # Every text a responder types is typed in its own direction.
    typed = re.findall(r'<textarea name="(?:text|handover)"[^>]*>', page)
    assert len(typed) == 3  # the reply, the handover note, the note
    assert all('dir="auto"' in tag for tag in typed), typed
    station.clock.advance(minutes=1)
    _post(ws_client, f"{url}/status", page, status="triaged")
    station.clock.advance(minutes=1)
    page = _post(ws_client, f"{url}/assign", page, assignee=str(rosa), handover="اتصل بها غدا")
    station.clock.advance(minutes=1)
    replies.queue_reply(station.ws, ADMIN, case_id, "نحن هنا")
    station.clock.advance(minutes=1)
    _post(ws_client, f"{url}/note", page, text="Legal team informed.")
    station.clock.advance(minutes=1)
    source_reports(drop, "Follow-up: more threats.", login=source, urgency="danger")
    import_through_ui(ws_client, export(drop, tmp_path, "two.tar"))
    page = ws_client.get(url).text
    assert f'<pre class="message" dir="auto">{ARABIC}</pre>' in page
    assert '<pre class="message" dir="auto">نحن هنا</pre>' in page
    thread = _text(page.split('id="thread"')[1].split("</ol>")[0])
    order = [
        ARABIC,
        "admin changed the status from “new” to “triaged”.",
        "admin assigned the case to rosa.",
        "Handover note by admin to rosa",
        "اتصل بها غدا",
        "Reply by admin",
        "queued, not sent yet",
        "Internal note by admin",
        "Legal team informed.",
        "Follow-up of",
        "Follow-up: more threats.",
    ]
    positions = [thread.find(s) for s in order]
    assert -1 not in positions and positions == sorted(positions), list(
        zip(order, positions, strict=True)
    )
    # Urgency in words, not colour alone; the current facts stay on the page.
    assert "Urgency: In danger now" in thread
    facts = _text(page.split('id="facts"')[1].split("</section>")[0])
    assert "Assignee: rosa" in facts and "First response due" in facts
    for section in ('id="custody"', 'id="legal-hold"', 'id="case-export"', 'id="reply"'):
        assert section in page


def test_search_finds_a_repeat_harasser_across_cases(
    ws_client: FlaskClient, station: Station, drop: Drop, tmp_path: Path
) -> None:
    source_reports(drop, f"{HARASSER} reverted me 40 times.")
    source_reports(drop, "Threats <script>alert(1)</script> by mail.", links=DIFF)
    source_reports(drop, "Unrelated.")
    login(ws_client, station)
    import_through_ui(ws_client, export(drop, tmp_path))
    first, second, third = _case_ids(station)
    listing = ws_client.get("/").text
    assert 'action="/search"' in listing
    cases.add_note(station.ws, ADMIN, second, f"Also seen: {HARASSER}, see {DIFF}")
    page = ws_client.get("/search", query_string={"q": HARASSER}).text
    found = re.search(r'<ul id="cases-found">(.*?)</ul>', page, re.S)
    assert found
    assert set(re.findall(r'href="/cases/(\d+)"', found.group(1))) == {str(first), str(second)}
    assert "<mark>User:Harasser_77</mark> reverted me 40 times." in page
    page = ws_client.get("/search", query_string={"q": DIFF}).text
    found = re.search(r'<ul id="cases-found">(.*?)</ul>', page, re.S)
    assert found and re.findall(r'href="/cases/(\d+)"', found.group(1)) == [str(second)]
    assert str(third) not in found.group(1)
    # The stored text is escaped; only the highlighting is markup.
    page = ws_client.get("/search", query_string={"q": "script"}).text
    assert "&lt;<mark>script</mark>&gt;alert(1)&lt;/<mark>script</mark>&gt;" in page
    assert "<script>" not in page


def test_a_bad_search_says_so(ws_client: FlaskClient, station: Station) -> None:
    login(ws_client, station)
    for typed, message in (
        ('" * -', "Type a word to search for."),
        ("x" * 501, "A search may have at most 500 characters."),
    ):
        response = ws_client.get("/search", query_string={"q": typed})
        assert response.status_code == 400 and message in response.text
    for typed in ('NEAR(" OR', "body:x AND", '"unbalanced', "a OR b NOT c"):
        response = ws_client.get("/search", query_string={"q": typed})
        assert response.status_code == 200 and "0 match(es) in 0 case(s)" in _text(response.text)


def test_unread_and_my_cases_are_each_responders_own(
    ws_app: Flask, ws_client: FlaskClient, station: Station, drop: Drop, tmp_path: Path
) -> None:
    rosa, rosa_client = _rosa(station, ws_app)
    source_reports(drop, "case one")
    source_reports(drop, "case two")
    login(ws_client, station)
    import_through_ui(ws_client, export(drop, tmp_path))
    one, two = _case_ids(station)

    def unread(client: FlaskClient, query: str = "") -> set[int]:
        page = client.get(f"/{query}").text
        rows = re.findall(r'<a href="/cases/(\d+)">[^<]*</a>(.*?)</td>', page)
        return {int(case_id) for case_id, rest in rows if "unread-mark" in rest}

    assert unread(ws_client) == unread(rosa_client) == {one, two}
    page = ws_client.get(f"/cases/{one}").text
    assert unread(ws_client) == {two} and unread(rosa_client) == {one, two}
    _post(ws_client, f"/cases/{one}/assign", page, assignee=str(rosa))
    rosa_page = rosa_client.get(f"/cases/{one}").text
    assert unread(rosa_client) == {two}
    _post(rosa_client, f"/cases/{one}/unread", rosa_page)
    assert unread(rosa_client) == {one, two} and unread(ws_client) == {two}
    assert unread(rosa_client, "?unread=1") == {one, two}
    mine = rosa_client.get("/?mine=1").text
    assert "My cases" in mine
    assert set(re.findall(r'<a href="/cases/(\d+)">', mine)) == {str(one)}
    assert set(re.findall(r'<a href="/cases/(\d+)">', ws_client.get("/?mine=1").text)) == set()
