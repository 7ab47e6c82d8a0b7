"""A language choice that holds: the language cookie, logout, a link from another site,
the picker at the top of every page, and a codename that a language switch never
replaces (issue 17, part 4). Through the test client; the same in a real browser is in
tests/browser/test_language_choice.py."""

from __future__ import annotations

import dataclasses
import re
from http.cookies import SimpleCookie

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from securedrop_wm.codenames import available_wordlists, generate_codename, load_wordlist
from securedrop_wm.drop import Drop
from securedrop_wm.settings import Settings
from source_ui import create_app
from source_ui.i18n import LANGUAGE_COOKIE
from tests.conftest import CODENAME_RE, csrf_token, new_source
from tests.headers.checks import cookie_problems

# What Tor Browser sends whatever the user's language (privacy.spoof_english).
TOR_BROWSER = {"Accept-Language": "en-US,en;q=0.5"}
HTML_TAG = re.compile(r"<html lang=\"([^\"]+)\" dir=\"(ltr|rtl)\">")
CODENAME_TAG = re.compile(r'<p class="codename" id="codename" lang="([^"]+)" dir="([^"]+)">')
RTL_WORDS = {"ar", "fa", "he", "ur"}


def page_language(response: TestResponse) -> str:
    match = HTML_TAG.search(response.text)
    assert match, "page has no <html lang dir>"
    return match.group(1)


def codename_on(response: TestResponse) -> str:
    match = CODENAME_RE.search(response.text)
    assert match, "no codename on the page"
    return match.group(1)


def language_cookie_lines(response: TestResponse) -> list[str]:
    """The ``Set-Cookie`` lines of the language cookie in ``response``."""
    return [
        line
        for line in response.headers.getlist("Set-Cookie")
        if line.startswith(f"{LANGUAGE_COOKIE}=")
    ]


def browser_logout(client: FlaskClient, token: str) -> TestResponse:
    """Log out as a browser does: apply ``Clear-Site-Data: "cookies"`` (the test client
    ignores it), then follow the redirects."""
    response = client.post("/logout", data={"csrf_token": token}, headers=TOR_BROWSER)
    assert response.status_code == 303
    assert response.headers["Clear-Site-Data"] == '"cookies"'
    for name in ("sdwm", LANGUAGE_COOKIE):  # every cookie of the site goes
        client.delete_cookie(name)
        assert client.get_cookie(name) is None
    while response.status_code in (302, 303):
        response = client.get(response.location, headers=TOR_BROWSER)
    return response


def test_a_language_link_sets_a_cookie_holding_the_language_only(client: FlaskClient) -> None:
    response = client.get("/language/pt_BR?next=/safety")
    (line,) = language_cookie_lines(response)
    jar: SimpleCookie = SimpleCookie()
    jar.load(line)
    morsel = jar[LANGUAGE_COOKIE]
    assert morsel.value == "pt_BR"  # no identifier, no time: the locale name only
    assert morsel["httponly"] and str(morsel["samesite"]) == "Lax" and morsel["path"] == "/"
    assert not morsel["domain"] and not morsel["secure"]  # this test app is plain http
    assert int(morsel["max-age"]) >= 364 * 24 * 3600  # a year: it names a language only
    assert cookie_problems(line) == []
    # Pages served afterwards do not set it again, and a visitor who chose nothing
    # gets no language cookie at all.
    assert language_cookie_lines(client.get("/safety")) == []
    other = client.application.test_client()
    assert language_cookie_lines(other.get("/", headers={"Accept-Language": "fr"})) == []


def test_the_language_cookie_is_secure_where_the_session_cookie_is(app: Flask) -> None:
    app.config["SESSION_COOKIE_SECURE"] = True  # a drop served over HTTPS
    client = app.test_client()
    client.get("/generate")  # a session: the language goes into it too
    response = client.get("/language/fa")
    (line,) = language_cookie_lines(response)
    assert "Secure" in line.split("; ")
    session_line = next(
        line for line in response.headers.getlist("Set-Cookie") if line.startswith("sdwm=")
    )
    assert "Secure" in session_line.split("; ")


