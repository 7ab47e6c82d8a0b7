"""The core's refusals reach the responder in the UI's language, not in the core's English:
a refused note, a legal hold that is not there, a reply bundle with nothing in it, a file
that is no bundle and an old bundle imported after a newer one."""

from __future__ import annotations

import html
import io
import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from securedrop_wm.drop import Drop
from tests.conftest import csrf_token
from tests.workstation.fixtures import Station, export, import_through_ui, login, source_reports


def _flashes(page: str) -> list[str]:
    """The messages a page flashes, as the reader sees them."""
    return [
        html.unescape(m) for m in re.findall(r'<p class="flash \w+" role="status">(.*?)</p>', page)
    ]


def _post(client: FlaskClient, url: str, page: str, **data: object) -> str:
    response = client.post(
        url, data={"csrf_token": csrf_token(page), **data}, follow_redirects=True
    )
    return str(response.text)


def _upload(client: FlaskClient, data: bytes) -> str:
    page = client.get("/import").text
    return _post(client, "/import", page, bundle=(io.BytesIO(data), "b.tar"))


def test_an_arabic_responder_reads_the_core_refusals_in_arabic(
    ws_client: FlaskClient, station: Station, drop: Drop, tmp_path: Path
) -> None:
    # Given a case imported from the drop
    source_reports(drop, "They posted my address.")
    login(ws_client, station)
    import_through_ui(ws_client, export(drop, tmp_path))
    # When a responder whose browser asks for Arabic works on a case
    ws_client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ar,en;q=0.5"
    listing = ws_client.get("/").text
    case_url = re.search(r'href="(/cases/\d+)"', listing)
    assert case_url
    case_page = ws_client.get(case_url.group(1)).text
    # and sends an empty note, then releases a legal hold the case does not have
    note = _post(ws_client, case_url.group(1) + "/note", case_page, text="")
    release = _post(ws_client, case_url.group(1) + "/hold/release", case_page, reason="x")
    # Then each refusal is in Arabic, and the core's English is not shown
    assert _flashes(note) == ["لا يمكن أن تكون الملاحظة فارغة."]
    assert _flashes(release) == ["هذه القضية ليست تحت الحجز القانوني."]
    assert "a note cannot be empty" not in note
    assert "not on legal hold" not in release
    # When they write a reply bundle twice in a row (the second has nothing to carry)
    outbox = ws_client.get("/outbox").text
    _post(ws_client, "/outbox", outbox)
    again = _post(ws_client, "/outbox", ws_client.get("/outbox").text)
    assert _flashes(again) == ["لا يوجد ما يُرسل: لا ردود ولا إرساليات جديدة."]


@pytest.mark.slow
def test_an_old_bundle_is_refused_in_arabic_with_its_numbers(
    ws_client: FlaskClient, station: Station, drop: Drop, tmp_path: Path
) -> None:
    # Given two export bundles of a drop, the newer one imported
    source_reports(drop, "They posted my address.")
    older = export(drop, tmp_path, "export-1.tar")
    source_reports(drop, "They wrote again.")
    newer = export(drop, tmp_path, "export-2.tar")
    login(ws_client, station)
    import_through_ui(ws_client, newer)
    # When an Arabic-speaking responder imports the older one after it
    ws_client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ar"
    replayed = _upload(ws_client, older.read_bytes())
    # Then the refusal is in Arabic and keeps the bundles' numbers
    assert _flashes(replayed) == [
        "رُفضت الحزمة: الحزمة 1 ليست أحدث من آخر حزمة مستوردة (2). إنها حزمة قديمة أو معاد إرسالها."
    ]
    assert "replayed bundle, refused" not in replayed


def test_a_refusal_the_ui_has_no_sentence_for_says_what_failed_in_french(
    ws_client: FlaskClient, station: Station
) -> None:
    # Given a French-speaking responder who picks a file that is no bundle at all
    login(ws_client, station)
    ws_client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "fr"
    page = _upload(ws_client, b"these are my holiday photos, not a bundle")
    # Then the message says in French that the bundle was refused, and why in a sentence
    # of its own kind, with the core's English kept only as the technical detail
    (message,) = _flashes(page)
    assert message.startswith(
        "Le lot a été refusé : il est endommagé ou n'est pas un lot de ce dépôt. "
        "Détails, en anglais : bundle refused: "
    )
    assert "<html" in page and 'lang="fr"' in page
