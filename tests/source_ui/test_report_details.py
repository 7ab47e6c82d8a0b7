"""The Wikimedia-specific report form: the deployment's categories in its order, where it
happened, which project, the country or region, who reads the report (the desks), and the
safety page's guidance. Real gpg, real SQLite, settings loaded from a real config.toml."""

from __future__ import annotations

import html
import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from markupsafe import escape
from sqlalchemy import select

from securedrop_wm.desks import central_desk
from securedrop_wm.drop import Drop, open_drop
from securedrop_wm.models import Report, Submission
from securedrop_wm.settings import load_settings
from securedrop_wm.translations import load_translations
from securedrop_wm.vocabulary import Category
from source_ui import create_app
from tests.conftest import (
    Responders,
    csrf_token,
    new_source,
    post_multipart,
    short_tempdir,
    store_files,
)
from tests.i18n.catalogs import ROOT

FOUNDATION = "Wikimedia Foundation Trust and Safety"
PERSIAN_DESK = "Persian-speaking volunteers"
PERSIAN_DESK_FA = "داوطلبان فارسی‌زبان"
# Operator text with characters that mean something in HTML (and no markup: the loader
# refuses a tag): the page must show it as text.
PERSIAN_ABOUT = "Volunteers who read Persian <3 & answer within a week"


def _config(data_dir: Path, top: str = "", tables: str = "") -> Path:
    """The data dir's config.toml with ``top`` added to its top-level settings and
    ``tables`` appended; with ``[[desks]]`` in ``tables``, the top-level keys (made by
    ``securedrop-wm init``) move into the desks."""
    config = data_dir / "config.toml"
    text = config.read_text()
    head, _sep, rest = text.partition("\n[")
    if "[[desks]]" in tables:
        moved = ("team_fingerprint", "responder_fingerprints", "workstation_fingerprint")
        head = "\n".join(line for line in head.splitlines() if not line.startswith(moved))
    config.write_text(f"{head}\n{top}\n[{rest}\n{tables}")
    return config


def _desks(responders: Responders) -> str:
    """Two desks: the Foundation's (central, the team key) and a Persian-speaking
    community's (the second responder key only)."""
    return f"""
[[desks]]
id = "wmf"
central = true
team_fingerprint = "{responders.team_fingerprint}"
workstation_fingerprint = "{responders.workstation_fingerprint}"
languages = ["en", "fr"]
[desks.name]
en = "{FOUNDATION}"
[desks.serves]
en = "Everyone, anywhere"
[desks.description]
en = "The Foundation's staff for the safety of contributors."

[[desks]]
id = "fa-community"
team_fingerprint = "{responders.second_fingerprint}"
languages = ["fa"]
[desks.name]
en = "{PERSIAN_DESK}"
fa = "{PERSIAN_DESK_FA}"
[desks.serves]
en = "Persian speakers, anywhere"
fa = "فارسی‌زبانان، در هر کجا"
[desks.description]
en = "{PERSIAN_ABOUT}"
"""


class Configured:
    """An app over the test's data dir, with settings from an edited config.toml."""

    def __init__(self, config: Path) -> None:
        self.settings = load_settings(config, environ={})
        self.drop = open_drop(self.settings)
        self.now = [time.time()]
        app = create_app(self.settings, self.drop, clock=lambda: self.now[0])
        self.client = app.test_client()

    def close(self) -> None:
        self.drop.close()


@pytest.fixture
def configured(data_dir: Path) -> Iterator[list[Configured]]:
    """Apps made by the test (closed afterwards)."""
    made: list[Configured] = []
    yield made
    for c in made:
        c.close()


@pytest.fixture
def two_desks(data_dir: Path, responders: Responders, configured: list[Configured]) -> Configured:
    """A drop with two desks, the Foundation's central."""
    app = Configured(_config(data_dir, tables=_desks(responders)))
    configured.append(app)
    return app


def _send(client: FlaskClient, **fields: object) -> object:
    page = client.get("/submit")
    data: dict[str, object] = {
        "csrf_token": csrf_token(page.text),
        "category": "legal",
        "urgency": "routine",
        "what_happened": "A lawyer wrote to me about an article I edited.",
    }
    data.update(fields)
    return post_multipart(client, "/submit", data)


def _stored(drop: Drop) -> list[Submission]:
    with drop.sessions() as db:
        return list(db.scalars(select(Submission)))


def _message(drop: Drop, responders: Responders) -> dict[str, object]:
    (message,) = [s for s in _stored(drop) if s.kind == "message"]
    body = json.loads(responders.decrypt(drop.store.path(message.store_name)))
    assert isinstance(body, dict)
    return body


