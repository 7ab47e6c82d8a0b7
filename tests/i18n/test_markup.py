"""A translation is text, not code: a ``.po`` entry cannot add a link, a tag, a URL, a
domain, an e-mail address or an onion address its English does not have. The catalog
check refuses one, and a page escapes it if it is shipped anyway."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po
from flask import Flask
from flask.testing import FlaskClient

from sdwm_web.i18n import PoDomain
from securedrop_wm.translations import escape_translation, foreign_text
from tests.i18n.catalogs import ROOT, catalog_problems, read_catalog

EVIL_LINK = '<a href="https://evil.example/login">Faire un signalement</a>'
MAKE_A_REPORT = "Make a report"


def _shipped(ui: str, lang: str = "fr") -> Catalog:
    return read_catalog(ROOT / ui / "translations" / lang / "LC_MESSAGES" / "messages.po", lang)


def _template(ui: str) -> Catalog:
    return read_catalog(ROOT / ui / "translations" / "messages.pot")


def _poisoned(tmp_path: Path, ui: str, entries: dict[str, str]) -> Path:
    """A catalog folder with the shipped French of ``ui`` but ``entries`` changed."""
    catalog = _shipped(ui)
    for msgid, text in entries.items():
        catalog[msgid].string = text
    po = tmp_path / "fr" / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True)
    with po.open("wb") as f:
        write_po(f, catalog)
    return tmp_path


def _use_catalogs(app: Flask, directory: Path) -> None:
    # The one domain Flask-Babel asks for translations, as init_babel set it up.
    app.extensions["babel"].instance.domain_instance = PoDomain(directory)


def test_the_check_refuses_a_french_entry_with_a_link() -> None:
    catalog = _shipped("source_ui")
    catalog[MAKE_A_REPORT].string = EVIL_LINK
    problems = catalog_problems(_template("source_ui"), catalog, "fr")
    assert any(p.startswith(f"{MAKE_A_REPORT!r}: markup '<a href=") for p in problems)
    assert any("URL 'https://evil.example/login" in p for p in problems)


@pytest.mark.parametrize(
    ("added", "kind"),
    [
        ("Écrivez plutôt à aide@evil.example.", "e-mail address or handle 'aide@evil.example'"),
        ("Écrivez à @evilhelp sur Telegram.", "e-mail address or handle '@evilhelp'"),
        ("Rendez-vous sur secure-help.org.", "domain 'secure-help.org'"),
        ("Allez sur пример.рф.", "domain 'пример.рф'"),
        (
            "Utilisez plutôt abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx.onion.",
            "onion address 'abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx.onion'",
        ),
        ("Voir javascript:alert(1)", "URL 'javascript:alert(1)'"),
        ("Restez &lt;b&gt;prudent", "markup '&lt;'"),
    ],
)
def test_the_check_refuses_plain_text_addresses_the_english_does_not_have(
    added: str, kind: str
) -> None:
    # Phishing needs no tag: "write to x@y" or an onion address of the attacker's works
    # as well as a link, in either UI.
    for ui, msgid in (("source_ui", "Stay safe"), ("journalist_ui", "Log in")):
        catalog = _shipped(ui)
        catalog[msgid].string = f"{catalog[msgid].string} {added}"
        assert f"{msgid!r}: {kind}" in catalog_problems(_template(ui), catalog, "fr")


def test_the_check_allows_what_the_english_itself_has() -> None:
    # ".onion" without a name, file names the English gives, the markup of the English.
    assert foreign_text("its .onion address", "son adresse \u200e.onion") == []
    assert foreign_text("team.asc and workstation.asc", "team.asc et workstation.asc") == []
    assert (
        foreign_text("Pick <strong>Safest</strong>", "Choisissez <strong>Le plus sûr</strong>")
        == []
    )


def test_rendering_keeps_only_the_tags_of_the_english() -> None:
    assert escape_translation("Stay safe", EVIL_LINK) == (
        "&lt;a href=&quot;https://evil.example/login&quot;&gt;Faire un signalement&lt;/a&gt;"
    )
    assert (
        escape_translation(
            "Pick <strong>Safest</strong>", "<strong>Le plus sûr</strong><img src=x>"
        )
        == "<strong>Le plus sûr</strong>&lt;img src=x&gt;"
    )
    # Untranslated text is the code's own and is left alone.
    assert escape_translation("Don't", "Don't") == "Don't"


def test_a_poisoned_french_catalog_is_escaped_on_the_landing_page(
    tmp_path: Path, app: Flask, client: FlaskClient
) -> None:
    # Given a French catalog whose "Make a report" is a link to a phishing page and whose
    # lead sends sources to an e-mail address, loaded although the check refuses it
    lead = next(m.id for m in _template("source_ui") if str(m.id).startswith("If you are harassed"))
    directory = _poisoned(
        tmp_path,
        "source_ui",
        {
            MAKE_A_REPORT: EVIL_LINK,
            lead: "<script>alert(1)</script>Écrivez à <b>aide@evil.example</b>",
        },
    )
    _use_catalogs(app, directory)
    # When a French reader opens the landing page
    response = client.get("/", headers={"Accept-Language": "fr"})
    html = response.get_data(as_text=True)
    # Then the injected markup is shown as text, not obeyed
    assert response.status_code == 200
    assert '<a href="https://evil' not in html
    assert "<script>alert" not in html
    assert "<b>aide@" not in html
    assert "&lt;a href=&quot;https://evil.example/login&quot;&gt;Faire un signalement" in html
    # and the rest of the page is still in French
    assert _shipped("source_ui")["Report an incident safely"].string in html


def test_a_poisoned_french_catalog_is_escaped_on_the_workstation(
    tmp_path: Path, ws_app: Flask, ws_client: FlaskClient
) -> None:
    directory = _poisoned(tmp_path, "journalist_ui", {"Log in": EVIL_LINK})
    _use_catalogs(ws_app, directory)
    response = ws_client.get("/login", headers={"Accept-Language": "fr"}, follow_redirects=True)
    html = response.get_data(as_text=True)
    assert '<a href="https://evil' not in html
    assert "&lt;a href=&quot;https://evil.example/login&quot;&gt;" in html
