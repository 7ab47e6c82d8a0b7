"""The source's side of the conversation (issue 15, item 2), through the test client
with real gpg, SQLite and bundles: the thread of what was sent and the replies, with a
status per report; a message and files without the report form; deleting a reply after
a confirmation; the login link after logout; the limits; a language switch that keeps
what was typed."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from flask.testing import FlaskClient
from sqlalchemy import select

from securedrop_wm.bundles import (
    ReplyFile,
    export_bundle,
    import_reply_bundle,
    verify_export_bundle,
)
from securedrop_wm.crypto import GnuPG
from securedrop_wm.drop import Drop
from securedrop_wm.models import Report, Source, Submission
from securedrop_wm.settings import Settings
from securedrop_wm.sources import add_reply
from source_ui import create_app
from tests.bundles.helpers import encrypt_reply, new_id, reply_bundle
from tests.conftest import Responders, csrf_token, new_source, post_multipart


def submit(client: FlaskClient, **fields: object) -> object:
    page = client.get("/submit")
    data = {"csrf_token": csrf_token(page.text), "category": "doxxing", "urgency": "routine"}
    data.update(fields)  # type: ignore[arg-type]
    return post_multipart(client, "/submit", data)


def log_out_and_in(client: FlaskClient, codename: str) -> None:
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/replies").text)})
    page = client.get("/login")
    response = client.post(
        "/login", data={"csrf_token": csrf_token(page.text), "codename": codename}
    )
    assert response.status_code == 302


def status_of(page: str, report_uuid: str) -> str:
    match = re.search(f'id="report-{report_uuid}".*?class="status status-(\\w+)"', page, re.S)
    assert match, page
    return match.group(1)


def server_bytes(data_dir: Path) -> bytes:
    """Every byte the server keeps: the database (with its journal) and the store."""
    out = b""
    for path in sorted(data_dir.rglob("*")):
        if path.is_file() and (
            path.suffix in (".db", ".sqlite", ".gpg")
            or "store" in path.parts
            or path.name.endswith(("-wal", "-journal"))
        ):
            out += path.read_bytes()
    return out


def test_the_thread_shows_what_was_sent_after_logging_in_again_and_the_server_cannot_read_it(
    client: FlaskClient, drop: Drop, data_dir: Path
) -> None:
    # Given a source who reported a surveillance case with two files
    codename = new_source(client)
    response = submit(
        client,
        category="surveillance",
        what_happened="They followed me home.",
        files=[(b"x" * 2500, "zyxwv-proof-7731.png"), (b"%PDF-1.4", "letter.pdf")],
    )
    assert response.status_code == 302  # type: ignore[attr-defined]
    # When they log out and come back
    log_out_and_in(client, codename)
    page = client.get("/replies").text
    # Then the thread names the day, the category and each file with its size
    assert "Government surveillance or pressure" in page
    assert "zyxwv-proof-7731.png" in page and "letter.pdf" in page
    assert "2.5 KB" in page
    assert "You sent a report on" in page
    with drop.sessions() as db:
        (report,) = db.scalars(select(Report)).all()
        assert report.receipt is not None
    assert status_of(page, report.uuid) == "sent"
    # And neither the file name nor the category is readable in the server's bytes
    everything = server_bytes(data_dir)
    assert b"zyxwv-proof-7731" not in everything
    assert b"surveillance" not in everything.replace(b"Surveillance", b"")
    assert b"They followed me home" not in everything


def test_status_moves_from_sent_to_received_to_answered(
    client: FlaskClient,
    drop: Drop,
    workstation_gpg: GnuPG,
    signer_gpg: GnuPG,
    workdir: Path,
    responders: Responders,
    tmp_path: Path,
) -> None:
    new_source(client)
    submit(client, what_happened="Someone posts my address.")
    with drop.sessions() as db:
        report_uuid = db.scalars(select(Report.uuid)).one()
    assert status_of(client.get("/replies").text, report_uuid) == "sent"
    # When the workstation imports the export and acknowledges it, without a reply yet
    export = tmp_path / "export.tar"
    export_bundle(drop, export)
    server = drop.settings.signing_fingerprint
    with verify_export_bundle(export, workstation_gpg, server, workdir) as bundle:
        items = [i.id for i in bundle.manifest.items]
        (source,) = bundle.manifest.sources
        reply = encrypt_reply(
            responders, bundle.key_path(source.id), "We have it. Stay safe.", tmp_path / "r"
        )
    ack = reply_bundle(signer_gpg, responders, drop, tmp_path / "a.tar", acknowledged=items)
    import_reply_bundle(drop, ack)
    # Then the source sees it received by the team
    assert status_of(client.get("/replies").text, report_uuid) == "received"
    # And once a reply arrives, answered, the reply after the report
    answer = reply_bundle(
        signer_gpg,
        responders,
        drop,
        tmp_path / "b.tar",
        sequence=2,
        replies=[ReplyFile(new_id(), source.id, reply)],
    )
    import_reply_bundle(drop, answer)
    page = client.get("/replies").text
    assert status_of(page, report_uuid) == "answered"
    assert page.index(f'id="report-{report_uuid}"') < page.index("We have it. Stay safe.")


def test_a_report_from_before_receipts_shows_by_its_day(client: FlaskClient, drop: Drop) -> None:
    new_source(client)
    submit(client, what_happened="old")
    with drop.sessions.begin() as db:
        db.scalars(select(Report)).one().receipt = None
    page = client.get("/replies").text
    assert "A report sent on" in page and "Category:" not in page
    assert 'class="status status-sent"' in page


def test_only_the_newest_receipts_are_decrypted(client: FlaskClient, drop: Drop) -> None:
    from securedrop_wm.conversation import load_thread
    from tests.bundles.helpers import submit as core_submit

    sent = core_submit(drop, text="first")
    for n in range(3):
        core_submit(drop, text=f"more {n}", codename=sent.codename)
    thread = load_thread(drop, sent.login, detail_limit=2)
    reports = [e.report for e in thread.entries if e.report]
    assert [r.receipt is not None for r in reports] == [False, False, True, True]
    assert thread.undetailed == 2


def test_a_message_without_the_category_form_goes_to_the_team(
    client: FlaskClient, drop: Drop, responders: Responders
) -> None:
    # Given a source who reported harassment
    codename = new_source(client)
    submit(client, category="harassment", what_happened="first report")
    log_out_and_in(client, codename)
    # When they answer with the short form, marked urgent, choosing no category
    page = client.get("/message")
    assert 'name="category"' not in page.text
    response = client.post(
        "/message",
        data={
            "csrf_token": csrf_token(page.text),
            "what_happened": "The account is back, under another name.",
            "urgency": "urgent",
        },
    )
    # Then it is stored, encrypted to the team key, under the previous report's category
    assert response.status_code == 302 and response.location.endswith("/thanks")
    with drop.sessions() as db:
        reports = db.scalars(select(Report).order_by(Report.id)).all()
        assert len(reports) == 2 and reports[1].urgency == "urgent"
        names = [s.store_name for s in reports[1].submissions if s.kind == "message"]
    message = json.loads(responders.decrypt(drop.store.path(names[0])))
    assert message["what_happened"] == "The account is back, under another name."
    assert message["category"] == "harassment" and message["follow_up"] is True
    # And the thread shows it as a follow-up
    assert "You sent a follow-up on" in client.get("/replies").text


def test_a_message_in_danger_shows_the_safety_steps(client: FlaskClient) -> None:
    new_source(client)
    page = client.get("/message")
    data = {"csrf_token": csrf_token(page.text), "what_happened": "Now.", "urgency": "danger"}
    assert client.post("/message", data=data).status_code == 302
    assert 'id="danger-steps"' in client.get("/thanks").text


def test_an_empty_message_is_refused_with_the_form_back(client: FlaskClient, drop: Drop) -> None:
    new_source(client)
    page = client.get("/message")
    response = client.post("/message", data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 400
    assert "Write your message before you send it." in response.text
    with drop.sessions() as db:
        assert db.scalars(select(Report)).all() == []


def test_one_file_per_request_is_confirmed_and_stored(
    client: FlaskClient, drop: Drop, responders: Responders
) -> None:
    new_source(client)
    for name, data in (("photo.jpg", b"\xff\xd8 jpeg"), ("note.txt", b"second")):
        page = client.get("/files")
        response = post_multipart(
            client, "/files", {"csrf_token": csrf_token(page.text), "file": (data, name)}
        )
        assert response.status_code == 302
        assert f"{name} was received and stored encrypted." in client.get("/files").text
    with drop.sessions() as db:
        files = db.scalars(select(Submission).where(Submission.kind == "file")).all()
        stored = sorted(responders.decrypt(drop.store.path(f.store_name)) for f in files)
        reports = db.scalars(select(Report)).all()
    assert stored == sorted([b"\xff\xd8 jpeg", b"second"]) and len(reports) == 2
    page = client.get("/replies").text
    assert "photo.jpg" in page and "note.txt" in page


def test_the_file_form_takes_one_file_and_keeps_nothing_of_two(
    client: FlaskClient, drop: Drop, data_dir: Path
) -> None:
    new_source(client)
    before = {p.name for p in (data_dir / "store").iterdir()}
    page = client.get("/files")
    response = post_multipart(
        client,
        "/files",
        {"csrf_token": csrf_token(page.text), "file": [(b"a", "a.txt"), (b"b", "b.txt")]},
    )
    assert response.status_code == 413
    assert "Send one file at a time" in response.text
    assert {p.name for p in (data_dir / "store").iterdir()} == before
    with drop.sessions() as db:
        assert db.scalars(select(Report)).all() == []


def test_deleting_a_reply_asks_first_and_then_says_so_honestly(
    client: FlaskClient, drop: Drop
) -> None:
    new_source(client)
    with drop.sessions() as db:
        designation = db.scalars(select(Source.designation)).one()
    reply_uuid = add_reply(drop, designation, "Read me then delete me.")
    page = client.get("/replies")
    assert f"/replies/{reply_uuid}/delete" in page.text
    # A post without the confirmation deletes nothing and asks
    asked = client.post(f"/replies/{reply_uuid}/delete", data={"csrf_token": csrf_token(page.text)})
    assert asked.status_code == 200 and "Delete this reply?" in asked.text
    assert "Read me then delete me." in client.get("/replies").text
    # The confirmation page's button deletes it
    confirm = client.get(f"/replies/{reply_uuid}/delete")
    assert 'name="confirm" value="yes"' in confirm.text
    client.post(
        f"/replies/{reply_uuid}/delete",
        data={"csrf_token": csrf_token(confirm.text), "confirm": "yes"},
    )
    page = client.get("/replies").text
    assert "Read me then delete me." not in page
    assert "You deleted the replies you had read." in page
    assert "There are no replies" not in page


def test_logout_offers_to_log_in_again(client: FlaskClient) -> None:
    new_source(client)
    token = csrf_token(client.get("/submit").text)
    response = client.post("/logout", data={"csrf_token": token}, follow_redirects=True)
    assert '<a class="button" href="/login" id="login-again">' in response.text


def test_limits_are_shown_where_they_matter(client: FlaskClient, drop: Drop) -> None:
    new_source(client)
    minutes = drop.settings.session_minutes
    megabytes = f"{round(drop.settings.max_report_bytes / 1_000_000, 1):,}"
    for url in ("/submit", "/files", "/replies", "/message"):
        page = client.get(url).text
        assert f"logged out after {minutes} minutes without activity" in page, url
    files = drop.settings.max_files_per_report
    assert f"at most {files} files, {megabytes} MB in all" in client.get("/submit").text
    assert f"at most {megabytes} MB" in client.get("/files").text


def test_switching_language_keeps_the_text_and_the_token(client: FlaskClient, drop: Drop) -> None:
    new_source(client)
    page = client.get("/submit")
    token = csrf_token(page.text)
    assert 'formaction="/form-language?form=report"' in page.text
    fields = {
        "csrf_token": token,
        "category": "threats",
        "urgency": "urgent",
        "what_happened": "Un texte déjà écrit, à garder.",
        "project": "fr.wikipedia.org",
        "form_language": "fr",
        "switch_language": "1",
        "files": [(b"secret bytes", "evidence.png")],
    }
    switched = post_multipart(client, "/form-language?form=report", fields)
    assert switched.status_code == 200
    assert 'lang="fr"' in switched.text and "Un texte déjà écrit, à garder." in switched.text
    assert 'value="fr.wikipedia.org"' in switched.text
    assert 'value="threats" required checked' in switched.text
    assert 'id="files-not-kept"' in switched.text
    # The same token still sends the report: the switch did not spend it
    assert csrf_token(switched.text) == token
    del fields["switch_language"], fields["files"]
    sent = post_multipart(client, "/submit", fields)
    assert sent.status_code == 302 and sent.location.endswith("/thanks")
    with drop.sessions() as db:
        assert len(db.scalars(select(Report)).all()) == 1
        # The file posted with the switch was never encrypted nor stored
        assert db.scalars(select(Submission).where(Submission.kind == "file")).all() == []


def test_switching_language_on_the_message_form_keeps_the_message(client: FlaskClient) -> None:
    new_source(client)
    page = client.get("/message")
    data = {
        "csrf_token": csrf_token(page.text),
        "what_happened": "Mi mensaje.",
        "form_language": "es",
    }
    switched = client.post("/form-language?form=message", data=data)
    assert switched.status_code == 200 and 'lang="es"' in switched.text
    assert "Mi mensaje." in switched.text and 'action="/message"' in switched.text


def test_a_language_switch_needs_a_valid_token(client: FlaskClient) -> None:
    new_source(client)
    client.get("/submit")
    response = client.post(
        "/form-language?form=report", data={"csrf_token": "forged", "form_language": "fr"}
    )
    assert response.status_code == 400


def test_a_message_typed_into_an_expired_session_comes_back_in_the_message_form(
    settings: Settings, drop: Drop
) -> None:
    now = [time.time()]
    client = create_app(settings, drop, clock=lambda: now[0]).test_client()
    codename = new_source(client)
    page = client.get("/message")
    now[0] += settings.session_minutes * 60 + 1  # the source wrote for too long
    data = {
        "csrf_token": csrf_token(page.text),
        "what_happened": "Still here.",
        "urgency": "urgent",
    }
    expired = client.post("/message", data=data)
    assert expired.status_code == 401 and "Still here." in expired.text
    assert 'name="resume_form" value="message"' in expired.text
    # Logging in again from that page shows the message form, filled, not sent
    resumed = {
        "csrf_token": csrf_token(expired.text),
        "codename": codename,
        "resume": "1",
        "resume_form": "message",
        "what_happened": "Still here.",
        "urgency": "urgent",
    }
    page = client.post("/login", data=resumed)
    assert page.status_code == 200 and 'action="/message"' in page.text
    assert "Still here." in page.text and 'value="urgent" checked' in page.text
    with drop.sessions() as db:
        assert db.scalars(select(Report)).all() == []