def _encryption_keyids(responders: Responders, fingerprint: str) -> set[str]:
    """The key ids of a key's encryption subkeys, as a ciphertext names its recipients."""
    out = subprocess.run(
        ["gpg", "--homedir", str(responders.home), "--with-colons", "--list-keys", fingerprint],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {f[4] for f in (line.split(":") for line in out.splitlines()) if f[0] == "sub"}


def _recipients(path: Path) -> set[str]:
    """The key ids a ciphertext is encrypted to, read by a gpg that has no key at all."""
    home = short_tempdir("sdwm-none-")
    try:
        out = subprocess.run(
            ["gpg", "--homedir", str(home), "--batch", "--list-packets", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)
        subprocess.run(["rm", "-rf", str(home)], check=True)
    return set(re.findall(r":pubkey enc packet: .*keyid ([0-9A-F]{16})", out.stdout))


# -- categories, place, project, region --------------------------------------------------


def test_the_form_offers_every_category_by_default_in_the_vocabulary_order(
    client: FlaskClient,
) -> None:
    new_source(client)
    page = client.get("/submit").text
    assert re.findall(r'name="category" value="([^"]+)"', page) == [c.value for c in Category]
    assert "Universal Code of Conduct violation" in page
    assert "Off-wiki harassment or outing" in page


def test_the_form_offers_the_configured_categories_in_their_order(
    data_dir: Path, configured: list[Configured]
) -> None:
    # Given a deployment that offers four categories, in its own order
    top = 'report_categories = ["threats", "ucoc", "harassment", "other"]'
    app = Configured(_config(data_dir, top=top))
    configured.append(app)
    # When a source opens the report form
    new_source(app.client)
    page = app.client.get("/submit").text
    # Then they see those four, in that order, in their words
    offered = re.findall(r'name="category" value="([^"]+)"', page)
    assert offered == ["threats", "ucoc", "harassment", "other"]
    labels = re.findall(r'name="category" value="[^"]+" required > ([^<]+)<', page)
    assert [x.strip() for x in labels] == [
        "Threats of violence",
        "Universal Code of Conduct violation",
        "Harassment on a wiki",
        "Something else",
    ]
    assert "Legal threat or lawsuit" not in page


def test_place_project_and_region_arrive_in_the_encrypted_message(
    client: FlaskClient, drop: Drop, data_dir: Path, responders: Responders
) -> None:
    # Given the report form, which asks where, which project and which region
    new_source(client)
    page = client.get("/submit").text
    assert re.findall(r'name="place" value="([^"]*)"', page) == [
        "on_wiki",
        "off_wiki",
        "in_person",
        "",
    ]
    assert 'name="place" value="" checked' in page  # "prefer not to say" unless chosen
    assert '<option value="Wikimedia Commons">' in page
    assert 'list="wikimedia-projects"' in page
    assert "Leave this empty if you prefer not to say." in page
    assert 'name="wiki"' not in page  # the project field replaces it
    # When a source reports harassment in person, naming the project and the region
    response = _send(
        client,
        category="event",
        place="in_person",
        project="ویکی‌پدیای فارسی",
        region="Tehran",
        files=[(b"%PDF-1.4 badge photo", "badge.pdf")],
    )
    assert response.status_code == 302 and response.location.endswith("/thanks")
    # Then the responders read them in the report's encrypted message, and only there
    message = _message(drop, responders)
    assert message["category"] == "event" and message["place"] == "in_person"
    assert message["project"] == "ویکی‌پدیای فارسی" and message["region"] == "Tehran"
    for name in store_files(data_dir):
        assert b"Tehran" not in (data_dir / "store" / name).read_bytes()


def test_region_left_empty_is_sent_as_not_said(
    client: FlaskClient, drop: Drop, responders: Responders
) -> None:
    new_source(client)
    assert _send(client, place="").status_code == 302
    message = _message(drop, responders)
    assert message["place"] == "" and message["region"] == "" and message["project"] == ""


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"place": "the moon"}, "Choose where it happened from the list, or leave it as it is."),
        (
            {"project": "w" * 501},
            "The name of the project is too long: write at most 500 characters.",
        ),
        (
            {"region": "r" * 501},
            "The country or region is too long: write at most 500 characters.",
        ),
    ],
    ids=["place", "project", "region"],
)
def test_a_bad_place_or_a_too_long_field_is_refused_clearly_and_nothing_is_stored(
    client: FlaskClient, drop: Drop, data_dir: Path, fields: dict[str, str], said: str
) -> None:
    # Given a source who typed a report and attached a file
    new_source(client)
    typed = "Someone reverts every edit I make and insults me."
    # When the form arrives with a place outside the list, or a field far too long
    response = _send(client, what_happened=typed, files=[(b"evidence", "diff.png")], **fields)
    # Then the form comes back saying what to fix, with the text typed, and nothing kept
    assert response.status_code == 400
    assert said in response.text
    assert typed in response.text
    assert 'id="files-not-kept"' in response.text
    assert store_files(data_dir) == set()
    with drop.sessions() as db:
        assert db.scalars(select(Report)).all() == []


