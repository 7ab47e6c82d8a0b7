"""Translations for the HTML apps: catalogs compiled from ``.po`` in memory, and the
template variables a page needs to declare its language and direction."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from babel.support import NullTranslations
from flask import Flask
from flask_babel import Babel, Domain, get_locale

from securedrop_wm.translations import html_lang, load_translations, text_direction


class PoDomain(Domain):
    """A Flask-Babel domain that compiles ``.po`` files in memory on first use."""

    def __init__(self, directory: Path) -> None:
        # Flask-Babel is unannotated, and untyped_calls_exclude does not reach super().
        super().__init__(translation_directories=[str(directory)])  # type: ignore[no-untyped-call]
        self._directory = directory
        self._loaded: dict[str, NullTranslations] = {}

    def get_translations(self) -> NullTranslations:
        locale = str(get_locale())
        if locale not in self._loaded:
            self._loaded[locale] = load_translations(self._directory, locale)
        return self._loaded[locale]


def current_locale() -> str:
    """The locale of the request being handled, as Flask-Babel chose it."""
    return str(get_locale())


def language_context() -> dict[str, str]:
    """What a page's ``<html>`` element needs: ``html_lang`` and ``text_dir``."""
    locale = current_locale()
    return {"html_lang": html_lang(locale), "text_dir": text_direction(locale)}


def catalog_locales(directory: Path, source: str = "en") -> list[str]:
    """The source language and every locale with a folder of catalogs in ``directory``."""
    found = directory.iterdir() if directory.is_dir() else iter(())
    return [source, *(p.name for p in found if p.is_dir())]


def init_babel(app: Flask, directory: Path, locale_selector: Callable[[], str]) -> None:
    """Set up Flask-Babel on ``app`` with catalogs compiled from the ``.po`` files in
    ``directory``, the language chosen by ``locale_selector``, and the template variables
    of :func:`language_context`."""
    babel = Babel(app, locale_selector=locale_selector)
    # Flask-Babel caches its domain per app; ours compiles the .po files in memory.
    babel.domain_instance = PoDomain(directory)
    app.context_processor(language_context)
