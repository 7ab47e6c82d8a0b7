"""Language choice for the source UI: Accept-Language first, then the source's choice,
remembered only in the (encrypted, expiring) session."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g, request, session
from flask_babel import format_date

from sdwm_web.i18n import current_locale, init_babel
from securedrop_wm.translations import check_languages, language_name, negotiate_locale


def select_locale() -> str:
    """The session's language if chosen, else the best match of Accept-Language."""
    languages: tuple[str, ...] = current_app.config["SDWM_LANGUAGES"]
    chosen = session.get("lang")
    if chosen in languages:
        return str(chosen)
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


def local_date(day: str | dt.date) -> str:
    """A day (``date`` or ISO string) written the way the page's language writes dates."""
    if isinstance(day, str):
        day = dt.date.fromisoformat(day)
    return str(format_date(day, "long"))


def init_i18n(app: Flask, directory: Path, languages: tuple[str, ...], default: str) -> None:
    """Configure Flask-Babel and the template helpers for language and direction.

    :raises SettingsError: if an offered language has no catalog.
    """
    check_languages(directory, languages)
    app.config["SDWM_LANGUAGES"] = languages
    app.config["SDWM_DEFAULT_LANGUAGE"] = default
    init_babel(app, directory, request_locale)

    @app.before_request
    def _fix_locale() -> None:
        request_locale()

    app.add_template_filter(local_date, "local_date")

    names = {lang: language_name(lang) for lang in languages}

    @app.context_processor
    def _language_choice() -> dict[str, Any]:
        # html_lang and text_dir come from sdwm_web; the source UI also offers a menu.
        return {"current_locale": current_locale(), "language_names": names}
