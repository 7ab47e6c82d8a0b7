"""Gettext catalogs read straight from ``.po`` files and compiled in memory, and the
choice of a language from what a browser accepts.

Only the ``.po`` sources are kept in the repository; there is no compiled ``.mo`` to go
stale or to be committed twice.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.core import get_global, parse_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from .errors import SettingsError

RTL_LANGUAGES = frozenset({"ar", "fa", "ur", "he", "ps", "ckb", "sd", "yi", "ug", "dv"})

# Where CLDR's own name for a language is not the one its speakers look for in a menu.
_OWN_NAMES = {"id": "Bahasa Indonesia"}


def N_(message: str) -> str:
    """Mark ``message`` for extraction without translating it: a label table built at
    import time, translated where it is shown."""
    return message


# What a translation could add to lead a reader astray: markup, and the addresses of a
# phishing page or of someone to write to. A translation may hold one only if its English
# (the msgid, part of the code) holds the same.
_MARKUP = re.compile(r"<[/!?]?[^\W\d_][^<>]*>?|&#?\w+;", re.IGNORECASE)
_ADDRESSES = {
    "URL": re.compile(r"\b(?:[a-z][a-z0-9+.-]*://|(?:mailto|javascript|data|xmpp):)\S*", re.I),
    "e-mail address or handle": re.compile(r"[\w.+-]*@[\w.-]*\w", re.I),
    "onion address": re.compile(r"[\w-]+\.onion\b", re.I),
    "domain": re.compile(r"(?<![\w@.-])(?:[\w-]+\.)+[^\W\d_]{2,63}\b(?!@)", re.I),
}


def foreign_text(source: str, translation: str) -> list[str]:
    """What ``translation`` adds that its ``source`` (the English) does not have: tags,
    entities, URLs, e-mail addresses, onion addresses, domains; empty if nothing.

    A catalog check refuses such a translation: it is how one ``.po`` entry would put a
    phishing link or a false contact on every page of a language.
    """
    found: list[str] = []
    for kind, pattern in (("markup", _MARKUP), *_ADDRESSES.items()):
        allowed = {m.casefold() for m in pattern.findall(source)}
        found.extend(
            f"{kind} {m!r}" for m in pattern.findall(translation) if m.casefold() not in allowed
        )
    return found


def escape_translation(source: str, translation: str) -> str:
    """``translation`` as HTML text for a page: escaped, except for the tags and entities
    that ``source`` (the msgid, written in the code) itself holds, exactly as written.

    Jinja marks what ``gettext`` returns as safe markup, so this is where a ``.po`` entry
    is kept from adding a link, a form or a script. The source text itself is trusted:
    an untranslated message is returned as it is.
    """
    if translation == source:
        return translation
    allowed = set(_MARKUP.findall(source))
    parts: list[str] = []
    end = 0
    for match in _MARKUP.finditer(translation):
        parts.append(html.escape(translation[end : match.start()]))
        token = match.group()
        parts.append(token if token in allowed else html.escape(token))
        end = match.end()
    parts.append(html.escape(translation[end:]))
    return "".join(parts)


def load_translations(directory: Path, locale: str, domain: str = "messages") -> NullTranslations:
    """Compile ``<directory>/<locale>/LC_MESSAGES/<domain>.po`` in memory; untranslated
    locales (and English, the source language) get identity translations.

    Fuzzy entries are left out: a guess is never shown to a source as a translation.
    """
    po = directory / locale / "LC_MESSAGES" / f"{domain}.po"
    if not po.exists():
        return NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=locale, domain=domain)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(fp=buffer, domain=domain)


def check_languages(
    directory: Path, languages: Iterable[str], source: str = "en", domain: str = "messages"
) -> None:
    """Make sure every offered language can really be shown: Babel knows it, and it has a
    catalog (the ``source`` language, that of the code, needs none).

    :raises SettingsError: naming the first language that cannot.
    """
    for locale in languages:
        try:
            Locale.parse(locale)
        except (ValueError, UnknownLocaleError):
            raise SettingsError(
                f"setting 'languages': {locale!r} is not a locale name (like 'fr' or 'pt_BR')"
            ) from None
        if locale != source and not (directory / locale / "LC_MESSAGES" / f"{domain}.po").exists():
            raise SettingsError(
                f"setting 'languages': there is no translation for {locale!r} in {directory}"
            )


def text_direction(locale: str) -> str:
    """``rtl`` for right-to-left languages, else ``ltr``."""
    return "rtl" if locale.split("_")[0] in RTL_LANGUAGES else "ltr"


def html_lang(locale: str) -> str:
    """The BCP 47 tag of a Babel locale name, for ``lang`` attributes: ``zh_Hans`` gives
    ``zh-Hans``."""
    return locale.replace("_", "-")


def language_name(locale: str) -> str:
    """A language's name in that language, as a menu shows it (``Français``, ``فارسی``)."""
    name = _OWN_NAMES.get(locale) or Locale.parse(locale).get_display_name(locale) or locale
    return name[:1].upper() + name[1:]


# Bounded: the tags come from request headers.
@lru_cache(maxsize=512)
def _maximized(tag: str) -> tuple[str, str, str] | None:
    """Language, script and territory of a tag, with CLDR's likely subtags filled in:
    ``zh-TW`` gives ``("zh", "Hant", "TW")``, ``pt`` gives ``("pt", "Latn", "BR")``."""
    try:
        language, territory, script, *_ = parse_locale(tag.replace("-", "_"))
    except ValueError:
        return None
    language = get_global("language_aliases").get(language, language)
    likely = get_global("likely_subtags")
    for key in (f"{language}_{script}_{territory}", f"{language}_{territory}", language):
        if key in likely:
            _, guess_territory, guess_script, *_ = parse_locale(likely[key])
            script = script or guess_script
            territory = territory or guess_territory
            break
    return language, script or "", territory or ""


def negotiate_locale(accepted: Iterable[tuple[str, float]], offered: Iterable[str]) -> str | None:
    """The offered locale that best serves a browser's ``(tag, quality)`` list.

    Preferences are tried in order of quality. A tag matches an offered locale of the
    same language and script (``zh-CN`` is served ``zh_Hans``, ``zh-HK`` ``zh_Hant``,
    ``pt-PT`` ``pt_BR``), and one of the same territory first if there are several.
    ``None`` when nothing matches: the caller falls back to its default.
    """
    candidates = [(o, m) for o in offered if (m := _maximized(o)) is not None]
    ranked = sorted(((t, q) for t, q in accepted if q > 0), key=lambda tq: -tq[1])
    for tag, _quality in ranked:
        wanted = _maximized(tag) if tag != "*" else None
        if wanted is None:
            continue
        same = [(o, m) for o, m in candidates if m[:2] == wanted[:2]]
        for locale, maximized in same:
            if maximized[2] == wanted[2]:
                return locale
        if same:
            return same[0][0]
    return None
