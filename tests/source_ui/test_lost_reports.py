"""A source does not lose a report: not to an expired session, not to the script it is
written in, and a refusal for size names the limit that was hit."""

from __future__ import annotations

import dataclasses
import html
import re
import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from markupsafe import escape

from securedrop_wm.drop import Drop
from securedrop_wm.settings import Settings
from source_ui import create_app
from tests.conftest import csrf_token, new_source, post_multipart, store_files

HIDDEN_RE = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')
TEXTAREA_RE = re.compile(r'<textarea id="what_happened"[^>]*>([^<]*)</textarea>')


def _form_of(page: str) -> dict[str, str]:
    """What a browser would send from the first form of ``page`` (hidden fields and the
    description), without the codename."""
    fields = {name: html.unescape(value) for name, value in HIDDEN_RE.findall(page)}
    text = TEXTAREA_RE.search(page)
    assert text, "page has no description field"
    fields["what_happened"] = html.unescape(text.group(1))
    return fields


def test_a_report_posted_after_expiry_comes_back_to_be_sent(
    settings: Settings, drop: Drop, data_dir: Path
) -> None:
    # Given a source who typed a long report with a file while their session expired
    now = [time.time()]
    client = create_app(settings, drop, clock=lambda: now[0]).test_client()
    codename = new_source(client)
    page = client.get("/submit")
    now[0] += settings.session_minutes * 60 + 1
    text = "Ils m'ont menacé <b>hier</b> & 昨日も脅迫された"
    report = {
        "csrf_token": csrf_token(page.text),
        "category": "threats",
        "urgency": "urgent",
        "wiki": "fr.wikipedia",
        "what_happened": text,
        "files": [(b"secret evidence", "capture.png")],
    }
    # When they send it
    expired = post_multipart(client, "/submit", report)
    # Then the page says the session expired, gives their text back, keeps no file
    assert expired.status_code == 401
    assert "Your session expired" in expired.text
    assert "The files you attached were not kept" in expired.text
    assert store_files(data_dir) == set()
    resumed = _form_of(expired.text)
    assert resumed["what_happened"] == text and resumed["category"] == "threats"
    # And logging in from that page puts the report back in the form, not sent yet
    relogged = client.post("/login", data={**resumed, "codename": codename})
    assert relogged.status_code == 200
    assert "Your report is not sent yet" in relogged.text
    assert "The files you attached were not kept" in relogged.text
    assert str(escape(text)) in relogged.text
    assert 'value="threats" required checked' in relogged.text
    assert store_files(data_dir) == set()
    # And one more click sends it
    sent = post_multipart(
        client,
        "/submit",
        {
            "csrf_token": csrf_token(relogged.text),
            "category": "threats",
            "urgency": "urgent",
            "what_happened": text,
            "files": [(b"secret evidence", "capture.png")],
        },
    )
    assert sent.status_code == 302
    assert len(store_files(data_dir)) == 2


def test_a_wrong_codename_keeps_the_report(settings: Settings, drop: Drop) -> None:
    now = [time.time()]
    client = create_app(settings, drop, clock=lambda: now[0]).test_client()
    new_source(client)
    page = client.get("/submit")
    now[0] += settings.session_minutes * 60 + 1
    data = {"csrf_token": csrf_token(page.text), "category": "other", "what_happened": "kept"}
    expired = client.post("/submit", data=data)
    wrong = client.post("/login", data={**_form_of(expired.text), "codename": "no such"})
    assert wrong.status_code == 401
    assert _form_of(wrong.text)["what_happened"] == "kept"


@pytest.mark.parametrize(
    "text",
    [
        "a" * 100_000,
        "中" * 100_000,  # 3 bytes each in UTF-8
        "𠜎" * 100_000,  # 4 bytes each
        "ab\r\n" * 33_333 + "a",  # line breaks count once, as the form's maxlength does
    ],
    ids=["latin", "cjk", "astral", "line-breaks"],
)
def test_a_hundred_thousand_characters_of_any_script_are_accepted(
    client: FlaskClient, data_dir: Path, text: str
) -> None:
    new_source(client)
    token = csrf_token(client.get("/submit").text)
    data = {"csrf_token": token, "category": "other", "urgency": "routine"}
    response = post_multipart(client, "/submit", {**data, "what_happened": text})
    assert response.status_code == 302
    assert len(store_files(data_dir)) == 1


def test_a_too_long_text_field_is_named_in_the_refusal(client: FlaskClient) -> None:
    new_source(client)
    token = csrf_token(client.get("/submit").text)
    data = {"csrf_token": token, "category": "other", "what_happened": "中" * 200_000}
    response = post_multipart(client, "/submit", data)
    assert response.status_code == 413
    assert "A text field is longer than this drop accepts" in response.text
    assert "100,000 characters" in response.text
    assert "files" not in response.text.split("<main", 1)[-1].split("</main>")[0]


def test_too_many_bytes_of_files_are_named_in_the_refusal(settings: Settings, drop: Drop) -> None:
    small = dataclasses.replace(settings, max_report_bytes=2_000_000)
    client = create_app(small, dataclasses.replace(drop, settings=small)).test_client()
    new_source(client)
    token = csrf_token(client.get("/submit").text)
    data = {"csrf_token": token, "category": "other", "what_happened": "x"}
    for size in (2_500_000, 4_000_000):  # over the files' limit; over the request's
        response = post_multipart(client, "/submit", {**data, "files": [(b"a" * size, "f")]})
        assert response.status_code == 413
        assert "Your files are larger than this drop accepts: at most 2 MB" in response.text
        token = csrf_token(client.get("/submit").text)
        data["csrf_token"] = token
