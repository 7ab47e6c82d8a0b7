"""Language choice, direction and localized codenames, through the source UI's test client."""

from __future__ import annotations

import dataclasses
import re

import pytest
from babel.dates import format_date
from flask.testing import FlaskClient
from sqlalchemy import select

from securedrop_wm.codenames import available_languages, load_wordlist
from securedrop_wm.drop import Drop
from securedrop_wm.errors import SettingsError
from securedrop_wm.models import Source
from securedrop_wm.settings import Settings
from securedrop_wm.sources import add_reply
from securedrop_wm.translations import negotiate_locale
from source_ui import create_app
from tests.conftest import CODENAME_RE, csrf_token, new_source, post_multipart

# What Tor Browser sends whatever the user's language (privacy.spoof_english).
TOR_BROWSER = "en-US,en;q=0.5"
HTML_TAG = re.compile(r"<html lang=\"([^\"]+)\" dir=\"(ltr|rtl)\">")


def page_language(html: str) -> tuple[str, str]:
    match = HTML_TAG.search(html)
    assert match, "page has no <html lang dir>"
    return match.group(1), match.group(2)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("zh-CN,zh;q=0.9", "zh-Hans"),
        ("zh-TW", "zh-Hant"),
        ("zh-HK,en;q=0.3", "zh-Hant"),
        ("pt-PT", "pt-BR"),
        ("fa-IR,fa;q=0.9,en;q=0.5", "fa"),
        ("en-US,ar;q=0.5", "en"),
        ("xx-YY, my;q=0.2", "my"),
        ("tlh", "en"),
        ("", "en"),
    ],
)
def test_accept_language_picks_the_closest_shipped_language(
    client: FlaskClient, accept: str, expected: str
) -> None:
    page = client.get("/", headers={"Accept-Language": accept})
    assert page_language(page.text)[0] == expected


def test_negotiation_prefers_quality_then_territory() -> None:
    offered = ("en", "pt_BR", "zh_Hans", "zh_Hant")
    assert negotiate_locale([("fr", 1.0), ("zh-SG", 0.8)], offered) == "zh_Hans"
    assert negotiate_locale([("zh-MO", 0.5), ("en", 0.1)], offered) == "zh_Hant"
    assert negotiate_locale([("en", 0.0), ("pt", 0.5)], offered) == "pt_BR"
    assert negotiate_locale([("*", 1.0)], offered) is None


@pytest.mark.parametrize("lang", Settings.languages)
def test_every_language_sets_lang_and_direction(client: FlaskClient, lang: str) -> None:
    client.get(f"/language/{lang}")
    html_lang, direction = page_language(client.get("/safety").text)
    assert html_lang == lang.replace("_", "-")
    assert direction == ("rtl" if lang in ("ar", "fa", "ur", "he") else "ltr")


def test_language_list_names_each_language_in_itself(client: FlaskClient) -> None:
    client.get("/language/fa")
    page = client.get("/").text
    assert '<strong lang="fa" aria-current="true">فارسی</strong>' in page
    for code, name in [("ru", "Русский"), ("zh-Hant", "中文 (繁體)"), ("my", "မြန်မာ")]:
        assert f'lang="{code}" hreflang="{code}" href="/language/' in page
        assert f">{name}</a>" in page


def test_chosen_language_survives_logout(app: object, client: FlaskClient) -> None:
    # Tor Browser asks for English; the source picks Persian with a link.
    headers = {"Accept-Language": TOR_BROWSER}
    client.get("/language/fa?next=/generate", headers=headers)
    new_source(client)
    page = client.get("/submit", headers=headers)
    assert page_language(page.text) == ("fa", "rtl")
    logged_out = client.post(
        "/logout",
        data={"csrf_token": csrf_token(page.text)},
        headers=headers,
        follow_redirects=True,
    )
    # The goodbye page still speaks Persian, and so does the next visit (the language
    # cookie; tests/source_ui/test_language_choice.py).
    assert page_language(logged_out.text) == ("fa", "rtl")
    assert "مرورگر تور" in logged_out.text
    assert page_language(client.get("/", headers=headers).text)[0] == "fa"
    # A new browser (no cookie) is not told anything about the last visitor's choice.
    other = app.test_client()  # type: ignore[attr-defined]
    assert page_language(other.get("/", headers=headers).text)[0] == "en"


@pytest.mark.parametrize(
    ("next_page", "lands_on"),
    [
        ("/safety", "/safety"),
        ("/logout", "/"),  # a POST-only page cannot be reloaded by a link
        ("/nowhere", "/"),
        ("//evil.example/", "/"),
        ("/language/ar", "/"),
    ],
)
def test_language_link_goes_back_to_a_page_that_works(
    client: FlaskClient, next_page: str, lands_on: str
) -> None:
    response = client.get(f"/language/fr?next={next_page}")
    assert response.status_code == 302 and response.location == lands_on


