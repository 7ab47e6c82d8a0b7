"""Gettext catalogs read straight from ``.po`` files and compiled in memory.

Only the ``.po`` sources are kept in the repository; there is no compiled ``.mo`` to go
stale or to be committed twice.
"""

from __future__ import annotations

import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

RTL_LANGUAGES = frozenset({"ar", "fa", "ur", "he", "ps", "ckb", "sd", "yi", "ug", "dv"})


def load_translations(directory: Path, locale: str, domain: str = "messages") -> NullTranslations:
    """Compile ``<directory>/<locale>/LC_MESSAGES/<domain>.po`` in memory; untranslated
    locales (and English, the source language) get identity translations."""
    po = directory / locale / "LC_MESSAGES" / f"{domain}.po"
    if not po.exists():
        return NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=locale, domain=domain)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(fp=buffer, domain=domain)


def text_direction(locale: str) -> str:
    """``rtl`` for right-to-left languages, else ``ltr``."""
    return "rtl" if locale.split("_")[0] in RTL_LANGUAGES else "ltr"
