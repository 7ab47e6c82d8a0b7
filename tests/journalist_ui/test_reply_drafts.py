"""Replies that are not lost and not planted: a reply typed into an expired session comes
back after the next login as a draft on its case (never queued by itself), only for the
account whose session it was; a queued reply can be withdrawn until a reply bundle takes
it; reply templates per language, kept by admins, fill the form on the server."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from securedrop_wm.drop import Drop
from securedrop_wm.workstation import accounts, cases, importing, replies
from securedrop_wm.workstation.models import OutgoingReply, ReplyDraft
from tests.conftest import csrf_token
from tests.workstation.fixtures import ADMIN, ADMIN_PASSWORD, Station, export, login, source_reports

TEXT = "We read your report. Please send the diff links when you can."


def _case(station: Station, drop: Drop, folder: Path) -> int:
    source_reports(drop, "Someone follows me across talk pages.")
    importing.import_bundle(station.ws, ADMIN, export(drop, folder))
    return max(r.case.id for r in cases.list_cases(station.ws, cases.CaseFilter()))


def _counts(station: Station) -> tuple[int, int]:
    """How many replies are queued and how many drafts exist."""
    with station.ws.sessions() as db:
        queued = db.scalar(select(func.count(OutgoingReply.id)))
        drafts = db.scalar(select(func.count(ReplyDraft.id)))
    return int(queued or 0), int(drafts or 0)


def _textarea(page: str) -> str:
    found = re.search(r'<textarea name="text"[^>]*>(.*?)</textarea>', page, re.DOTALL)
    assert found, page
    return found.group(1)


def _expire(station: Station) -> None:
    station.clock.advance(minutes=station.ws.settings.session_minutes + 1)


def _login_carrying(client: FlaskClient, station: Station, page: str, **kw: str) -> TestResponse:
    """Log in through the login page ``page`` (with the reply it carries, if any)."""
    carried = re.search(r'name="carried" value="([^"]+)"', page)
    station.clock.advance(seconds=30)
    return client.post(
        "/login",
        data={
            "csrf_token": csrf_token(page),
            "username": kw.get("username", ADMIN),
            "password": kw.get("password", ADMIN_PASSWORD),
            "code": station.code(kw.get("secret")),
            "carried": kw.get("carried", carried.group(1) if carried else ""),
        },
    )


def test_a_reply_typed_into_an_expired_session_comes_back_as_a_draft(
    ws_client: FlaskClient, station: Station, drop: Drop, tmp_path: Path
) -> None:
    # Given a responder writing a reply on a case page
    case_id = _case(station, drop, tmp_path)
    login(ws_client, station)
    page = ws_client.get(f"/cases/{case_id}").text
    # When their session expires before they send it
    _expire(station)
    sent = ws_client.post(
        f"/cases/{case_id}/reply", data={"csrf_token": csrf_token(page), "text": TEXT}
    )
    # Then they get the login page, which says the reply is held, and nothing is queued
    assert sent.status_code == 401 and "Your session expired while you wrote a reply" in sent.text
    assert 'name="carried"' in sent.text and _counts(station) == (0, 0)
    # When they log in again
    back = _login_carrying(ws_client, station, sent.text)
    assert back.status_code == 302 and back.location.endswith(f"/cases/{case_id}#reply")
    # Then the reply is an editable draft on the case, with a note, and still not queued
    case_page = ws_client.get(f"/cases/{case_id}").text
    assert _textarea(case_page) == TEXT and "Draft, not sent." in case_page
    assert "when your session expired" in case_page and _counts(station) == (0, 1)
    # and queued only once they send it, which ends the draft
    ws_client.post(
        f"/cases/{case_id}/reply",
        data={"csrf_token": csrf_token(case_page), "text": TEXT + " Edited.", "action": "queue"},
    )
    assert _counts(station) == (1, 0)
    assert _textarea(ws_client.get(f"/cases/{case_id}").text) == ""


def test_a_planted_reply_is_never_kept(
    ws_app: Flask, ws_client: FlaskClient, station: Station, drop: Drop, tmp_path: Path
) -> None:
    case_id = _case(station, drop, tmp_path)
    # A POST without any session (another site's form: the cookie is SameSite=Strict)
    stranger = ws_app.test_client()
    planted = stranger.post(f"/cases/{case_id}/reply", data={"text": "Send us your password."})
    assert planted.status_code == 302 and planted.location.endswith("/login")
    assert "carried" not in stranger.get("/login").text
    # A POST into an expired session with a CSRF token that is not the session's
    login(ws_client, station)
    page = ws_client.get(f"/cases/{case_id}").text
    _expire(station)
    forged = ws_client.post(
        f"/cases/{case_id}/reply", data={"csrf_token": "forged", "text": "Send us your password."}
    )
    assert forged.status_code == 302 and forged.location.endswith("/login")
    # A carried reply signed with another key, at the admin's next login
    other = URLSafeTimedSerializer("not the app's key", salt="sdwm-expired-reply")
    fake = other.dumps({"account": 1, "case": case_id, "text": "Send us your password."})
    login_page = ws_client.get("/login").text
    assert _login_carrying(ws_client, station, login_page, carried=fake).status_code == 302
    assert _counts(station) == (0, 0)
    # A reply carried from rosa's expired session, used at the admin's login
    with station.ws.write() as db:
        rosa = accounts.create_account(
            station.ws, db, ADMIN, "rosa", "rosa's own password", admin=False
        )
    rosa_client = ws_app.test_client()
    login(rosa_client, station, "rosa", password="rosa's own password", secret=rosa.totp_secret)
    page = rosa_client.get(f"/cases/{case_id}").text
    _expire(station)
    held = rosa_client.post(
        f"/cases/{case_id}/reply", data={"csrf_token": csrf_token(page), "text": "Rosa's reply."}
    )
    assert held.status_code == 401
    carried = re.search(r'name="carried" value="([^"]+)"', held.text)
    assert carried
    admin_client = ws_app.test_client()
    admin_login = admin_client.get("/login").text
    _login_carrying(admin_client, station, admin_login, carried=carried.group(1))
    # Then nothing was ever kept, nothing queued
    assert _counts(station) == (0, 0)
    assert _textarea(admin_client.get(f"/cases/{case_id}").text) == ""


def test_a_queued_reply_can_be_withdrawn_until_it_leaves(
    ws_client: FlaskClient, station: Station, drop: Drop, tmp_path: Path
) -> None:
    case_id = _case(station, drop, tmp_path)
    login(ws_client, station)
    page = ws_client.get(f"/cases/{case_id}").text
    ws_client.post(f"/cases/{case_id}/reply", data={"csrf_token": csrf_token(page), "text": TEXT})
    page = ws_client.get(f"/cases/{case_id}").text
    uuid = re.search(r'name="reply" value="([0-9a-f-]{36})"', page)
    assert uuid and "Queued, not sent yet" in page
    # Withdrawn: not queued any more, its text back in the form as a draft
    done = ws_client.post(
        f"/cases/{case_id}/reply",
        data={"csrf_token": csrf_token(page), "action": "withdraw", "reply": uuid.group(1)},
    )
    page = ws_client.get(done.location).text
    assert "Reply withdrawn" in page and _textarea(page) == TEXT and _counts(station) == (0, 1)
    assert replies.outbox(station.ws).replies == 0
    # Queued again and sent in a reply bundle, it can no longer be withdrawn
    ws_client.post(f"/cases/{case_id}/reply", data={"csrf_token": csrf_token(page), "text": TEXT})
    with station.ws.sessions() as db:
        again = db.scalar(select(OutgoingReply.uuid))
    replies.export_reply_bundle(station.ws, ADMIN)
    late = ws_client.post(
        f"/cases/{case_id}/reply",
        data={"csrf_token": csrf_token(page), "action": "withdraw", "reply": again or ""},
    )
    assert "it can no longer be withdrawn" in ws_client.get(late.location).text
    assert _counts(station) == (1, 0)
    log = ws_client.get(f"/audit?what=reply.withdraw&case={case_id}").text
    assert uuid.group(1) in log and again not in log


def test_admins_keep_reply_templates_that_fill_the_form(
    ws_app: Flask, ws_client: FlaskClient, station: Station, drop: Drop, tmp_path: Path
) -> None:
    case_id = _case(station, drop, tmp_path)
    login(ws_client, station)
    page = ws_client.get("/admin/templates").text
    bad = ws_client.post(
        "/admin/templates",
        data={
            "csrf_token": csrf_token(page),
            "name": "Accueil",
            "language": "french!",
            "text": "x",
        },
        follow_redirects=True,
    )
    assert "a language code such as en, fr or pt-BR" in bad.text
    for name, language, text in (
        ("Accueil", "fr", "Bonjour, nous avons bien reçu votre signalement."),
        ("Welcome", "en", "Hello, we received your report."),
    ):
        ws_client.post(
            "/admin/templates",
            data={"csrf_token": csrf_token(page), "name": name, "language": language, "text": text},
        )
    listing = ws_client.get("/admin/templates").text
    edit = re.search(r'Accueil</td>.*?href="/admin/templates/(\d+)">', listing, re.DOTALL)
    assert edit and "Accueil" in listing and "Welcome" in listing
    # edited
    ws_client.post(
        "/admin/templates",
        data={
            "csrf_token": csrf_token(page),
            "template_id": edit.group(1),
            "name": "Accueil",
            "language": "fr",
            "text": "Bonjour, nous avons bien reçu votre message.",
        },
    )
    # In a case, "Use template" adds the template below what was typed, on the server
    page = ws_client.get(f"/cases/{case_id}").text
    options = dict(re.findall(r'<option value="(\d+)">([^<]+)</option>', page))
    accueil = next(i for i, label in options.items() if label.startswith("Accueil"))
    used = ws_client.post(
        f"/cases/{case_id}/reply",
        data={
            "csrf_token": csrf_token(page),
            "action": "template",
            "template": accueil,
            "text": "Chère contributrice,",
        },
    )
    page = ws_client.get(used.location).text
    assert _textarea(page) == "Chère contributrice,\n\nBonjour, nous avons bien reçu votre message."
    assert _counts(station) == (0, 1)  # a draft, nothing queued
    # A responder who is not an admin sees the templates but cannot change them
    with station.ws.write() as db:
        rosa = accounts.create_account(
            station.ws, db, ADMIN, "rosa", "rosa's own password", admin=False
        )
    rosa_client = ws_app.test_client()
    login(rosa_client, station, "rosa", password="rosa's own password", secret=rosa.totp_secret)
    assert "Accueil (fr)" in rosa_client.get(f"/cases/{case_id}").text
    assert rosa_client.get("/admin/templates").status_code == 403
    # Deleted, it is no longer offered
    listing = ws_client.get("/admin/templates").text
    ws_client.post(
        f"/admin/templates/{edit.group(1)}/delete", data={"csrf_token": csrf_token(listing)}
    )
    assert (
        "Accueil"
        not in ws_client.get(f"/cases/{case_id}").text.split('<select name="template">')[-1]
    )
    log = ws_client.get("/audit").text
    for action in ("template.create", "template.edit", "template.delete"):
        assert f"<td>{action}</td>" in log


def test_a_reply_that_cannot_be_queued_is_kept_as_a_draft(
    ws_client: FlaskClient, station: Station, drop: Drop, tmp_path: Path
) -> None:
    # Given a case whose source key is no longer in the workstation's keyring
    case_id = _case(station, drop, tmp_path)
    with station.ws.sessions() as db:
        fingerprint = cases.get_case(db, case_id).source_fingerprint
    gpg = [
        station.ws.settings.gpg_binary,
        "--homedir",
        str(station.ws.settings.gpg_home),
        "--batch",
    ]
    subprocess.run([*gpg, "--yes", "--delete-keys", fingerprint], check=True, capture_output=True)
    login(ws_client, station)
    page = ws_client.get(f"/cases/{case_id}").text
    # When the responder sends a reply, it cannot be encrypted: nothing is queued,
    failed = ws_client.post(
        f"/cases/{case_id}/reply", data={"csrf_token": csrf_token(page), "text": TEXT}
    )
    page = ws_client.get(failed.location).text
    assert _counts(station) == (0, 1)
    # and the text they typed is still there, with a note, instead of lost
    assert _textarea(page) == TEXT and "could not be queued" in page
