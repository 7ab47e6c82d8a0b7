"""Language choice for the source UI: Accept-Language first, then the source's choice,
remembered only in the (encrypted, expiring) session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from babel import Locale
from flask import Flask, current_app, request, session
from flask_babel import Babel, Domain, get_locale

from securedrop_wm.translations import load_translations, text_direction


class PoDomain(Domain):  # type: ignore[misc]
    """A Flask-Babel domain that compiles ``.po`` files in memory on first use."""

    def __init__(self, directory: Path) -> None:
        super().__init__(translation_directories=[str(directory)])
        self._directory = directory
        self._loaded: dict[str, Any] = {}

    def get_translations(self) -> Any:
        locale = str(get_locale())
        if locale not in self._loaded:
            self._loaded[locale] = load_translations(self._directory, locale)
        return self._loaded[locale]


def select_locale() -> str:
    """The session's language if chosen, else the best match of Accept-Language."""
    languages: tuple[str, ...] = current_app.config["SDWM_LANGUAGES"]
    chosen = session.get("lang")
    if chosen in languages:
        return str(chosen)
    best = request.accept_languages.best_match([lang.replace("_", "-") for lang in languages])
    return best.replace("-", "_") if best else current_app.config["SDWM_DEFAULT_LANGUAGE"]


def init_i18n(app: Flask, directory: Path, languages: tuple[str, ...], default: str) -> None:
    """Configure Flask-Babel and the template helpers for language and direction."""
    app.config["SDWM_LANGUAGES"] = languages
    app.config["SDWM_DEFAULT_LANGUAGE"] = default
    babel = Babel(app, locale_selector=select_locale)
    # Flask-Babel caches its domain per app; ours compiles the .po files in memory.
    babel.domain_instance = PoDomain(directory)

    names = {lang: Locale.parse(lang).get_display_name(lang) or lang for lang in languages}

    @app.context_processor
    def _language_context() -> dict[str, Any]:
        locale = str(get_locale())
        return {
            "current_locale": locale,
            "html_lang": locale.replace("_", "-"),
            "text_dir": text_direction(locale),
            "language_names": names,
        }