# -- who reads the report ----------------------------------------------------------------


def test_a_drop_with_one_desk_asks_nobody_to_choose(client: FlaskClient) -> None:
    new_source(client)
    page = client.get("/submit").text
    assert 'name="desk"' not in page and 'name="also_central"' not in page
    assert "Only the response team can read it." in page


def test_the_form_lists_each_desk_plainly_before_the_files(two_desks: Configured) -> None:
    new_source(two_desks.client)
    page = two_desks.client.get("/submit").text
    # Each desk by name, whom it helps, the languages it reads and its own words
    assert re.findall(r'name="desk" value="([^"]+)"', page) == ["wmf", "fa-community"]
    for text in (FOUNDATION, PERSIAN_DESK, "Persian speakers, anywhere", "فارسی"):
        assert text in page
    assert "Languages they read:" in page and "Who they help:" in page
    # Operator text is shown as text, never as markup
    assert str(escape(PERSIAN_ABOUT)) in page and PERSIAN_ABOUT not in page
    # The central desk can be added
    assert f"Also send to {FOUNDATION}" in page
    assert "Only the team you choose below can read it." in page
    # The choice comes before the files, which are encrypted as they arrive
    assert page.index('name="desk"') < page.index('name="also_central"')
    assert page.index('name="also_central"') < page.index('type="file"')


def test_a_desk_name_is_shown_in_the_page_language(two_desks: Configured) -> None:
    new_source(two_desks.client)
    page = two_desks.client.get("/submit", headers={"Accept-Language": "fa"}).text
    assert 'dir="rtl"' in page
    assert PERSIAN_DESK_FA in page and "فارسی‌زبانان، در هر کجا" in page
    # A desk without Persian text falls back to English
    assert FOUNDATION in page


def test_a_report_to_one_desk_is_encrypted_to_that_desk_only(
    two_desks: Configured, responders: Responders
) -> None:
    # When a source sends a report with a file to the Persian-speaking desk
    new_source(two_desks.client)
    response = _send(
        two_desks.client, desk="fa-community", files=[(b"the lawyer's letter", "letter.pdf")]
    )
    assert response.status_code == 302 and response.location.endswith("/thanks")
    # Then its message and its file are encrypted to that desk's key, not the Foundation's
    second = _encryption_keyids(responders, responders.second_fingerprint)
    stored = _stored(two_desks.drop)
    assert sorted(s.kind for s in stored) == ["file", "message"]
    for submission in stored:
        assert _recipients(two_desks.drop.store.path(submission.store_name)) == second
    assert _message(two_desks.drop, responders)["category"] == "legal"


def test_also_central_adds_the_central_desk(two_desks: Configured, responders: Responders) -> None:
    central = central_desk(two_desks.settings)
    assert central is not None and central.id == "wmf"
    new_source(two_desks.client)
    response = _send(
        two_desks.client,
        desk="fa-community",
        also_central="1",
        files=[(b"the lawyer's letter", "letter.pdf")],
    )
    assert response.status_code == 302
    both = _encryption_keyids(responders, responders.second_fingerprint) | _encryption_keyids(
        responders, responders.team_fingerprint
    )
    for submission in _stored(two_desks.drop):
        assert _recipients(two_desks.drop.store.path(submission.store_name)) == both


def test_a_file_sent_later_goes_to_the_desk_of_the_report(
    two_desks: Configured, responders: Responders
) -> None:
    # Given a source whose report went to the Persian-speaking desk only
    new_source(two_desks.client)
    assert _send(two_desks.client, desk="fa-community").status_code == 302
    before = {s.uuid for s in _stored(two_desks.drop)}
    # When they send a file on its own, from the one-file form
    page = two_desks.client.get("/files")
    sent = post_multipart(
        two_desks.client,
        "/files",
        {"csrf_token": csrf_token(page.text), "file": (b"a second letter", "letter-2.pdf")},
    )
    assert sent.status_code == 302
    # Then it is encrypted for that desk's key only, as the report was
    later = [s for s in _stored(two_desks.drop) if s.uuid not in before]
    assert {s.kind for s in later} == {"file", "message"}
    second = _encryption_keyids(responders, responders.second_fingerprint)
    for submission in later:
        assert _recipients(two_desks.drop.store.path(submission.store_name)) == second


