"""Translations for the HTML apps: catalogs compiled from ``.po`` in memory, the template
variables a page needs to declare its language and direction, and the escaping of
translated text in templates."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from babel.support import NullTranslations
from flask import Flask
from flask_babel import Babel, Domain, get_locale, get_translations

from securedrop_wm.translations import (
    escape_translation,
    html_lang,
    load_translations,
    text_direction,
)


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


def _gettext(message: str) -> str:
    return escape_translation(message, get_translations().ugettext(message))


def _ngettext(singular: str, plural: str, n: int) -> str:
    text = get_translations().ungettext(singular, plural, n)
    return text if text in (singular, plural) else escape_translation(singular + plural, text)


def _pgettext(context: str, message: str) -> str:
    return escape_translation(message, get_translations().upgettext(context, message))


def _npgettext(context: str, singular: str, plural: str, n: int) -> str:
    text = get_translations().unpgettext(context, singular, plural, n)
    return text if text in (singular, plural) else escape_translation(singular + plural, text)


def install_escaping_gettext(app: Flask) -> None:
    """Make the templates' ``_()``, ``ngettext()`` and ``{% trans %}`` escape translated
    text (see :func:`~securedrop_wm.translations.escape_translation`).

    Jinja's i18n extension marks whatever gettext returns as safe markup, as if the
    translators were part of the code; a ``.po`` entry is text from outside it. Text
    that code passes to a template after calling :func:`flask_babel.gettext` is a plain
    string and autoescaped as any other.
    """
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=_gettext,
        ngettext=_ngettext,
        pgettext=_pgettext,
        npgettext=_npgettext,
        newstyle=True,
    )


def init_babel(app: Flask, directory: Path, locale_selector: Callable[[], str]) -> None:
    """Set up Flask-Babel on ``app`` with catalogs compiled from the ``.po`` files in
    ``directory``, the language chosen by ``locale_selector``, and the template variables
    of :func:`language_context`."""
    babel = Babel(app, locale_selector=locale_selector)
    # Flask-Babel caches its domain per app; ours compiles the .po files in memory.
    babel.domain_instance = PoDomain(directory)
    install_escaping_gettext(app)
    app.context_processor(language_context)