def test_unknown_language_is_ignored(client: FlaskClient) -> None:
    client.get("/language/xx")
    assert page_language(client.get("/").text)[0] == "en"


def codename_of(html: str) -> tuple[str, str]:
    match = re.search(r'id="codename" lang="([^"]+)" dir="(?:ltr|rtl)">([^<]+)<', html)
    assert match, "no codename on the page"
    return match.group(1), match.group(2)


@pytest.mark.parametrize("words", available_languages())
def test_source_can_pick_the_codename_language(client: FlaskClient, words: str) -> None:
    page = client.get(f"/generate?words={words}").text
    lang, codename = codename_of(page)
    assert lang == words.replace("_", "-")
    assert len(codename.split()) == 7
    assert all(w in load_wordlist(words).index for w in codename.split())
    # and every other list is one link away
    for other in available_languages():
        if other != words:
            assert f'href="/generate?words={other}"' in page


@pytest.mark.parametrize(
    ("ui", "words"), [("de", "de"), ("pt_BR", "pt_BR"), ("ar", "ar"), ("ja", "en")]
)
def test_codename_language_follows_the_page_language(
    client: FlaskClient, ui: str, words: str
) -> None:
    client.get(f"/language/{ui}")
    assert codename_of(client.get("/generate").text)[0] == words.replace("_", "-")
    assert codename_of(client.get("/generate?words=nonsense").text)[0] == words.replace("_", "-")


def test_a_french_codename_brings_the_source_back(client: FlaskClient) -> None:
    page = client.get("/generate?words=fr").text
    _, codename = codename_of(page)
    assert CODENAME_RE.search(page)
    client.post("/create", data={"csrf_token": csrf_token(page)})
    replies = client.get("/replies")
    client.post("/logout", data={"csrf_token": csrf_token(replies.text)})
    login = client.get("/login")
    response = client.post(
        "/login", data={"csrf_token": csrf_token(login.text), "codename": codename.upper()}
    )
    assert response.status_code == 302 and response.location == "/replies"


def test_reply_date_and_file_count_read_naturally_in_russian(
    client: FlaskClient, drop: Drop
) -> None:
    client.get("/language/ru")
    new_source(client)
    for files, expected in ((2, "2 файла"), (5, "5 файлов"), (21, "21 файл ")):
        form = client.get("/submit").text
        post_multipart(
            client,
            "/submit",
            {
                "csrf_token": csrf_token(form),
                "category": "threats",
                "urgency": "routine",
                "files": [(b"x", f"f{i}.txt") for i in range(files)],
            },
        )
        assert expected in client.get("/thanks").text
    with drop.sessions() as db:
        designation = db.scalars(select(Source.designation)).one()
    add_reply(drop, designation, "Мы прочитали ваше сообщение.")
    page = client.get("/replies").text
    assert f"Отправлено {format_date(drop.today(), 'long', locale='ru')}" in page
    assert '<pre class="reply-text" dir="auto">Мы прочитали ваше сообщение.</pre>' in page


@pytest.mark.parametrize(
    ("accept", "lang", "direction", "title"),
    [
        ("ar,en;q=0.5", "ar", "rtl", "تسجيل الدخول"),
        ("fr-CA", "fr", "ltr", "Se connecter"),
        ("pt-PT", "pt-BR", "ltr", "Entrar"),
        ("es-MX", "es", "ltr", "Iniciar sesión"),
        ("fa-IR,fa;q=0.9", "fa", "rtl", "ورود"),
        ("ru-RU", "ru", "ltr", "Войти"),
        ("uk", "uk", "ltr", "Увійти"),
        ("tr-TR", "tr", "ltr", "Giriş yap"),
        ("id-ID", "id", "ltr", "Masuk"),
        ("en-US,ar;q=0.5", "en", "ltr", "Log in"),
        ("de", "en", "ltr", "Log in"),
    ],
)
def test_responder_ui_speaks_the_responders_language(
    ws_client: FlaskClient, accept: str, lang: str, direction: str, title: str
) -> None:
    page = ws_client.get("/login", headers={"Accept-Language": accept}).text
    assert page_language(page) == (lang, direction)
    assert f"<title>{title} · securedrop-wm</title>" in page


@pytest.mark.parametrize(
    ("languages", "named"), [(("en", "nl"), "'nl'"), (("en", "fr", "not a locale"), "locale")]
)
def test_a_language_without_a_catalog_is_refused_at_start(
    settings: Settings, drop: Drop, languages: tuple[str, ...], named: str
) -> None:
    # Offering Dutch without a Dutch catalog would show English under lang="nl".
    with pytest.raises(SettingsError, match=named):
        create_app(dataclasses.replace(settings, languages=languages), drop)
