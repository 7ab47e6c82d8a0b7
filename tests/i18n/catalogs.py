"""Checks a gettext catalog against its template: what a translator can get wrong in a way
a reader would notice (a missing string, an English fallback, a broken placeholder), and
what a hostile translation could add (markup, a link, an address to write to)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from babel import Locale
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po

from securedrop_wm.translations import foreign_text, load_translations

ROOT = Path(__file__).resolve().parents[2]
BABEL_CFG = ROOT / "babel.cfg"

# printf-style conversions, named or not: %(num)d, %s, %.2f, and the escaped %%.
PLACEHOLDER = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(?:\d+|\*)?(?:\.\d+)?[diouxXeEfFgGcrsa%]")


# CLDR's plural categories, in the order gettext numbers a language's forms.
CLDR_CATEGORIES = ("zero", "one", "two", "few", "many", "other")
# Counts every plural message is shown with: zero, one, two, the "few" and "many" of the
# Slavic and Arabic rules, hundreds (Arabic), and exact millions (the "many" of French,
# Spanish, Italian, Catalan and Portuguese: "1 000 000 de fichiers").
PLURAL_COUNTS = (0, 1, 2, 3, 5, 11, 21, 22, 25, 100, 101, 102, 111, 1_000_000, 2_000_000)
# The whole numbers that decide which categories a language gives whole numbers at all
# (Russian's "other" is for fractions only; French's "many" is for exact millions only).
_WHOLE_NUMBERS = (*range(1000), *PLURAL_COUNTS)
NAMED = re.compile(r"%\(([^)]*)\)")


def placeholders(text: str) -> Counter[str]:
    """The placeholders of ``text``, with their counts."""
    return Counter(PLACEHOLDER.findall(text))


def read_catalog(path: Path, locale: str | None = None) -> Catalog:
    """Parse a ``.po`` or ``.pot`` file."""
    with path.open("rb") as f:
        return read_po(f, locale=locale)


def extracted_ids(ui_dir: Path) -> set[str | tuple[str, str]]:
    """The message ids the code of ``ui_dir`` uses now, extracted as ``pybabel`` would."""
    with BABEL_CFG.open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    ids: set[str | tuple[str, str]] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ui_dir), method_map, options_map
    ):
        ids.add(message if isinstance(message, str) else (message[0], message[1]))
    return ids


def template_ids(template: Catalog) -> set[str | tuple[str, str]]:
    """The message ids of a template, in the form :func:`extracted_ids` gives."""
    return {_key(m) for m in template if m.id}


def catalog_problems(template: Catalog, catalog: Catalog, locale: str) -> list[str]:
    """Everything wrong with ``catalog`` (for ``locale``) against ``template``; empty if
    nothing is."""
    problems: list[str] = []
    expected_plurals = get_plural(locale).num_plurals
    if catalog.num_plurals != expected_plurals:
        problems.append(
            f"Plural-Forms has {catalog.num_plurals} forms; {locale} has {expected_plurals}"
        )
    for wanted in template:
        if not wanted.id:
            continue
        found = catalog.get(wanted.id)
        label = repr(_key(wanted))
        if found is None:
            problems.append(f"missing: {label}")
        elif found.fuzzy:
            problems.append(f"fuzzy (shown in English): {label}")
        else:
            problems.extend(
                f"{label}: {p}" for p in _message_problems(wanted, found, expected_plurals)
            )
    return problems


def whole_number_categories(locale: str) -> list[str]:
    """The CLDR plural categories whole numbers fall into in ``locale``, in gettext's
    order: the forms of a catalog, one per category (``["one", "many", "other"]`` for
    French)."""
    rule = Locale.parse(locale).plural_form
    reached = {rule(n) for n in _WHOLE_NUMBERS}
    return [category for category in CLDR_CATEGORIES if category in reached]


def plural_problems(template: Catalog, catalog: Catalog, directory: Path, locale: str) -> list[str]:
    """Every plural message of ``template`` rendered in ``locale`` through the real loader
    (the ``.po`` under ``directory``, compiled with its own ``Plural-Forms``) for each of
    :data:`PLURAL_COUNTS`: what is wrong with it; empty if nothing is.

    For each count the loader must pick the form CLDR's rule for ``locale`` picks, and it
    must format with no ``%`` left and not fall back to English. A form that serves more
    than one count must show the number. Where CLDR gives exact millions a form of their
    own next to the general one, the two must differ: that form is there because the
    wording changes ("1 000 000 de fichiers", not "1 000 000 fichiers"). ``catalog`` is
    the parsed ``.po``, to know what each form says.
    """
    problems: list[str] = []
    rule = Locale.parse(locale).plural_form
    categories = whole_number_categories(locale)
    # Babel's gettext table, which Plural-Forms follows, may give one form where CLDR has
    # categories (vi in Babel 2.19): then one string serves every count.
    plurals = get_plural(locale).num_plurals
    if plurals > 1 and len(categories) != plurals:
        return [f"CLDR gives {locale} {categories}, Babel's gettext rule {plurals} forms"]

    def index_of(n: int) -> int:
        return categories.index(rule(n)) if plurals > 1 else 0

    counts_per_form = Counter(index_of(n) for n in set(_WHOLE_NUMBERS))
    translations = load_translations(directory, locale)
    for wanted in template:
        if not wanted.id or not wanted.pluralizable:
            continue
        singular, plural = wanted.id[0], wanted.id[1]
        found = catalog.get(singular)
        forms = found.string if found is not None and isinstance(found.string, tuple) else ()
        label = repr(_key(wanted))
        if len(forms) != plurals:
            problems.append(f"{label}: {len(forms)} forms; {locale} has {plurals} ({categories})")
        names = set(NAMED.findall(plural))
        for n in PLURAL_COUNTS:
            index, values = index_of(n), dict.fromkeys(names, n)
            chosen = translations.ngettext(singular, plural, n)
            if index >= len(forms) or chosen != forms[index]:
                problems.append(
                    f"{label}, n={n}: got {chosen!r}, not form {index} ({rule(n)}): "
                    f"{forms[index] if index < len(forms) else None!r}"
                )
                continue
            try:
                text = chosen % values
            except (KeyError, TypeError, ValueError) as error:
                problems.append(f"{label}, n={n}: does not format: {error!r}")
                continue
            if "%" in text:
                problems.append(f"{label}, n={n}: '%' left in {text!r}")
            if text in (singular % values, plural % values):
                problems.append(f"{label}, n={n}: shown in English")
            if counts_per_form[index] > 1 and str(n) not in text:
                problems.append(
                    f"{label}, n={n}: form {index} serves several counts but hides the number"
                )
        if rule(1_000_000) == "many" and "other" in categories and len(forms) == plurals:
            many, other = categories.index("many"), categories.index("other")
            if forms[many] == forms[other]:
                problems.append(f"{label}: the 'many' form (millions) is a copy of 'other'")
    return problems


def _message_problems(wanted: Message, found: Message, plurals: int) -> list[str]:
    english = wanted.id if isinstance(wanted.id, str) else " ".join(wanted.id)
    texts = found.string if isinstance(found.string, tuple) else (found.string,)
    # Jinja shows translations as markup; the page escapes them, and the check refuses
    # what a reader could be sent to: a tag, a URL, an e-mail, a domain, an onion.
    added = [a for text in texts for a in foreign_text(english, text or "")]
    return added + _form_problems(wanted, found, plurals)


def _form_problems(wanted: Message, found: Message, plurals: int) -> list[str]:
    if isinstance(wanted.id, str):
        text = found.string if isinstance(found.string, str) else ""
        if not text.strip():
            return ["not translated"]
        if placeholders(text) != placeholders(wanted.id):
            return [f"placeholders {dict(placeholders(text))} differ from the original's"]
        return []
    forms = found.string if isinstance(found.string, tuple) else ()
    if len(forms) != plurals or not all(f.strip() for f in forms):
        return ["plural forms not all translated"]
    allowed = placeholders(wanted.id[1])
    problems = []
    for index, form in enumerate(forms):
        used = placeholders(form)
        # A form for exactly one (or zero, two) may spell the number out; the general
        # form, the last one, must show it.
        if used - allowed or (index == len(forms) - 1 and used != allowed):
            problems.append(f"plural form {index}: placeholders {dict(used)} do not fit")
    return problems


def _key(message: Message) -> str | tuple[str, str]:
    return message.id if isinstance(message.id, str) else (message.id[0], message.id[1])