def test_a_first_request_with_only_the_language_cookie_is_in_that_language(
    app: Flask, client: FlaskClient
) -> None:
    # Given a link on another site to /language/ar: the browser keeps both cookies, but on
    # the redirect that follows a cross-site click it sends only the SameSite=Lax one.
    response = client.get("/language/ar?next=/", headers=TOR_BROWSER)
    assert response.status_code == 302 and response.location == "/"
    (line,) = language_cookie_lines(response)
    arriving = app.test_client()
    arriving.set_cookie(LANGUAGE_COOKIE, SimpleCookie(line)[LANGUAGE_COOKIE].value)
    # When that redirect arrives, with Tor Browser's English Accept-Language
    page = arriving.get("/", headers=TOR_BROWSER)
    # Then the page is in Arabic, right to left, with the Arabic name marked as current
    assert page_language(page) == "ar" and 'dir="rtl"' in page.text
    assert '<strong lang="ar" aria-current="true">العربية</strong>' in page.text
    assert "Cookie" in page.headers.get("Vary", "")


@pytest.mark.parametrize(
    "value", ["xx", "fr;", "../ar", "ar\u200f", "AR", "fr_FR", "en fr", "a" * 300, ""]
)
def test_a_language_cookie_that_names_no_offered_language_is_ignored(
    client: FlaskClient, value: str
) -> None:
    client.set_cookie(LANGUAGE_COOKIE, value)
    assert page_language(client.get("/", headers={"Accept-Language": "de"})) == "de"


def test_a_language_the_drop_does_not_offer_is_ignored(settings: Settings, drop: Drop) -> None:
    client = create_app(dataclasses.replace(settings, languages=("en", "fr")), drop).test_client()
    client.set_cookie(LANGUAGE_COOKIE, "ar")
    assert page_language(client.get("/", headers=TOR_BROWSER)) == "en"
    client.get("/language/ar")
    assert page_language(client.get("/", headers=TOR_BROWSER)) == "en"


def test_the_session_choice_comes_before_the_cookie_and_the_cookie_before_the_browser(
    client: FlaskClient,
) -> None:
    client.set_cookie(LANGUAGE_COOKIE, "fr")
    assert page_language(client.get("/", headers={"Accept-Language": "de"})) == "fr"
    client.get("/generate")  # a session (the codename drawn), which notes the next choice
    client.get("/language/es")
    client.set_cookie(LANGUAGE_COOKIE, "fr")  # an older cookie, from another tab say
    page = client.get("/", headers={"Accept-Language": "de"})
    assert page_language(page) == "es"
    # and the cookie follows the choice again
    assert [SimpleCookie(x)[LANGUAGE_COOKIE].value for x in language_cookie_lines(page)] == ["es"]


def test_the_forms_language_switch_sets_the_cookie_too(client: FlaskClient) -> None:
    new_source(client)
    form = client.get("/submit").text
    response = client.post(
        "/form-language",
        data={"csrf_token": csrf_token(form), "form_language": "uk", "what_happened": "x"},
    )
    assert [SimpleCookie(x)[LANGUAGE_COOKIE].value for x in language_cookie_lines(response)] == [
        "uk"
    ]


def test_the_language_survives_logout_and_the_session_really_ends(
    app: Flask, client: FlaskClient
) -> None:
    # Given a source who chose French with the language link and logged in
    client.get("/language/fr?next=/", headers=TOR_BROWSER)
    new_source(client)
    page = client.get("/replies", headers=TOR_BROWSER)
    captured = client.get_cookie("sdwm")
    assert captured is not None
    # When they log out, in a browser that applies Clear-Site-Data
    goodbye = browser_logout(client, csrf_token(page.text))
    # Then the goodbye page, and the next visit, are in French
    assert goodbye.status_code == 200 and page_language(goodbye) == "fr"
    assert 'id="login-again"' in goodbye.text
    assert client.get_cookie(LANGUAGE_COOKIE).value == "fr"  # type: ignore[union-attr]
    assert page_language(client.get("/", headers=TOR_BROWSER)) == "fr"
    # And the session is over: the browser is no longer logged in, and the old cookie
    # opens nothing anywhere
    assert client.get("/replies").status_code == 302
    thief = app.test_client()
    thief.set_cookie("sdwm", captured.value)
    assert thief.get("/replies").status_code == 401


