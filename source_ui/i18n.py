"""Language choice for the source UI.

The page language is, in this order: the language chosen in this session, else the one
in the language cookie, else the best match of Accept-Language, else the default. A
choice (the language links, the forms' language switch) goes into the language cookie,
which holds the locale name and nothing else, and into the encrypted session when there
is one; so the choice survives logout and reaches the first page of a visit that starts
with a link from another site (docs/translations.md, "Language").
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from babel import Locale
from flask import Flask, Response, current_app, g, request, session
from flask_babel import format_date
from werkzeug.wrappers import Response as AnyResponse

from sdwm_web.i18n import current_locale, init_babel
from securedrop_wm.translations import (
    check_languages,
    language_name,
    negotiate_locale,
    text_direction,
)

#: The cookie that remembers the page language. Its value is a locale name of the
#: drop's ``languages`` and nothing else: no identifier, no time.
LANGUAGE_COOKIE = "sdwm_lang"
#: How long the language cookie lives: it names a language only, so a long life costs
#: nothing (Tor Browser forgets it anyway when it closes or takes a New Identity).
LANGUAGE_COOKIE_SECONDS = 365 * 24 * 3600


def offered_languages() -> tuple[str, ...]:
    """The languages this drop offers (``Settings.languages``)."""
    languages: tuple[str, ...] = current_app.config["SDWM_LANGUAGES"]
    return languages


def cookie_language() -> str | None:
    """The language of the language cookie, if it is one this drop offers."""
    value = request.cookies.get(LANGUAGE_COOKIE)
    return value if value in offered_languages() else None


def select_locale() -> str:
    """The session's chosen language, else the language cookie's, else the best match of
    Accept-Language, else the default."""
    languages = offered_languages()
    chosen = session.get("lang")
    if chosen in languages:
        return str(chosen)
    remembered = cookie_language()
    if remembered is not None:
        g.sdwm_locale_from_cookie = True
        return remembered
    best = negotiate_locale(request.accept_languages, languages)
    return best or str(current_app.config["SDWM_DEFAULT_LANGUAGE"])


def request_locale() -> str:
    """The language of this request, fixed by its first use.

    A view that clears the session (log out) still answers in the language the
    request came in with.
    """
    if "sdwm_locale" not in g:
        g.sdwm_locale = select_locale()
    return str(g.sdwm_locale)


def chosen_language() -> str | None:
    """The language the source chose (this session's, else the cookie's), if any: what a
    logout carries over to the goodbye page."""
    chosen = session.get("lang")
    if chosen in offered_languages():
        return str(chosen)
    return cookie_language()


def remember_language(response: AnyResponse, language: str) -> None:
    """Set the language cookie on ``response``: SameSite=Lax, so that it comes with a
    link followed from another site (the session cookie, SameSite=Strict, does not);
    HttpOnly; Secure where the session cookie is; host-only."""
    if language not in offered_languages():
        return
    g.sdwm_remembered = language
    response.set_cookie(
        LANGUAGE_COOKIE,
        language,
        max_age=LANGUAGE_COOKIE_SECONDS,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=bool(current_app.config["SESSION_COOKIE_SECURE"]),
    )


def local_date(day: str | dt.date) -> str:
    """A day (``date`` or ISO string) written the way the page's language writes dates."""
    if isinstance(day, str):
        day = dt.date.fromisoformat(day)
    return str(format_date(day, "long"))


def language_in_page(locale: str) -> str:
    """A language's name in the page's language (``French`` on an English page,
    ``français`` on a French one), for a sentence that names it."""
    try:
        name = Locale.parse(locale).get_display_name(current_locale())
    except (ValueError, LookupError):
        name = None
    return name or locale


def init_i18n(app: Flask, directory: Path, languages: tuple[str, ...], default: str) -> None:
    """Configure Flask-Babel, the language cookie and the template helpers for language
    and direction.

    :raises SettingsError: if an offered language has no catalog.
    """
    check_languages(directory, languages)
    app.config["SDWM_LANGUAGES"] = languages
    app.config["SDWM_DEFAULT_LANGUAGE"] = default
    init_babel(app, directory, request_locale)

    @app.before_request
    def _fix_locale() -> None:
        request_locale()

    @app.after_request
    def _mirror_choice(response: Response) -> Response:
        # A language chosen in the session goes into the language cookie too (the links
        # of main.choose_language, the forms' language switch), once.
        chosen = session.get("lang")
        if (
            chosen in languages
            and request.cookies.get(LANGUAGE_COOKIE) != chosen
            and g.get("sdwm_remembered") != chosen
        ):
            remember_language(response, str(chosen))
        if g.get("sdwm_locale_from_cookie"):
            response.vary.add("Cookie")
        return response

    app.add_template_filter(local_date, "local_date")

    names = {lang: language_name(lang) for lang in languages}
    directions = {lang: text_direction(lang) for lang in languages}

    @app.context_processor
    def _language_choice() -> dict[str, Any]:
        # html_lang and text_dir come from sdwm_web; the source UI also offers a menu.
        return {
            "current_locale": current_locale(),
            "language_names": names,
            "language_dirs": directions,
        }
