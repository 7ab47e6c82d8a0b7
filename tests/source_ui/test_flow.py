"""A source's journey through the source UI's test client, with real gpg and SQLite."""

from __future__ import annotations

import json
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from securedrop_wm.drop import Drop
from securedrop_wm.models import Source, Submission
from securedrop_wm.sources import add_reply
from securedrop_wm.transfer import transfer_status
from tests.conftest import Responders, csrf_token, new_source, post_multipart, store_files


def submit(client: FlaskClient, **fields: object) -> object:
    page = client.get("/submit")
    data = {"csrf_token": csrf_token(page.text), "category": "doxxing", "urgency": "routine"}
    data.update(fields)  # type: ignore[arg-type]
    return post_multipart(client, "/submit", data)


def test_report_with_files_is_stored_encrypted_and_decrypts_exactly(
    client: FlaskClient, drop: Drop, data_dir: Path, responders: Responders
) -> None:
    # Given a new source
    new_source(client)
    photo = bytes(range(256)) * 4000
    # When they report with two files
    response = submit(
        client,
        what_happened="They posted my home address on a talk page.",
        wiki="fr.wikipedia.org",
        links="https://fr.wikipedia.org/w/index.php?diff=1",
        files=[(photo, "photo.jpg"), (b"%PDF-1.4 x", "lettre.pdf")],
    )
    assert response.status_code == 302 and response.location.endswith("/thanks")
    assert "Thank you" in client.get("/thanks").text
    # Then the store holds three ciphertexts: the message and the two files
    with drop.sessions() as db:
        subs = {s.kind: s for s in db.scalars(select(Submission))} and list(
            db.scalars(select(Submission))
        )
    assert sorted(s.kind for s in subs) == ["file", "file", "message"]
    plain = {s.uuid: responders.decrypt(drop.store.path(s.store_name)) for s in subs}
    message = json.loads(next(plain[s.uuid] for s in subs if s.kind == "message"))
    assert message["what_happened"] == "They posted my home address on a talk page."
    assert message["category"] == "doxxing" and message["wiki"] == "fr.wikipedia.org"
    by_name = {f["name"]: plain[f["submission"]] for f in message["files"]}
    assert by_name == {"photo.jpg": photo, "lettre.pdf": b"%PDF-1.4 x"}
    # and nothing in the store is plaintext
    for name in store_files(data_dir):
        assert b"home address" not in (data_dir / "store" / name).read_bytes()


def test_danger_now_shows_safety_steps_and_counts_as_danger(
    client: FlaskClient, app: Flask, drop: Drop
) -> None:
    # Given one routine report, from another source, waiting for the workstation
    other = app.test_client()
    new_source(other)
    submit(other, urgency="routine", what_happened="A rude edit summary.")
    assert transfer_status(drop).to_json()["levels"]["routine"] == {"pending": 1, "arrived": 1}
    # When a source marks "I am in danger now"
    new_source(client)
    submit(client, urgency="danger", what_happened="They know where I am.")
    # Then they see the safety steps, and the transfer API's count of reports in danger
    # (what the on-call responder watches) counts it
    page = client.get("/thanks")
    assert 'id="danger-steps"' in page.text
    assert "emergency services" in page.text
    assert transfer_status(drop).to_json()["levels"] == {
        "routine": {"pending": 1, "arrived": 1},
        "urgent": {"pending": 0, "arrived": 0},
        "danger": {"pending": 1, "arrived": 1},
    }


def test_returning_source_reads_and_deletes_a_reply(
    client: FlaskClient, drop: Drop, data_dir: Path
) -> None:
    codename = new_source(client)
    submit(client, what_happened="hello")
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/replies").text)})
    with drop.sessions() as db:
        designation = db.scalars(select(Source.designation)).one()
    reply_uuid = add_reply(drop, designation, "We read your report. Stay safe: ⚠ مرحبا")
    before = store_files(data_dir)

    login = client.get("/login")
    response = client.post(
        "/login", data={"csrf_token": csrf_token(login.text), "codename": codename.upper()}
    )
    assert response.status_code == 302
    page = client.get("/replies")
    assert "We read your report. Stay safe: ⚠ مرحبا" in page.text

    confirm = client.get(f"/replies/{reply_uuid}/delete")  # deleting asks first
    client.post(
        f"/replies/{reply_uuid}/delete",
        data={"csrf_token": csrf_token(confirm.text), "confirm": "yes"},
    )
    page = client.get("/replies")
    assert "We read your report" not in page.text
    assert "The reply was deleted." in page.text
    assert len(store_files(data_dir)) == len(before) - 1


def test_logout_ends_the_session(client: FlaskClient) -> None:
    new_source(client)
    page = client.get("/submit")
    response = client.post(
        "/logout", data={"csrf_token": csrf_token(page.text)}, follow_redirects=True
    )
    assert "You are logged out" in response.text
    assert client.get("/submit").status_code == 302


def test_language_can_be_chosen_without_javascript(client: FlaskClient) -> None:
    response = client.get("/language/fr?next=/safety")
    assert response.status_code == 302 and response.location == "/safety"
    page = client.get("/safety")
    assert 'lang="fr"' in page.text
    assert client.get("/language/fr?next=//evil.example").location == "/"


def test_accept_language_is_the_first_guess(client: FlaskClient) -> None:
    page = client.get("/", headers={"Accept-Language": "ar,en;q=0.5"})
    assert 'dir="rtl"' in page.text and 'lang="ar"' in page.text