@pytest.mark.parametrize(
    ("desk", "said"),
    [
        ("", "Choose who should read your report: it is encrypted for them only."),
        ("nobody", "The team you chose is not on this drop."),
    ],
    ids=["none", "unknown"],
)
def test_a_report_without_a_known_desk_is_refused_with_the_text_kept(
    two_desks: Configured, data_dir: Path, desk: str, said: str
) -> None:
    new_source(two_desks.client)
    typed = "A government office called me about my edits."
    response = _send(
        two_desks.client,
        desk=desk,
        what_happened=typed,
        project="Wikidata",
        files=[(b"call log", "calls.txt")],
    )
    assert response.status_code == 400
    assert said in response.text
    assert typed in response.text and 'value="Wikidata"' in response.text
    assert 'id="files-not-kept"' in response.text
    assert store_files(data_dir) == set()
    with two_desks.drop.sessions() as db:
        assert db.scalars(select(Report)).all() == []


def test_a_refused_form_keeps_the_desk_chosen(two_desks: Configured) -> None:
    new_source(two_desks.client)
    response = _send(two_desks.client, desk="fa-community", also_central="1", place="x")
    assert response.status_code == 400
    assert re.search(r'value="fa-community" required [^>]*checked', response.text)
    assert re.search(r'name="also_central" value="1" [^>]*checked', response.text)


def test_the_choices_come_back_after_an_expired_session(two_desks: Configured) -> None:
    # Given a source who chose a desk and filled in the new fields, then waited too long
    codename = new_source(two_desks.client)
    page = two_desks.client.get("/submit")
    two_desks.now[0] += two_desks.settings.session_minutes * 60 + 1
    chosen = {
        "desk": "fa-community",
        "also_central": "1",
        "category": "arrest",
        "place": "in_person",
        "project": "Wikidata",
        "region": "Isfahan",
    }
    expired = post_multipart(
        two_desks.client,
        "/submit",
        {
            "csrf_token": csrf_token(page.text),
            "what_happened": "Taken in for questioning.",
            **chosen,
        },
    )
    assert expired.status_code == 401
    # Then the login form carries them, and logging in puts them back in the report form
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', expired.text))
    assert {k: html.unescape(hidden[k]) for k in chosen} == chosen
    relogged = two_desks.client.post(
        "/login",
        data={**hidden, "what_happened": "Taken in for questioning.", "codename": codename},
    )
    assert relogged.status_code == 200 and "Your report is not sent yet" in relogged.text
    assert re.search(r'value="fa-community" required [^>]*checked', relogged.text)
    assert re.search(r'name="also_central" value="1" [^>]*checked', relogged.text)
    assert 'name="place" value="in_person" checked' in relogged.text
    assert 'value="Isfahan"' in relogged.text and 'value="Wikidata"' in relogged.text


# -- guidance ----------------------------------------------------------------------------

SECTIONS = ("legal", "channels", "real-address")
HEADINGS = (
    "If someone threatens you with legal action",
    "Other ways to get help, and when to use them",
    "Check that this is the real site",
)


def test_the_safety_page_says_what_to_do_and_where_else_to_go(client: FlaskClient) -> None:
    page = client.get("/safety").text
    for section, heading in zip(SECTIONS, HEADINGS, strict=True):
        assert f'id="{section}"' in page and heading in page
    assert "Do not answer in a hurry." in page
    assert "Legal Fees Assistance Program" in page
    assert "emergency@wikimedia.org" in page
    assert "Universal Code of Conduct Coordinating Committee" in page
    assert "Every character matters." in page
    assert "search engine" in page


@pytest.mark.parametrize("lang", ["ar", "fa"])
def test_the_safety_page_guidance_is_translated_right_to_left(
    client: FlaskClient, lang: str
) -> None:
    page = client.get("/safety", headers={"Accept-Language": lang}).text
    assert 'dir="rtl"' in page
    catalog = load_translations(ROOT / "source_ui" / "translations", lang)
    for section, heading in zip(SECTIONS, HEADINGS, strict=True):
        shown = catalog.gettext(heading)
        assert shown != heading, f"{lang}: {heading!r} is not translated"
        assert f'id="{section}"' in page and str(escape(shown)) in page
    # The emergency address stays as it is in every language
    emergency = catalog.gettext(
        "If someone may be hurt soon, write to emergency@wikimedia.org at once, and call "
        "local emergency services. That address is the Wikimedia Foundation's contact for "
        "threats of harm."
    )
    assert "emergency@wikimedia.org" in emergency and str(escape(emergency)) in page