def test_a_logout_without_a_chosen_language_sets_no_language_cookie(client: FlaskClient) -> None:
    new_source(client)
    page = client.get("/replies", headers={"Accept-Language": "ru"})
    response = client.post(
        "/logout", data={"csrf_token": csrf_token(page.text)}, headers={"Accept-Language": "ru"}
    )
    assert response.status_code == 303 and response.location == "/logged-out"
    assert language_cookie_lines(response) == []
    goodbye = client.get("/logged-out", headers={"Accept-Language": "ru"})
    assert page_language(goodbye) == "ru" and language_cookie_lines(goodbye) == []


@pytest.mark.parametrize("path", ["/", "/safety", "/generate", "/login", "/logged-out"])
def test_the_picker_is_at_the_top_of_every_page(client: FlaskClient, path: str) -> None:
    client.get("/language/fa")
    html = client.get(path).text
    picker = html.index('id="language-picker"')
    assert picker < html.index('<main id="content">')
    assert 'class="language-picker" id="language-picker" href="#languages"' in html
    assert '<nav class="languages" id="languages"' in html
    # every language in its own name, its own lang and direction
    assert '<li dir="ltr"><a lang="fr" hreflang="fr" href="/language/fr?next=' in html
    assert '<li dir="rtl"><a lang="ar" hreflang="ar" href="/language/ar?next=' in html
    assert '<li dir="rtl"><strong lang="fa" aria-current="true">فارسی</strong>' in html


def test_the_picker_is_there_for_a_logged_in_source(client: FlaskClient) -> None:
    new_source(client)
    for path in ("/submit", "/replies", "/message", "/files"):
        html = client.get(path).text
        assert html.index('id="language-picker"') < html.index('<main id="content">'), path


