"""A Wikimedia report's details on the workstation: where it happened, the project, the
country or region, and its links parsed into pages, diffs and users. Sent through the
real drop, exported, imported through the responders' UI, read in English and Arabic,
found by search; a message written before the form asked for them still imports."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from flask.testing import FlaskClient
from sqlalchemy import select

from securedrop_wm.drop import Drop
from securedrop_wm.models import Submission as ServerSubmission
from securedrop_wm.workstation import search
from securedrop_wm.workstation.models import Report
from tests.conftest import Responders
from tests.workstation.fixtures import Station, export, import_through_ui, login, source_reports

LINKS = (
    "https://fa.m.wikipedia.org/w/index.php?title=%DA%A9%D8%A7%D8%B1%D8%A8%D8%B1:%D9%86"
    "%D9%85%D9%88%D9%86%D9%87&diff=123456&oldid=123400\n"
    "Special:Contributions/Bad_Actor\n"
    "javascript:alert(document.cookie)\n"
    "https://fa.wikipedia.org.example.com/wiki/Login\n"
)
TEXT = "He outed me on https://fa.wikipedia.org/wiki/بحث_کاربر:نمونه and threatened me."


def _case_url(client: FlaskClient) -> str:
    found = re.search(r'href="(/cases/\d+)"', client.get("/").text)
    assert found
    return found.group(1)


def _words(page: str, css_class: str) -> str:
    """The text of the first element of ``css_class`` (tags removed, entities read)."""
    found = re.search(rf'<(\w+) class="{css_class}"[^>]*>(.*?)</\1>', page, re.S)
    assert found, css_class
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found.group(2))).split())


def test_a_wikimedia_report_shows_where_which_project_and_its_links(
    ws_client: FlaskClient, station: Station, drop: Drop, tmp_path: Path
) -> None:
    # Given a source who reports off-wiki outing on the Persian Wikipedia, from Iran
    source_reports(
        drop,
        TEXT,
        category="offwiki_harassment",
        urgency="urgent",
        place="off_wiki",
        project="fa.wikipedia",
        region="Iran",
        links=LINKS,
    )
    # When a responder imports it and opens the case
    login(ws_client, station)
    import_through_ui(ws_client, export(drop, tmp_path))
    page = ws_client.get(_case_url(ws_client)).text
    # Then the report says what happened, where, on which project and from where
    assert "Off-wiki harassment or outing" in page
    assert _words(page, "details") == (
        "Where it happened: Off-wiki · Project: fa.wikipedia · Country or region: Iran"
    )
    assert '<bdi class="project">fa.wikipedia</bdi>' in page
    # and its links, parsed, name the diff, the user and the project, as text only
    links = page[page.index('<ul class="wiki-links">') :]
    links = links[: links.index("</ul>")]
    items = [
        " ".join(html.unescape(re.sub(r"<[^>]+>", " ", i)).split()) for i in links.split("<li>")[1:]
    ]
    assert items[0].startswith(
        "diff · Project: fa.wikipedia.org (mobile site) · Title: کاربر:نمونه · "
        "oldid=123400 · diff=123456"
    )
    assert items[1].startswith(
        "contributions · Title: Special:Contributions/Bad Actor · User: Bad Actor"
    )
    assert items[2].startswith("other link not a web address: never open it")
    assert items[3].startswith(
        "page · Project: fa.wikipedia.org.example.com · Title: Login not a Wikimedia site"
    )
    # and the URL in the description too
    assert items[4].startswith("user page · Project: fa.wikipedia.org · Title: بحث کاربر:نمونه")
    assert len(items) == 5
    # nothing in a report is a link on this offline workstation
    assert "javascript:" not in " ".join(re.findall(r'(?:href|src|action)="([^"]*)"', page))
    assert not re.search(r'(?:href|src)="[^"]*wikipedia', page)
    assert '<bdi class="title">کاربر:نمونه</bdi>' in page

    # When an Arabic-speaking responder opens it
    arabic = ws_client.get(_case_url(ws_client), headers={"Accept-Language": "ar"}).text
    # Then the page is right to left and says the same in Arabic
    assert 'dir="rtl"' in arabic
    assert "مضايقة خارج الويكي أو كشف الهوية" in arabic
    assert _words(arabic, "details") == (
        "مكان حدوثه: خارج الويكي · المشروع: fa.wikipedia · البلد أو المنطقة: Iran"
    )
    assert "ليس موقعًا من مواقع ويكيميديا" in arabic
    assert "ليس عنوان ويب: لا تفتحه أبدًا" in arabic

    # and a search for the project or the region finds the case
    for typed in ("fa.wikipedia", "Iran"):
        found = search.search(station.ws, typed)
        assert "details" in [h.kind for h in found.hits], typed
        assert len(found.cases) == 1
    assert [h.kind for h in search.search(station.ws, "Iran").hits] == ["details"]
    shown = ws_client.get("/search", query_string={"q": "Iran"}).text
    assert "project and region" in shown


def test_a_report_that_does_not_say_shows_not_said_and_a_filter_offers_new_categories(
    ws_client: FlaskClient, station: Station, drop: Drop, tmp_path: Path
) -> None:
    # Given a source who names no place, project or region
    source_reports(drop, "Someone was arrested.", category="arrest")
    login(ws_client, station)
    import_through_ui(ws_client, export(drop, tmp_path))
    page = ws_client.get(_case_url(ws_client)).text
    assert _words(page, "details") == (
        "Where it happened: not said · Project: not said · Country or region: not said"
    )
    assert 'class="wiki-links"' not in page
    listing = ws_client.get("/").text
    assert '<option value="arrest" >Arrest or detention</option>' in listing
    assert "<td>Arrest or detention</td>" in listing


def _rewrite_as_old_message(drop: Drop, team_fingerprint: str) -> None:
    """Replace the stored message of the drop's only report with what a source UI wrote
    before it asked where, which project and which region: the same fields, without
    those keys, encrypted as the drop encrypts."""
    with drop.sessions() as db:
        name = db.scalar(
            select(ServerSubmission.store_name).where(ServerSubmission.kind == "message")
        )
    assert name is not None
    old = {
        "schema": 1,
        "category": "harassment",
        "what_happened": "An old report.",
        "urgency": "routine",
        "wiki": "en.wikipedia",
        "links": "https://en.wikipedia.org/wiki/Special:Diff/42",
        "reply_language": "en",
        "files": [],
    }
    path = drop.store.path(name)
    path.unlink()
    drop.gpg.encrypt_bytes(json.dumps(old).encode(), [team_fingerprint], path)


def test_a_message_written_before_the_new_fields_still_imports(
    ws_client: FlaskClient,
    station: Station,
    drop: Drop,
    responders: Responders,
    tmp_path: Path,
) -> None:
    # Given a pending report whose message has no place, project or region
    source_reports(drop, "placeholder", place="on_wiki", project="x", region="y")
    _rewrite_as_old_message(drop, responders.team_fingerprint)
    # When it is imported
    login(ws_client, station)
    imported = import_through_ui(ws_client, export(drop, tmp_path))
    assert imported.status_code == 200  # type: ignore[attr-defined]
    with station.ws.sessions() as db:
        [report] = db.scalars(select(Report)).all()
        assert (report.text, report.place, report.project, report.region) == (
            "An old report.",
            "",
            "",
            "",
        )
    # Then its page says not said, and its link is parsed as before
    page = ws_client.get(_case_url(ws_client)).text
    assert _words(page, "details") == (
        "Where it happened: not said · Project: not said · Country or region: not said"
    )
    assert "<td>Harassment</td>" in ws_client.get("/").text
    assert '<code dir="ltr">diff=42</code>' in page
