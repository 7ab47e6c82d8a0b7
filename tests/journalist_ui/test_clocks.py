"""The responder sees honest clocks (issue 14): the pull time carried beside the bundle,
a reply's state (queued, sent, delivered) and a danger follow-up flagged first."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from flask.testing import FlaskClient

from securedrop_wm import bundles
from securedrop_wm.drop import Drop
from tests.conftest import csrf_token
from tests.workstation.fixtures import Station, export, import_through_ui, login, source_reports


def _case_url(page: str) -> str:
    found = re.search(r'href="(/cases/\d+)"', page)
    assert found, page
    return found.group(1)


def test_pull_time_reply_states_and_a_danger_follow_up_on_the_pages(
    ws_client: FlaskClient, station: Station, drop: Drop, tmp_path: Path
) -> None:
    source = source_reports(drop, "They follow my edits.", urgency="urgent")
    assert login(ws_client, station).status_code == 302
    pulled = (station.clock() - dt.timedelta(seconds=20)).replace(microsecond=0)
    stamp = pulled.strftime("%Y-%m-%dT%H:%M:%SZ\n").encode()
    cases_page = import_through_ui(ws_client, export(drop, tmp_path, "1.tar"), pulled=stamp)
    text = cases_page.text  # type: ignore[attr-defined]
    assert "What needs action comes first" in text
    url = _case_url(text)
    page = ws_client.get(url).text
    assert "when its bundle was pulled" in page and pulled.strftime("%H:%M") in page
    # A queued reply is queued, not "Answered"; it is sent once the bundle is written.
    ws_client.post(url + "/reply", data={"csrf_token": csrf_token(page), "text": "We read you."})
    page = ws_client.get(url).text
    assert "queued, not sent yet" in page and "Answered" not in page
    assert "First response due" in page
    outbox = ws_client.get("/outbox")
    ws_client.post("/outbox", data={"csrf_token": csrf_token(outbox.text)})
    page = ws_client.get(url).text
    assert "sent in a reply bundle" in page and "Answered: a reply has left" in page
    # The server receives it; the next export says so; a danger follow-up arrives with it.
    bundles.import_reply_bundle(drop, station.ws.settings.outbox_dir / "replies-000001.tar")
    source_reports(drop, "They found my address.", login=source, urgency="danger")
    listing = import_through_ui(ws_client, export(drop, tmp_path, "2.tar")).text  # type: ignore[attr-defined]
    row = listing[listing.index("<tbody>") :]
    assert "Danger follow-up" in row and "delivered: the drop server received it" in row
    page = ws_client.get(url).text
    assert "Danger follow-up" in page and "First response due" in page
    # In the responder's language too.
    french = ws_client.get("/", headers={"Accept-Language": "fr"}).text
    assert "Danger follow-up" not in french