def test_the_codename_stays_the_same_on_reload_and_language_switch(client: FlaskClient) -> None:
    first = codename_on(client.get("/generate"))
    assert codename_on(client.get("/generate")) == first
    # The footer's (and the top picker's) links go back to /generate
    switch = client.get("/language/de?next=/generate")
    assert switch.location == "/generate"
    page = client.get("/generate")
    assert page_language(page) == "de"
    assert codename_on(page) == first
    # and that is the codename "Continue" creates
    response = client.post("/create", data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 302 and response.location == "/submit"
    replies = client.get("/replies")
    client.post("/logout", data={"csrf_token": csrf_token(replies.text)})
    login = client.get("/login")
    back = client.post("/login", data={"csrf_token": csrf_token(login.text), "codename": first})
    assert back.status_code == 302 and back.location == "/replies"


def test_a_switch_to_a_language_with_other_words_offers_a_new_codename(
    client: FlaskClient,
) -> None:
    # Given a codename in English words on an English page
    page = client.get("/generate", headers=TOR_BROWSER)
    first = codename_on(page)
    assert 'id="codename-offer"' not in page.text  # the words are the page's: no offer
    # When the source switches the page to French
    client.get("/language/fr?next=/generate")
    page = client.get("/generate")
    # Then the same codename is shown, with an offer (a form) of one in French words
    assert codename_on(page) == first
    assert 'id="codename-offer"' in page.text
    assert '<input type="hidden" name="words" value="fr">' in page.text
    # When they take it
    response = client.post("/generate", data={"csrf_token": csrf_token(page.text), "words": "fr"})
    assert response.status_code == 302 and response.location == "/generate"
    page = client.get("/generate")
    # Then a new codename in French words is shown, and the page says the old one is void
    second = codename_on(page)
    assert second != first
    assert all(word in load_wordlist("fr").index for word in second.split())
    assert CODENAME_TAG.search(page.text).groups() == ("fr", "ltr")  # type: ignore[union-attr]
    assert 'class="flash flash-info" role="status"' in page.text  # (its words: below)
    assert 'id="codename-offer"' not in page.text
    # And only the new one works after "Continue"
    client.post("/create", data={"csrf_token": csrf_token(page.text)})
    replies = client.get("/replies")
    client.post("/logout", data={"csrf_token": csrf_token(replies.text)})
    for codename, status in ((first, 401), (second, 302)):
        login = client.get("/login")
        tried = client.post(
            "/login", data={"csrf_token": csrf_token(login.text), "codename": codename}
        )
        assert tried.status_code == status, codename


def test_the_new_codename_page_says_the_old_one_is_void(client: FlaskClient) -> None:
    first = codename_on(client.get("/generate?words=fr", headers=TOR_BROWSER))
    page = client.get("/generate", headers=TOR_BROWSER)  # English page: English words offered
    assert codename_on(page) == first
    assert "Give me a new codename in English words" in page.text
    assert "the one above becomes void" in page.text
    client.post("/generate", data={"csrf_token": csrf_token(page.text), "words": "en"})
    page = client.get("/generate", headers=TOR_BROWSER)
    assert codename_on(page) != first
    assert "This is your new codename. The one shown before is void" in page.text


def test_a_words_link_offers_and_never_replaces(client: FlaskClient) -> None:
    first = codename_on(client.get("/generate", headers=TOR_BROWSER))
    page = client.get("/generate?words=es", headers=TOR_BROWSER)
    assert codename_on(page) == first
    assert '<input type="hidden" name="words" value="es">' in page.text


def test_a_new_codename_needs_a_valid_form(client: FlaskClient) -> None:
    page = client.get("/generate")
    first = codename_on(page)
    assert client.post("/generate", data={"words": "fr"}).status_code == 400  # no token
    token = csrf_token(client.get("/generate").text)
    refused = client.post("/generate", data={"csrf_token": token, "words": "klingon"})
    assert refused.status_code == 400
    assert codename_on(client.get("/generate")) == first


@pytest.mark.parametrize("words", available_wordlists())
def test_the_codename_is_shown_in_the_direction_of_its_words(
    client: FlaskClient, words: str
) -> None:
    client.get("/language/ar")  # a right-to-left page
    page = client.get(f"/generate?words={words}")
    lang, direction = CODENAME_TAG.search(page.text).groups()  # type: ignore[union-attr]
    assert lang == words.replace("_", "-")
    assert direction == ("rtl" if words.split("_")[0] in RTL_WORDS else "ltr")
    assert 'dir="rtl"' in page.text.split("<body>")[0]  # the page itself stays RTL


def test_a_codename_drawn_before_its_list_was_noted_keeps_its_language(
    client: FlaskClient,
) -> None:
    codename = generate_codename(7, "it")
    with client.session_transaction() as session:
        session["pending_codename"] = codename
    page = client.get("/generate", headers=TOR_BROWSER)
    assert codename_on(page) == codename
    assert CODENAME_TAG.search(page.text).groups() == ("it", "ltr")  # type: ignore[union-attr]


def test_an_arabic_codename_stays_right_to_left_when_the_page_turns_french(
    client: FlaskClient,
) -> None:
    # Given an Arabic page: its codename is in Arabic words, right to left
    client.get("/language/ar")
    page = client.get("/generate")
    assert CODENAME_TAG.search(page.text).groups() == ("ar", "rtl")  # type: ignore[union-attr]
    shown = codename_on(page)
    # When the page turns French
    client.get("/language/fr?next=/generate")
    page = client.get("/generate")
    # Then the same Arabic codename is there, still right to left, and French words offered
    assert page_language(page) == "fr"
    assert codename_on(page) == shown
    assert CODENAME_TAG.search(page.text).groups() == ("ar", "rtl")  # type: ignore[union-attr]
    assert '<input type="hidden" name="words" value="fr">' in page.text
    # And the codename as shown brings the source back
    client.post("/create", data={"csrf_token": csrf_token(page.text)})
    replies = client.get("/replies")
    client.post("/logout", data={"csrf_token": csrf_token(replies.text)})
    login = client.get("/login")
    back = client.post("/login", data={"csrf_token": csrf_token(login.text), "codename": shown})
    assert back.status_code == 302 and back.location == "/replies"
